#!/usr/bin/env python3
"""Generates shaders/recurrent_cpu.wgsl: the recurrent step kernels for CPU Vulkan drivers.

llvmpipe loads storage buffers one SIMD lane at a time, so the step kernels there must reuse
every loaded value many times: each invocation keeps a block of the recurrent product in
registers (forward: 4 rows x 4 units x G gates; backward: 8 rows x 8 units), reading the
weights as vec4. The blocks are spelled out as plain variables (arrays indexed in loops are
10x slower on lavapipe), which is what this script writes. Run it after changing the template:

    python3 scripts/gen_recurrent_cpu.py > shaders/recurrent_cpu.wgsl
    python3 scripts/gen_recurrent_cpu.py subgroup > shaders/recurrent_cpu_subgroup.wgsl
"""

Q = "xyzw"

# (entry point, rows per invocation, vec4 groups of units per invocation, workgroup size): the
# wide blocks for batches of 8 or more, the narrow ones (one row) for small batches, where a
# step reads each weight once whatever the block.
# The narrow blocks run 8 invocations to a workgroup (one SIMD pass on lavapipe) so that even
# a small layer spreads over several workgroups, i.e. over the driver's threads.
FORWARD = [("step_forward_block", 8, 2, 16), ("step_forward_block_narrow", 1, 2, 8)]
# The wide backward block runs 8 invocations to a workgroup too (one SIMD pass of lavapipe's 8
# lanes): a 16-lane workgroup covered 256 units, so at H = 128 (the LM's default) half its lanes
# idled. The wide forward block keeps 16: at 8 it was faster at H = 64 but made the checked-
# module conformance pass (WGRNN_SHADER_CHECKS=1) 5x slower on lavapipe (docs/PERFORMANCE.md).
BACKWARD = [("step_backward_block", 8, 4, 8), ("step_backward_block_narrow", 1, 4, 8)]

def forward_weights(U):
    """Depth k's W_hh^T vec4s of the invocation's U vec4 units, every gate (wr: the depth row)."""
    L = []
    for u in range(U):
        L.append(f"    let w{u}_0 = wt4[wr + u{u}];")
        L.append(f"    var w{u}_1 = vec4<f32>(0.0); var w{u}_2 = vec4<f32>(0.0); var w{u}_3 = vec4<f32>(0.0);")
        L.append(f"    if (G > 1u) {{ w{u}_1 = wt4[wr + hv + u{u}]; w{u}_2 = wt4[wr + 2u * hv + u{u}]; }}")
        L.append(f"    if (G > 3u) {{ w{u}_3 = wt4[wr + 3u * hv + u{u}]; }}")
    return L

def forward_fma(entry, r, U):
    """Row r's accumulators += x{r} times the weights of forward_weights."""
    L = []
    for u in range(U):
        a = lambda g: f"{entry}_f{r}_{u}_{g}"
        L.append(f"    {a(0)} = fma(x{r}, w{u}_0, {a(0)});")
        L.append(f"    if (G > 1u) {{ {a(1)} = fma(x{r}, w{u}_1, {a(1)}); {a(2)} = fma(x{r}, w{u}_2, {a(2)}); }}")
        L.append(f"    if (G > 3u) {{ {a(3)} = fma(x{r}, w{u}_3, {a(3)}); }}")
    return L

def forward_stores(entry, R, U, guard_first):
    """finish_forward for every row below B and unit below H (the first vec4 of units is
    checked only with guard_first: kernels that return early for j0 >= H need not)."""
    L = []
    for r in range(R):
        L.append(f"  if (b0 + {r}u < B) {{")
        for u in range(U):
            for c in range(4):
                unit = 4*u + c
                args = ", ".join(f"{entry}_f{r}_{u}_{g}.{Q[c]}" for g in range(4))
                cond = "" if unit < 4 and not guard_first else f"if (j0 + {unit}u < H) "
                L.append(f"    {cond}{{ finish_forward(d, t, s, b0 + {r}u, j0 + {unit}u, array<f32, 4>({args})); }}")
        L.append("  }")
    return L

def backward_stores(entry, R, U, guard_first):
    """finish_backward for every row below B and unit below H (as forward_stores)."""
    L = []
    for r in range(R):
        L.append(f"  if (b0 + {r}u < B) {{")
        for u in range(U):
            for c in range(4):
                unit = 4*u + c
                cond = "" if unit < 4 and not guard_first else f"if (j0 + {unit}u < H) "
                L.append(f"    {cond}{{ finish_backward(d, b0 + {r}u, j0 + {unit}u, {entry}_e{r}_{u}.{Q[c]}); }}")
        L.append("  }")
    return L

