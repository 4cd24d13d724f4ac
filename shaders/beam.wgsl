//! Beam search on the device: one step for B sentences of K beams each, one 64-lane workgroup
//! per sentence, fairseq's rules (sequence_generator.py):
//!   candidates  the 2K best (beam k, token v) of score[b, k] + logp[b*K + k, v], ordered by
//!               value descending, then by c = k*V + v ascending (K = 1: greedy's tie rule);
//!               one read of the K*V candidates (each lane keeps its best 2K), then 2K rounds
//!               of a workgroup arg-max over the lanes' lists
//!   finished    an end-of-sentence candidate among the first K is finished with the
//!               normalised score s / (t + 1)^alpha (t + 1 tokens, </s> included), while the
//!               sentence has fewer than K finished; the finished list stays sorted by
//!               normalised score, best first (stable)
//!   alive       the first K candidates that are not </s> become beams 0..K-1 (their tokens and
//!               parents go into the history; the state rows to gather go into reorder / rows)
//!   last step   the alive beams, in order, fill the sentence's remaining finished slots with
//!               s / (t + 1)^alpha (truncated at the length limit, as greedy decoding is)
//! A sentence with K finished hypotheses is done: later steps change none of its finished list.
//!
//! ints    tokens [T, B*K] | parents [T, B*K] | fin_len [B*K] | fin_beam [B*K] | fin_count [B]
//!         (a finished hypothesis is the history path of fin_len tokens ending at beam fin_beam
//!         of history row fin_len - 1, </s> not included)
//! floats  score [B*K] (cumulative log-probabilities of the alive beams) | fin_score [B*K]

struct Beam {
  batch: u32, k: u32, vocab: u32, layers: u32,
  t: u32, last: u32, eos: u32, steps: u32,
  alpha: f32,
}

const WG: u32 = 64u;
// The largest K: 2K candidates live in workgroup memory.
const MAX_K: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Beam;

@group(1) @binding(0) var<storage, read> logp: array<f32>;         // [B*K, V]
@group(1) @binding(1) var<storage, read_write> ints: array<u32>;
@group(1) @binding(2) var<storage, read_write> floats: array<f32>;
@group(1) @binding(3) var<storage, read_write> reorder: array<u32>; // [L, B*K] state rows
@group(1) @binding(4) var<storage, read_write> rows: array<u32>;    // [B*K] rows of one layer

var<workgroup> red_v: array<f32, 64>;
var<workgroup> red_i: array<u32, 64>;
var<workgroup> cand_v: array<f32, 64>;
var<workgroup> cand_i: array<u32, 64>;

const NONE: u32 = 0xffffffffu;
const NEG: f32 = -3.4028235e38;
// The score of a beam that does not exist (finite: adding a log-probability keeps it finite).
const DEAD: f32 = -1e30;

fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
  if (ia == NONE) { return false; }
  if (ib == NONE) { return true; }
  return va > vb || (va == vb && ia < ib);
}

fn candidate(b: u32, c: u32) -> f32 {
  let k = c / p.vocab;
  let row = b * p.k + k;
  return floats[row] + logp[row * p.vocab + (c - k * p.vocab)];
}

// Inserts a finished hypothesis into sentence b's sorted list of n < K entries.
fn finish(b: u32, n: u32, score: f32, len: u32, beam: u32) {
  let bk = p.batch * p.k;
  let base = b * p.k;
  let flen = 2u * p.steps * bk;
  let fbeam = flen + bk;
  var i = n;
  while (i > 0u && floats[bk + base + i - 1u] < score) {
    floats[bk + base + i] = floats[bk + base + i - 1u];
    ints[flen + base + i] = ints[flen + base + i - 1u];
    ints[fbeam + base + i] = ints[fbeam + base + i - 1u];
    i--;
  }
  floats[bk + base + i] = score;
  ints[flen + base + i] = len;
  ints[fbeam + base + i] = beam;
}

