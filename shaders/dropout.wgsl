//! Inverted dropout with a counter-based mask: element (t, b, unit) of stream `stream` (t counted
//! from `t0`, so a one-step call of a step-by-step loop gets the mask of its time) is kept
//! when hash(seed, stream, t, b, unit) >> 8 >= threshold (= round(p * 2^24)), and kept values are
//! scaled by 1 / (1 - p). The hash uses only 32-bit integer operations, so src/reference/dropout.rs
//! reproduces every mask bit.
//!   dropout_forward   y = mask * x * scale          x, y: [T, B, U]
//!   dropout_backward  dx = mask * dy * scale

struct Dropout {
  len: u32, units: u32, batch: u32, seed: u32,
  stream: u32, threshold: u32, scale: f32, t0: u32,   // t0: time of the tensor's first row block
}

@group(0) @binding(0) var<uniform> p: Dropout;
@group(1) @binding(0) var<storage, read> src: array<f32>;         // [T, B, U]
@group(1) @binding(1) var<storage, read_write> dst: array<f32>;   // [T, B, U]

// lowbias32 (C. Wellons): a full-avalanche 32-bit mixer.
fn mix32(x: u32) -> u32 {
  var v = x;
  v ^= v >> 16u; v *= 0x7feb352du;
  v ^= v >> 15u; v *= 0x846ca68bu;
  v ^= v >> 16u;
  return v;
}

fn keep(i: u32) -> bool {
  let unit = i % p.units;
  let row = i / p.units;
  let b = row % p.batch;
  let t = row / p.batch + p.t0;
  var h = mix32(p.seed ^ 0x9e3779b9u);
  h = mix32(h ^ p.stream);
  h = mix32(h ^ t);
  h = mix32(h ^ b);
  h = mix32(h ^ unit);
  return (h >> 8u) >= p.threshold;
}

fn apply(i: u32) {
  if (i >= p.len) { return; }
  dst[i] = select(0.0, src[i] * p.scale, keep(i));
}

@compute @workgroup_size(256)
fn dropout_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
  apply(gid.x + gid.y * nwg.x * 256u);
}

@compute @workgroup_size(256)
fn dropout_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
  apply(gid.x + gid.y * nwg.x * 256u);
}
