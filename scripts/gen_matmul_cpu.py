#!/usr/bin/env python3
"""Generates shaders/matmul_cpu.wgsl: the GEMM kernels for CPU Vulkan drivers (lavapipe).

Why generated: llvmpipe runs a workgroup's invocations as SIMD lanes and loads storage buffers
one lane at a time, so a kernel is fast there only if each invocation keeps a large block of
C in registers and reuses every loaded value many times. Arrays indexed in loops defeat that
(measured 10x slower on lavapipe: they go to memory), so the 8x8 block is written out as plain
variables, which this script spells out. Run it after changing the template:

    python3 scripts/gen_matmul_cpu.py > shaders/matmul_cpu.wgsl
    python3 scripts/gen_matmul_cpu.py subgroup > shaders/matmul_cpu_subgroup.wgsl
"""

R, H = 16, 4  # 16 rows x (4 x vec4) columns per invocation
# Measured on lavapipe (1024^3, vec4 loads): 8x8 blocks 7.3, 16x16 blocks 11-13 GFLOP/s.
Q = "xyzw"

def acc_names():
    return [f"c{r}_{h}" for r in range(R) for h in range(H)]

def fma4(acc, a, b):
    """acc + the 4-deep product: fma(a(q), b(q), ..) nested over q in 0..4, a(q) scalar, b(q) vec4."""
    e = acc
    for q in range(4):
        e = f"fma(vec4<f32>({a(q)}), {b(q)}, {e})"
    return e

def fma_block(a, b):
    """FMA code: c{r}_{h} += a(r, q) * b(q, h) for q in 0..4; a(r,q) scalar, b(q,h) vec4."""
    out = []
    for r in range(R):
        for h in range(H):
            e = fma4(f"c{r}_{h}", lambda q: a(r, q), lambda q: b(q, h))
            out.append(f"  c{r}_{h} = {e};")
    return "\n".join(out)

def b_loads(H):
    """b{q}_{h}: B at depth k + q, columns n0 + 4h..4h+3 (h < H), read along n or (B_KCONTIG)
    along k and transposed."""
    L = []
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
    return L

def depth_loop_and_stores(block, acc, R, H):
    """A GEMM kernel's body after zeroing: `block` (a call with {k} and {kv} to fill in) over the
    summed batches and the 4-deep K steps, the K tail masked, then the stores of the R x H vec4
    accumulators acc{r}_{h} for the rows below M."""
    L = []
    L.append("  let all4 = vec4<bool>(true);")
    L.append("  let kt = p.k & 3u;")
    L.append("  for (var i = 0u; i < p.nsum; i++) {")
    L.append("    let ba = p.a_off + z * p.a_zs + i * p.a_ss;")
    L.append("    let bb = p.b_off + z * p.b_zs + i * p.b_ss;")
    call = block.format(k="k", kv="all4")
    L.append(f"    for (var k = 0u; k + 4u <= p.k; k += 4u) {{ {call}; }}")
    call = block.format(k="p.k - kt", kv="vec4<bool>(true, kt > 1u, kt > 2u, false)")
    L.append(f"    if (kt != 0u) {{ {call}; }}")
    L.append("  }")
    for r in range(R):
        stores = " ".join(f"store4(z, m0 + {r}u, n0 + {4*h}u, {acc}{r}_{h});" for h in range(H))
        L.append(f"  if (m0 + {r}u < p.m) {{ {stores} }}")
    return L

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
    L += b_loads(H)
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
    L += depth_loop_and_stores("vec4_block(ba, bb, {k}, m0, n0, {kv})", "c", R, H)
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

# matmul_subgroup: 8 invocations (one lavapipe subgroup) share a SR-row panel of A.
SR, SH = 32, 2  # rows per workgroup, vec4 columns per invocation
# Measured on lavapipe (1024^3, A B, scratch probe): 32 x 2: 24 GFLOP/s; 64 x 1: 19.9;
# 16 x 4: 15.4; 64 x 2: 21.5; matmul_vec4's 16 x 16 per invocation: 6.3.

