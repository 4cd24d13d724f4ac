//! The recurrent drivers shared by every cell: one fused dispatch per timestep and layer, both
//! directions at once (workgroup z = direction). The host appends one cell file (lstm.wgsl,
//! gru.wgsl, elman.wgsl) that defines G (gates), S (values saved per unit for the backward),
//! SPLIT (whether input-side and hidden-side gate gradients differ), cell_forward and
//! cell_backward.
//!
//!   step_forward   h_{t-1} W_hh^T + b_hh, gate nonlinearities, state update, output row
//!   step_backward  dh = dgates_{t+1} W_hh + dh_carry + dy_t, then the cell's gate gradients
//!
//! Each invocation owns one hidden unit j for four batch elements (b0..b0+3): it reads each
//! recurrent weight once per four batch rows, and neighbouring invocations own neighbouring
//! units, so they read neighbouring words (the forward reads W_hh transposed, the backward reads
//! W_hh as stored).
//!
//! Step s processes time t = s in the forward direction (d = 0) and t = T-1-s in the reverse one
//! (d = 1). With per-sequence lengths, a step at t >= len_b leaves the state unchanged and writes
//! a zero output row: the forward direction's final state is its state at len_b-1, and the
//! reverse direction starts at len_b-1 from h0 (PyTorch's packed-sequence semantics).
//!
//! State layouts. Training (flag 1): h and c keep every state, [D, T+1, B, H]: the forward
//! direction's state before time t is slot t and after it slot t+1; the reverse direction's is
//! slot t+1 before and slot t after. Inference: a ping-pong pair [2, D, B, H], slot s%2 before
//! step s and (s+1)%2 after.

struct Step {
  seq: u32,       // T
  batch: u32,     // B
  hidden: u32,    // H
  dirs: u32,      // D
  iter: u32,      // forward: step s; backward: iteration k = T-1-s (k = T: the final dispatch)
  flags: u32,     // 1 train layout, 2 bias, 4 lengths, 8 upstream dy present
  h0_off: u32,    // backward: element offset of this layer's rows in dh0 / dc0 ([L*D, B, H])
}

const F_TRAIN: u32 = 1u;
const F_BIAS: u32 = 2u;
const F_LENGTHS: u32 = 4u;
const F_DY: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Step;

fn has(f: u32) -> bool { return (p.flags & f) != 0u; }

fn time_of(d: u32, s: u32) -> u32 { return select(p.seq - 1u - s, s, d == 0u); }

fn is_valid(t: u32, b: u32) -> bool {
  if (!has(F_LENGTHS)) { return true; }
  return t < lengths[b];
}

// Index of state element (d, b, j) before (newer = false) or after (newer = true) time t,
// processed at step s.
fn state_at(d: u32, t: u32, s: u32, b: u32, j: u32, newer: bool) -> u32 {
  let B = p.batch; let H = p.hidden;
  if (has(F_TRAIN)) {
    var slot = t;
    if ((d == 0u) == newer) { slot = t + 1u; }
    return ((d * (p.seq + 1u) + slot) * B + b) * H + j;
  }
  let slot = (s + select(0u, 1u, newer)) & 1u;
  return ((slot * p.dirs + d) * B + b) * H + j;
}

fn clamp_b(b: u32) -> u32 { return min(b, p.batch - 1u); }

// ---------------------------------------------------------------------------------------------
// Forward step.

@group(1) @binding(0) var<storage, read> w_hh_t: array<f32>;        // [D, H, G*H] (W_hh transposed)
@group(1) @binding(1) var<storage, read> b_hh: array<f32>;          // [D, G*H]
@group(1) @binding(2) var<storage, read> xproj: array<f32>;         // [D, T, B, G*H], incl. b_ih
@group(1) @binding(3) var<storage, read> lengths: array<u32>;       // [B]
@group(1) @binding(4) var<storage, read_write> hs: array<f32>;      // see "State layouts"
@group(1) @binding(5) var<storage, read_write> cs: array<f32>;      // LSTM cell state, same layout
@group(1) @binding(6) var<storage, read_write> y: array<f32>;       // [T, B, D*H]
@group(1) @binding(7) var<storage, read_write> saved: array<f32>;   // [D, T, B, S*H] (training)

