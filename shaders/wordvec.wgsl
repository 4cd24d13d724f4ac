//! Word vectors: the skip-gram objective with negative sampling (word2vec's SGNS) fused with its
//! coefficients, the two gradient kernels that feed the embedding scatter-add, a fixed-order
//! loss sum, and the cross-domain similarity local scaling (CSLS) of cross-lingual retrieval.
//!
//! A batch is N (center, context) pairs, each with K negatives: slot 0 of a pair's `slots` =
//! K + 1 context ids is the true context (label 1), slots 1..=K the negatives (label 0).
//!   sgns_forward       per pair n: s_j = win[c_n] . wout[o_nj];
//!                      coef[n, j] = (sigmoid(s_j) - label_j) * scale   (d loss / d s_j);
//!                      loss[n] = softplus(-s_0) + sum_{j>=1} softplus(s_j)   (= -log sig(s_0)
//!                      - sum log sig(-s_j)), softplus(x) = max(x, 0) + log(1 + exp(-|x|))
//!   sgns_center_grad   dcenter[n, d] = sum_j coef[n, j] wout[o_nj, d]              [N, D]
//!   sgns_context_grad  dcontext[n*slots + j, d] = coef[n, j] win[c_n, d]        [N*slots, D]
//!   sgns_loss_sum      total[0] (+)= scale * sum_n loss[n], one workgroup, fixed tree order
//!   csls_scores        out[i, j] = 2 sim[i, j] - rs[i] - rt[j]                     [M, C]
//!                      with keep < 1, an entry survives with probability keep (stochastic
//!                      dictionary induction): u(seed, row0 + i, j) < keep, else -3e38, u the
//!                      top 24 bits of mix(seed ^ mix((row0 + i) * 0x9e3779b9 + j)) / 2^24
//!   row_mean           r[i] = mean_t vals[i, t] over the k columns                  [M]
//! Ids are validated on the host; an id >= V the host could not validate never indexes a table:
//! its row reads as NaN (as in embedding_forward), so the pair's loss, the coefficient of its
//! slot (of every slot for a center) and the gradient rows it reaches are NaN. Every sum runs
//! in a fixed order: results are deterministic.

struct WordVec {
  n: u32,       // pairs N (csls, row_mean: rows M)
  slots: u32,   // K + 1 (csls: columns C; row_mean: k)
  dim: u32,     // D
  flags: u32,   // sgns_loss_sum: 1 = accumulate into total; csls_scores: the mask's seed
  scale: f32,   // the loss's scale (1 / N for a mean); csls_scores: the keep probability
  row0: u32,    // csls_scores: the first row's index in the whole matrix
  vocab: u32,   // V (sgns_*): ids >= V read NaN rows
  pad: u32,
}

@group(0) @binding(0) var<uniform> p: WordVec;

const NAN_BITS: u32 = 0x7fc00000u;   // quiet NaN: the row of an id the host could not validate

fn softplus(x: f32) -> f32 {
  return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

// sgns_forward bindings
@group(1) @binding(0) var<storage, read> f_win: array<f32>;          // [V, D]
@group(1) @binding(1) var<storage, read> f_wout: array<f32>;         // [V, D]
@group(1) @binding(2) var<storage, read> f_centers: array<u32>;      // [N]
@group(1) @binding(3) var<storage, read> f_contexts: array<u32>;     // [N, slots]
@group(1) @binding(4) var<storage, read_write> f_coef: array<f32>;   // [N, slots]
@group(1) @binding(5) var<storage, read_write> f_loss: array<f32>;   // [N]

@compute @workgroup_size(64)
fn sgns_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * 64u;
  if (n >= p.n) { return; }
  let cid = f_centers[n];
  let c = cid * p.dim;   // used only when cid < V
  var loss = 0.0;
  var bad = cid >= p.vocab;
  for (var j = 0u; j < p.slots; j++) {
    let oid = f_contexts[n * p.slots + j];
    // An id >= V: NaN coefficient and loss, explicitly (no table read, no reliance on NaN
    // propagating through the arithmetic).
    if (cid >= p.vocab || oid >= p.vocab) {
      bad = true;
      f_coef[n * p.slots + j] = bitcast<f32>(NAN_BITS);
      continue;
    }
    let o = oid * p.dim;
    var s = 0.0;
    for (var d = 0u; d < p.dim; d++) { s += f_win[c + d] * f_wout[o + d]; }
    let sig = 1.0 / (1.0 + exp(-s));
    var label = 0.0;
    if (j == 0u) { label = 1.0; loss += softplus(-s); } else { loss += softplus(s); }
    f_coef[n * p.slots + j] = (sig - label) * p.scale;
  }
  if (bad) { loss = bitcast<f32>(NAN_BITS); }
  f_loss[n] = loss;
}

