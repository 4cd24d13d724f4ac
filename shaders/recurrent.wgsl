//! The recurrent drivers shared by every cell: one fused dispatch per timestep and layer, both
//! directions at once (workgroup z = direction). The host appends one cell file (lstm.wgsl,
//! gru.wgsl, elman.wgsl) that defines G (gates), S (values saved per unit for the backward),
//! SPLIT (whether input-side and hidden-side gate gradients differ), cell_forward and
//! cell_backward.
//!
//!   step_forward   h_{t-1} W_hh^T + b_hh, gate nonlinearities, state update, output row
//!   step_backward  dh = dgates_{t+1} W_hh + dh_carry + dy_t, then the cell's gate gradients
//!   wave_forward   one wavefront step of a unidirectional stack: layer l at step
//!                  w - l for every active l; layers above the first compute their input
//!                  product h^{l-1}_t W_ih^T here instead of in a GEMM (see "Wavefront")
//!   seq_forward    the whole wavefront of a stack in one single-workgroup dispatch (small
//!                  batch x hidden), a storage barrier between wavefront steps
//!   *_tiled        GPU versions: the products as tile GEMMs through workgroup memory
//!   *_gemv         GPU versions for B <= 4: lanes of a workgroup split each unit's products
//!   step_cell_split, step_backward_cell_split
//!                  the cell of a step whose recurrent product a split-K GEMM computed
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
  layers: u32,    // wavefront kernels: L
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

// Starts of rows b0..b0+3 of a [B, stride] block at a0; rows past the batch repeat the last one
// (their results are computed but never written).
fn row_starts(a0: u32, b0: u32, stride: u32) -> vec4<u32> {
  return vec4<u32>(a0 + clamp_b(b0) * stride, a0 + clamp_b(b0 + 1u) * stride,
                   a0 + clamp_b(b0 + 2u) * stride, a0 + clamp_b(b0 + 3u) * stride);
}

// ---------------------------------------------------------------------------------------------
// Forward step.

@group(1) @binding(0) var<storage, read> wts: array<u32>;           // W_hh, see `weight`
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
  let s = p.iter;
  let t = time_of(d, s);
  let acc = simple_product(state_at(d, t, s, 0u, 0u, false), d * H * G * H, j, b0);
  for (var q = 0u; q < 4u; q++) {
    let b = b0 + q;
    if (b >= B) { break; }
    var hg: array<f32, 4>;
    for (var g = 0u; g < G; g++) { hg[g] = acc[g][q]; }
    finish_forward(d, t, s, b, j, hg);
  }
}

// Split step (tiled variant, `Context::step_split` > 1): the recurrent product of step s was
// recorded as p.layers split-K partial sums [splits, D, B, G*H] (dense, f32 bits) into binding
// 0 by the GEMM; this sums them in split order (deterministic) and applies the cell: one
// invocation per unit j and row b = gid.y of direction d = gid.z.
@compute @workgroup_size(64)
fn step_cell_split(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let b = gid.y;
  let d = gid.z;
  let H = p.hidden;
  let B = p.batch;
  if (j >= H || b >= B || d >= p.dirs) { return; }
  let GH = G * H;
  let s = p.iter;
  var hg: array<f32, 4>;
  for (var g = 0u; g < G; g++) {
    var v = 0.0;
    for (var q = 0u; q < p.layers; q++) {
      v += bitcast<f32>(wts[((q * p.dirs + d) * B + b) * GH + g * H + j]);
    }
    hg[g] = v;
  }
  finish_forward(d, time_of(d, s), s, b, j, hg);
}

// Recurrent weights of the forward kernels, element i of binding 0: f32 bits, or with WF16 f16
// halves packed two per word (element i in word i/2, even i in the low half). Layouts:
// step_forward and seq_forward / wave_forward read W_hh transposed ([D, H, G*H]), the tiled
// kernels read it as stored ([D, G*H, H]); the wavefront kernels read a pack of every layer.
override WF16: bool = false;

fn weight(i: u32) -> f32 {
  if (WF16) {
    let v = unpack2x16float(wts[i >> 1u]);
    return select(v.x, v.y, (i & 1u) == 1u);
  }
  return bitcast<f32>(wts[i]);
}