@compute @workgroup_size(64)
fn step_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let b0 = gid.y * 4u;
  let d = gid.z;
  let H = p.hidden;
  let B = p.batch;
  if (j >= H || b0 >= B) { return; }
  let GH = G * H;
  let s = p.iter;
  let t = time_of(d, s);

  // Recurrent product for unit j of every gate, four batch rows at once.
  let hb = vec4<u32>(state_at(d, t, s, clamp_b(b0), 0u, false),
                     state_at(d, t, s, clamp_b(b0 + 1u), 0u, false),
                     state_at(d, t, s, clamp_b(b0 + 2u), 0u, false),
                     state_at(d, t, s, clamp_b(b0 + 3u), 0u, false));
  var acc: array<vec4<f32>, G>;
  for (var g = 0u; g < G; g++) { acc[g] = vec4<f32>(0.0); }
  let wbase = d * H * GH + j;
  for (var k = 0u; k < H; k++) {
    let hv = vec4<f32>(hs[hb.x + k], hs[hb.y + k], hs[hb.z + k], hs[hb.w + k]);
    let wk = wbase + k * GH;
    for (var g = 0u; g < G; g++) {
      acc[g] = fma(vec4<f32>(w_hh_t[wk + g * H]), hv, acc[g]);
    }
  }

  for (var q = 0u; q < 4u; q++) {
    let b = b0 + q;
    if (b >= B) { break; }
    var hg: array<f32, 4>;
    for (var g = 0u; g < G; g++) { hg[g] = acc[g][q]; }
    finish_forward(d, t, s, b, j, hg);
  }
}

// The pointwise part of a forward step for unit j of row b, given the recurrent products
// hg[g] = (W_hh h_{t-1})[g*H + j] (without b_hh).
fn finish_forward(d: u32, t: u32, s: u32, b: u32, j: u32, hg_in: array<f32, 4>) {
  let H = p.hidden;
  let B = p.batch;
  let GH = G * H;
  let ip = state_at(d, t, s, b, j, false);
  let io = state_at(d, t, s, b, j, true);
  let h_prev = hs[ip];
  var c_prev = 0.0;
  if (G == 4u) { c_prev = cs[ip]; }
  let yi = (t * B + b) * p.dirs * H + d * H + j;
  let xrow = ((d * p.seq + t) * B + b) * GH;
  let srow = ((d * p.seq + t) * B + b) * S * H;
  if (is_valid(t, b)) {
    var xg: array<f32, 4>;
    var hg: array<f32, 4>;
    for (var g = 0u; g < G; g++) {
      xg[g] = xproj[xrow + g * H + j];
      var r = hg_in[g];
      if (has(F_BIAS)) { r += b_hh[d * GH + g * H + j]; }
      hg[g] = r;
    }
    let o = cell_forward(xg, hg, h_prev, c_prev);
    hs[io] = o.h;
    if (G == 4u) { cs[io] = o.c; }
    y[yi] = o.h;
    if (has(F_TRAIN)) {
      for (var e = 0u; e < S; e++) { saved[srow + e * H + j] = o.save[e]; }
    }
  } else {
    // Past this sequence's length: carry the state, emit zeros.
    hs[io] = h_prev;
    if (G == 4u) { cs[io] = c_prev; }
    y[yi] = 0.0;
  }
}

// ---------------------------------------------------------------------------------------------
// Backward step.

@group(1) @binding(0) var<storage, read> bw_hh: array<f32>;           // [D, G*H, H]
@group(1) @binding(1) var<storage, read> blengths: array<u32>;        // [B] (aliases `lengths`)
@group(1) @binding(2) var<storage, read> bsaved: array<f32>;          // [D, T, B, S*H]
@group(1) @binding(3) var<storage, read> bhs: array<f32>;             // [D, T+1, B, H]
@group(1) @binding(4) var<storage, read> bcs: array<f32>;             // [D, T+1, B, H] (LSTM)
@group(1) @binding(5) var<storage, read> dy: array<f32>;              // [T, B, D*H]
@group(1) @binding(6) var<storage, read_write> dgx: array<f32>;       // [D, T, B, G*H]
@group(1) @binding(7) var<storage, read_write> dgh: array<f32>;       // [D, T, B, G*H] (SPLIT)
@group(1) @binding(8) var<storage, read_write> dhs: array<f32>;       // [2, D, B, H] carried dh
@group(1) @binding(9) var<storage, read_write> dcs: array<f32>;       // [2, D, B, H] carried dc
@group(1) @binding(10) var<storage, read_write> dh0: array<f32>;      // [L*D, B, H]
@group(1) @binding(11) var<storage, read_write> dc0: array<f32>;      // [L*D, B, H] (LSTM)

