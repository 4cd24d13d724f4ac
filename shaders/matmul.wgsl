//! Strided, batched GEMM: C[z] = alpha * sum_i A[z,i] B[z,i] (+ bias[z]) (+ C[z] when accumulating).
//!
//! Element (m, k) of A is at a_off + z*a_zs + i*a_ss + m*a_rs + k*a_cs (likewise B with (k, n)),
//! so one kernel serves X W^T (input projection), dG^T X (weight gradients) and dG W (input
//! gradients) without transposing anything in memory. The sum over i (nsum terms) adds the two
//! directions' contributions to one input gradient in a single dispatch; i runs in order, so
//! results are deterministic.
//!
//! Implementations, chosen per adapter and size by the host:
//!   matmul_tiled     64x64 tile per 16x16 workgroup, K staged through workgroup memory (GPUs)
//!   matmul_large     128x128 tiles for large problems (GPUs)
//!   matmul_regblock  no workgroup memory or barriers, a 4x4 block per invocation (CPU drivers)
//!   matmul_reduce    sums split-K partials when C is too small to fill the GPU (GPUs)

struct Gemm {
  m: u32, n: u32, k: u32, nsum: u32,
  a_off: u32, a_rs: u32, a_cs: u32, a_zs: u32,
  b_off: u32, b_rs: u32, b_cs: u32, b_zs: u32,
  c_off: u32, c_rs: u32, c_zs: u32, a_ss: u32,
  b_ss: u32, bias_off: u32, bias_zs: u32, flags: u32,   // flags: 1 = add bias[n], 2 = accumulate into C
  alpha: f32, ksplit: u32, kchunk: u32, c_ss: u32,   // split-K: partial sums kchunk deep
  nz: u32,                                           // batches (matmul_reduce)
}

@group(0) @binding(0) var<uniform> p: Gemm;
@group(1) @binding(0) var<storage, read> a: array<f32>;        // A, strided
@group(1) @binding(1) var<storage, read> b: array<f32>;        // B, strided
@group(1) @binding(2) var<storage, read> bias: array<f32>;     // [Z, N] at bias_off (if flags & 1)
@group(1) @binding(3) var<storage, read_write> c: array<f32>;  // C [Z, M, N], rows c_rs apart

// Split-K: workgroup z = split * Z + batch; split s sums k in [s*kchunk, (s+1)*kchunk) and
// stores raw partial sums (no bias, no accumulate) at split * c_ss; matmul_reduce adds the
// splits in order, so the result stays deterministic.
var<private> split: u32;

fn store(z: u32, m: u32, n: u32, v: f32) {
  let idx = p.c_off + split * p.c_ss + z * p.c_zs + m * p.c_rs + n;
  var r = p.alpha * v;
  if ((p.flags & 1u) != 0u) { r += bias[p.bias_off + z * p.bias_zs + n]; }
  if ((p.flags & 2u) != 0u) { r += c[idx]; }
  c[idx] = r;
}

// ---------------------------------------------------------------------------------------------
// Register-blocked version: 8x8 invocations, each a 4x4 block read straight from memory.

