#!/usr/bin/env python3
"""Generates shaders/matmul_cpu.wgsl: the GEMM kernels for CPU Vulkan drivers (lavapipe).

Why generated: llvmpipe runs a workgroup's invocations as SIMD lanes and loads storage buffers
one lane at a time, so a kernel is fast there only if each invocation keeps a large block of
C in registers and reuses every loaded value many times. Arrays indexed in loops defeat that
(measured 10x slower on lavapipe: they go to memory), so the 8x8 block is written out as plain
variables, which this script spells out. Run it after changing the template:

    python3 scripts/gen_matmul_cpu.py > shaders/matmul_cpu.wgsl
"""

R, H = 16, 4  # 16 rows x (4 x vec4) columns per invocation
# Measured on lavapipe (1024^3, vec4 loads): 8x8 blocks 7.3, 16x16 blocks 11-13 GFLOP/s.
Q = "xyzw"

def acc_names():
    return [f"c{r}_{h}" for r in range(R) for h in range(H)]

def fma_block(a, b):
    """FMA code: c{r}_{h} += a(r, q) * b(q, h) for q in 0..4; a(r,q) scalar, b(q,h) vec4."""
    out = []
    for r in range(R):
        for h in range(H):
            e = f"c{r}_{h}"
            for q in range(4):
                e = f"fma(vec4<f32>({a(r, q)}), {b(q, h)}, {e})"
            out.append(f"  c{r}_{h} = {e};")
    return "\n".join(out)