def forward(entry, R, U, WG):
    L = []
    L.append("// ---------------------------------------------------------------------------------------------")
    L.append(f"// {entry}: rows b0..b0+{R-1}, units j0..j0+{4*U-1} ({U} vec4), every gate. W_hh is read")
    L.append("// transposed, [D, H, G*H], as vec4 (H a multiple of 4; f32 weights).")
    L.append("")
    for r in range(R):
        for u in range(U):
            for g in range(4):
                L.append(f"var<private> {entry}_f{r}_{u}_{g}: vec4<f32>;")
    L.append("")
    L.append(f"@compute @workgroup_size({WG})")
    L.append(f"fn {entry}(@builtin(global_invocation_id) gid: vec3<u32>) {{")
    L.append(f"  let j0 = gid.x * {4*U}u;")
    L.append(f"  let b0 = gid.y * {R}u;")
    L.append("  let d = gid.z;")
    L.append("  let H = p.hidden;")
    L.append("  let B = p.batch;")
    L.append("  if (j0 >= H || b0 >= B) { return; }")
    L.append("  let s = p.iter;")
    L.append("  let t = time_of(d, s);")
    L.append("  let GH = G * H;")
    L.append("  let a0 = state_at(d, t, s, 0u, 0u, false);")
    for r in range(R):
        L.append(f"  let h{r} = a0 + clamp_b(b0 + {r}u) * H;")
    for r in range(R):
        for u in range(U):
            for g in range(4):
                L.append(f"  {entry}_f{r}_{u}_{g} = vec4<f32>(0.0);")
    L.append("  let hv = H >> 2u;                    // vec4s between gates")
    L.append("  let wk = GH >> 2u;                   // vec4s per depth row")
    L.append("  let w0 = d * H * wk;                 // vec4 index of W^T[d, 0, 0]")
    for u in range(U):
        L.append(f"  let u{u} = min((j0 >> 2u) + {u}u, hv - 1u);   // past H: a valid column, never stored")
    L.append("  for (var k = 0u; k < H; k++) {")
    L.append("    let wr = w0 + k * wk;")
    L += forward_weights(U)
    for r in range(R):
        L.append(f"    let x{r} = vec4<f32>(hs[h{r} + k]);")
    for r in range(R):
        L += forward_fma(entry, r, U)
    L.append("  }")
    L += forward_stores(entry, R, U, guard_first=False)
    L.append("}")
    return "\n".join(L)

def backward(entry, R, U, WG):
    L = []
    L.append("// ---------------------------------------------------------------------------------------------")
    L.append(f"// {entry}: rows b0..b0+{R-1}, units j0..j0+{4*U-1} ({U} vec4) of dh = dgates_{{later}} W_hh,")
    L.append("// W_hh read as stored, [D, G*H, H], as vec4 (H a multiple of 4).")
    L.append("")
    for r in range(R):
        for u in range(U):
            L.append(f"var<private> {entry}_e{r}_{u}: vec4<f32>;")
    L.append("")
    L.append(f"@compute @workgroup_size({WG})")
    L.append(f"fn {entry}(@builtin(global_invocation_id) gid: vec3<u32>) {{")
    L.append(f"  let j0 = gid.x * {4*U}u;")
    L.append(f"  let b0 = gid.y * {R}u;")
    L.append("  let d = gid.z;")
    L.append("  let H = p.hidden;")
    L.append("  let B = p.batch;")
    L.append("  let T = p.seq;")
    L.append("  if (j0 >= H || b0 >= B) { return; }")
    L.append("  let GH = G * H;")
    L.append("  let sf = T - p.iter;   // the step processed before this one (see step_backward)")
    for r in range(R):
        for u in range(U):
            L.append(f"  {entry}_e{r}_{u} = vec4<f32>(0.0);")
    L.append("  if (sf < T) {")
    L.append("    let tf = time_of(d, sf);")
    L.append("    let base = (d * T + tf) * B * GH;")
    for r in range(R):
        L.append(f"    let g{r} = base + clamp_b(b0 + {r}u) * GH;")
    L.append("    let hv = H >> 2u;")
    L.append("    let w0 = (d * GH * H) >> 2u;")
    for u in range(U):
        L.append(f"    let u{u} = min((j0 >> 2u) + {u}u, hv - 1u);   // past H: a valid column, never stored")
    L.append("    for (var q = 0u; q < GH; q++) {")
    L.append("      let wr = w0 + q * hv;")
    for u in range(U):
        L.append(f"      let w{u} = bw4[wr + u{u}];")
    for r in range(R):
        L.append(f"      let x{r} = vec4<f32>(dg_hidden(g{r} + q));")
    for r in range(R):
        L.append("      " + " ".join(f"{entry}_e{r}_{u} = fma(x{r}, w{u}, {entry}_e{r}_{u});" for u in range(U)))
    L.append("    }")
    L.append("  }")
    L += backward_stores(entry, R, U, guard_first=False)
    L.append("}")
    return "\n".join(L)