fn dg_hidden(i: u32) -> f32 {
  if (SPLIT) { return dgh[i]; }
  return dgx[i];
}

@compute @workgroup_size(64)
fn step_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let b0 = gid.y * 4u;
  let d = gid.z;
  let H = p.hidden;
  let B = p.batch;
  let T = p.seq;
  if (j >= H || b0 >= B) { return; }
  let GH = G * H;
  let k = p.iter;
  // This iteration processes step s = T-1-k; the step processed before it (later in the
  // direction's own order) is sf = s+1 = T-k, whose hidden-side gate gradients feed dh here.
  let sf = T - k;

  var rec = vec4<f32>(0.0);
  if (sf < T) {
    let tf = time_of(d, sf);
    let base = vec4<u32>(((d * T + tf) * B + clamp_b(b0)) * GH,
                         ((d * T + tf) * B + clamp_b(b0 + 1u)) * GH,
                         ((d * T + tf) * B + clamp_b(b0 + 2u)) * GH,
                         ((d * T + tf) * B + clamp_b(b0 + 3u)) * GH);
    let wbase = d * GH * H + j;
    for (var r = 0u; r < GH; r++) {
      let dg = vec4<f32>(dg_hidden(base.x + r), dg_hidden(base.y + r),
                         dg_hidden(base.z + r), dg_hidden(base.w + r));
      rec = fma(vec4<f32>(bw_hh[wbase + r * H]), dg, rec);
    }
  }

  for (var q = 0u; q < 4u; q++) {
    let b = b0 + q;
    if (b >= B) { break; }
    finish_backward(d, b, j, rec[q]);
  }
}

// The pointwise part of backward iteration k = p.iter for unit j of row b, given the recurrent
// gradient rec = (dgates_{later} W_hh)[j].
fn finish_backward(d: u32, b: u32, j: u32, rec: f32) {
  let H = p.hidden;
  let B = p.batch;
  let T = p.seq;
  let GH = G * H;
  let k = p.iter;
  let cur = k & 1u;
  let nxt = (k + 1u) & 1u;
  let ci = ((cur * p.dirs + d) * B + b) * H + j;
  let ni = ((nxt * p.dirs + d) * B + b) * H + j;
  var dh = dhs[ci] + rec;
  var dc = 0.0;
  if (G == 4u) { dc = dcs[ci]; }
  if (k == T) {
    let oi = p.h0_off + (d * B + b) * H + j;
    dh0[oi] = dh;
    if (G == 4u) { dc0[oi] = dc; }
    return;
  }
  let s = T - 1u - k;
  let t = time_of(d, s);
  let grow = ((d * T + t) * B + b) * GH;
  var valid = true;
  if (has(F_LENGTHS)) { valid = t < blengths[b]; }
  if (valid) {
    if (has(F_DY)) { dh += dy[(t * B + b) * p.dirs * H + d * H + j]; }
    let srow = ((d * T + t) * B + b) * S * H;
    var sv: array<f32, 4>;
    for (var e = 0u; e < S; e++) { sv[e] = bsaved[srow + e * H + j]; }
    let ip = bstate(d, t, b, j, false);
    let io = bstate(d, t, b, j, true);
    var c_prev = 0.0;
    var c_new = 0.0;
    if (G == 4u) { c_prev = bcs[ip]; c_new = bcs[io]; }
    let o = cell_backward(dh, dc, sv, bhs[ip], c_prev, bhs[io], c_new);
    for (var g = 0u; g < G; g++) {
      dgx[grow + g * H + j] = o.dgx[g];
      if (SPLIT) { dgh[grow + g * H + j] = o.dgh[g]; }
    }
    dhs[ni] = o.dh_prev;
    if (G == 4u) { dcs[ni] = o.dc_prev; }
  } else {
    // Padded step: no gate gradient, the state's gradient passes through unchanged.
    for (var g = 0u; g < G; g++) {
      dgx[grow + g * H + j] = 0.0;
      if (SPLIT) { dgh[grow + g * H + j] = 0.0; }
    }
    dhs[ni] = dh;
    if (G == 4u) { dcs[ni] = dc; }
  }
}

