//! Deterministic reductions (fixed summation order, no atomics):
//!   colsum_forward   out[z, n] (+)= sum_r in[z, r, n]              (bias gradients)
//!   sumsq_partial    part[g] = sum of squares of chunk g of a tensor (global-norm clipping)
//!   norm_finalize    norm = sqrt(sum part), scale = min(1, max_norm / (norm + 1e-6))
//!   scale_apply      x *= scale, read from the device (no round trip to the host)

struct Reduce {
  rows: u32, cols: u32, in_off: u32, in_rs: u32,
  in_zs: u32, out_off: u32, out_zs: u32, flags: u32,   // flags: 1 = accumulate into out
  len: u32, chunk: u32, max_norm: f32, nparts: u32,
}

@group(0) @binding(0) var<uniform> p: Reduce;

// colsum_forward bindings
@group(1) @binding(0) var<storage, read> src: array<f32>;            // [Z, rows, cols] strided
@group(1) @binding(1) var<storage, read_write> dst: array<f32>;      // [Z, cols]

@compute @workgroup_size(64)
fn colsum_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let z = gid.z;
  if (n >= p.cols) { return; }
  let base = p.in_off + z * p.in_zs + n;
  var acc = 0.0;
  for (var r = 0u; r < p.rows; r++) { acc += src[base + r * p.in_rs]; }
  let o = p.out_off + z * p.out_zs + n;
  if ((p.flags & 1u) != 0u) { acc += dst[o]; }
  dst[o] = acc;
}

// sumsq_partial: workgroup g sums squares of x[in_off + g*chunk .. + chunk] (clipped to len)
// into part[out_off + g].
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn sumsq_partial(@builtin(local_invocation_id) lid: vec3<u32>,
                 @builtin(workgroup_id) wid: vec3<u32>) {
  let start = wid.x * p.chunk;
  let end = min(start + p.chunk, p.len);
  var acc = 0.0;
  for (var i = start + lid.x; i < end; i += 256u) {
    let v = src[p.in_off + i];
    acc = fma(v, v, acc);
  }
  red[lid.x] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid.x < s) { red[lid.x] += red[lid.x + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { dst[p.out_off + wid.x] = red[0]; }
}

// norm_finalize: one workgroup; reads nparts partial sums from src, writes [norm, scale] to dst.
@compute @workgroup_size(256)
fn norm_finalize(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var i = lid.x; i < p.nparts; i += 256u) { acc += src[i]; }
  red[lid.x] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lid.x < s) { red[lid.x] += red[lid.x + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let norm = sqrt(red[0]);
    var scale = 1.0;
    if (p.max_norm > 0.0 && norm > p.max_norm) { scale = p.max_norm / (norm + 1e-6); }
    dst[0] = norm;
    dst[1] = scale;
  }
}

// scale_apply bindings: x[in_off + i] *= factor[1] for i < len.
@group(1) @binding(0) var<storage, read> factor: array<f32>;          // [norm, scale]
@group(1) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn scale_apply(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.len) { return; }
  x[p.in_off + i] *= factor[1];
}