# The subgroup blocks (recurrent_cpu_subgroup.wgsl): 8 invocations (one subgroup of lavapipe's
# 8 lanes) share the rows' state loads through subgroupBroadcast. (entry, rows, vec4 units per
# invocation). Measured on lavapipe (LSTM H = 256, B = 32, I = 4, T = 100, wgrnn bench, noisy):
# forward 16 x 1: 215-245 ms, 16 x 2: 224-375, 8 x 2: 244-391, 32 x 1: 213-305 (the wide
# block: 263-336); backward 16 x 2: 356-463, 32 x 2: 351-385; 16 x 4 did not finish compiling
# in minutes. Four depths per loop iteration (forward 16 x 1): 239-321, no gain.
FORWARD_SUBGROUP = ("step_forward_subgroup", 16, 1)
BACKWARD_SUBGROUP = ("step_backward_subgroup", 16, 2)

def forward_subgroup(entry, R, U):
    RL = R // 8
    L = []
    L.append("// ---------------------------------------------------------------------------------------------")
    L.append(f"// {entry}: rows b0..b0+{R-1} for the workgroup, units j0..j0+{4*U-1} per invocation, every")
    L.append(f"// gate. Invocation l loads the states of rows b0+{RL}l..b0+{RL}l+{RL-1} and broadcasts them.")
    L.append("")
    for r in range(R):
        for u in range(U):
            for g in range(4):
                L.append(f"var<private> {entry}_f{r}_{u}_{g}: vec4<f32>;")
    L.append("")
    L.append("@compute @workgroup_size(8)")
    L.append(f"fn {entry}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) l: u32) {{")
    L.append(f"  let j0 = (wg.x * 8u + l) * {4*U}u;")
    L.append(f"  let b0 = wg.y * {R}u;")
    L.append("  let d = wg.z;")
    L.append("  let H = p.hidden;")
    L.append("  let B = p.batch;")
    L.append("  // No early return: every invocation runs the loop (subgroupBroadcast needs uniform")
    L.append("  // control flow); units past H read a valid column and are never stored.")
    L.append("  let s = p.iter;")
    L.append("  let t = time_of(d, s);")
    L.append("  let GH = G * H;")
    L.append("  let a0 = state_at(d, t, s, 0u, 0u, false);")
    for i in range(RL):
        L.append(f"  let h{i} = a0 + clamp_b(b0 + l * {RL}u + {i}u) * H;")
    for r in range(R):
        L.append("  " + " ".join(f"{entry}_f{r}_{u}_{g} = vec4<f32>(0.0);" for u in range(U) for g in range(4)))
    L.append("  let hv = H >> 2u;                    // vec4s between gates")
    L.append("  let wk = GH >> 2u;                   // vec4s per depth row")
    L.append("  let w0 = d * H * wk;                 // vec4 index of W^T[d, 0, 0]")
    for u in range(U):
        L.append(f"  let u{u} = min((j0 >> 2u) + {u}u, hv - 1u);")
    L.append("  for (var k = 0u; k < H; k++) {")
    L.append("    let wr = w0 + k * wk;")
    L += forward_weights(U)
    for i in range(RL):
        L.append(f"    let hl{i} = hs[h{i} + k];")
    for r in range(R):
        L.append(f"    let x{r} = vec4<f32>(subgroupBroadcast(hl{r % RL}, {r // RL}u));")
        L += forward_fma(entry, r, U)
    L.append("  }")
    L += forward_stores(entry, R, U, guard_first=True)
    L.append("}")
    return "\n".join(L)