// The product of unit j of every gate with four rows b0..b0+3 of a state: row b of the state
// starts at a0 + b*H, gate g's weight for (unit j, depth k) is weight(w0 + k*G*H + g*H + j)
// (transposed layout: neighbouring invocations read neighbouring words). Rows past the batch
// repeat the last one (their results are not written).
fn simple_product(a0: u32, w0: u32, j: u32, b0: u32) -> array<vec4<f32>, 4> {
  let H = p.hidden;
  let GH = G * H;
  let hb = row_starts(a0, b0, H);
  var acc: array<vec4<f32>, 4>;
  for (var g = 0u; g < 4u; g++) { acc[g] = vec4<f32>(0.0); }
  for (var k = 0u; k < H; k++) {
    let hv = vec4<f32>(hs[hb.x + k], hs[hb.y + k], hs[hb.z + k], hs[hb.w + k]);
    let wk = w0 + k * GH + j;
    for (var g = 0u; g < G; g++) {
      acc[g] = fma(vec4<f32>(weight(wk + g * H)), hv, acc[g]);
    }
  }
  return acc;
}

// The pointwise part of a forward step for unit j of row b, given the recurrent products
// hg[g] = (W_hh h_{t-1})[g*H + j] (without b_hh).
fn finish_forward(d: u32, t: u32, s: u32, b: u32, j: u32, hg_in: array<f32, 4>) {
  let H = p.hidden;
  let B = p.batch;
  let GH = G * H;
  let xrow = ((d * p.seq + t) * B + b) * GH;
  var xg: array<f32, 4>;
  var hg: array<f32, 4>;
  for (var g = 0u; g < G; g++) {
    xg[g] = xproj[xrow + g * H + j];
    var r = hg_in[g];
    if (has(F_BIAS)) { r += b_hh[d * GH + g * H + j]; }
    hg[g] = r;
  }
  var srow = NONE;
  if (has(F_TRAIN)) { srow = ((d * p.seq + t) * B + b) * S * H + j; }
  cell_tail(t, b, state_at(d, t, s, b, j, false), state_at(d, t, s, b, j, true),
            (t * B + b) * p.dirs * H + d * H + j, srow, xg, hg);
}

const NONE: u32 = 0xffffffffu;

