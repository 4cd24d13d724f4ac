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
// invocation (rows ty + 16r, columns tx + 16q), K staged in slices of 16 with the next slice
// loaded into registers while the current one is multiplied. Written out without arrays: an
// array indexed in a loop can land in local memory on some drivers (measured: 13x slower on an
// H100 through Vulkan), while plain variables stay in registers. In workgroup memory each
// invocation's 8 rows (and 8 columns) sit in 8 consecutive words.

const LT: u32 = 128u;
var<workgroup> la: array<f32, 2048>;   // [TK, 128]: row ty + 16r at ty * 8 + r
var<workgroup> lb: array<f32, 2048>;   // [TK, 128]: column tx + 16q at tx * 8 + q

fn st(m: u32, n: u32, v: f32) {
  if (m < p.m && n < p.n) { store(st_z, m, n, v); }
}
var<private> st_z: u32;

@compute @workgroup_size(16, 16)
fn matmul_large(@builtin(local_invocation_id) lid: vec3<u32>,
                @builtin(workgroup_id) wid: vec3<u32>) {
  let z = wid.z;
  st_z = z;
  let m0 = wid.y * LT;
  let n0 = wid.x * LT;
  let tid = lid.y * 16u + lid.x;
  var c00 = vec4<f32>(0.0);
  var c01 = vec4<f32>(0.0);
  var c10 = vec4<f32>(0.0);
  var c11 = vec4<f32>(0.0);
  var c20 = vec4<f32>(0.0);
  var c21 = vec4<f32>(0.0);
  var c30 = vec4<f32>(0.0);
  var c31 = vec4<f32>(0.0);
  var c40 = vec4<f32>(0.0);
  var c41 = vec4<f32>(0.0);
  var c50 = vec4<f32>(0.0);
  var c51 = vec4<f32>(0.0);
  var c60 = vec4<f32>(0.0);
  var c61 = vec4<f32>(0.0);
  var c70 = vec4<f32>(0.0);
  var c71 = vec4<f32>(0.0);
  let a_k_fast = p.a_cs == 1u;
  let b_n_fast = p.b_cs == 1u;
  var ra0 = 0.0; var ra1 = 0.0; var ra2 = 0.0; var ra3 = 0.0;
  var ra4 = 0.0; var ra5 = 0.0; var ra6 = 0.0; var ra7 = 0.0;
  var rb0 = 0.0; var rb1 = 0.0; var rb2 = 0.0; var rb3 = 0.0;
  var rb4 = 0.0; var rb5 = 0.0; var rb6 = 0.0; var rb7 = 0.0;
  let nk = (p.k + TK - 1u) / TK;
  let total = p.nsum * nk;
  // Slice s covers summand s / nk, k from (s % nk) * TK.
  for (var s = 0u; s <= total; s++) {
    if (s > 0u) {
      workgroupBarrier();
      {
        let l = tid + 0u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        la[ka * LT + (mm % 16u) * 8u + mm / 16u] = ra0;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        lb[kb * LT + (nn % 16u) * 8u + nn / 16u] = rb0;
      }
      {
        let l = tid + 1u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        la[ka * LT + (mm % 16u) * 8u + mm / 16u] = ra1;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        lb[kb * LT + (nn % 16u) * 8u + nn / 16u] = rb1;
      }
      {
        let l = tid + 2u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        la[ka * LT + (mm % 16u) * 8u + mm / 16u] = ra2;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        lb[kb * LT + (nn % 16u) * 8u + nn / 16u] = rb2;
      }
      {
        let l = tid + 3u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        la[ka * LT + (mm % 16u) * 8u + mm / 16u] = ra3;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        lb[kb * LT + (nn % 16u) * 8u + nn / 16u] = rb3;
      }
      {
        let l = tid + 4u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        la[ka * LT + (mm % 16u) * 8u + mm / 16u] = ra4;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        lb[kb * LT + (nn % 16u) * 8u + nn / 16u] = rb4;
      }
      {
        let l = tid + 5u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        la[ka * LT + (mm % 16u) * 8u + mm / 16u] = ra5;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        lb[kb * LT + (nn % 16u) * 8u + nn / 16u] = rb5;
      }
      {
        let l = tid + 6u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        la[ka * LT + (mm % 16u) * 8u + mm / 16u] = ra6;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        lb[kb * LT + (nn % 16u) * 8u + nn / 16u] = rb6;
      }
      {
        let l = tid + 7u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        la[ka * LT + (mm % 16u) * 8u + mm / 16u] = ra7;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        lb[kb * LT + (nn % 16u) * 8u + nn / 16u] = rb7;
      }
      workgroupBarrier();
    }
    if (s < total) {
      let i = s / nk;
      let k0 = (s % nk) * TK;
      let abase = p.a_off + z * p.a_zs + i * p.a_ss;
      let bbase = p.b_off + z * p.b_zs + i * p.b_ss;
      {
        let l = tid + 0u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < p.k) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra0 = va;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kb;
        var vb = 0.0;
        if (gn < p.n && gk2 < p.k) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb0 = vb;
      }
      {
        let l = tid + 1u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < p.k) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra1 = va;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kb;
        var vb = 0.0;
        if (gn < p.n && gk2 < p.k) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb1 = vb;
      }
      {
        let l = tid + 2u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < p.k) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra2 = va;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kb;
        var vb = 0.0;
        if (gn < p.n && gk2 < p.k) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb2 = vb;
      }
      {
        let l = tid + 3u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < p.k) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra3 = va;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kb;
        var vb = 0.0;
        if (gn < p.n && gk2 < p.k) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb3 = vb;
      }
      {
        let l = tid + 4u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < p.k) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra4 = va;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kb;
        var vb = 0.0;
        if (gn < p.n && gk2 < p.k) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb4 = vb;
      }
      {
        let l = tid + 5u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < p.k) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra5 = va;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kb;
        var vb = 0.0;
        if (gn < p.n && gk2 < p.k) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb5 = vb;
      }
      {
        let l = tid + 6u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < p.k) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra6 = va;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kb;
        var vb = 0.0;
        if (gn < p.n && gk2 < p.k) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb6 = vb;
      }
      {
        let l = tid + 7u * 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % LT; ka = l / LT; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < p.k) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra7 = va;
        var nn: u32; var kb: u32;
        if (b_n_fast) { nn = l % LT; kb = l / LT; } else { kb = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kb;
        var vb = 0.0;
        if (gn < p.n && gk2 < p.k) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb7 = vb;
      }
    }
    if (s > 0u) {
      for (var kk = 0u; kk < TK; kk++) {
      let ab = kk * LT + lid.y * 8u;
      let bb = kk * LT + lid.x * 8u;
      let alo = vec4<f32>(la[ab], la[ab + 1u], la[ab + 2u], la[ab + 3u]);
      let ahi = vec4<f32>(la[ab + 4u], la[ab + 5u], la[ab + 6u], la[ab + 7u]);
      let b0 = vec4<f32>(lb[bb], lb[bb + 1u], lb[bb + 2u], lb[bb + 3u]);
      let b1 = vec4<f32>(lb[bb + 4u], lb[bb + 5u], lb[bb + 6u], lb[bb + 7u]);
      c00 = fma(vec4<f32>(alo.x), b0, c00);
      c01 = fma(vec4<f32>(alo.x), b1, c01);
      c10 = fma(vec4<f32>(alo.y), b0, c10);
      c11 = fma(vec4<f32>(alo.y), b1, c11);
      c20 = fma(vec4<f32>(alo.z), b0, c20);
      c21 = fma(vec4<f32>(alo.z), b1, c21);
      c30 = fma(vec4<f32>(alo.w), b0, c30);
      c31 = fma(vec4<f32>(alo.w), b1, c31);
      c40 = fma(vec4<f32>(ahi.x), b0, c40);
      c41 = fma(vec4<f32>(ahi.x), b1, c41);
      c50 = fma(vec4<f32>(ahi.y), b0, c50);
      c51 = fma(vec4<f32>(ahi.y), b1, c51);
      c60 = fma(vec4<f32>(ahi.z), b0, c60);
      c61 = fma(vec4<f32>(ahi.z), b1, c61);
      c70 = fma(vec4<f32>(ahi.w), b0, c70);
      c71 = fma(vec4<f32>(ahi.w), b1, c71);
      }
    }
  }
  st(m0 + lid.y + 0u, n0 + lid.x + 0u, c00.x);
  st(m0 + lid.y + 0u, n0 + lid.x + 16u, c00.y);
  st(m0 + lid.y + 0u, n0 + lid.x + 32u, c00.z);
  st(m0 + lid.y + 0u, n0 + lid.x + 48u, c00.w);
  st(m0 + lid.y + 0u, n0 + lid.x + 64u, c01.x);
  st(m0 + lid.y + 0u, n0 + lid.x + 80u, c01.y);
  st(m0 + lid.y + 0u, n0 + lid.x + 96u, c01.z);
  st(m0 + lid.y + 0u, n0 + lid.x + 112u, c01.w);
  st(m0 + lid.y + 16u, n0 + lid.x + 0u, c10.x);
  st(m0 + lid.y + 16u, n0 + lid.x + 16u, c10.y);
  st(m0 + lid.y + 16u, n0 + lid.x + 32u, c10.z);
  st(m0 + lid.y + 16u, n0 + lid.x + 48u, c10.w);
  st(m0 + lid.y + 16u, n0 + lid.x + 64u, c11.x);
  st(m0 + lid.y + 16u, n0 + lid.x + 80u, c11.y);
  st(m0 + lid.y + 16u, n0 + lid.x + 96u, c11.z);
  st(m0 + lid.y + 16u, n0 + lid.x + 112u, c11.w);
  st(m0 + lid.y + 32u, n0 + lid.x + 0u, c20.x);
  st(m0 + lid.y + 32u, n0 + lid.x + 16u, c20.y);
  st(m0 + lid.y + 32u, n0 + lid.x + 32u, c20.z);
  st(m0 + lid.y + 32u, n0 + lid.x + 48u, c20.w);
  st(m0 + lid.y + 32u, n0 + lid.x + 64u, c21.x);
  st(m0 + lid.y + 32u, n0 + lid.x + 80u, c21.y);
  st(m0 + lid.y + 32u, n0 + lid.x + 96u, c21.z);
  st(m0 + lid.y + 32u, n0 + lid.x + 112u, c21.w);
  st(m0 + lid.y + 48u, n0 + lid.x + 0u, c30.x);
  st(m0 + lid.y + 48u, n0 + lid.x + 16u, c30.y);
  st(m0 + lid.y + 48u, n0 + lid.x + 32u, c30.z);
  st(m0 + lid.y + 48u, n0 + lid.x + 48u, c30.w);
  st(m0 + lid.y + 48u, n0 + lid.x + 64u, c31.x);
  st(m0 + lid.y + 48u, n0 + lid.x + 80u, c31.y);
  st(m0 + lid.y + 48u, n0 + lid.x + 96u, c31.z);
  st(m0 + lid.y + 48u, n0 + lid.x + 112u, c31.w);
  st(m0 + lid.y + 64u, n0 + lid.x + 0u, c40.x);
  st(m0 + lid.y + 64u, n0 + lid.x + 16u, c40.y);
  st(m0 + lid.y + 64u, n0 + lid.x + 32u, c40.z);
  st(m0 + lid.y + 64u, n0 + lid.x + 48u, c40.w);
  st(m0 + lid.y + 64u, n0 + lid.x + 64u, c41.x);
  st(m0 + lid.y + 64u, n0 + lid.x + 80u, c41.y);
  st(m0 + lid.y + 64u, n0 + lid.x + 96u, c41.z);
  st(m0 + lid.y + 64u, n0 + lid.x + 112u, c41.w);
  st(m0 + lid.y + 80u, n0 + lid.x + 0u, c50.x);
  st(m0 + lid.y + 80u, n0 + lid.x + 16u, c50.y);
  st(m0 + lid.y + 80u, n0 + lid.x + 32u, c50.z);
  st(m0 + lid.y + 80u, n0 + lid.x + 48u, c50.w);
  st(m0 + lid.y + 80u, n0 + lid.x + 64u, c51.x);
  st(m0 + lid.y + 80u, n0 + lid.x + 80u, c51.y);
  st(m0 + lid.y + 80u, n0 + lid.x + 96u, c51.z);
  st(m0 + lid.y + 80u, n0 + lid.x + 112u, c51.w);
  st(m0 + lid.y + 96u, n0 + lid.x + 0u, c60.x);
  st(m0 + lid.y + 96u, n0 + lid.x + 16u, c60.y);
  st(m0 + lid.y + 96u, n0 + lid.x + 32u, c60.z);
  st(m0 + lid.y + 96u, n0 + lid.x + 48u, c60.w);
  st(m0 + lid.y + 96u, n0 + lid.x + 64u, c61.x);
  st(m0 + lid.y + 96u, n0 + lid.x + 80u, c61.y);
  st(m0 + lid.y + 96u, n0 + lid.x + 96u, c61.z);
  st(m0 + lid.y + 96u, n0 + lid.x + 112u, c61.w);
  st(m0 + lid.y + 112u, n0 + lid.x + 0u, c70.x);
  st(m0 + lid.y + 112u, n0 + lid.x + 16u, c70.y);
  st(m0 + lid.y + 112u, n0 + lid.x + 32u, c70.z);
  st(m0 + lid.y + 112u, n0 + lid.x + 48u, c70.w);
  st(m0 + lid.y + 112u, n0 + lid.x + 64u, c71.x);
  st(m0 + lid.y + 112u, n0 + lid.x + 80u, c71.y);
  st(m0 + lid.y + 112u, n0 + lid.x + 96u, c71.z);
  st(m0 + lid.y + 112u, n0 + lid.x + 112u, c71.w);
}