def backward_subgroup(entry, R, U):
    RL = R // 8
    L = []
    L.append("// ---------------------------------------------------------------------------------------------")
    L.append(f"// {entry}: rows b0..b0+{R-1} for the workgroup, units j0..j0+{4*U-1} per invocation of")
    L.append(f"// dh = dgates_{{later}} W_hh. Invocation l loads the gate gradients of rows b0+{RL}l.. and")
    L.append("// broadcasts them.")
    L.append("")
    for r in range(R):
        for u in range(U):
            L.append(f"var<private> {entry}_e{r}_{u}: vec4<f32>;")
    L.append("")
    L.append("@compute @workgroup_size(8)")
    L.append(f"fn {entry}(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) l: u32) {{")
    L.append(f"  let j0 = (wg.x * 8u + l) * {4*U}u;")
    L.append(f"  let b0 = wg.y * {R}u;")
    L.append("  let d = wg.z;")
    L.append("  let H = p.hidden;")
    L.append("  let B = p.batch;")
    L.append("  let T = p.seq;")
    L.append("  let GH = G * H;")
    L.append("  let sf = T - p.iter;   // the step processed before this one (see step_backward)")
    for r in range(R):
        L.append("  " + " ".join(f"{entry}_e{r}_{u} = vec4<f32>(0.0);" for u in range(U)))
    L.append("  if (sf < T) {   // uniform: every invocation runs the loop (subgroupBroadcast)")
    L.append("    let tf = time_of(d, sf);")
    L.append("    let base = (d * T + tf) * B * GH;")
    for i in range(RL):
        L.append(f"    let g{i} = base + clamp_b(b0 + l * {RL}u + {i}u) * GH;")
    L.append("    let hv = H >> 2u;")
    L.append("    let w0 = (d * GH * H) >> 2u;")
    for u in range(U):
        L.append(f"    let u{u} = min((j0 >> 2u) + {u}u, hv - 1u);   // past H: a valid column, never stored")
    L.append("    for (var q = 0u; q < GH; q++) {")
    L.append("      let wr = w0 + q * hv;")
    for u in range(U):
        L.append(f"      let w{u} = bw4[wr + u{u}];")
    for i in range(RL):
        L.append(f"      let gl{i} = dg_hidden(g{i} + q);")
    for r in range(R):
        L.append(f"      let x{r} = vec4<f32>(subgroupBroadcast(gl{r % RL}, {r // RL}u));")
        L.append("      " + " ".join(f"{entry}_e{r}_{u} = fma(x{r}, w{u}, {entry}_e{r}_{u});" for u in range(U)))
    L.append("    }")
    L.append("  }")
    L += backward_stores(entry, R, U, guard_first=True)
    L.append("}")
    return "\n".join(L)

SUBGROUP_HEADER = """//! Recurrent step kernels for CPU Vulkan drivers whose subgroups hold 8 lanes or more (lavapipe),
//! appended after recurrent_cpu.wgsl (a separate file: they need the SUBGROUP feature).
//! GENERATED by scripts/gen_recurrent_cpu.py subgroup -- edit the script, not this file.
//!
//! In step_forward_block / step_backward_block every invocation of a workgroup loads the same
//! rows' states (gate gradients), one lane at a time. Here a workgroup of 8 invocations (one
//! subgroup) covers 16 rows; invocation l loads the values of rows 2l, 2l+1 and receives the
//! others through subgroupBroadcast (a register shuffle on llvmpipe). Per depth an invocation
//! loads 2 states and G vec4 of W_hh^T for 16 rows x 4 units x G gates (forward), or 2 gate
//! gradients and 2 vec4 of W_hh for 16 rows x 8 units (backward), against 8 states and 2 G
//! vec4 for 8 x 8 x G (8 and 4 vec4 for 8 x 16) in the blocks. Same pointwise parts
//! (finish_forward / finish_backward) and the same order of sums (depth in order) as the
//! blocks, so the results are theirs, bit for bit.
"""

HEADER = """//! Recurrent step kernels for CPU Vulkan drivers (lavapipe), appended to recurrent.wgsl and one
//! cell file. GENERATED by scripts/gen_recurrent_cpu.py -- edit the script, not this file.
//!
//! llvmpipe runs a workgroup's invocations as SIMD lanes and reads a storage buffer one lane at
//! a time, so these kernels keep a block of the recurrent product in registers and read the
//! weights as vec4: step_forward_block (8 rows x 8 units) loads 8 states and 2 G vec4 of W_hh^T
//! for every 64 G multiply-adds (step_forward: 4 + G scalars for 4 G); step_backward_block
//! (8 rows x 16 units) loads 8 gate gradients and 4 vec4 of W_hh for 128 (step_backward: 4 + 1
//! for 4). The *_narrow blocks (one row) serve batches below 8. The pointwise parts are
//! recurrent.wgsl's finish_forward / finish_backward, unchanged, so the results are those of
//! step_forward / step_backward up to the order of the products' sums (which is fixed: depth
//! in order).
"""

BINDINGS = """
@group(1) @binding(0) var<storage, read> wt4: array<vec4<f32>>;   // forward: W_hh^T [D, H, G*H]
@group(1) @binding(0) var<storage, read> bw4: array<vec4<f32>>;   // backward: W_hh [D, G*H, H]
"""

import sys
if sys.argv[1:] == ["subgroup"]:
    print(SUBGROUP_HEADER)
    print(forward_subgroup(*FORWARD_SUBGROUP))
    print()
    print(backward_subgroup(*BACKWARD_SUBGROUP))
else:
    print(HEADER)
    print(BINDINGS)
    for e in FORWARD:
        print(forward(*e))
        print()
    for e in BACKWARD:
        print(backward(*e))
        print()