// State index in the training history layout [D, T+1, B, H].
fn bstate(d: u32, t: u32, b: u32, j: u32, newer: bool) -> u32 {
  var slot = t;
  if ((d == 0u) == newer) { slot = t + 1u; }
  return ((d * (p.seq + 1u) + slot) * p.batch + b) * p.hidden + j;
}

fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
// tanh saturates to +-1 in f32 long before 20; clamping keeps every driver away from inf/inf.
fn tanh_c(x: f32) -> f32 { return tanh(clamp(x, -20.0, 20.0)); }

// ---------------------------------------------------------------------------------------------
// Tiled variants for GPUs: the recurrent product of a step as a small GEMM staged through
// workgroup memory, with the cell as its epilogue. A 16x16 workgroup owns BM = 16*RM batch rows
// by 64 accumulator columns; invocation (tx, ty) owns rows ty + 16r (r < RM) and the 4 columns
// tx*4 .. tx*4+3. Forward columns are (unit, gate) pairs, all G gates of UT units per invocation
// (UT*G <= 4), so the epilogue has them in registers; backward columns are units. The K loop
// stages BK-wide slices of h (or of the later step's gate gradients) and of W_hh and loads the
// next slice into registers while computing the current one. No arrays in the hot loops: an
// array indexed in a loop can land in local memory on some drivers (measured 13x slower on an
// H100), plain variables stay in registers.

override RM: u32 = 1u;   // batch rows per invocation: 1..4
override UT: u32 = 1u;   // forward: hidden units per invocation, UT * G <= 4
const BK: u32 = 16u;
var<workgroup> tile_a: array<f32, 1024>;   // [BK, 16*RM]: h (forward) / gate gradients (backward)
var<workgroup> tile_w: array<f32, 1024>;   // [BK, 64]: invocation tx's columns at tx*4 .. tx*4+3

@group(1) @binding(0) var<storage, read> tw_hh: array<f32>;   // [D, G*H, H] as stored

// Forward tile column col (0..63) -> (unit offset, gate), or none when col % 4 >= UT * G.
fn fwd_col_ok(col: u32) -> bool { return col % 4u < UT * G; }
fn fwd_col_unit(col: u32) -> u32 { return (col / 4u) * UT + (col % 4u) / G; }
fn fwd_col_gate(col: u32) -> u32 { return (col % 4u) % G; }

fn tile_w4(kk: u32, tx: u32) -> vec4<f32> {
  let o = kk * 64u + tx * 4u;
  return vec4<f32>(tile_w[o], tile_w[o + 1u], tile_w[o + 2u], tile_w[o + 3u]);
}