@compute @workgroup_size(8, 8)
fn matmul_regblock(@builtin(global_invocation_id) gid: vec3<u32>) {
  let z = gid.z;
  split = 0u;
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
// Workgroup-memory tiled versions for GPUs: a 64x64 (matmul_tiled) or 128x128 (matmul_large)
// tile per 16x16 workgroup, a 4x4 or 8x8 block per invocation (rows ty + 16r, columns
// tx + 16q), K staged in slices of TK with the next slice loaded into registers while the
// current one is multiplied. Generated without arrays in the hot loops: an array indexed in a
// loop can land in local memory on some drivers (measured 13x slower on an H100 through
// Vulkan), plain variables stay in registers. In workgroup memory each invocation's rows (and
// columns) sit in consecutive words.

const TK: u32 = 16u;
var<workgroup> matmul_tiled_a: array<f32, 1024>;   // [TK, 64]
var<workgroup> matmul_tiled_b: array<f32, 1024>;
var<workgroup> matmul_large_a: array<f32, 2048>;   // [TK, 128]
var<workgroup> matmul_large_b: array<f32, 2048>;

fn st(z: u32, m: u32, n: u32, v: f32) {
  if (m < p.m && n < p.n) { store(z, m, n, v); }
}

@compute @workgroup_size(16, 16)
fn matmul_tiled(@builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(workgroup_id) wid: vec3<u32>) {
  let zz = wid.z % p.nz;
  split = wid.z / p.nz;
  let m0 = wid.y * 64u;
  let n0 = wid.x * 64u;
  let tid = lid.y * 16u + lid.x;
  let kb = split * p.kchunk;
  let ke = min(p.k, kb + p.kchunk);
  let a_k_fast = p.a_cs == 1u;
  let b_n_fast = p.b_cs == 1u;
  var c0_0 = vec4<f32>(0.0);
  var c1_0 = vec4<f32>(0.0);
  var c2_0 = vec4<f32>(0.0);
  var c3_0 = vec4<f32>(0.0);
  var ra0 = 0.0; var rb0 = 0.0;
  var ra1 = 0.0; var rb1 = 0.0;
  var ra2 = 0.0; var rb2 = 0.0;
  var ra3 = 0.0; var rb3 = 0.0;
  let nk = (ke - min(kb, ke) + TK - 1u) / TK;
  let total = p.nsum * nk;
  for (var s = 0u; s <= total; s++) {
    if (s > 0u) {
      workgroupBarrier();
      {
        let l = tid + 0u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 64u; ka = l / 64u; }
        matmul_tiled_a[ka * 64u + (mm % 16u) * 4u + mm / 16u] = ra0;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 64u; kq = l / 64u; } else { kq = l % TK; nn = l / TK; }
        matmul_tiled_b[kq * 64u + (nn % 16u) * 4u + nn / 16u] = rb0;
      }
      {
        let l = tid + 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 64u; ka = l / 64u; }
        matmul_tiled_a[ka * 64u + (mm % 16u) * 4u + mm / 16u] = ra1;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 64u; kq = l / 64u; } else { kq = l % TK; nn = l / TK; }
        matmul_tiled_b[kq * 64u + (nn % 16u) * 4u + nn / 16u] = rb1;
      }
      {
        let l = tid + 512u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 64u; ka = l / 64u; }
        matmul_tiled_a[ka * 64u + (mm % 16u) * 4u + mm / 16u] = ra2;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 64u; kq = l / 64u; } else { kq = l % TK; nn = l / TK; }
        matmul_tiled_b[kq * 64u + (nn % 16u) * 4u + nn / 16u] = rb2;
      }
      {
        let l = tid + 768u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 64u; ka = l / 64u; }
        matmul_tiled_a[ka * 64u + (mm % 16u) * 4u + mm / 16u] = ra3;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 64u; kq = l / 64u; } else { kq = l % TK; nn = l / TK; }
        matmul_tiled_b[kq * 64u + (nn % 16u) * 4u + nn / 16u] = rb3;
      }
      workgroupBarrier();
    }
    if (s < total) {
      let i = s / nk;
      let k0 = kb + (s % nk) * TK;
      let abase = p.a_off + zz * p.a_zs + i * p.a_ss;
      let bbase = p.b_off + zz * p.b_zs + i * p.b_ss;
      {
        let l = tid + 0u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 64u; ka = l / 64u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra0 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 64u; kq = l / 64u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb0 = vb;
      }
      {
        let l = tid + 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 64u; ka = l / 64u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra1 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 64u; kq = l / 64u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb1 = vb;
      }
      {
        let l = tid + 512u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 64u; ka = l / 64u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra2 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 64u; kq = l / 64u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb2 = vb;
      }
      {
        let l = tid + 768u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 64u; ka = l / 64u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra3 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 64u; kq = l / 64u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb3 = vb;
      }
    }
    if (s > 0u) {
      for (var kk = 0u; kk < TK; kk++) {
        let ab = kk * 64u + lid.y * 4u;
        let bb = kk * 64u + lid.x * 4u;
        let a0 = vec4<f32>(matmul_tiled_a[ab + 0u], matmul_tiled_a[ab + 1u], matmul_tiled_a[ab + 2u], matmul_tiled_a[ab + 3u]);
        let b0 = vec4<f32>(matmul_tiled_b[bb + 0u], matmul_tiled_b[bb + 1u], matmul_tiled_b[bb + 2u], matmul_tiled_b[bb + 3u]);
        c0_0 = fma(vec4<f32>(a0.x), b0, c0_0);
        c1_0 = fma(vec4<f32>(a0.y), b0, c1_0);
        c2_0 = fma(vec4<f32>(a0.z), b0, c2_0);
        c3_0 = fma(vec4<f32>(a0.w), b0, c3_0);
      }
    }
  }
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 0u, c0_0.x);
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 16u, c0_0.y);
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 32u, c0_0.z);
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 48u, c0_0.w);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 0u, c1_0.x);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 16u, c1_0.y);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 32u, c1_0.z);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 48u, c1_0.w);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 0u, c2_0.x);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 16u, c2_0.y);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 32u, c2_0.z);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 48u, c2_0.w);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 0u, c3_0.x);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 16u, c3_0.y);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 32u, c3_0.z);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 48u, c3_0.w);
}

