//! Strided, batched GEMM: C[z] = alpha * sum_i A[z,i] B[z,i] (+ bias[z]) (+ C[z] when accumulating).
//!
//! Element (m, k) of A is at a_off + z*a_zs + i*a_ss + m*a_rs + k*a_cs (likewise B with (k, n)),
//! so one kernel serves X W^T (input projection), dG^T X (weight gradients) and dG W (input
//! gradients) without transposing anything in memory. The sum over i (nsum terms) adds the two
//! directions' contributions to one input gradient in a single dispatch; i runs in order, so
//! results are deterministic.
//!
//! Two implementations, chosen per adapter by the host:
//!   matmul_tiled     64x64 tile per 16x16 workgroup, K staged through workgroup memory (GPUs)
//!   matmul_regblock  no workgroup memory or barriers, a 4x4 block per invocation (CPU drivers)

struct Gemm {
  m: u32, n: u32, k: u32, nsum: u32,
  a_off: u32, a_rs: u32, a_cs: u32, a_zs: u32,
  b_off: u32, b_rs: u32, b_cs: u32, b_zs: u32,
  c_off: u32, c_rs: u32, c_zs: u32, a_ss: u32,
  b_ss: u32, bias_off: u32, bias_zs: u32, flags: u32,   // flags: 1 = add bias[n], 2 = accumulate into C
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Gemm;
@group(1) @binding(0) var<storage, read> a: array<f32>;        // A, strided
@group(1) @binding(1) var<storage, read> b: array<f32>;        // B, strided
@group(1) @binding(2) var<storage, read> bias: array<f32>;     // [Z, N] at bias_off (if flags & 1)
@group(1) @binding(3) var<storage, read_write> c: array<f32>;  // C [Z, M, N], rows c_rs apart

fn store(z: u32, m: u32, n: u32, v: f32) {
  let idx = p.c_off + z * p.c_zs + m * p.c_rs + n;
  var r = p.alpha * v;
  if ((p.flags & 1u) != 0u) { r += bias[p.bias_off + z * p.bias_zs + n]; }
  if ((p.flags & 2u) != 0u) { r += c[idx]; }
  c[idx] = r;
}

// ---------------------------------------------------------------------------------------------
// Workgroup-memory tiled version.

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> ta: array<f32, 1024>;   // [TK, TM]
var<workgroup> tb: array<f32, 1024>;   // [TK, TN]

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(local_invocation_id) lid: vec3<u32>,
                @builtin(workgroup_id) wid: vec3<u32>) {
  let z = wid.z;
  let m0 = wid.y * TM;
  let n0 = wid.x * TN;
  let tid = lid.y * 16u + lid.x;
  var acc: array<array<f32, 4>, 4>;
  for (var r = 0u; r < 4u; r++) { for (var q = 0u; q < 4u; q++) { acc[r][q] = 0.0; } }
  let a_k_fast = p.a_cs == 1u;
  let b_n_fast = p.b_cs == 1u;
  for (var i = 0u; i < p.nsum; i++) {
    let abase = p.a_off + z * p.a_zs + i * p.a_ss;
    let bbase = p.b_off + z * p.b_zs + i * p.b_ss;
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
      for (var e = 0u; e < 4u; e++) {
        let l = tid + e * 256u;
        // Walk memory in the contiguous direction so neighbouring invocations load neighbours.
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % TM; ka = l / TM; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < p.k) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ta[ka * TM + mm] = va;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % TN; kb = l / TN; } else { kb = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kb;
        var vb = 0.0;
        if (gn < p.n && gk2 < p.k) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        tb[kb * TN + nn] = vb;
      }
      workgroupBarrier();
      for (var kk = 0u; kk < TK; kk++) {
        var av: array<f32, 4>;
        var bv: array<f32, 4>;
        for (var r = 0u; r < 4u; r++) { av[r] = ta[kk * TM + lid.y + 16u * r]; }
        for (var q = 0u; q < 4u; q++) { bv[q] = tb[kk * TN + lid.x + 16u * q]; }
        for (var r = 0u; r < 4u; r++) {
          for (var q = 0u; q < 4u; q++) { acc[r][q] = fma(av[r], bv[q], acc[r][q]); }
        }
      }
      workgroupBarrier();
    }
  }
  for (var r = 0u; r < 4u; r++) {
    let gm = m0 + lid.y + 16u * r;
    for (var q = 0u; q < 4u; q++) {
      let gn = n0 + lid.x + 16u * q;
      if (gm < p.m && gn < p.n) { store(z, gm, gn, acc[r][q]); }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Register-blocked version: 8x8 invocations, each a 4x4 block read straight from memory.

@compute @workgroup_size(8, 8)
fn matmul_regblock(@builtin(global_invocation_id) gid: vec3<u32>) {
  let z = gid.z;
  let m0 = gid.y * 4u;
  let n0 = gid.x * 4u;
  if (m0 >= p.m || n0 >= p.n) { return; }
  // Clamp the rows/columns past the edge to the last valid one; their results are not stored.
  let mr = vec4<u32>(min(m0, p.m - 1u), min(m0 + 1u, p.m - 1u), min(m0 + 2u, p.m - 1u), min(m0 + 3u, p.m - 1u));
  let nc = vec4<u32>(min(n0, p.n - 1u), min(n0 + 1u, p.n - 1u), min(n0 + 2u, p.n - 1u), min(n0 + 3u, p.n - 1u));
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var i = 0u; i < p.nsum; i++) {
    let ar = p.a_off + z * p.a_zs + i * p.a_ss + mr * p.a_rs;
    let bc = p.b_off + z * p.b_zs + i * p.b_ss + nc * p.b_cs;
    for (var k = 0u; k < p.k; k++) {
      let ak = ar + k * p.a_cs;
      let bk = bc + k * p.b_rs;
      let av = vec4<f32>(a[ak.x], a[ak.y], a[ak.z], a[ak.w]);
      let bv = vec4<f32>(b[bk.x], b[bk.y], b[bk.z], b[bk.w]);
      acc0 = fma(vec4<f32>(av.x), bv, acc0);
      acc1 = fma(vec4<f32>(av.y), bv, acc1);
      acc2 = fma(vec4<f32>(av.z), bv, acc2);
      acc3 = fma(vec4<f32>(av.w), bv, acc3);
    }
  }
  let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var r = 0u; r < 4u; r++) {
    let gm = m0 + r;
    if (gm >= p.m) { break; }
    for (var q = 0u; q < 4u; q++) {
      let gn = n0 + q;
      if (gn < p.n) { store(z, gm, gn, rows[r][q]); }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Large tiles for large GPU problems: a 128x128 tile per 16x16 workgroup, an 8x8 block per
// invocation (rows ty*4 + 64*i + r, columns tx*4 + 64*j + q: neighbouring invocations read
// neighbouring vec4s of workgroup memory), K staged in slices of 16 with the next slice loaded
// into registers while the current one is multiplied.

const LT: u32 = 128u;
var<workgroup> la: array<vec4<f32>, 512>;   // [TK, 128 / 4] (A^T slice)
var<workgroup> lb: array<vec4<f32>, 512>;   // [TK, 128 / 4]

@compute @workgroup_size(16, 16)
fn matmul_large(@builtin(local_invocation_id) lid: vec3<u32>,
                @builtin(workgroup_id) wid: vec3<u32>) {
  let z = wid.z;
  let m0 = wid.y * LT;
  let n0 = wid.x * LT;
  let tid = lid.y * 16u + lid.x;
  var acc: array<array<f32, 8>, 8>;
  for (var r = 0u; r < 8u; r++) { for (var q = 0u; q < 8u; q++) { acc[r][q] = 0.0; } }
  let a_k_fast = p.a_cs == 1u;
  let b_n_fast = p.b_cs == 1u;
  var ra: array<f32, 8>;
  var rb: array<f32, 8>;
  let nk = (p.k + TK - 1u) / TK;
  let total = p.nsum * nk;
  // Slice s covers summand s / nk, k from (s % nk) * TK.
  for (var s = 0u; s <= total; s++) {
    if (s > 0u) {
      workgroupBarrier();
      for (var e = 0u; e < 8u; e++) {
        let l = tid + e * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        la[ka * 32u + mm / 4u][mm % 4u] = ra[e];
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        lb[kb * 32u + nn / 4u][nn % 4u] = rb[e];
      }
      workgroupBarrier();
    }
    if (s < total) {
      let i = s / nk;
      let k0 = (s % nk) * TK;
      let abase = p.a_off + z * p.a_zs + i * p.a_ss;
      let bbase = p.b_off + z * p.b_zs + i * p.b_ss;
      for (var e = 0u; e < 8u; e++) {
        let l = tid + e * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < p.k) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra[e] = va;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kb;
        var vb = 0.0;
        if (gn < p.n && gk2 < p.k) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb[e] = vb;
      }
    }
    if (s > 0u) {
      for (var kk = 0u; kk < TK; kk++) {
        let a0 = la[kk * 32u + lid.y];
        let a1 = la[kk * 32u + 16u + lid.y];
        let b0 = lb[kk * 32u + lid.x];
        let b1 = lb[kk * 32u + 16u + lid.x];
        let av = array<f32, 8>(a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w);
        let bv = array<f32, 8>(b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w);
        for (var r = 0u; r < 8u; r++) {
          for (var q = 0u; q < 8u; q++) { acc[r][q] = fma(av[r], bv[q], acc[r][q]); }
        }
      }
    }
  }
  for (var r = 0u; r < 8u; r++) {
    let gm = m0 + lid.y * 4u + (r / 4u) * 64u + r % 4u;
    for (var q = 0u; q < 8u; q++) {
      let gn = n0 + lid.x * 4u + (q / 4u) * 64u + q % 4u;
      if (gm < p.m && gn < p.n) { store(z, gm, gn, acc[r][q]); }
    }
  }
}