@compute @workgroup_size(16, 16)
fn step_forward_tiled(@builtin(local_invocation_id) lid: vec3<u32>,
                      @builtin(workgroup_id) wid: vec3<u32>) {
  let H = p.hidden;
  let B = p.batch;
  let d = wid.z;
  let s = p.iter;
  let t = time_of(d, s);
  let BM = 16u * RM;
  let b0 = wid.y * BM;
  let j0 = wid.x * 16u * UT;
  let tid = lid.y * 16u + lid.x;
  let wbase = d * G * H * H;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var pa0 = 0.0;
  var pa1 = 0.0;
  var pa2 = 0.0;
  var pa3 = 0.0;
  var pw0 = 0.0;
  var pw1 = 0.0;
  var pw2 = 0.0;
  var pw3 = 0.0;
  for (var k0 = 0u; k0 < H + BK; k0 += BK) {
    if (k0 > 0u) {
      workgroupBarrier();
      tile_a[((tid + 0u) % BK) * BM + (tid + 0u) / BK] = pa0;
      if (RM > 1u) { tile_a[((tid + 256u) % BK) * BM + (tid + 256u) / BK] = pa1; }
      if (RM > 2u) { tile_a[((tid + 512u) % BK) * BM + (tid + 512u) / BK] = pa2; }
      if (RM > 3u) { tile_a[((tid + 768u) % BK) * BM + (tid + 768u) / BK] = pa3; }
      { let e = tid + 0u; tile_w[(e % BK) * 64u + e / BK] = pw0; }
      { let e = tid + 256u; tile_w[(e % BK) * 64u + e / BK] = pw1; }
      { let e = tid + 512u; tile_w[(e % BK) * 64u + e / BK] = pw2; }
      { let e = tid + 768u; tile_w[(e % BK) * 64u + e / BK] = pw3; }
      workgroupBarrier();
    }
    if (k0 < H) {
      // h slice element e: (row e / BK, k e % BK); W slice element e: (column e / BK, k e % BK).
      pa0 = load_h(d, t, s, b0 + (tid + 0u) / BK, k0 + (tid + 0u) % BK);
      if (RM > 1u) { pa1 = load_h(d, t, s, b0 + (tid + 256u) / BK, k0 + (tid + 256u) % BK); }
      if (RM > 2u) { pa2 = load_h(d, t, s, b0 + (tid + 512u) / BK, k0 + (tid + 512u) % BK); }
      if (RM > 3u) { pa3 = load_h(d, t, s, b0 + (tid + 768u) / BK, k0 + (tid + 768u) % BK); }
      pw0 = load_w_fwd(wbase, j0, (tid + 0u) / BK, k0 + (tid + 0u) % BK);
      pw1 = load_w_fwd(wbase, j0, (tid + 256u) / BK, k0 + (tid + 256u) % BK);
      pw2 = load_w_fwd(wbase, j0, (tid + 512u) / BK, k0 + (tid + 512u) % BK);
      pw3 = load_w_fwd(wbase, j0, (tid + 768u) / BK, k0 + (tid + 768u) % BK);
    }
    if (k0 > 0u) {
      for (var kk = 0u; kk < BK; kk++) {
        let w = tile_w4(kk, lid.x);
        acc0 = fma(vec4<f32>(tile_a[kk * BM + lid.y + 0u]), w, acc0);
        if (RM > 1u) { acc1 = fma(vec4<f32>(tile_a[kk * BM + lid.y + 16u]), w, acc1); }
        if (RM > 2u) { acc2 = fma(vec4<f32>(tile_a[kk * BM + lid.y + 32u]), w, acc2); }
        if (RM > 3u) { acc3 = fma(vec4<f32>(tile_a[kk * BM + lid.y + 48u]), w, acc3); }
      }
    }
  }
  finish_forward_tile(d, t, s, b0 + lid.y + 0u, j0 + lid.x * UT, acc0);
  if (RM > 1u) { finish_forward_tile(d, t, s, b0 + lid.y + 16u, j0 + lid.x * UT, acc1); }
  if (RM > 2u) { finish_forward_tile(d, t, s, b0 + lid.y + 32u, j0 + lid.x * UT, acc2); }
  if (RM > 3u) { finish_forward_tile(d, t, s, b0 + lid.y + 48u, j0 + lid.x * UT, acc3); }
}

fn load_h(d: u32, t: u32, s: u32, b: u32, k: u32) -> f32 {
  if (b < p.batch && k < p.hidden) { return hs[state_at(d, t, s, b, k, false)]; }
  return 0.0;
}

fn load_w_fwd(wbase: u32, j0: u32, col: u32, k: u32) -> f32 {
  let H = p.hidden;
  let j = j0 + fwd_col_unit(col);
  if (fwd_col_ok(col) && j < H && k < H) { return tw_hh[wbase + (fwd_col_gate(col) * H + j) * H + k]; }
  return 0.0;
}

// Epilogue of one row of a forward tile: acc holds the UT*G columns of units j .. j+UT-1.
fn finish_forward_tile(d: u32, t: u32, s: u32, b: u32, j: u32, acc: vec4<f32>) {
  if (b >= p.batch) { return; }
  for (var q = 0u; q < UT; q++) {
    if (j + q < p.hidden) {
      var hg: array<f32, 4>;
      for (var g = 0u; g < G; g++) { hg[g] = acc[q * G + g]; }
      finish_forward(d, t, s, b, j + q, hg);
    }
  }
}

