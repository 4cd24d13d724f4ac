//! Opt-in tensor-core GEMM (`WGRNN_PRECISION=f16`): the strided GEMM of matmul.wgsl (composed
//! with it; src/shaders.rs puts `enable f16; enable wgpu_cooperative_matrix;` first) with f16
//! inputs and f32 accumulation through wgpu's experimental cooperative matrices. Only built on
//! adapters that offer 16x16x16 f16 x f16 -> f32 matrices with 32-lane subgroups (NVIDIA).
//!
//! One workgroup is one 32-lane subgroup and owns a 32x32 tile of C as 2x2 cooperative 16x16
//! accumulators. Each K slice of 16: the lanes stage A [32 x 16] and B [16 x 32] in workgroup
//! memory, rounded to f16 (0 outside the matrix or the split's K chunk), then four
//! multiply-adds. The accumulators go through workgroup memory to `st` (bias, accumulation,
//! split-K partials as in matmul.wgsl). Values beyond f16's range (65504) become infinities:
//! the numerics contract of this mode is f16 inputs (docs/NUMERICS.md); fp32 stays the default.

var<workgroup> coop_a: array<f16, 512>;    // [32 rows m][16 k], row-major
var<workgroup> coop_b: array<f16, 512>;    // [16 k][32 columns n], row-major
var<workgroup> coop_c: array<f32, 1024>;   // [32][32] the finished tile

@compute @workgroup_size(32)
fn matmul_coop(@builtin(local_invocation_index) lane: u32,
               @builtin(workgroup_id) wid: vec3<u32>) {
  let zz = wid.z % p.nz;
  split = wid.z / p.nz;
  let m0 = wid.y * 32u;
  let n0 = wid.x * 32u;
  let kb = split * p.kchunk;
  let ke = min(p.k, kb + p.kchunk);
  let nk = (ke - min(kb, ke) + 15u) / 16u;
  let total = p.nsum * nk;
  var c00 = coop_mat16x16<f32, C>();
  var c01 = coop_mat16x16<f32, C>();
  var c10 = coop_mat16x16<f32, C>();
  var c11 = coop_mat16x16<f32, C>();
  for (var s = 0u; s < total; s++) {
    let i = s / nk;
    let k0 = kb + (s % nk) * 16u;
    let abase = p.a_off + zz * p.a_zs + i * p.a_ss;
    let bbase = p.b_off + zz * p.b_zs + i * p.b_ss;
    for (var e = lane; e < 512u; e += 32u) {
      let gm = m0 + e / 16u;
      let gk = k0 + e % 16u;
      var va = 0.0;
      if (gm < p.m && gk < ke) { va = a[abase + gm * p.a_rs + gk * p.a_cs]; }
      coop_a[e] = f16(va);
      let gk2 = k0 + e / 32u;
      let gn = n0 + e % 32u;
      var vb = 0.0;
      if (gn < p.n && gk2 < ke) { vb = b[bbase + gk2 * p.b_rs + gn * p.b_cs]; }
      coop_b[e] = f16(vb);
    }
    workgroupBarrier();
    let a0 = coopLoadT<coop_mat16x16<f16, A>>(&coop_a[0], 16u);
    let a1 = coopLoadT<coop_mat16x16<f16, A>>(&coop_a[256], 16u);
    let b0 = coopLoadT<coop_mat16x16<f16, B>>(&coop_b[0], 32u);
    let b1 = coopLoadT<coop_mat16x16<f16, B>>(&coop_b[16], 32u);
    c00 = coopMultiplyAdd(a0, b0, c00);
    c01 = coopMultiplyAdd(a0, b1, c01);
    c10 = coopMultiplyAdd(a1, b0, c10);
    c11 = coopMultiplyAdd(a1, b1, c11);
    workgroupBarrier();
  }
  coopStoreT(c00, &coop_c[0], 32u);
  coopStoreT(c01, &coop_c[16], 32u);
  coopStoreT(c10, &coop_c[512], 32u);
  coopStoreT(c11, &coop_c[528], 32u);
  workgroupBarrier();
  for (var e = lane; e < 1024u; e += 32u) {
    st(zz, m0 + e / 32u, n0 + e % 32u, coop_c[e]);
  }
}