SUBGROUP_HEADER = """//! GEMM kernel for CPU Vulkan drivers whose subgroups hold 8 lanes or more (lavapipe): the
//! product of matmul_cpu.wgsl (same parameters, bindings and results, bit for bit), with the
//! loads of A shared across the lanes of a subgroup. Composed after matmul_cpu.wgsl (it uses
//! that file's bindings and store4); a separate module because it needs the SUBGROUP feature.
//! GENERATED by scripts/gen_matmul_cpu.py subgroup -- edit the script, not this file.
//!
//! In matmul_vec4 every invocation of a workgroup loads the same rows of A, one lane at a
//! time (llvmpipe has no scalar path for storage loads). Here the 8 invocations of a workgroup
//! (one subgroup: 8 SIMD lanes) cover 32 rows x 64 columns of C; each invocation owns 8
//! columns (2 vec4) of all 32 rows, loads 4 of the 32 rows of A and 8 vec4 of B per 4-deep
//! k step, and receives the other rows of A through subgroupBroadcast (a register shuffle on
//! llvmpipe): 12 vec4 loads per 1024 multiply-adds, against 32 in matmul_vec4.
//! Layouts as matmul_vec4 (A_MCONTIG, B_KCONTIG; vec4-aligned offsets and strides); every
//! invocation runs every loop (subgroupBroadcast needs uniform control flow), columns past N
//! are computed on clamped loads and never stored. Summation over k and i is sequential, in
//! the order of matmul_vec4, so both give identical results.
"""

def subgroup_kernel():
    RL = SR // 8  # rows of A each invocation loads
    L = [SUBGROUP_HEADER]
    for r in range(SR):
        for h in range(SH):
            L.append(f"var<private> s{r}_{h}: vec4<f32>;")
    L.append("")
    L.append("// Depth k..k+3 of the workgroup's block: rows m0.., the invocation's columns n0.. .")
    L.append("fn subgroup_block(ba: u32, bb: u32, k: u32, m0: u32, n0: u32, j: u32, kv: vec4<bool>) {")
    L.append("  let kq = vec4<u32>(min(k, p.k - 1u), min(k + 1u, p.k - 1u), min(k + 2u, p.k - 1u), min(k + 3u, p.k - 1u));")
    L.append("  let z4 = vec4<f32>(0.0);")
    # al{i}: along k, row m0 + RL j + i at depth k..k+3; along m: rows m0 + RL j.. at depth k + i.
    for i in range(RL):
        L.append(f"  var al{i}: vec4<f32>;")
    L.append("  if (A_MCONTIG) {")
    L.append("    let am = min(m0 + j * 4u, (p.m - 1u) & ~3u);")
    for q in range(4):
        L.append(f"    al{q} = select(z4, av[(ba + kq.{Q[q]} * p.a_cs + am) >> 2u], kv.{Q[q]});")
    L.append("  } else {")
    for i in range(RL):
        L.append(f"    al{i} = select(z4, av[(ba + min(m0 + j * {RL}u + {i}u, p.m - 1u) * p.a_rs + k) >> 2u], kv);")
    L.append("  }")
    L += b_loads(SH)
    for q in range(4):
        for h in range(SH):
            L.append(f"  b{q}_{h} = select(z4, b{q}_{h}, kv.{Q[q]});")
    # Row r: along k it is lane r / RL's al{r % RL}; along m, lane r / 4 holds rows 4(r/4)..
    # at each depth q in al{q}, component r % 4.
    L.append("  if (A_MCONTIG) {")
    for l in range(8):
        for q in range(4):
            L.append(f"    let t{l}_{q} = subgroupBroadcast(al{q}, {l}u);")
        for i in range(4):
            r = 4 * l + i
            L.append(f"    let a{r} = vec4<f32>(t{l}_0.{Q[i]}, t{l}_1.{Q[i]}, t{l}_2.{Q[i]}, t{l}_3.{Q[i]});")
            L.append(f"    {subgroup_fma(r, f'a{r}')}")
    L.append("  } else {")
    for r in range(SR):
        L.append(f"    let a{r} = subgroupBroadcast(al{r % RL}, {r // RL}u);")
        L.append(f"    {subgroup_fma(r, f'a{r}')}")
    L.append("  }")
    L.append("}")
    L.append("")
    L.append("@compute @workgroup_size(8)")
    L.append("fn matmul_subgroup(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) j: u32) {")
    L.append("  let z = wg.z;")
    L.append(f"  let m0 = wg.y * {SR}u;")
    L.append(f"  let n0 = wg.x * {32 * SH}u + j * {4 * SH}u;")
    for r in range(SR):
        L.append("  " + " ".join(f"s{r}_{h} = vec4<f32>(0.0);" for h in range(SH)))
    L += depth_loop_and_stores("subgroup_block(ba, bb, {k}, m0, n0, j, {kv})", "s", SR, SH)
    L.append("}")
    return L

def subgroup_fma(r, a):
    """Row r of the block += a (a vec4 over depths k..k+3) times the B block."""
    out = []
    for h in range(SH):
        e = fma4(f"s{r}_{h}", lambda q: f"{a}.{Q[q]}", lambda q: f"b{q}_{h}")
        out.append(f"s{r}_{h} = {e};")
    return " ".join(out)

def main():
    import sys
    if sys.argv[1:] == ["subgroup"]:
        print("\n".join(subgroup_kernel()))
        return
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