@compute @workgroup_size(16, 16)
fn step_backward_tiled(@builtin(local_invocation_id) lid: vec3<u32>,
                       @builtin(workgroup_id) wid: vec3<u32>) {
  let H = p.hidden;
  let B = p.batch;
  let T = p.seq;
  let GH = G * H;
  let d = wid.z;
  let BM = 16u * RM;
  let b0 = wid.y * BM;
  let j0 = wid.x * 64u;
  let tid = lid.y * 16u + lid.x;
  let sf = T - p.iter;   // the step whose gate gradients feed dh (none when sf == T)
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  if (sf < T) {
    let tf = time_of(d, sf);
    let wbase = d * GH * H;
    let gbase = (d * T + tf) * B;
    var pa0 = 0.0;
    var pa1 = 0.0;
    var pa2 = 0.0;
    var pa3 = 0.0;
    var pw0 = 0.0;
    var pw1 = 0.0;
    var pw2 = 0.0;
    var pw3 = 0.0;
    for (var k0 = 0u; k0 < GH + BK; k0 += BK) {
      if (k0 > 0u) {
        workgroupBarrier();
        tile_a[((tid + 0u) % BK) * BM + (tid + 0u) / BK] = pa0;
        if (RM > 1u) { tile_a[((tid + 256u) % BK) * BM + (tid + 256u) / BK] = pa1; }
        if (RM > 2u) { tile_a[((tid + 512u) % BK) * BM + (tid + 512u) / BK] = pa2; }
        if (RM > 3u) { tile_a[((tid + 768u) % BK) * BM + (tid + 768u) / BK] = pa3; }
        tile_w[tid + 0u] = pw0;
        tile_w[tid + 256u] = pw1;
        tile_w[tid + 512u] = pw2;
        tile_w[tid + 768u] = pw3;
        workgroupBarrier();
      }
      if (k0 < GH) {
        // Gate-gradient slice element e: (row e / BK, k e % BK); W slice: (k e / 64, unit e % 64).
        pa0 = load_dg(gbase, b0 + (tid + 0u) / BK, k0 + (tid + 0u) % BK);
        if (RM > 1u) { pa1 = load_dg(gbase, b0 + (tid + 256u) / BK, k0 + (tid + 256u) % BK); }
        if (RM > 2u) { pa2 = load_dg(gbase, b0 + (tid + 512u) / BK, k0 + (tid + 512u) % BK); }
        if (RM > 3u) { pa3 = load_dg(gbase, b0 + (tid + 768u) / BK, k0 + (tid + 768u) % BK); }
        pw0 = load_w_bwd(wbase, k0 + (tid + 0u) / 64u, j0 + (tid + 0u) % 64u);
        pw1 = load_w_bwd(wbase, k0 + (tid + 256u) / 64u, j0 + (tid + 256u) % 64u);
        pw2 = load_w_bwd(wbase, k0 + (tid + 512u) / 64u, j0 + (tid + 512u) % 64u);
        pw3 = load_w_bwd(wbase, k0 + (tid + 768u) / 64u, j0 + (tid + 768u) % 64u);
      }
      if (k0 > 0u) {
        for (var kk = 0u; kk < BK; kk++) {
          let w = tile_w4(kk, lid.x);
          acc0 = fma(vec4<f32>(tile_a[kk * BM + lid.y + 0u]), w, acc0);
          if (RM > 1u) { acc1 = fma(vec4<f32>(tile_a[kk * BM + lid.y + 16u]), w, acc1); }
          if (RM > 2u) { acc2 = fma(vec4<f32>(tile_a[kk * BM + lid.y + 32u]), w, acc2); }
          if (RM > 3u) { acc3 = fma(vec4<f32>(tile_a[kk * BM + lid.y + 48u]), w, acc3); }
        }
      }
    }
  }
  finish_backward_tile(d, b0 + lid.y + 0u, j0 + lid.x * 4u, acc0);
  if (RM > 1u) { finish_backward_tile(d, b0 + lid.y + 16u, j0 + lid.x * 4u, acc1); }
  if (RM > 2u) { finish_backward_tile(d, b0 + lid.y + 32u, j0 + lid.x * 4u, acc2); }
  if (RM > 3u) { finish_backward_tile(d, b0 + lid.y + 48u, j0 + lid.x * 4u, acc3); }
}

fn load_dg(gbase: u32, b: u32, k: u32) -> f32 {
  let GH = G * p.hidden;
  if (b < p.batch && k < GH) { return dg_hidden((gbase + b) * GH + k); }
  return 0.0;
}

fn load_w_bwd(wbase: u32, k: u32, j: u32) -> f32 {
  let H = p.hidden;
  if (j < H && k < G * H) { return bw_hh[wbase + k * H + j]; }
  return 0.0;
}

fn finish_backward_tile(d: u32, b: u32, j: u32, acc: vec4<f32>) {
  if (b >= p.batch) { return; }
  for (var q = 0u; q < 4u; q++) {
    if (j + q < p.hidden) { finish_backward(d, b, j + q, acc[q]); }
  }
}
