//! Pooling over time with per-sequence lengths (many-to-one models). x is a strided view
//! [T, B, C]: element (t, b, c) at x_off + (t * B + b) * x_rs + c; len_b = lengths[b], clamped
//! to 1..=T (the host validates lengths it uploads). Outputs are contiguous [B, C].
//!   pool_mean_forward   out[b, c] = sum_{t < len_b} x[t, b, c] / len_b
//!   pool_max_forward    out[b, c] = max_{t < len_b} x[t, b, c], arg[b, c] = the first such t
//!   pool_last_forward   out[b, c] = x[t_bc, b, c], t_bc = len_b - 1 for c < split, else 0
//!                       (a bidirectional output: the forward direction at its last valid
//!                       step, the reverse direction at step 0)
//!   pool_*_backward     dx[t, b, c] (+)= the share of dy[b, c] that (t, b, c) received: dy/len
//!                       (mean, t < len_b), dy where t = arg[b, c] (max), dy where t = t_bc
//!                       (last); every other element gets nothing (0 unless accumulating).
//! One invocation per output element; time runs in order, so results are deterministic.

struct Pool {
  seq: u32, batch: u32, cols: u32, flags: u32,   // flags: 1 = accumulate into dx
  x_off: u32, x_rs: u32, split: u32, kind: u32,  // kind (backward): 0 mean, 1 max, 2 last
}

@group(0) @binding(0) var<uniform> p: Pool;

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

fn len_of(l: u32) -> u32 { return clamp(l, 1u, p.seq); }

fn xi(t: u32, b: u32, c: u32) -> u32 { return p.x_off + (t * p.batch + b) * p.x_rs + c; }

// forward bindings
@group(1) @binding(0) var<storage, read> x: array<f32>;            // [T, B, C] view
@group(1) @binding(1) var<storage, read> lengths: array<u32>;      // [B]
@group(1) @binding(2) var<storage, read_write> out: array<f32>;    // [B, C]
@group(1) @binding(3) var<storage, read_write> arg: array<u32>;    // [B, C] (max only)

@compute @workgroup_size(256)
fn pool_mean_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.batch * p.cols) { return; }
  let b = i / p.cols;
  let c = i - b * p.cols;
  let len = len_of(lengths[b]);
  var s = 0.0;
  for (var t = 0u; t < len; t++) { s += x[xi(t, b, c)]; }
  out[i] = s / f32(len);
}

@compute @workgroup_size(256)
fn pool_max_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.batch * p.cols) { return; }
  let b = i / p.cols;
  let c = i - b * p.cols;
  let len = len_of(lengths[b]);
  var m = x[xi(0u, b, c)];
  var at = 0u;
  for (var t = 1u; t < len; t++) {
    let v = x[xi(t, b, c)];
    if (v > m) { m = v; at = t; }   // strictly greater: the first maximum wins a tie
  }
  out[i] = m;
  arg[i] = at;
}

fn last_t(b: u32, c: u32) -> u32 {
  if (c < p.split) { return len_of(lengths[b]) - 1u; }
  return 0u;
}

@compute @workgroup_size(256)
fn pool_last_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.batch * p.cols) { return; }
  let b = i / p.cols;
  let c = i - b * p.cols;
  out[i] = x[xi(last_t(b, c), b, c)];
}

// backward bindings (dx uses the view parameters x_off / x_rs)
@group(1) @binding(0) var<storage, read> dy: array<f32>;           // [B, C]
@group(1) @binding(1) var<storage, read> blengths: array<u32>;     // [B]
@group(1) @binding(2) var<storage, read> barg: array<u32>;         // [B, C] (max; else unused)
@group(1) @binding(3) var<storage, read_write> dx: array<f32>;     // [T, B, C] view

@compute @workgroup_size(256)
fn pool_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.seq * p.batch * p.cols) { return; }
  let row = i / p.cols;
  let c = i - row * p.cols;
  let t = row / p.batch;
  let b = row - t * p.batch;
  let len = len_of(blengths[b]);
  let g = dy[b * p.cols + c];
  var v = 0.0;
  switch p.kind {
    case 0u: { if (t < len) { v = g / f32(len); } }
    case 1u: { if (t == barg[b * p.cols + c]) { v = g; } }
    default: {
      var at = 0u;
      if (c < p.split) { at = len - 1u; }
      if (t == at) { v = g; }
    }
  }
  let o = p.x_off + row * p.x_rs + c;
  if ((p.flags & 1u) != 0u) { v += dx[o]; }
  dx[o] = v;
}
