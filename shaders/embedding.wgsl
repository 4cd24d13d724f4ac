//! Embedding lookup and its deterministic gradient (no floating-point atomics).
//!   embedding_forward        out[n, e] = table[ids[n], e]                    (NaN row for an id >= V)
//!   embedding_keys_backward  perm[i] = i for i < P (P = N rounded up to a power of two)
//!   embedding_sort_backward  one compare-exchange stage (k, j) of a bitonic sort of perm by
//!                            (key(ids[pos]), pos), key = id, or 0xffffffff for the padding id,
//!                            ids >= V and the P - N filler positions
//!   embedding_segments_backward  starts[v] = first index of perm whose id is >= v, v in 0..=V
//!                            (one binary search per id)
//!   embedding_backward       dtable[v, e] (+)= sum of dy[pos, e] over the positions pos with
//!                            ids[pos] = v, in increasing pos order
//!
//! After the sort, perm[0..N) lists the positions grouped by id, ids ascending, positions
//! ascending within an id, the positions without a gradient at the end, so id v's positions are
//! perm[starts[v] .. starts[v+1]). Each invocation of embedding_backward owns one element (v, e)
//! of the gradient and sums that segment in order. Every element is written by exactly one
//! invocation in a fixed order, so two runs give identical bits, and a row no id selects gets 0.

struct Embed {
  n: u32,        // N = number of ids (T*B)
  dim: u32,      // E
  vocab: u32,    // V
  padding: u32,  // padding id, 0xffffffff for none
  p2: u32,       // P: N rounded up to a power of two
  k: u32,        // sort stage: size of the bitonic sequences being merged
  j: u32,        // sort stage: compare distance
  flags: u32,    // 1 = accumulate into dtable
}

const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Embed;

// embedding_forward bindings
@group(1) @binding(0) var<storage, read> table: array<f32>;        // [V, E]
@group(1) @binding(1) var<storage, read> ids: array<u32>;          // [N]
@group(1) @binding(2) var<storage, read_write> out: array<f32>;    // [N, E]

@compute @workgroup_size(256)
fn embedding_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n * p.dim) { return; }
  let id = ids[i / p.dim];
  var v = bitcast<f32>(0x7fc00000u);   // quiet NaN: an id the host could not validate
  if (id < p.vocab) { v = table[id * p.dim + i % p.dim]; }
  out[i] = v;
}

// Sort bindings (keys_backward, sort_backward); sort_backward reads ids.
@group(1) @binding(0) var<storage, read> sort_ids: array<u32>;          // [N]
@group(1) @binding(1) var<storage, read_write> perm: array<u32>;        // [P]

@compute @workgroup_size(256)
fn embedding_keys_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                           @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.p2) { perm[i] = i; }
}

// The id a position contributes its gradient to, or NONE.
fn key_of(pos: u32) -> u32 {
  if (pos >= p.n) { return NONE; }
  let id = sort_ids[pos];
  if (id >= p.vocab || id == p.padding) { return NONE; }
  return id;
}

// (key, pos) strictly before (key', pos'); positions are distinct, so the order is total.
fn before(a: u32, b: u32) -> bool {
  let ka = key_of(a);
  let kb = key_of(b);
  return ka < kb || (ka == kb && a < b);
}

@compute @workgroup_size(256)
fn embedding_sort_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                           @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= p.p2 / 2u) { return; }
  // The t-th pair (i, i + j) with bit j of i clear; ascending where bit k of i is clear.
  let i = 2u * p.j * (t / p.j) + t % p.j;
  let l = i + p.j;
  let a = perm[i];
  let b = perm[l];
  let ascending = (i & p.k) == 0u;
  if (before(b, a) == ascending) {
    perm[i] = b;
    perm[l] = a;
  }
}

// embedding_segments_backward bindings
@group(1) @binding(0) var<storage, read> seg_ids: array<u32>;           // [N]
@group(1) @binding(1) var<storage, read> sorted: array<u32>;            // [P], perm after the sort
@group(1) @binding(2) var<storage, read_write> starts: array<u32>;      // [V + 1]

fn seg_key(i: u32) -> u32 {
  let id = seg_ids[sorted[i]];
  if (id >= p.vocab || id == p.padding) { return NONE; }
  return id;
}

@compute @workgroup_size(256)
fn embedding_segments_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                               @builtin(num_workgroups) nwg: vec3<u32>) {
  let v = gid.x + gid.y * nwg.x * 256u;
  if (v > p.vocab) { return; }
  // First index i in [0, N) with seg_key(i) >= v (N if none).
  var lo = 0u;
  var hi = p.n;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (seg_key(mid) < v) { lo = mid + 1u; } else { hi = mid; }
  }
  starts[v] = lo;
}

// embedding_backward bindings
@group(1) @binding(0) var<storage, read> seg_starts: array<u32>;        // [V + 1]
@group(1) @binding(1) var<storage, read> order: array<u32>;             // [P], perm after the sort
@group(1) @binding(2) var<storage, read> dy: array<f32>;                // [N, E]
@group(1) @binding(3) var<storage, read_write> dtable: array<f32>;      // [V, E]

@compute @workgroup_size(256)
fn embedding_backward(@builtin(global_invocation_id) gid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.vocab * p.dim) { return; }
  let v = i / p.dim;
  let e = i % p.dim;
  // The padding id's segment is empty: it sorts with the ids that get no gradient.
  var acc = 0.0;
  for (var s = seg_starts[v]; s < seg_starts[v + 1u]; s++) { acc += dy[order[s] * p.dim + e]; }
  if ((p.flags & 1u) != 0u) { acc += dtable[i]; }
  dtable[i] = acc;
}