@compute @workgroup_size(64)
fn beam_step(@builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
  let b = wid.x + wid.y * nwg.x;   // uniform across the workgroup: barriers stay uniform
  if (b >= p.batch) { return; }
  let lane = lid.x;
  let n = p.k * p.vocab;
  let want = min(2u * p.k, n);
  // One pass over the candidates: each lane keeps its own best `want` in order (a scalar
  // copy of its worst one rejects most candidates with one comparison)...
  var lv: array<f32, 64>;
  var li: array<u32, 64>;
  var m = 0u;
  var worst_v = NEG;
  var worst_i = NONE;
  for (var c = lane; c < n; c += WG) {
    let v = candidate(b, c);
    if (m == want && !before(v, c, worst_v, worst_i)) { continue; }
    var j = want - 1u;
    if (m < want) { j = m; m++; }
    while (j > 0u && before(v, c, lv[j - 1u], li[j - 1u])) {
      lv[j] = lv[j - 1u];
      li[j] = li[j - 1u];
      j--;
    }
    lv[j] = v;
    li[j] = c;
    worst_v = lv[m - 1u];
    worst_i = li[m - 1u];
  }
  // ...then `want` rounds of a workgroup arg-max over the lanes' heads merge the lists (the
  // global best `want` are among the lanes' best `want`).
  var head = 0u;
  for (var r = 0u; r < want; r++) {
    if (head < m) {
      red_v[lane] = lv[head];
      red_i[lane] = li[head];
    } else {
      red_v[lane] = NEG;
      red_i[lane] = NONE;
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (lane < s && before(red_v[lane + s], red_i[lane + s], red_v[lane], red_i[lane])) {
        red_v[lane] = red_v[lane + s];
        red_i[lane] = red_i[lane + s];
      }
      workgroupBarrier();
    }
    let win = red_i[0];
    if (lane == 0u) {
      cand_v[r] = red_v[0];
      cand_i[r] = win;
    }
    if (head < m && li[head] == win) { head++; }
    workgroupBarrier();
  }
  if (lane != 0u) { return; }
  let bk = p.batch * p.k;
  let base = b * p.k;
  let tok = p.t * bk + base;
  let par = p.steps * bk + p.t * bk + base;
  let count = 2u * p.steps * bk + 2u * bk + b;
  var nfin = ints[count];
  var alive = 0u;
  var new_v: array<f32, MAX_K>;
  var new_k: array<u32, MAX_K>;
  for (var r = 0u; r < want; r++) {
    let c = cand_i[r];
    let s = cand_v[r];
    let k = c / p.vocab;
    let v = c - k * p.vocab;
    if (v == p.eos) {
      if (r < p.k && nfin < p.k && s > 0.5 * DEAD) {
        finish(b, nfin, s / pow(f32(p.t + 1u), p.alpha), p.t, k);
        nfin++;
      }
    } else if (alive < p.k && s > 0.5 * DEAD) {
      new_v[alive] = s;
      new_k[alive] = k;
      ints[tok + alive] = v;
      ints[par + alive] = k;
      alive++;
    }
  }
  // Fewer than K live candidates (a vocabulary under 2K): the rest are dead beams.
  for (var j = alive; j < p.k; j++) {
    new_v[j] = DEAD;
    new_k[j] = 0u;
    ints[tok + j] = p.eos;
    ints[par + j] = 0u;
  }
  for (var j = 0u; j < p.k; j++) {
    floats[base + j] = new_v[j];
    rows[base + j] = base + new_k[j];
    for (var l = 0u; l < p.layers; l++) {
      reorder[l * bk + base + j] = l * bk + base + new_k[j];
    }
  }
  if (p.last == 1u) {
    for (var j = 0u; j < p.k; j++) {
      if (nfin < p.k && new_v[j] > 0.5 * DEAD) {
        finish(b, nfin, new_v[j] / pow(f32(p.t + 1u), p.alpha), p.t + 1u, j);
        nfin++;
      }
    }
  }
  ints[count] = nfin;
}
