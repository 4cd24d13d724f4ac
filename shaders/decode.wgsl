//! Decoding on the device: choices over the last axis of x [rows, cols] (a strided view,
//! element (r, c) at x_off + r * x_rs + c), one 64-lane workgroup per row. The order is value
//! descending, then index ascending: a tie goes to the lowest index.
//!   argmax_forward   ids[o_off + r] = the first index of the row's maximum
//!   topk_forward     values[r, j], indices[r, j] for j < k: the row's k best elements in order
//!                    (k rounds, each the best element after the previous one in the order)
//!   sample_forward   ids[o_off + r] = a draw from softmax(x[r] / temperature), restricted to
//!                    the top_k best elements when top_k > 0, by inverse CDF with
//!                    u = hash(seed, step, r) in [0, 1) (a counter-based generator: the same
//!                    seed, step and row give the same draw on any adapter and on the CPU twin)
//! Sampling sums exp((x - m) / temperature) over each lane's contiguous chunk in order, then
//! lane 0 adds the chunk sums in order and walks them to the chosen index: deterministic.

struct Decode {
  rows: u32, cols: u32, x_off: u32, x_rs: u32,
  k: u32, o_off: u32, seed: u32, step: u32,
  temperature: f32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Decode;

@group(1) @binding(0) var<storage, read> x: array<f32>;           // [rows, cols] view
@group(1) @binding(1) var<storage, read_write> ids: array<u32>;   // argmax / sample output
@group(1) @binding(2) var<storage, read_write> values: array<f32>; // [rows, k] (top-k)

var<workgroup> best_v: array<f32, 64>;
var<workgroup> best_i: array<u32, 64>;
var<workgroup> sums: array<f32, 64>;

const NONE: u32 = 0xffffffffu;
const NEG: f32 = -3.4028235e38;

// (va, ia) comes before (vb, ib) in the order; NONE (no candidate) comes last.
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  if (ia == NONE) { return false; }
  if (ib == NONE) { return true; }
  return va > vb || (va == vb && ia < ib);
}

fn xv(r: u32, c: u32) -> f32 { return x[p.x_off + r * p.x_rs + c]; }

// The first element of row r in the order that comes after (pv, pi) (pi = NONE: the very
// first); every lane returns it.
fn next_best(r: u32, lane: u32, pv: f32, pi: u32) -> vec2<u32> {
  var bv = NEG;
  var bi = NONE;
  for (var c = lane; c < p.cols; c += WG) {
    let v = xv(r, c);
    if ((pi == NONE || before(pv, pi, v, c)) && before(v, c, bv, bi)) { bv = v; bi = c; }
  }
  best_v[lane] = bv;
  best_i[lane] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lane < s && before(best_v[lane + s], best_i[lane + s], best_v[lane], best_i[lane])) {
      best_v[lane] = best_v[lane + s];
      best_i[lane] = best_i[lane + s];
    }
    workgroupBarrier();
  }
  let out = vec2<u32>(bitcast<u32>(best_v[0]), best_i[0]);
  workgroupBarrier();
  return out;
}

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

@compute @workgroup_size(64)
fn argmax_forward(@builtin(local_invocation_id) lid: vec3<u32>,
                  @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = row_of(wid, nwg);   // uniform across the workgroup: barriers stay uniform
  if (r >= p.rows) { return; }
  let b = next_best(r, lid.x, 0.0, NONE);
  if (lid.x == 0u) { ids[p.o_off + r] = b.y; }
}

@compute @workgroup_size(64)
fn topk_forward(@builtin(local_invocation_id) lid: vec3<u32>,
                @builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = row_of(wid, nwg);
  if (r >= p.rows) { return; }
  var pv = 0.0;
  var pi = NONE;
  for (var j = 0u; j < p.k; j++) {
    let b = next_best(r, lid.x, pv, pi);
    pv = bitcast<f32>(b.x);
    pi = b.y;
    if (lid.x == 0u) {
      values[r * p.k + j] = pv;
      ids[r * p.k + j] = pi;
    }
  }
}

// lowbias32 (C. Wellons), as dropout.wgsl.
fn mix32(v0: u32) -> u32 {
  var v = v0;
  v ^= v >> 16u; v *= 0x7feb352du;
  v ^= v >> 15u; v *= 0x846ca68bu;
  v ^= v >> 16u;
  return v;
}

// u in [0, 1) with 24 random bits from (seed, step, row).
fn uniform01(r: u32) -> f32 {
  var h = mix32(p.seed ^ 0x9e3779b9u);
  h = mix32(h ^ p.step);
  h = mix32(h ^ r);
  return f32(h >> 8u) * (1.0 / 16777216.0);
}

@compute @workgroup_size(64)
fn sample_forward(@builtin(local_invocation_id) lid: vec3<u32>,
                  @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = row_of(wid, nwg);
  if (r >= p.rows) { return; }
  let lane = lid.x;
  // The row's best element (its maximum) and, with top_k, the k-th best: elements after it in
  // the order take no part.
  let first = next_best(r, lane, 0.0, NONE);
  let m = bitcast<f32>(first.x);
  var tv = m;
  var ti = first.y;
  for (var j = 1u; j < p.k; j++) {
    let b = next_best(r, lane, tv, ti);
    tv = bitcast<f32>(b.x);
    ti = b.y;
  }
  let restricted = p.k > 0u;
  let chunk = (p.cols + WG - 1u) / WG;
  let c0 = min(lane * chunk, p.cols);
  let c1 = min(c0 + chunk, p.cols);
  let inv_t = 1.0 / p.temperature;
  var s = 0.0;
  for (var c = c0; c < c1; c++) {
    let v = xv(r, c);
    if (!restricted || !before(tv, ti, v, c)) { s += exp((v - m) * inv_t); }
  }
  sums[lane] = s;
  workgroupBarrier();
  if (lane == 0u) {
    var total = 0.0;
    for (var l = 0u; l < WG; l++) { total += sums[l]; }
    let goal = uniform01(r) * total;
    var acc = 0.0;
    var pick = first.y;   // if rounding left the goal unreached: the best element
    var found = false;
    for (var l = 0u; l < WG && !found; l++) {
      if (acc + sums[l] <= goal) { acc += sums[l]; continue; }
      let a0 = min(l * chunk, p.cols);
      let a1 = min(a0 + chunk, p.cols);
      for (var c = a0; c < a1; c++) {
        let v = xv(r, c);
        if (restricted && before(tv, ti, v, c)) { continue; }
        pick = c;
        acc += exp((v - m) * inv_t);
        if (acc > goal) { found = true; break; }
      }
    }
    ids[p.o_off + r] = pick;
  }
}
