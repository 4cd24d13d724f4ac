//! Softmax cross-entropy over a vocabulary, fused with its gradient, and log-softmax. Every row
//! reduction is max-subtracted (no overflow at any logit magnitude) and runs in a fixed order, so
//! results are deterministic.
//!   softmax_ce_count     count = number of rows whose target is not the ignore index (1 workgroup)
//!   softmax_ce_forward   per row n (one workgroup): m = max_v x, s = sum_v exp(x - m),
//!                        loss[n] = log s - (x[t] - m), and (with flag 1)
//!                        dlogits[n, v] = (exp(x[v] - m) / s - [v = t]) / count;
//!                        ignored rows: loss 0 and gradient 0; a target >= V: loss NaN
//!   softmax_ce_finalize  mean = sum_n loss[n] / count (0 when count = 0), fixed order (1 workgroup)
//!   log_softmax_forward  out[n, v] = x[n, v] - m - log s
//!   log_softmax_backward dx[n, v] (+)= dy[n, v] - exp(logp[n, v]) * sum_v dy[n, v]

struct Loss {
  rows: u32,     // N
  vocab: u32,    // V
  ignore: u32,   // ignore index (0xffffffff: none)
  flags: u32,    // 1 = write dlogits
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Loss;

// softmax_ce_count bindings
@group(1) @binding(0) var<storage, read> count_targets: array<u32>;   // [N]
@group(1) @binding(1) var<storage, read_write> count_out: array<f32>; // [1]

// Sum over the 256 lanes of a single-workgroup kernel, in a fixed tree order; lane 0 gets it.
var<workgroup> red: array<f32, 256>;

fn lanes_sum(v: f32, lane: u32) -> f32 {
  red[lane] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lane < s) { red[lane] += red[lane + s]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(256)
fn softmax_ce_count(@builtin(local_invocation_id) lid: vec3<u32>) {
  var c = 0u;
  for (var n = lid.x; n < p.rows; n += 256u) {
    c += select(0u, 1u, count_targets[n] != p.ignore);
  }
  let total = lanes_sum(f32(c), lid.x);   // exact below 2^24 rows
  if (lid.x == 0u) { count_out[0] = total; }
}

// Row reductions of one WG-wide workgroup: every lane returns the result.
var<workgroup> row: array<f32, WG>;

fn row_max(v: f32, lane: u32) -> f32 {
  row[lane] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { row[lane] = max(row[lane], row[lane + s]); }
    workgroupBarrier();
  }
  let r = row[0];
  workgroupBarrier();
  return r;
}

fn row_sum(v: f32, lane: u32) -> f32 {
  row[lane] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lane < s) { row[lane] += row[lane + s]; }
    workgroupBarrier();
  }
  let r = row[0];
  workgroupBarrier();
  return r;
}

// softmax_ce_forward bindings
@group(1) @binding(0) var<storage, read> logits: array<f32>;            // [N, V]
@group(1) @binding(1) var<storage, read> targets: array<u32>;           // [N]
@group(1) @binding(2) var<storage, read> count: array<f32>;             // [1]
@group(1) @binding(3) var<storage, read_write> row_loss: array<f32>;    // [N]
@group(1) @binding(4) var<storage, read_write> dlogits: array<f32>;     // [N, V] (flag 1)

// max_v x and sum_v exp(x - max) of row n.
fn row_stats(base: u32, lane: u32) -> vec2<f32> {
  var m = -3.4028235e38;
  for (var v = lane; v < p.vocab; v += WG) { m = max(m, logits[base + v]); }
  m = row_max(m, lane);
  var s = 0.0;
  for (var v = lane; v < p.vocab; v += WG) { s += exp(logits[base + v] - m); }
  return vec2<f32>(m, row_sum(s, lane));
}

@compute @workgroup_size(64)
fn softmax_ce_forward(@builtin(local_invocation_id) lid: vec3<u32>,
                      @builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = wid.x + wid.y * nwg.x;   // uniform across the workgroup: barriers stay uniform
  if (n >= p.rows) { return; }
  let lane = lid.x;
  let base = n * p.vocab;
  let t = targets[n];
  let ignored = t == p.ignore;
  let st = row_stats(base, lane);
  if (lane == 0u) {
    var l = 0.0;
    if (!ignored) {
      if (t < p.vocab) {
        l = log(st.y) - (logits[base + t] - st.x);
      } else {
        l = bitcast<f32>(0x7fc00000u);   // NaN: a target the host could not validate
      }
    }
    row_loss[n] = l;
  }
  if ((p.flags & 1u) != 0u) {
    let inv_count = 1.0 / max(count[0], 1.0);
    let inv_s = 1.0 / st.y;
    for (var v = lane; v < p.vocab; v += WG) {
      var g = 0.0;
      if (!ignored) {
        g = exp(logits[base + v] - st.x) * inv_s;
        if (v == t) { g -= 1.0; }
        g *= inv_count;
      }
      dlogits[base + v] = g;
    }
  }
}

// softmax_ce_finalize bindings
@group(1) @binding(0) var<storage, read> fin_loss: array<f32>;        // [N]
@group(1) @binding(1) var<storage, read> fin_count: array<f32>;       // [1]
@group(1) @binding(2) var<storage, read_write> mean: array<f32>;      // [1]

@compute @workgroup_size(256)
fn softmax_ce_finalize(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var n = lid.x; n < p.rows; n += 256u) { acc += fin_loss[n]; }
  let total = lanes_sum(acc, lid.x);
  if (lid.x == 0u) {
    let c = fin_count[0];
    mean[0] = select(0.0, total / c, c > 0.0);
  }
}

// log_softmax_forward bindings: logits (binding 0, declared above) and
@group(1) @binding(1) var<storage, read_write> logp: array<f32>;       // [N, V]

@compute @workgroup_size(64)
fn log_softmax_forward(@builtin(local_invocation_id) lid: vec3<u32>,
                       @builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = wid.x + wid.y * nwg.x;
  if (n >= p.rows) { return; }
  let lane = lid.x;
  let base = n * p.vocab;
  let st = row_stats(base, lane);
  let lse = log(st.y);
  for (var v = lane; v < p.vocab; v += WG) { logp[base + v] = (logits[base + v] - st.x) - lse; }
}

// log_softmax_backward bindings: the forward's output and the upstream gradient.
@group(1) @binding(0) var<storage, read> lsm_logp: array<f32>;          // [N, V]
@group(1) @binding(1) var<storage, read> lsm_dy: array<f32>;            // [N, V]
@group(1) @binding(2) var<storage, read_write> lsm_dx: array<f32>;      // [N, V]

// dx[n, v] (+)= dy[n, v] - exp(logp[n, v]) * sum_v' dy[n, v'] (flag 1: accumulate).
@compute @workgroup_size(64)
fn log_softmax_backward(@builtin(local_invocation_id) lid: vec3<u32>,
                        @builtin(workgroup_id) wid: vec3<u32>,
                        @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = wid.x + wid.y * nwg.x;
  if (n >= p.rows) { return; }
  let lane = lid.x;
  let base = n * p.vocab;
  var s = 0.0;
  for (var v = lane; v < p.vocab; v += WG) { s += lsm_dy[base + v]; }
  let total = row_sum(s, lane);
  for (var v = lane; v < p.vocab; v += WG) {
    var g = lsm_dy[base + v] - exp(lsm_logp[base + v]) * total;
    if ((p.flags & 1u) != 0u) { g += lsm_dx[base + v]; }
    lsm_dx[base + v] = g;
  }
}
