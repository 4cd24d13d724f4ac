//! Masked softmax over the last axis (attention weights), one 64-lane workgroup per row:
//!   masked_softmax_forward   y[r, c] = exp(x[r, c] - m) / sum_{c' < len} exp(x[r, c'] - m) for
//!                            c < len, exactly 0 for c >= len (m = the row's max over c < len)
//!   masked_softmax_backward  dx[r, c] (+)= y[r, c] * (dy[r, c] - sum_{c' < len} dy y) for
//!                            c < len; nothing for c >= len (no gradient past the length)
//! len = lengths[r / rows_per_len] (flag 2), else cols; clamped to cols, and a row with len 0
//! is all zeros. x and dx are strided views (element (r, c) at off + r * rs + c); y and dy are
//! contiguous [rows, cols]. Sums run over lanes then a fixed tree: deterministic.

struct Softmax {
  rows: u32, cols: u32, flags: u32, rows_per_len: u32,   // flags: 1 accumulate, 2 lengths
  x_off: u32, x_rs: u32, o_off: u32, o_rs: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Softmax;

var<workgroup> red: array<f32, 64>;

fn lanes_max(v: f32, lane: u32) -> f32 {
  red[lane] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red[lane] = max(red[lane], red[lane + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn lanes_sum(v: f32, lane: u32) -> f32 {
  red[lane] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { red[lane] += red[lane + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn row_len(r: u32) -> u32 {
  if ((p.flags & 2u) == 0u) { return p.cols; }
  return min(lens[r / p.rows_per_len], p.cols);
}

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

// masked_softmax_forward bindings
@group(1) @binding(0) var<storage, read> x: array<f32>;            // [rows, cols] view
@group(1) @binding(1) var<storage, read> lens: array<u32>;         // [rows / rows_per_len]
@group(1) @binding(2) var<storage, read_write> y: array<f32>;      // [rows, cols]

@compute @workgroup_size(64)
fn masked_softmax_forward(@builtin(local_invocation_id) lid: vec3<u32>,
                          @builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = row_of(wid, nwg);   // uniform across the workgroup: barriers stay uniform
  if (r >= p.rows) { return; }
  let lane = lid.x;
  let len = row_len(r);
  let xb = p.x_off + r * p.x_rs;
  var m = -3.4028235e38;
  for (var c = lane; c < len; c += WG) { m = max(m, x[xb + c]); }
  m = lanes_max(m, lane);
  var s = 0.0;
  for (var c = lane; c < len; c += WG) { s += exp(x[xb + c] - m); }
  let inv = 1.0 / lanes_sum(s, lane);
  for (var c = lane; c < p.cols; c += WG) {
    var v = 0.0;
    if (c < len) { v = exp(x[xb + c] - m) * inv; }
    y[r * p.cols + c] = v;
  }
}

// masked_softmax_backward bindings
@group(1) @binding(0) var<storage, read> sy: array<f32>;           // [rows, cols] forward output
@group(1) @binding(1) var<storage, read> blens: array<u32>;        // aliases `lens`
@group(1) @binding(2) var<storage, read> dy: array<f32>;           // [rows, cols]
@group(1) @binding(3) var<storage, read_write> dx: array<f32>;     // [rows, cols] view

@compute @workgroup_size(64)
fn masked_softmax_backward(@builtin(local_invocation_id) lid: vec3<u32>,
                           @builtin(workgroup_id) wid: vec3<u32>,
                           @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = row_of(wid, nwg);
  if (r >= p.rows) { return; }
  let lane = lid.x;
  var len = p.cols;
  if ((p.flags & 2u) != 0u) { len = min(blens[r / p.rows_per_len], p.cols); }
  let b = r * p.cols;
  var s = 0.0;
  for (var c = lane; c < len; c += WG) { s += dy[b + c] * sy[b + c]; }
  let dot = lanes_sum(s, lane);
  let acc = (p.flags & 1u) != 0u;
  for (var c = lane; c < p.cols; c += WG) {
    let o = p.o_off + r * p.o_rs + c;
    if (c < len) {
      var g = sy[b + c] * (dy[b + c] - dot);
      if (acc) { g += dx[o]; }
      dx[o] = g;
    } else if (!acc) {
      dx[o] = 0.0;
    }
  }
}
