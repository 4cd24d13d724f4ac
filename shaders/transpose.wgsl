//! Batched matrix transpose: out[z, c, r] = in[z, r, c]. The forward keeps transposed copies of
//! W_ih and W_hh ([D, I, G*H], [D, H, G*H]) so that neighbouring invocations of the GEMM and of
//! step_forward (neighbouring hidden units) read neighbouring weights: coalesced on GPUs, and
//! contiguous SIMD loads instead of gathers on CPU drivers.
//!   transpose_forward   in [Z, R, C] -> out [Z, C, R]

struct Transpose { rows: u32, cols: u32, nz: u32 }

@group(0) @binding(0) var<uniform> p: Transpose;
@group(1) @binding(0) var<storage, read> src: array<f32>;        // [Z, R, C]
@group(1) @binding(1) var<storage, read_write> dst: array<f32>;  // [Z, C, R]

@compute @workgroup_size(64)
fn transpose_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;   // output column = input row: consecutive invocations write consecutive words
  let c = gid.y;
  let z = gid.z;
  if (r >= p.rows || c >= p.cols) { return; }
  dst[(z * p.cols + c) * p.rows + r] = src[(z * p.rows + r) * p.cols + c];
}