def vec4_kernel():
    L = []
    L.append("// ---------------------------------------------------------------------------------------------")
    L.append("// matmul_vec4: vec4 loads; every offset and row stride a multiple of 4 (the host checks).")
    L.append("")
    L.append("@group(1) @binding(0) var<storage, read> av: array<vec4<f32>>;")
    L.append("@group(1) @binding(1) var<storage, read> bv: array<vec4<f32>>;")
    L.append("@group(1) @binding(2) var<storage, read> vbias: array<f32>;")
    L.append("@group(1) @binding(3) var<storage, read_write> cv: array<vec4<f32>>;")
    L.append("")
    L.append("// The block of A rows m0.. and B columns n0.. at depth k..k+3 (components past K are masked to 0).")
    L.append("fn vec4_block(ba: u32, bb: u32, k: u32, m0: u32, n0: u32, kv: vec4<bool>) {")
    L.append("  let kq = vec4<u32>(min(k, p.k - 1u), min(k + 1u, p.k - 1u), min(k + 2u, p.k - 1u), min(k + 3u, p.k - 1u));")
    # A loads
    for r in range(R):
        L.append(f"  var a{r}: vec4<f32>;")
    L.append("  if (A_MCONTIG) {")
    # Each vec4 read's first row is clamped to the vec4 holding row M - 1 (the view's start
    # and a_cs are multiples of 4, so the vec4 starting at row (M - 1) & ~3 holds it): the
    # last block never reads a vec4 past the view's last element. A clamped group's rows
    # m0 + 4h.. are all >= M, so they feed only rows that are never stored.
    L.append("    let am_last = (p.m - 1u) & ~3u;")
    for q in range(4):
        for h in range(R // 4):
            L.append(f"    let am{q}_{h} = av[(ba + kq.{Q[q]} * p.a_cs + min(m0 + {4*h}u, am_last)) >> 2u];")
    for r in range(R):
        L.append(f"    a{r} = vec4<f32>(am0_{r//4}.{Q[r%4]}, am1_{r//4}.{Q[r%4]}, am2_{r//4}.{Q[r%4]}, am3_{r//4}.{Q[r%4]});")
    L.append("  } else {")
    for r in range(R):
        L.append(f"    a{r} = av[(ba + min(m0 + {r}u, p.m - 1u) * p.a_rs + k) >> 2u];")
    L.append("  }")
    # B loads
    for q in range(4):
        for h in range(H):
            L.append(f"  var b{q}_{h}: vec4<f32>;")
    L.append("  if (B_KCONTIG) {")
    for c in range(4 * H):
        L.append(f"    let bt{c} = bv[(bb + min(n0 + {c}u, p.n - 1u) * p.b_cs + k) >> 2u];")
    for q in range(4):
        for h in range(H):
            L.append(f"    b{q}_{h} = vec4<f32>(bt{4*h}.{Q[q]}, bt{4*h+1}.{Q[q]}, bt{4*h+2}.{Q[q]}, bt{4*h+3}.{Q[q]});")
    L.append("  } else {")
    # As for A along m: clamped to the vec4 holding column N - 1; a clamped group's columns
    # n0 + 4h.. are all >= N, which store4 never writes.
    L.append("    let bn_last = (p.n - 1u) & ~3u;")
    for q in range(4):
        for h in range(H):
            L.append(f"    b{q}_{h} = bv[(bb + kq.{Q[q]} * p.b_rs + min(n0 + {4*h}u, bn_last)) >> 2u];")
    L.append("  }")
    # masks: zero depth components past K in both operands (0 * garbage could be NaN)
    L.append("  let z4 = vec4<f32>(0.0);")
    for r in range(R):
        L.append(f"  a{r} = select(z4, a{r}, kv);")
    for q in range(4):
        for h in range(H):
            L.append(f"  b{q}_{h} = select(z4, b{q}_{h}, kv.{Q[q]});")
    L.append(fma_block(lambda r, q: f"a{r}.{Q[q]}", lambda q, h: f"b{q}_{h}"))
    L.append("}")
    L.append("")
    L.append("@compute @workgroup_size(4, 4)")
    L.append("fn matmul_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {")
    L.append("  let z = gid.z;")
    L.append(f"  let m0 = gid.y * {R}u;")
    L.append(f"  let n0 = gid.x * {4*H}u;")
    L.append("  if (m0 >= p.m || n0 >= p.n) { return; }")
    L.append("  zero_acc();")
    L.append("  let all4 = vec4<bool>(true);")
    L.append("  let kt = p.k & 3u;")
    L.append("  for (var i = 0u; i < p.nsum; i++) {")
    L.append("    let ba = p.a_off + z * p.a_zs + i * p.a_ss;")
    L.append("    let bb = p.b_off + z * p.b_zs + i * p.b_ss;")
    L.append("    for (var k = 0u; k + 4u <= p.k; k += 4u) { vec4_block(ba, bb, k, m0, n0, all4); }")
    L.append("    if (kt != 0u) { vec4_block(ba, bb, p.k - kt, m0, n0, vec4<bool>(true, kt > 1u, kt > 2u, false)); }")
    L.append("  }")
    for r in range(R):
        stores = " ".join(f"store4(z, m0 + {r}u, n0 + {4*h}u, c{r}_{h});" for h in range(H))
        L.append(f"  if (m0 + {r}u < p.m) {{ {stores} }}")
    L.append("}")
    L.append("")
    L.append("// C[z, m, n..n+3] (+)= alpha * v (+ bias); columns past N keep their value.")
    L.append("fn store4(z: u32, m: u32, n: u32, v: vec4<f32>) {")
    L.append("  if (n >= p.n) { return; }")
    L.append("  let idx = (p.c_off + z * p.c_zs + m * p.c_rs + n) >> 2u;")
    L.append("  var r = p.alpha * v;")
    L.append("  let nb = vec4<u32>(n, min(n + 1u, p.n - 1u), min(n + 2u, p.n - 1u), min(n + 3u, p.n - 1u));")
    L.append("  if ((p.flags & 1u) != 0u) {")
    L.append("    let bo = p.bias_off + z * p.bias_zs;")
    L.append("    r += vec4<f32>(vbias[bo + nb.x], vbias[bo + nb.y], vbias[bo + nb.z], vbias[bo + nb.w]);")
    L.append("  }")
    L.append("  let old = cv[idx];")
    L.append("  if ((p.flags & 2u) != 0u) { r += old; }")
    L.append("  cv[idx] = select(old, r, vec4<bool>(true, n + 1u < p.n, n + 2u < p.n, n + 3u < p.n));")
    L.append("}")
    return "\n".join(L)

def scalar_kernel():
    L = []
    L.append("// ---------------------------------------------------------------------------------------------")
    L.append("// matmul_block: the same register block with scalar loads and any strides.")
    L.append("")
    L.append("@group(1) @binding(0) var<storage, read> as_: array<f32>;")
    L.append("@group(1) @binding(1) var<storage, read> bs_: array<f32>;")
    L.append("@group(1) @binding(2) var<storage, read> sbias: array<f32>;")
    L.append("@group(1) @binding(3) var<storage, read_write> cs_: array<f32>;")
    L.append("")
    L.append("// One depth step k (< K) of the block.")
    L.append("fn block_step(ba: u32, bb: u32, k: u32, m0: u32, n0: u32) {")
    for r in range(R):
        L.append(f"  let a{r} = as_[ba + min(m0 + {r}u, p.m - 1u) * p.a_rs + k * p.a_cs];")
    for h in range(H):
        comps = ", ".join(f"bs_[bb + k * p.b_rs + min(n0 + {4*h+j}u, p.n - 1u) * p.b_cs]" for j in range(4))
        L.append(f"  let b{h} = vec4<f32>({comps});")
    for r in range(R):
        for h in range(H):
            L.append(f"  c{r}_{h} = fma(vec4<f32>(a{r}), b{h}, c{r}_{h});")
    L.append("}")
    L.append("")
    L.append("@compute @workgroup_size(4, 4)")
    L.append("fn matmul_block(@builtin(global_invocation_id) gid: vec3<u32>) {")
    L.append("  let z = gid.z;")
    L.append(f"  let m0 = gid.y * {R}u;")
    L.append(f"  let n0 = gid.x * {4*H}u;")
    L.append("  if (m0 >= p.m || n0 >= p.n) { return; }")
    L.append("  zero_acc();")
    L.append("  for (var i = 0u; i < p.nsum; i++) {")
    L.append("    let ba = p.a_off + z * p.a_zs + i * p.a_ss;")
    L.append("    let bb = p.b_off + z * p.b_zs + i * p.b_ss;")
    L.append("    for (var k = 0u; k < p.k; k++) { block_step(ba, bb, k, m0, n0); }")
    L.append("  }")
    for r in range(R):
        for h in range(H):
            for j in range(4):
                L.append(f"  store1(z, m0 + {r}u, n0 + {4*h+j}u, c{r}_{h}.{Q[j]});")
    L.append("}")
    L.append("")
    L.append("fn store1(z: u32, m: u32, n: u32, v: f32) {")
    L.append("  if (m >= p.m || n >= p.n) { return; }")
    L.append("  let idx = p.c_off + z * p.c_zs + m * p.c_rs + n;")
    L.append("  var r = p.alpha * v;")
    L.append("  if ((p.flags & 1u) != 0u) { r += sbias[p.bias_off + z * p.bias_zs + n]; }")
    L.append("  if ((p.flags & 2u) != 0u) { r += cs_[idx]; }")
    L.append("  cs_[idx] = r;")
    L.append("}")
    return "\n".join(L)

HEADER = """//! GEMM kernels for CPU Vulkan drivers (lavapipe): C[z] = alpha * sum_i A[z,i] B[z,i] (+ bias[z])
//! (+ C[z]), the strided batched GEMM of matmul.wgsl (same parameter struct, same semantics).
//! GENERATED by scripts/gen_matmul_cpu.py -- edit the script, not this file.
//!
//! llvmpipe runs the invocations of a workgroup as SIMD lanes and reads a storage buffer one
//! lane at a time, so what costs is the number of loads, not the arithmetic: each invocation
//! here keeps a 16 x 16 block of C in 64 vec4 registers and loads 32 values (or 32 vec4) for
//! every 256 (or 1024) multiply-adds, against 8 loads for 16 in matmul_regblock. A workgroup
//! of 4 x 4 invocations covers 64 x 64 of C.
//!   matmul_vec4    vec4 loads; needs every offset and row stride to be a multiple of 4. A is
//!                  read along k (a_cs = 1) or, with A_MCONTIG, along m (a_rs = 1: a transposed
//!                  operand such as dG^T); B along n (b_cs = 1) or, with B_KCONTIG, along k
//!                  (b_rs = 1: W^T read from W as stored); the rows / columns a load reads
//!                  are clamped so that no load reaches past the vec4 holding an operand's
//!                  last element
//!   matmul_block   scalar loads, any strides
//! Summation order over k (and over the summed batches i) is sequential, so results are
//! deterministic.
"""

COMMON = """
struct Gemm {
  m: u32, n: u32, k: u32, nsum: u32,
  a_off: u32, a_rs: u32, a_cs: u32, a_zs: u32,
  b_off: u32, b_rs: u32, b_cs: u32, b_zs: u32,
  c_off: u32, c_rs: u32, c_zs: u32, a_ss: u32,
  b_ss: u32, bias_off: u32, bias_zs: u32, flags: u32,   // flags: 1 = add bias[n], 2 = accumulate into C
  alpha: f32, ksplit: u32, kchunk: u32, c_ss: u32,
  nz: u32,
}

@group(0) @binding(0) var<uniform> p: Gemm;

override A_MCONTIG: bool = false;
override B_KCONTIG: bool = false;

// The invocation's 16 x 16 block of C: row r, columns 4h..4h+3.
"""

def main():
    out = [HEADER, COMMON]
    for n in acc_names():
        out.append(f"var<private> {n}: vec4<f32>;")
    out.append("")
    out.append("fn zero_acc() {")
    for n in acc_names():
        out.append(f"  {n} = vec4<f32>(0.0);")
    out.append("}")
    out.append("")
    out.append(vec4_kernel())
    out.append("")
    out.append(scalar_kernel())
    print("\n".join(out))

main()
