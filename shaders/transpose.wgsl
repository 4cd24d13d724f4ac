//! Batched matrix transpose: out[z, c, r] = in[z, r, c]. The forward keeps transposed copies of
//! W_ih and W_hh ([D, I, G*H], [D, H, G*H]) so that neighbouring invocations of the GEMM and of
//! step_forward (neighbouring hidden units) read neighbouring weights: coalesced on GPUs, and
//! contiguous SIMD loads instead of gathers on CPU drivers.
//!   transpose_forward   in [Z, R, C] -> out [Z, C, R], written from element dst_off
//!   pack_f16_forward    in [Z, R, C] (or its transpose) -> f16 halves packed two per word, for
//!                       the recurrent kernels' half-precision weights (WF16 in recurrent.wgsl)
//!   copy_strided        out[d_off + r d_rs + c] = in[s_off + r s_rs + c s_cs] for c < cols,
//!                       0 for cols <= c < d_cols: re-lays an operand with a row stride that is
//!                       a multiple of 4 for the vec4 GEMM of CPU drivers (kernels::gemm)

struct Transpose { rows: u32, cols: u32, nz: u32, dst_off: u32, transposed: u32 }

@group(0) @binding(0) var<uniform> p: Transpose;
@group(1) @binding(0) var<storage, read> src: array<f32>;        // [Z, R, C]
@group(1) @binding(1) var<storage, read_write> dst: array<f32>;  // [Z, C, R]

@compute @workgroup_size(64)
fn transpose_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;   // output column = input row: consecutive invocations write consecutive words
  let c = gid.y;
  let z = gid.z;
  if (r >= p.rows || c >= p.cols) { return; }
  dst[p.dst_off + (z * p.cols + c) * p.rows + r] = src[(z * p.rows + r) * p.cols + c];
}

@group(1) @binding(1) var<storage, read_write> dst16: array<u32>;  // f16 pairs

// Output element e (in the output layout: [Z, C, R] when transposed, else [Z, R, C]) -> source.
fn pack_src(e: u32) -> f32 {
  if (p.transposed == 0u) { return src[e]; }
  let rc = p.rows * p.cols;
  let z = e / rc;
  let c = (e % rc) / p.rows;
  let r = e % p.rows;
  return src[(z * p.rows + r) * p.cols + c];
}

// Invocation q packs output elements 2q (low half) and 2q+1 (high half; 0 past the end) into
// word dst_off/2 + q (dst_off is even). Folded grid: q = x + y * (groups in x) * 64.
@compute @workgroup_size(64)
fn pack_f16_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = gid.x + gid.y * nwg.x * 64u;
  let n = p.nz * p.rows * p.cols;
  if (2u * q >= n) { return; }
  var hi = 0.0;
  if (2u * q + 1u < n) { hi = pack_src(2u * q + 1u); }
  dst16[p.dst_off / 2u + q] = pack2x16float(vec2<f32>(pack_src(2u * q), hi));
}

struct Strided { rows: u32, cols: u32, d_cols: u32, s_off: u32, s_rs: u32, s_cs: u32, d_off: u32, d_rs: u32 }

@group(0) @binding(0) var<uniform> q: Strided;

// Element e = r d_cols + c of the output block; folded grid: e = x + y * (groups in x) * 64.
@compute @workgroup_size(64)
fn copy_strided(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= q.rows * q.d_cols) { return; }
  let r = e / q.d_cols;
  let c = e % q.d_cols;
  var v = 0.0;
  if (c < q.cols) { v = src[q.s_off + r * q.s_rs + c * q.s_cs]; }
  dst[q.d_off + r * q.d_rs + c] = v;
}