// sgns_center_grad bindings
@group(1) @binding(0) var<storage, read> c_wout: array<f32>;         // [V, D]
@group(1) @binding(1) var<storage, read> c_contexts: array<u32>;     // [N, slots]
@group(1) @binding(2) var<storage, read> c_coef: array<f32>;         // [N, slots]
@group(1) @binding(3) var<storage, read_write> c_out: array<f32>;    // [N, D]

@compute @workgroup_size(256)
fn sgns_center_grad(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n * p.dim) { return; }
  let n = i / p.dim;
  let d = i % p.dim;
  var acc = 0.0;
  var bad = false;
  for (var j = 0u; j < p.slots; j++) {
    let oid = c_contexts[n * p.slots + j];
    if (oid >= p.vocab) { bad = true; continue; }   // a NaN row: never read
    acc += c_coef[n * p.slots + j] * c_wout[oid * p.dim + d];
  }
  if (bad) { acc = bitcast<f32>(NAN_BITS); }
  c_out[i] = acc;
}

// sgns_context_grad bindings
@group(1) @binding(0) var<storage, read> x_win: array<f32>;          // [V, D]
@group(1) @binding(1) var<storage, read> x_centers: array<u32>;      // [N]
@group(1) @binding(2) var<storage, read> x_coef: array<f32>;         // [N, slots]
@group(1) @binding(3) var<storage, read_write> x_out: array<f32>;    // [N*slots, D]

@compute @workgroup_size(256)
fn sgns_context_grad(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n * p.slots * p.dim) { return; }
  let row = i / p.dim;
  let d = i % p.dim;
  let cid = x_centers[row / p.slots];
  var v = bitcast<f32>(NAN_BITS);   // a NaN row for an id >= V: never read
  if (cid < p.vocab) { v = x_coef[row] * x_win[cid * p.dim + d]; }
  x_out[i] = v;
}

// sgns_loss_sum bindings
@group(1) @binding(0) var<storage, read> s_loss: array<f32>;          // [N]
@group(1) @binding(1) var<storage, read_write> s_total: array<f32>;   // [1]

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn sgns_loss_sum(@builtin(local_invocation_id) lid: vec3<u32>) {
  let lane = lid.x;
  var acc = 0.0;
  for (var n = lane; n < p.n; n += 256u) { acc += s_loss[n]; }
  red[lane] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (lane < s) { red[lane] += red[lane + s]; }
    workgroupBarrier();
  }
  if (lane == 0u) {
    var t = red[0] * p.scale;
    if (p.flags == 1u) { t += s_total[0]; }
    s_total[0] = t;
  }
}

// csls_scores bindings
@group(1) @binding(0) var<storage, read> k_sim: array<f32>;          // [M, C]
@group(1) @binding(1) var<storage, read> k_rs: array<f32>;           // [M]
@group(1) @binding(2) var<storage, read> k_rt: array<f32>;           // [C]
@group(1) @binding(3) var<storage, read_write> k_out: array<f32>;    // [M, C]

// A 32-bit integer hash (Wellons' lowbias32).
fn mix(x: u32) -> u32 {
  var h = x;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

@compute @workgroup_size(256)
fn csls_scores(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n * p.slots) { return; }
  let row = i / p.slots;
  let col = i % p.slots;
  var v = 2.0 * k_sim[i] - k_rs[row] - k_rt[col];
  if (p.scale < 1.0) {
    let u = f32(mix(p.flags ^ mix((p.row0 + row) * 0x9e3779b9u + col)) >> 8u) * (1.0 / 16777216.0);
    if (u >= p.scale) { v = -3.0e38; }
  }
  k_out[i] = v;
}

// row_mean bindings
@group(1) @binding(0) var<storage, read> m_vals: array<f32>;         // [M, k]
@group(1) @binding(1) var<storage, read_write> m_out: array<f32>;    // [M]

@compute @workgroup_size(256)
fn row_mean(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  var acc = 0.0;
  for (var t = 0u; t < p.slots; t++) { acc += m_vals[i * p.slots + t]; }
  m_out[i] = acc / f32(p.slots);
}