@compute @workgroup_size(16, 16)
fn matmul_large(@builtin(local_invocation_id) lid: vec3<u32>,
          @builtin(workgroup_id) wid: vec3<u32>) {
  let zz = wid.z % p.nz;
  split = wid.z / p.nz;
  let m0 = wid.y * 128u;
  let n0 = wid.x * 128u;
  let tid = lid.y * 16u + lid.x;
  let kb = split * p.kchunk;
  let ke = min(p.k, kb + p.kchunk);
  let a_k_fast = p.a_cs == 1u;
  let b_n_fast = p.b_cs == 1u;
  var c0_0 = vec4<f32>(0.0);
  var c0_1 = vec4<f32>(0.0);
  var c1_0 = vec4<f32>(0.0);
  var c1_1 = vec4<f32>(0.0);
  var c2_0 = vec4<f32>(0.0);
  var c2_1 = vec4<f32>(0.0);
  var c3_0 = vec4<f32>(0.0);
  var c3_1 = vec4<f32>(0.0);
  var c4_0 = vec4<f32>(0.0);
  var c4_1 = vec4<f32>(0.0);
  var c5_0 = vec4<f32>(0.0);
  var c5_1 = vec4<f32>(0.0);
  var c6_0 = vec4<f32>(0.0);
  var c6_1 = vec4<f32>(0.0);
  var c7_0 = vec4<f32>(0.0);
  var c7_1 = vec4<f32>(0.0);
  var ra0 = 0.0; var rb0 = 0.0;
  var ra1 = 0.0; var rb1 = 0.0;
  var ra2 = 0.0; var rb2 = 0.0;
  var ra3 = 0.0; var rb3 = 0.0;
  var ra4 = 0.0; var rb4 = 0.0;
  var ra5 = 0.0; var rb5 = 0.0;
  var ra6 = 0.0; var rb6 = 0.0;
  var ra7 = 0.0; var rb7 = 0.0;
  let nk = (ke - min(kb, ke) + TK - 1u) / TK;
  let total = p.nsum * nk;
  for (var s = 0u; s <= total; s++) {
    if (s > 0u) {
      workgroupBarrier();
      {
        let l = tid + 0u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        matmul_large_a[ka * 128u + (mm % 16u) * 8u + mm / 16u] = ra0;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        matmul_large_b[kq * 128u + (nn % 16u) * 8u + nn / 16u] = rb0;
      }
      {
        let l = tid + 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        matmul_large_a[ka * 128u + (mm % 16u) * 8u + mm / 16u] = ra1;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        matmul_large_b[kq * 128u + (nn % 16u) * 8u + nn / 16u] = rb1;
      }
      {
        let l = tid + 512u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        matmul_large_a[ka * 128u + (mm % 16u) * 8u + mm / 16u] = ra2;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        matmul_large_b[kq * 128u + (nn % 16u) * 8u + nn / 16u] = rb2;
      }
      {
        let l = tid + 768u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        matmul_large_a[ka * 128u + (mm % 16u) * 8u + mm / 16u] = ra3;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        matmul_large_b[kq * 128u + (nn % 16u) * 8u + nn / 16u] = rb3;
      }
      {
        let l = tid + 1024u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        matmul_large_a[ka * 128u + (mm % 16u) * 8u + mm / 16u] = ra4;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        matmul_large_b[kq * 128u + (nn % 16u) * 8u + nn / 16u] = rb4;
      }
      {
        let l = tid + 1280u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        matmul_large_a[ka * 128u + (mm % 16u) * 8u + mm / 16u] = ra5;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        matmul_large_b[kq * 128u + (nn % 16u) * 8u + nn / 16u] = rb5;
      }
      {
        let l = tid + 1536u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        matmul_large_a[ka * 128u + (mm % 16u) * 8u + mm / 16u] = ra6;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        matmul_large_b[kq * 128u + (nn % 16u) * 8u + nn / 16u] = rb6;
      }
      {
        let l = tid + 1792u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        matmul_large_a[ka * 128u + (mm % 16u) * 8u + mm / 16u] = ra7;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        matmul_large_b[kq * 128u + (nn % 16u) * 8u + nn / 16u] = rb7;
      }
      workgroupBarrier();
    }
    if (s < total) {
      let i = s / nk;
      let k0 = kb + (s % nk) * TK;
      let abase = p.a_off + zz * p.a_zs + i * p.a_ss;
      let bbase = p.b_off + zz * p.b_zs + i * p.b_ss;
      {
        let l = tid + 0u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra0 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb0 = vb;
      }
      {
        let l = tid + 256u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra1 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb1 = vb;
      }
      {
        let l = tid + 512u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra2 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb2 = vb;
      }
      {
        let l = tid + 768u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra3 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb3 = vb;
      }
      {
        let l = tid + 1024u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra4 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb4 = vb;
      }
      {
        let l = tid + 1280u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra5 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb5 = vb;
      }
      {
        let l = tid + 1536u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra6 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb6 = vb;
      }
      {
        let l = tid + 1792u;
        var mm: u32; var ka: u32;
        if (a_k_fast) { ka = l % TK; mm = l / TK; } else { mm = l % 128u; ka = l / 128u; }
        let gm = m0 + mm; let gk = k0 + ka;
        var va = 0.0;
        if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
        ra7 = va;
        var nn: u32; var kq: u32;
        if (b_n_fast) { nn = l % 128u; kq = l / 128u; } else { kq = l % TK; nn = l / TK; }
        let gn = n0 + nn; let gk2 = k0 + kq;
        var vb = 0.0;
        if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
        rb7 = vb;
      }
    }
    if (s > 0u) {
      for (var kk = 0u; kk < TK; kk++) {
        let ab = kk * 128u + lid.y * 8u;
        let bb = kk * 128u + lid.x * 8u;
        let a0 = vec4<f32>(matmul_large_a[ab + 0u], matmul_large_a[ab + 1u], matmul_large_a[ab + 2u], matmul_large_a[ab + 3u]);
        let b0 = vec4<f32>(matmul_large_b[bb + 0u], matmul_large_b[bb + 1u], matmul_large_b[bb + 2u], matmul_large_b[bb + 3u]);
        let a1 = vec4<f32>(matmul_large_a[ab + 4u], matmul_large_a[ab + 5u], matmul_large_a[ab + 6u], matmul_large_a[ab + 7u]);
        let b1 = vec4<f32>(matmul_large_b[bb + 4u], matmul_large_b[bb + 5u], matmul_large_b[bb + 6u], matmul_large_b[bb + 7u]);
        c0_0 = fma(vec4<f32>(a0.x), b0, c0_0);
        c0_1 = fma(vec4<f32>(a0.x), b1, c0_1);
        c1_0 = fma(vec4<f32>(a0.y), b0, c1_0);
        c1_1 = fma(vec4<f32>(a0.y), b1, c1_1);
        c2_0 = fma(vec4<f32>(a0.z), b0, c2_0);
        c2_1 = fma(vec4<f32>(a0.z), b1, c2_1);
        c3_0 = fma(vec4<f32>(a0.w), b0, c3_0);
        c3_1 = fma(vec4<f32>(a0.w), b1, c3_1);
        c4_0 = fma(vec4<f32>(a1.x), b0, c4_0);
        c4_1 = fma(vec4<f32>(a1.x), b1, c4_1);
        c5_0 = fma(vec4<f32>(a1.y), b0, c5_0);
        c5_1 = fma(vec4<f32>(a1.y), b1, c5_1);
        c6_0 = fma(vec4<f32>(a1.z), b0, c6_0);
        c6_1 = fma(vec4<f32>(a1.z), b1, c6_1);
        c7_0 = fma(vec4<f32>(a1.w), b0, c7_0);
        c7_1 = fma(vec4<f32>(a1.w), b1, c7_1);
      }
    }
  }
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 0u, c0_0.x);
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 16u, c0_0.y);
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 32u, c0_0.z);
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 48u, c0_0.w);
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 64u, c0_1.x);
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 80u, c0_1.y);
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 96u, c0_1.z);
  st(zz, m0 + lid.y + 0u, n0 + lid.x + 112u, c0_1.w);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 0u, c1_0.x);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 16u, c1_0.y);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 32u, c1_0.z);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 48u, c1_0.w);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 64u, c1_1.x);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 80u, c1_1.y);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 96u, c1_1.z);
  st(zz, m0 + lid.y + 16u, n0 + lid.x + 112u, c1_1.w);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 0u, c2_0.x);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 16u, c2_0.y);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 32u, c2_0.z);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 48u, c2_0.w);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 64u, c2_1.x);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 80u, c2_1.y);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 96u, c2_1.z);
  st(zz, m0 + lid.y + 32u, n0 + lid.x + 112u, c2_1.w);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 0u, c3_0.x);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 16u, c3_0.y);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 32u, c3_0.z);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 48u, c3_0.w);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 64u, c3_1.x);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 80u, c3_1.y);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 96u, c3_1.z);
  st(zz, m0 + lid.y + 48u, n0 + lid.x + 112u, c3_1.w);
  st(zz, m0 + lid.y + 64u, n0 + lid.x + 0u, c4_0.x);
  st(zz, m0 + lid.y + 64u, n0 + lid.x + 16u, c4_0.y);
  st(zz, m0 + lid.y + 64u, n0 + lid.x + 32u, c4_0.z);
  st(zz, m0 + lid.y + 64u, n0 + lid.x + 48u, c4_0.w);
  st(zz, m0 + lid.y + 64u, n0 + lid.x + 64u, c4_1.x);
  st(zz, m0 + lid.y + 64u, n0 + lid.x + 80u, c4_1.y);
  st(zz, m0 + lid.y + 64u, n0 + lid.x + 96u, c4_1.z);
  st(zz, m0 + lid.y + 64u, n0 + lid.x + 112u, c4_1.w);
  st(zz, m0 + lid.y + 80u, n0 + lid.x + 0u, c5_0.x);
  st(zz, m0 + lid.y + 80u, n0 + lid.x + 16u, c5_0.y);
  st(zz, m0 + lid.y + 80u, n0 + lid.x + 32u, c5_0.z);
  st(zz, m0 + lid.y + 80u, n0 + lid.x + 48u, c5_0.w);
  st(zz, m0 + lid.y + 80u, n0 + lid.x + 64u, c5_1.x);
  st(zz, m0 + lid.y + 80u, n0 + lid.x + 80u, c5_1.y);
  st(zz, m0 + lid.y + 80u, n0 + lid.x + 96u, c5_1.z);
  st(zz, m0 + lid.y + 80u, n0 + lid.x + 112u, c5_1.w);
  st(zz, m0 + lid.y + 96u, n0 + lid.x + 0u, c6_0.x);
  st(zz, m0 + lid.y + 96u, n0 + lid.x + 16u, c6_0.y);
  st(zz, m0 + lid.y + 96u, n0 + lid.x + 32u, c6_0.z);
  st(zz, m0 + lid.y + 96u, n0 + lid.x + 48u, c6_0.w);
  st(zz, m0 + lid.y + 96u, n0 + lid.x + 64u, c6_1.x);
  st(zz, m0 + lid.y + 96u, n0 + lid.x + 80u, c6_1.y);
  st(zz, m0 + lid.y + 96u, n0 + lid.x + 96u, c6_1.z);
  st(zz, m0 + lid.y + 96u, n0 + lid.x + 112u, c6_1.w);
  st(zz, m0 + lid.y + 112u, n0 + lid.x + 0u, c7_0.x);
  st(zz, m0 + lid.y + 112u, n0 + lid.x + 16u, c7_0.y);
  st(zz, m0 + lid.y + 112u, n0 + lid.x + 32u, c7_0.z);
  st(zz, m0 + lid.y + 112u, n0 + lid.x + 48u, c7_0.w);
  st(zz, m0 + lid.y + 112u, n0 + lid.x + 64u, c7_1.x);
  st(zz, m0 + lid.y + 112u, n0 + lid.x + 80u, c7_1.y);
  st(zz, m0 + lid.y + 112u, n0 + lid.x + 96u, c7_1.z);
  st(zz, m0 + lid.y + 112u, n0 + lid.x + 112u, c7_1.w);
}

// Sums the split-K partials in split order: C[z, m, n] = sum_s P[s, z, m, n] (+ bias) (+ C).
// P (binding a) is dense [ksplit, nz, M, N]; C uses c_off / c_rs / c_zs.
@compute @workgroup_size(256)
fn matmul_reduce(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  let mn = p.m * p.n;
  if (idx >= mn * p.nz) { return; }
  let z = idx / mn;
  let m = (idx % mn) / p.n;
  let n = idx % p.n;
  var v = 0.0;
  for (var sp = 0u; sp < p.ksplit; sp++) { v += a[sp * mn * p.nz + idx]; }
  split = 0u;
  let o = p.c_off + z * p.c_zs + m * p.c_rs + n;
  if ((p.flags & 1u) != 0u) { v += bias[p.bias_off + z * p.bias_zs + n]; }
  if ((p.flags & 2u) != 0u) { v += c[o]; }
  c[o] = v;
}