// The cell at time t for row b from the input-side (xg, incl. b_ih) and hidden-side (hg, incl.
// b_hh) pre-activations: state hs[ip] (cs[ip]) -> hs[io] (cs[io]), output y[yi] and saved values
// saved[srow + e*H] unless those are NONE. Past the row's length the state is carried and the
// output is zero.
fn cell_tail(t: u32, b: u32, ip: u32, io: u32, yi: u32, srow: u32, xg: array<f32, 4>,
             hg: array<f32, 4>) {
  let h_prev = hs[ip];
  var c_prev = 0.0;
  if (G == 4u) { c_prev = cs[ip]; }
  if (is_valid(t, b)) {
    let o = cell_forward(xg, hg, h_prev, c_prev);
    hs[io] = o.h;
    if (G == 4u) { cs[io] = o.c; }
    if (yi != NONE) { y[yi] = o.h; }
    if (srow != NONE) {
      for (var e = 0u; e < S; e++) { saved[srow + e * p.hidden] = o.save[e]; }
    }
  } else {
    hs[io] = h_prev;
    if (G == 4u) { cs[io] = c_prev; }
    if (yi != NONE) { y[yi] = 0.0; }
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
    let base = row_starts((d * T + tf) * B * GH, b0, GH);
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

// Split step, backward (`Context::step_split` > 1): the recurrent gradient of iteration k was
// recorded as p.layers split-K partial sums [splits, D, B, H] into binding 0 (none for k = 0,
// which has no later step); summed in split order, then the pointwise part.
@compute @workgroup_size(64)
fn step_backward_cell_split(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  let b = gid.y;
  let d = gid.z;
  let H = p.hidden;
  let B = p.batch;
  if (j >= H || b >= B || d >= p.dirs) { return; }
  var rec = 0.0;
  for (var q = 0u; q < p.layers; q++) { rec += bw_hh[((q * p.dirs + d) * B + b) * H + j]; }
  finish_backward(d, b, j, rec);
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
  let d = wid.z;
  let s = p.iter;
  let t = time_of(d, s);
  let b0 = wid.y * 16u * RM;
  let j0 = wid.x * 16u * UT;
  let acc = tiled_product(state_at(d, t, s, 0u, 0u, false), d * G * H * H, b0, j0, lid);
  finish_forward_tile(d, t, s, b0 + lid.y + 0u, j0 + lid.x * UT, acc.r0);
  if (RM > 1u) { finish_forward_tile(d, t, s, b0 + lid.y + 16u, j0 + lid.x * UT, acc.r1); }
  if (RM > 2u) { finish_forward_tile(d, t, s, b0 + lid.y + 32u, j0 + lid.x * UT, acc.r2); }
  if (RM > 3u) { finish_forward_tile(d, t, s, b0 + lid.y + 48u, j0 + lid.x * UT, acc.r3); }
}

// Accumulators of one invocation: rows ty, ty+16, ty+32, ty+48 of its tile.
struct Acc { r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32> }

// The forward product of a tile, rows b0.. of a state (row b at a0 + b*H) times the columns
// (unit, gate) from j0 of a weight block stored [G*H, H] from w0. Called in uniform control flow.
fn tiled_product(a0: u32, w0: u32, b0: u32, j0: u32, lid: vec3<u32>) -> Acc {
  let H = p.hidden;
  let BM = 16u * RM;
  let tid = lid.y * 16u + lid.x;
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
      pa0 = load_h(a0, b0 + (tid + 0u) / BK, k0 + (tid + 0u) % BK);
      if (RM > 1u) { pa1 = load_h(a0, b0 + (tid + 256u) / BK, k0 + (tid + 256u) % BK); }
      if (RM > 2u) { pa2 = load_h(a0, b0 + (tid + 512u) / BK, k0 + (tid + 512u) % BK); }
      if (RM > 3u) { pa3 = load_h(a0, b0 + (tid + 768u) / BK, k0 + (tid + 768u) % BK); }
      pw0 = load_w_fwd(w0, j0, (tid + 0u) / BK, k0 + (tid + 0u) % BK);
      pw1 = load_w_fwd(w0, j0, (tid + 256u) / BK, k0 + (tid + 256u) % BK);
      pw2 = load_w_fwd(w0, j0, (tid + 512u) / BK, k0 + (tid + 512u) % BK);
      pw3 = load_w_fwd(w0, j0, (tid + 768u) / BK, k0 + (tid + 768u) % BK);
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
  return Acc(acc0, acc1, acc2, acc3);
}

fn load_h(a0: u32, b: u32, k: u32) -> f32 {
  if (b < p.batch && k < p.hidden) { return hs[a0 + b * p.hidden + k]; }
  return 0.0;
}

fn load_w_fwd(w0: u32, j0: u32, col: u32, k: u32) -> f32 {
  let H = p.hidden;
  let j = j0 + fwd_col_unit(col);
  if (fwd_col_ok(col) && j < H && k < H) { return weight(w0 + (fwd_col_gate(col) * H + j) * H + k); }
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

// ---------------------------------------------------------------------------------------------
// Wavefront (unidirectional stacks). Wavefront step w runs layer l at its step s = w - l for
// every l with 0 <= s < T, so a stack of L layers takes T + L - 1 steps instead of L*T. Layer 0
// reads its input projection from xproj ([T, B, G*H], one GEMM, incl. b_ih); layer l > 0
// computes it here from layer l-1's state after time s, which *is* that layer's output row (at
// padded steps both layers carry their state, so the value is never used).
//
// States hs / cs: inference [L, 2, B, H], layer l's state before step s in slot s%2 and after
// it in (s+1)%2; layer l-1 is one step ahead, so it reads slot (s+1)%2 of its own while layer l
// reads that slot of layer l-1: no conflict. Training (F_TRAIN; not seq_forward): every state,
// [L, T+1, B, H] (slot t before time t), and the saved values [L, T, B, S*H].
// Weights, one buffer at binding 0 ("pack"), [L, 2, N] with N = G*H*H rounded up to even: W_hh
// of layer l at (2l)*N, W_ih at (2l+1)*N (unused for l = 0); stored [G*H, H] for the tiled and
// gemv kernels, transposed [H, G*H] for the others. Biases at binding 1, [L, 2, G*H]: b_ih at
// (2l)*G*H (unused for l = 0), b_hh at (2l+1)*G*H. Only the top layer writes y ([T, B, H]).

fn wave_lo(w: u32) -> u32 { return select(0u, w + 1u - p.seq, w >= p.seq); }
// Start of layer l's state slot (before step s: slot s; after it: s + 1).
fn wave_state(l: u32, slot: u32) -> u32 {
  if (has(F_TRAIN)) { return (l * (p.seq + 1u) + slot) * p.batch * p.hidden; }
  return (l * 2u + (slot & 1u)) * p.batch * p.hidden;
}
// Start of layer l's W_hh (or W_ih) block in the pack; blocks have an even size so that f16
// pairs never straddle two.
fn wave_w(l: u32, input_side: bool) -> u32 {
  let n = G * p.hidden * p.hidden;
  return (2u * l + select(0u, 1u, input_side)) * (n + (n & 1u));
}

// The epilogue for unit j of row b of layer l at step s, from its recurrent product ha[g] and
// (l > 0) input product xa[g].
fn wave_finish(l: u32, s: u32, b: u32, j: u32, xa: array<f32, 4>, ha: array<f32, 4>) {
  let H = p.hidden;
  let B = p.batch;
  let GH = G * H;
  var xg: array<f32, 4>;
  var hg: array<f32, 4>;
  for (var g = 0u; g < G; g++) {
    var x = xa[g];
    var h = ha[g];
    if (l == 0u) { x = xproj[(s * B + b) * GH + g * H + j]; }
    else if (has(F_BIAS)) { x += b_hh[2u * l * GH + g * H + j]; }
    if (has(F_BIAS)) { h += b_hh[(2u * l + 1u) * GH + g * H + j]; }
    xg[g] = x;
    hg[g] = h;
  }
  var yi = NONE;
  if (l + 1u == p.layers) { yi = (s * B + b) * H + j; }
  var srow = NONE;
  if (has(F_TRAIN)) { srow = ((l * p.seq + s) * B + b) * S * H + j; }
  let r = b * H + j;
  cell_tail(s, b, wave_state(l, s) + r, wave_state(l, s + 1u) + r, yi, srow, xg, hg);
}

// Layer l at step s for unit j and rows b0..b0+3 (transposed weights).
fn wave_item(l: u32, s: u32, j: u32, b0: u32) {
  let ha = simple_product(wave_state(l, s), wave_w(l, false), j, b0);
  var xa: array<vec4<f32>, 4>;
  if (l > 0u) { xa = simple_product(wave_state(l - 1u, s + 1u), wave_w(l, true), j, b0); }
  for (var q = 0u; q < 4u; q++) {
    let b = b0 + q;
    if (b >= p.batch) { break; }
    var x: array<f32, 4>;
    var h: array<f32, 4>;
    for (var g = 0u; g < G; g++) { x[g] = xa[g][q]; h[g] = ha[g][q]; }
    wave_finish(l, s, b, j, x, h);
  }
}

// Wavefront step w = p.iter; workgroup z = active layer (from wave_lo).
@compute @workgroup_size(64)
fn wave_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let l = wave_lo(p.iter) + gid.z;
  if (gid.x >= p.hidden || gid.y * 4u >= p.batch || l >= p.layers || l > p.iter) { return; }
  wave_item(l, p.iter - l, gid.x, gid.y * 4u);
}

// The whole wavefront in one workgroup: for small batch x hidden, T + L - 1 dispatches cost
// more than the work. A storage barrier orders each wavefront step's state writes before the
// next step's reads (one workgroup: no other synchronisation needed).
@compute @workgroup_size(256)
fn seq_forward(@builtin(local_invocation_index) li: u32) {
  let H = p.hidden;
  let L = p.layers;
  let nb = (p.batch + 3u) / 4u;
  for (var w = 0u; w < p.seq + L - 1u; w++) {
    let lo = wave_lo(w);
    let n = (min(L - 1u, w) + 1u - lo) * nb * H;
    for (var i = li; i < n; i += 256u) {
      let r = i / H;
      let l = lo + r / nb;
      wave_item(l, w - l, i % H, (r % nb) * 4u);
    }
    storageBarrier();
  }
}

// Tiled wavefront step: the recurrent and input products as two tile GEMMs.
@compute @workgroup_size(16, 16)
fn wave_forward_tiled(@builtin(local_invocation_id) lid: vec3<u32>,
                      @builtin(workgroup_id) wid: vec3<u32>) {
  let l = wave_lo(p.iter) + wid.z;   // the grid has one z per active layer
  if (l >= p.layers) { return; }      // (uniform per workgroup)
  let s = p.iter - l;
  let b0 = wid.y * 16u * RM;
  let j0 = wid.x * 16u * UT;
  let h = tiled_product(wave_state(l, s), wave_w(l, false), b0, j0, lid);
  var x = Acc(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  if (l > 0u) { x = tiled_product(wave_state(l - 1u, s + 1u), wave_w(l, true), b0, j0, lid); }
  wave_finish_tile(l, s, b0 + lid.y + 0u, j0 + lid.x * UT, x.r0, h.r0);
  if (RM > 1u) { wave_finish_tile(l, s, b0 + lid.y + 16u, j0 + lid.x * UT, x.r1, h.r1); }
  if (RM > 2u) { wave_finish_tile(l, s, b0 + lid.y + 32u, j0 + lid.x * UT, x.r2, h.r2); }
  if (RM > 3u) { wave_finish_tile(l, s, b0 + lid.y + 48u, j0 + lid.x * UT, x.r3, h.r3); }
}

fn wave_finish_tile(l: u32, s: u32, b: u32, j: u32, xa: vec4<f32>, ha: vec4<f32>) {
  if (b >= p.batch) { return; }
  for (var q = 0u; q < UT; q++) {
    if (j + q < p.hidden) {
      var x: array<f32, 4>;
      var h: array<f32, 4>;
      for (var g = 0u; g < G; g++) { x[g] = xa[q * G + g]; h[g] = ha[q * G + g]; }
      wave_finish(l, s, b, j + q, x, h);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Narrow batches (B <= 4) on GPUs: the recurrent product is a matrix-vector product, and a tile
// of 16+ rows would leave most of its lanes idle. One 64-lane workgroup per hidden unit j (and
// direction, or layer on the wavefront): lane i takes k = i, i+64, ... of every gate's row of W
// (as stored, so neighbouring lanes read neighbouring words) for all rows at once, and the 64
// partial sums are combined in workgroup memory in a fixed tree order. Lane b < B finishes row
// b. The grid has H workgroups per direction: enough to fill a GPU where the tiled kernel had
// H/16.

const LANES: u32 = 64u;
var<workgroup> red: array<vec4<f32>, 256>;   // [LANES, 4 gates]: batch rows in the components

// The partial products of one lane: gate g in field g, batch row q in component q.
fn gemv_lane(a0: u32, w0: u32, j: u32, lane: u32) -> Acc {
  let H = p.hidden;
  let hb = row_starts(a0, 0u, H);
  var s0 = vec4<f32>(0.0);
  var s1 = vec4<f32>(0.0);
  var s2 = vec4<f32>(0.0);
  var s3 = vec4<f32>(0.0);
  for (var k = lane; k < H; k += LANES) {
    let hv = vec4<f32>(hs[hb.x + k], hs[hb.y + k], hs[hb.z + k], hs[hb.w + k]);
    s0 = fma(vec4<f32>(weight(w0 + j * H + k)), hv, s0);
    if (G > 1u) { s1 = fma(vec4<f32>(weight(w0 + (H + j) * H + k)), hv, s1); }
    if (G > 2u) { s2 = fma(vec4<f32>(weight(w0 + (2u * H + j) * H + k)), hv, s2); }
    if (G > 3u) { s3 = fma(vec4<f32>(weight(w0 + (3u * H + j) * H + k)), hv, s3); }
  }
  return Acc(s0, s1, s2, s3);
}

// Sum of `a` over the workgroup's lanes, returned to every lane. Called in uniform control flow.
fn lane_sum(a: Acc, lane: u32) -> Acc {
  workgroupBarrier();   // earlier readers of `red` are done
  red[lane * 4u] = a.r0;
  red[lane * 4u + 1u] = a.r1;
  red[lane * 4u + 2u] = a.r2;
  red[lane * 4u + 3u] = a.r3;
  workgroupBarrier();
  for (var st = LANES / 2u; st > 0u; st >>= 1u) {
    if (lane < st) {
      for (var g = 0u; g < 4u; g++) { red[lane * 4u + g] += red[(lane + st) * 4u + g]; }
    }
    workgroupBarrier();
  }
  return Acc(red[0], red[1], red[2], red[3]);
}

// Gate g's value for batch row q of a lane-summed product.
fn gate_row(a: Acc, q: u32) -> array<f32, 4> {
  return array<f32, 4>(a.r0[q], a.r1[q], a.r2[q], a.r3[q]);
}

// One timestep of one layer for B <= 4: workgroup (j, 0, d).
@compute @workgroup_size(64)
fn step_forward_gemv(@builtin(local_invocation_index) lane: u32,
                     @builtin(workgroup_id) wid: vec3<u32>) {
  let H = p.hidden;
  let d = wid.z;
  let s = p.iter;
  let t = time_of(d, s);
  let j = wid.x;
  let h = lane_sum(gemv_lane(state_at(d, t, s, 0u, 0u, false), d * G * H * H, j, lane), lane);
  if (lane < p.batch) { finish_forward(d, t, s, lane, j, gate_row(h, lane)); }
}

// One wavefront step for B <= 4: workgroup (j, 0, active layer).
@compute @workgroup_size(64)
fn wave_forward_gemv(@builtin(local_invocation_index) lane: u32,
                     @builtin(workgroup_id) wid: vec3<u32>) {
  let l = wave_lo(p.iter) + wid.z;
  if (l >= p.layers) { return; }      // (uniform per workgroup)
  let s = p.iter - l;
  let j = wid.x;
  let h = lane_sum(gemv_lane(wave_state(l, s), wave_w(l, false), j, lane), lane);
  var x = Acc(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  if (l > 0u) {
    x = lane_sum(gemv_lane(wave_state(l - 1u, s + 1u), wave_w(l, true), j, lane), lane);
  }
  if (lane < p.batch) { wave_finish(l, s, lane, j, gate_row(x, lane), gate_row(h, lane)); }
}

// Backward for B <= 4: dh[j] = sum over gate rows r of dg[r] W_hh[r, j]. A 256-lane workgroup
// owns BU = 8 units; lane (u, q) = (li % 8, li / 8) sums rows r = q, q + 32, ... (neighbouring
// lanes read neighbouring words of a row of W as stored), the 32 slices are combined in a fixed
// tree order, and lane (u, b) finishes row b < B. H/8 workgroups per direction, where the tiled
// backward had H/64 with 15/16 of each tile's rows idle.
const BU: u32 = 8u;
const BR: u32 = 32u;
var<workgroup> bred: array<vec4<f32>, 256>;   // [BR slices, BU units], batch rows in components

@compute @workgroup_size(256)
fn step_backward_gemv(@builtin(local_invocation_index) li: u32,
                      @builtin(workgroup_id) wid: vec3<u32>) {
  let H = p.hidden;
  let T = p.seq;
  let GH = G * H;
  let d = wid.z;
  let u = li % BU;
  let q = li / BU;
  let j = wid.x * BU + u;
  let sf = T - p.iter;   // the step whose gate gradients feed dh (none when sf == T)
  var acc = vec4<f32>(0.0);
  if (sf < T && j < H) {
    let gbase = (d * T + time_of(d, sf)) * p.batch;
    let rows = row_starts(gbase * GH, 0u, GH);
    let wbase = d * GH * H + j;
    for (var r = q; r < GH; r += BR) {
      let dg = vec4<f32>(dg_hidden(rows.x + r), dg_hidden(rows.y + r), dg_hidden(rows.z + r),
                         dg_hidden(rows.w + r));
      acc = fma(vec4<f32>(bw_hh[wbase + r * H]), dg, acc);
    }
  }
  bred[li] = acc;
  workgroupBarrier();
  for (var st = BR / 2u; st > 0u; st >>= 1u) {
    if (q < st) { bred[li] += bred[li + st * BU]; }
    workgroupBarrier();
  }
  if (q < p.batch && j < H) { finish_backward(d, q, j, bred[u][q]); }
}
