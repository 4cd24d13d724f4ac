//! Launcher for `matmul.wgsl`: C[z] = alpha * sum_i A[z,i] B[z,i] (+ bias) (+ C).

use super::transpose::copy_strided;
use super::{R, RW, check_extent};
use crate::context::{KernelVariant, Precision};
use crate::encoder::Recorder;
use crate::error::Result;
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const TILED: KernelSpec = KernelSpec {
    shader: Shader::Matmul,
    entry: "matmul_tiled",
    bindings: &[R, R, R, RW],
};
const LARGE: KernelSpec = KernelSpec {
    shader: Shader::Matmul,
    entry: "matmul_large",
    bindings: &[R, R, R, RW],
};
const MICRO: KernelSpec = KernelSpec {
    shader: Shader::MatmulMicro,
    entry: "matmul_micro",
    bindings: &[R, R, R, RW],
};
const COOP: KernelSpec = KernelSpec {
    shader: Shader::MatmulCoop,
    entry: "matmul_coop",
    bindings: &[R, R, R, RW],
};
/// Workgroup memory of `matmul_micro`: two double-buffered [8][33] vec4 tiles (over WebGPU's
/// default 16 KiB; adapters with less fall back to `matmul_large`).
const MICRO_WORKGROUP_BYTES: u32 = 2 * 2 * 8 * 33 * 16;
const REDUCE: KernelSpec = KernelSpec {
    shader: Shader::Matmul,
    entry: "matmul_reduce",
    bindings: &[R, R, R, RW],
};
const VEC4: KernelSpec = KernelSpec {
    shader: Shader::MatmulCpu,
    entry: "matmul_vec4",
    bindings: &[R, R, R, RW],
};
const SUBGROUP: KernelSpec = KernelSpec {
    shader: Shader::MatmulCpuSubgroup,
    entry: "matmul_subgroup",
    bindings: &[R, R, R, RW],
};
const BLOCK: KernelSpec = KernelSpec {
    shader: Shader::MatmulCpu,
    entry: "matmul_block",
    bindings: &[R, R, R, RW],
};
const REGBLOCK: KernelSpec = KernelSpec {
    shader: Shader::Matmul,
    entry: "matmul_regblock",
    bindings: &[R, R, R, RW],
};

/// A strided matrix inside a tensor: element (r, c) of batch z, summand i is at
/// `off + z*zs + i*ss + r*rs + c*cs`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub t: &'a Tensor,
    pub off: usize,
    pub rs: usize,
    pub cs: usize,
    pub zs: usize,
    pub ss: usize,
}

impl<'a> View<'a> {
    /// Row-major `[rows, cols]` from element `off`.
    pub fn rows(t: &'a Tensor, off: usize, cols: usize) -> Self {
        View {
            t,
            off,
            rs: cols,
            cs: 1,
            zs: 0,
            ss: 0,
        }
    }
    /// The transpose of this view.
    pub fn t(self) -> Self {
        View {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
    /// With batch stride `zs`.
    pub fn z(self, zs: usize) -> Self {
        View { zs, ..self }
    }
    /// With summand stride `ss`.
    pub fn s(self, ss: usize) -> Self {
        View { ss, ..self }
    }
    fn max_index(&self, rows: usize, cols: usize, nz: usize, nsum: usize) -> usize {
        self.off
            + (nz - 1) * self.zs
            + (nsum - 1) * self.ss
            + (rows - 1) * self.rs
            + (cols - 1) * self.cs
    }
}

/// How `matmul_vec4` can read the operand `v` (z batches of nsum summands): `Some(false)`
/// along its rows (unit column stride), `Some(true)` along its columns (unit row stride: a
/// transposed view), when the offsets and the other stride are multiples of 4; else `None`.
fn vec4_operand(v: &View, z: usize, nsum: usize) -> Option<bool> {
    let al = |x: usize| x % 4 == 0;
    if !(al(v.off) && (z == 1 || al(v.zs)) && (nsum == 1 || al(v.ss))) {
        return None;
    }
    if v.cs == 1 && al(v.rs) {
        Some(false)
    } else if v.rs == 1 && al(v.cs) {
        Some(true)
    } else {
        None
    }
}

/// Whether `matmul_vec4` can write C (unit column stride, offsets and row stride multiples of
/// 4).
fn vec4_result(c: &View, z: usize) -> bool {
    let al = |x: usize| x % 4 == 0;
    c.cs == 1 && al(c.rs) && al(c.off) && (z == 1 || al(c.zs))
}

/// How `matmul_vec4` can read the operands: `(A read along m, B read along k)`; `None` when
/// some layout does not allow vec4 loads.
fn vec4_layout(a: &View, b: &View, c: &View, z: usize, nsum: usize) -> Option<(bool, bool)> {
    let a_m = vec4_operand(a, z, nsum)?;
    let b_k = vec4_operand(b, z, nsum)?;
    vec4_result(c, z).then_some((a_m, b_k))
}

/// Products at least this large (multiply-adds) have their misaligned operands re-laid for
/// `matmul_vec4` on CPU drivers: the copies cost O(operand) against O(m n k) for the product,
/// and the vec4 kernel is 2-4x the scalar one there (docs/PERFORMANCE.md).
const RELAYOUT_MIN_MACS: usize = 1 << 20;

/// A scratch copy of the `rows x cols` operand `v` with a row stride that is a multiple of 4,
/// keeping its orientation (a column-contiguous view stays one), and the view to read it by.
fn relaid<'a>(
    rec: &mut Recorder,
    v: &View,
    rows: usize,
    cols: usize,
    scratch: &'a mut Option<Tensor>,
) -> Result<View<'a>> {
    // (outer, inner) extents and strides of the copy: inner is the contiguous direction.
    let by_rows = !(v.rs == 1 && v.cs != 1);
    let (outer, inner, o_s, i_s) = if by_rows {
        (rows, cols, v.rs, v.cs)
    } else {
        (cols, rows, v.cs, v.rs)
    };
    let stride = inner.div_ceil(4) * 4;
    // 16 spare elements: the vec4 kernel's 16-wide blocks may read past the last row's end.
    let t = Tensor::empty(
        rec.ctx(),
        "gemm operand (vec4 layout)",
        &[outer * stride + 16],
        crate::DType::F32,
    )?;
    copy_strided(
        rec,
        v.t,
        (v.off, o_s, i_s),
        &t,
        (0, stride),
        outer,
        inner,
        stride,
    )?;
    let t: &'a Tensor = scratch.insert(t);
    Ok(if by_rows {
        View::rows(t, 0, stride)
    } else {
        View::rows(t, 0, stride).t()
    })
}

/// [`gemm`] with every misaligned operand copied into a vec4-friendly layout first (z = 1,
/// nsum = 1), C computed in such a copy and written back when it is the misaligned one.
#[allow(clippy::too_many_arguments)]
fn gemm_relaid(
    rec: &mut Recorder,
    dims: Dims,
    a: View,
    b: View,
    c: View,
    bias: Option<View>,
    accumulate: bool,
    alpha: f32,
) -> Result<()> {
    let Dims { m, n, k, .. } = dims;
    let (mut sa, mut sb) = (None, None);
    let a2 = match vec4_operand(&a, 1, 1) {
        Some(_) => a,
        None => relaid(rec, &a, m, k, &mut sa)?,
    };
    let b2 = match vec4_operand(&b, 1, 1) {
        Some(_) => b,
        None => relaid(rec, &b, k, n, &mut sb)?,
    };
    if vec4_result(&c, 1) {
        return gemm(rec, dims, a2, b2, c, bias, accumulate, alpha);
    }
    let stride = n.div_ceil(4) * 4;
    let cp = Tensor::empty(
        rec.ctx(),
        "gemm result (vec4 layout)",
        &[m * stride + 16],
        crate::DType::F32,
    )?;
    if accumulate {
        copy_strided(rec, c.t, (c.off, c.rs, 1), &cp, (0, stride), m, n, stride)?;
    }
    gemm(
        rec,
        dims,
        a2,
        b2,
        View::rows(&cp, 0, stride),
        bias,
        accumulate,
        alpha,
    )?;
    copy_strided(rec, &cp, (0, stride, 1), c.t, (c.off, c.rs), m, n, n)
}

/// Sizes of one GEMM call: C is `[z, m, n]`, the inner dimension `k`, `nsum` products summed.
#[derive(Clone, Copy)]
pub(crate) struct Dims {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub z: usize,
    pub nsum: usize,
}

/// Where a GEMM writes C (element (m, n) of batch z, split s at `off + s*ss + z*zs + m*rs + n`).
struct CWords {
    off: usize,
    rs: usize,
    zs: usize,
    ss: usize,
}

/// The `Gemm` parameter words of matmul.wgsl.
#[allow(clippy::too_many_arguments)]
fn gemm_words(
    dims: &Dims,
    a: &View,
    b: &View,
    c: CWords,
    (bias_off, bias_zs, flags): (usize, usize, u32),
    alpha: f32,
    ksplit: usize,
    kchunk: usize,
) -> [u32; 25] {
    let w = |x: usize| x as u32;
    [
        w(dims.m),
        w(dims.n),
        w(dims.k),
        w(dims.nsum),
        w(a.off),
        w(a.rs),
        w(a.cs),
        w(a.zs),
        w(b.off),
        w(b.rs),
        w(b.cs),
        w(b.zs),
        w(c.off),
        w(c.rs),
        w(c.zs),
        w(a.ss),
        w(b.ss),
        w(bias_off),
        w(bias_zs),
        flags,
        alpha.to_bits(),
        w(ksplit),
        w(kchunk),
        w(c.ss),
        w(dims.z),
    ]
}

/// K chunk of `ksplit` splits of a K-long sum: a multiple of the tiles' K slice (16).
pub(crate) fn split_chunk(k: usize, ksplit: usize) -> usize {
    k.div_ceil(ksplit).div_ceil(16) * 16
}

/// Records the split-K partial products `parts[s, z] = A[z] B[z]` over the s-th K chunk
/// ([`split_chunk`]) into the dense `parts [ksplit, z, m, n]`, without summing them: the
/// per-step recurrent product of the split step (`step_cell_split` sums the splits in order
/// and applies the cell). `nsum` must be 1. Returns the number of non-empty splits.
pub(crate) fn gemm_partials(
    rec: &mut Recorder,
    dims: Dims,
    a: View,
    b: View,
    parts: &Tensor,
    ksplit: usize,
) -> Result<usize> {
    let Dims { m, n, k, z, nsum } = dims;
    if m == 0 || n == 0 || z == 0 || k == 0 || nsum != 1 {
        return Err(crate::error::Error::Device(
            "internal: split-K partials need a non-empty single-term GEMM".into(),
        ));
    }
    let kchunk = split_chunk(k, ksplit.max(1));
    let ksplit = k.div_ceil(kchunk);
    check_extent("gemm A", a.t, a.max_index(m, k, z, 1))?;
    check_extent("gemm B", b.t, b.max_index(k, n, z, 1))?;
    check_extent("split-K partials", parts, ksplit * z * m * n - 1)?;
    let c = CWords {
        off: 0,
        rs: n,
        zs: m * n,
        ss: z * m * n,
    };
    let params = gemm_words(&dims, &a, &b, c, (0, 0, 0), 1.0, ksplit, kchunk);
    let (spec, tile) = match rec.ctx().precision() {
        Precision::F16 => (COOP, 32),
        Precision::F32 => (TILED, 64),
    };
    let groups = [
        n.div_ceil(tile) as u32,
        m.div_ceil(tile) as u32,
        (z * ksplit) as u32,
    ];
    rec.dispatch(spec, &[], &params, &[a.t, b.t, a.t, parts], groups)?;
    Ok(ksplit)
}

/// Records `C[z] (+)= alpha * sum_i A[z,i] B[z,i] (+ bias[z])`.
///
/// `a` is `[m, k]`, `b` is `[k, n]`, `c` is `[m, n]` with unit column stride; `bias` is `[n]` per
/// z. `accumulate` adds to C's existing content.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    rec: &mut Recorder,
    dims: Dims,
    a: View,
    b: View,
    c: View,
    bias: Option<View>,
    accumulate: bool,
    alpha: f32,
) -> Result<()> {
    let Dims { m, n, k, z, nsum } = dims;
    if m == 0 || n == 0 || z == 0 {
        return Ok(());
    }
    debug_assert_eq!(c.cs, 1);
    if k == 0 || nsum == 0 {
        // Empty sum: C = bias (+ C). Not needed by any caller; refuse rather than mis-handle.
        return Err(crate::error::Error::Device(
            "internal: empty GEMM reduction".into(),
        ));
    }
    check_extent("gemm A", a.t, a.max_index(m, k, z, nsum))?;
    check_extent("gemm B", b.t, b.max_index(k, n, z, nsum))?;
    check_extent("gemm C", c.t, c.max_index(m, n, z, 1))?;
    let (bias_t, bias_off, bias_zs, mut flags) = match bias {
        Some(v) => {
            check_extent("gemm bias", v.t, v.off + (z - 1) * v.zs + n - 1)?;
            (v.t, v.off, v.zs, 1u32)
        }
        None => (c.t, 0, 0, 0u32),
    };
    if accumulate {
        flags |= 2;
    }
    let ctx = rec.ctx();
    let target = ctx.target_workgroups();
    let layout = vec4_layout(&a, &b, &c, z, nsum);
    if layout.is_none()
        && ctx.variant() == KernelVariant::Simple
        && ctx.cpu_blocks()
        && z == 1
        && nsum == 1
        && m * n * k >= RELAYOUT_MIN_MACS
    {
        return gemm_relaid(rec, dims, a, b, c, bias, accumulate, alpha);
    }
    let mut constants: Vec<(&'static str, u32)> = Vec::new();
    let (spec, (tile_m, tile_n)) = match ctx.variant() {
        // The opt-in tensor-core path takes every GEMM (32x32 tiles, scalar loads).
        _ if ctx.precision() == Precision::F16 => (COOP, (32, 32)),
        // 128x128 tiles only where they still give a few workgroups per compute unit.
        // The register-tiled kernel where the tuner chose it: vec4 loads per operand whose
        // layout allows them (1: along its second index, 2: along its first; 0: scalar).
        KernelVariant::Tiled
            if ctx.gemm_micro()
                && m * n * z >= 128 * 128 * target
                && ctx.limits().max_compute_workgroup_storage_size >= MICRO_WORKGROUP_BYTES =>
        {
            let mode = |v: &View, first: u32, second: u32| match vec4_operand(v, z, nsum) {
                Some(false) => first,
                Some(true) => second,
                None => 0,
            };
            constants.push(("A_MODE", mode(&a, 1, 2)));
            constants.push(("B_MODE", mode(&b, 1, 2)));
            (MICRO, (128, 128))
        }
        KernelVariant::Tiled if m * n * z >= 128 * 128 * target => (LARGE, (128, 128)),
        KernelVariant::Tiled => (TILED, (64, 64)),
        // CPU drivers: 16x16 blocks per invocation (64x64 per workgroup), vec4 loads where
        // the layout allows (matmul_cpu.wgsl); with subgroups of 8 lanes, 32x64 per
        // workgroup of 8 that share the loads of A (matmul_cpu_subgroup.wgsl).
        KernelVariant::Simple if !ctx.cpu_blocks() => (REGBLOCK, (32, 32)),
        KernelVariant::Simple => match layout {
            Some((a_m, b_k)) => {
                constants.push(("A_MCONTIG", a_m as u32));
                constants.push(("B_KCONTIG", b_k as u32));
                if ctx.cpu_subgroups() && ctx.has_cpu_subgroups() {
                    (SUBGROUP, (32, 64))
                } else {
                    (VEC4, (64, 64))
                }
            }
            None => (BLOCK, (64, 64)),
        },
    };
    let tiles = m.div_ceil(tile_m) * n.div_ceil(tile_n) * z;
    // Split-K when C alone gives too few workgroups and K is long (weight gradients: C is a
    // weight matrix, K is T*B): each split sums kchunk of K into a partial buffer and
    // matmul_reduce adds the partials in order (deterministic).
    let ksplit = if ctx.variant() == KernelVariant::Tiled && 2 * tiles <= target && k >= 1024 {
        (target / tiles).clamp(2, (k / 256).min(64))
    } else {
        1
    };
    let kchunk = split_chunk(k, ksplit);
    let ksplit = k.div_ceil(kchunk);
    let words = |c_off: usize, c_rs: usize, c_zs: usize, flags: u32, c_ss: usize| {
        let c = CWords {
            off: c_off,
            rs: c_rs,
            zs: c_zs,
            ss: c_ss,
        };
        gemm_words(
            &dims,
            &a,
            &b,
            c,
            (bias_off, bias_zs, flags),
            alpha,
            ksplit,
            kchunk,
        )
    };
    // The bias binding is read-only; when there is no bias bind A (also read-only) rather than C.
    let bias_t = if bias.is_some() { bias_t } else { a.t };
    let groups = [
        n.div_ceil(tile_n) as u32,
        m.div_ceil(tile_m) as u32,
        (z * ksplit) as u32,
    ];
    if ksplit == 1 {
        let params = words(c.off, c.rs, c.zs, flags, 0);
        return rec.dispatch(spec, &constants, &params, &[a.t, b.t, bias_t, c.t], groups);
    }
    let parts = Tensor::empty(
        ctx,
        "split-K partials",
        &[ksplit * z * m * n],
        crate::DType::F32,
    )?;
    let params = words(0, n, m * n, 0, z * m * n);
    rec.dispatch(
        spec,
        &constants,
        &params,
        &[a.t, b.t, bias_t, &parts],
        groups,
    )?;
    let params = words(c.off, c.rs, c.zs, flags, z * m * n);
    let grid = super::grid_1d(z * m * n, 256);
    rec.dispatch(REDUCE, &[], &params, &[&parts, &parts, bias_t, c.t], grid)
}

#[cfg(test)]
mod tests {
    //! Every GEMM kernel (register-blocked, 64x64 and 128x128 tiles, split-K + reduce) against
    //! the reference on awkward sizes, transposed operands, summed batches, bias and
    //! accumulation; and the transpose and f16-packing kernels. Needs an adapter (CI fails
    //! without one).

    use super::*;
    use crate::context::{Context, KernelVariant};
    use crate::reference::matmul::{f16_ulp, matmul, pack_f16, transpose};
    use crate::tensor::DType;

    /// f32 dot products of length <= 1500 against f64: a few 1e-7 relative.
    const TOL: f64 = 1e-5;

    fn data(seed: u64, n: usize) -> Vec<f32> {
        crate::bench::bench_data(seed, n)
    }

    fn rel(got: &[f32], want: &[f64]) -> f64 {
        crate::bench::rel_err(got, want)
    }

    fn contexts() -> Vec<Context> {
        let skip = std::env::var("WGRNN_SKIP_GPU_TESTS").is_ok_and(|v| v == "1")
            && !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        [KernelVariant::Simple, KernelVariant::Tiled]
            .into_iter()
            .filter_map(|v| match Context::with_variant(v) {
                Ok(c) => Some(c),
                Err(_) if skip => None,
                Err(e) => panic!("GPU tests need an adapter: {e}"),
            })
            .collect()
    }

    /// C[z] = sum_i A[z,i] B[z,i]^T (+ bias) (+ C0) on the CPU; A [Z, S, m, k], B [Z, S, n, k].
    #[allow(clippy::too_many_arguments)]
    fn want(
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        c0: Option<&[f32]>,
        m: usize,
        n: usize,
        k: usize,
        z: usize,
        s: usize,
    ) -> Vec<f64> {
        let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let mut out = vec![0.0; z * m * n];
        for zz in 0..z {
            for i in 0..s {
                let ab = f(&a[(zz * s + i) * m * k..(zz * s + i + 1) * m * k]);
                let bb = f(&b[(zz * s + i) * n * k..(zz * s + i + 1) * n * k]);
                for (o, v) in out[zz * m * n..(zz + 1) * m * n]
                    .iter_mut()
                    .zip(matmul(&ab, &bb, m, n, k))
                {
                    *o += v;
                }
            }
            for r in 0..m {
                for c in 0..n {
                    let o = &mut out[(zz * m + r) * n + c];
                    *o += bias.map_or(0.0, |bv| bv[zz * n + c] as f64)
                        + c0.map_or(0.0, |cv| cv[(zz * m + r) * n + c] as f64);
                }
            }
        }
        out
    }

    #[test]
    fn gemm_kernels_match_reference() {
        for ctx in contexts() {
            // (m, n, k, z, nsum, B transposed in memory, target workgroups): the last rows select
            // the 128x128 tiles and split-K on the tiled variant.
            let cases = [
                (1, 1, 1, 1, 1, false, 16),
                (7, 13, 5, 2, 1, true, 16),
                (33, 65, 17, 1, 2, false, 16),
                (130, 131, 37, 2, 1, true, 1),
                (19, 23, 1500, 2, 1, false, 64),
                (67, 5, 2049, 1, 2, true, 64),
            ];
            for (ci, &(m, n, k, z, s, bt, target)) in cases.iter().enumerate() {
                ctx.set_target_workgroups(target);
                let seed = 100 + ci as u64;
                let a = data(seed, z * s * m * k);
                let b = data(seed + 1, z * s * n * k); // [Z, S, n, k]
                let bias = data(seed + 2, z * n);
                let c0 = data(seed + 3, z * m * n);
                let at = Tensor::from_f32(&ctx, "a", &[a.len()], &a).unwrap();
                let bt_t = if bt {
                    Tensor::from_f32(&ctx, "b", &[b.len()], &b).unwrap()
                } else {
                    // Store B as [Z, S, k, n] (row-major over k) and read it untransposed.
                    let mut v = Vec::new();
                    for q in 0..z * s {
                        let blk: Vec<f64> = b[q * n * k..(q + 1) * n * k]
                            .iter()
                            .map(|&x| x as f64)
                            .collect();
                        v.extend(transpose(&blk, n, k).iter().map(|&x| x as f32));
                    }
                    Tensor::from_f32(&ctx, "b", &[v.len()], &v).unwrap()
                };
                let biast = Tensor::from_f32(&ctx, "bias", &[bias.len()], &bias).unwrap();
                for (acc, with_bias) in [(false, false), (true, true)] {
                    let c = Tensor::from_f32(&ctx, "c", &[c0.len()], &c0).unwrap();
                    let mut rec = Recorder::new(&ctx);
                    let av = View::rows(&at, 0, k).z(s * m * k).s(m * k);
                    let bv = if bt {
                        View::rows(&bt_t, 0, k).t().z(s * n * k).s(n * k)
                    } else {
                        View::rows(&bt_t, 0, n).z(s * n * k).s(n * k)
                    };
                    let biasv = with_bias.then(|| View::rows(&biast, 0, n).z(n));
                    gemm(
                        &mut rec,
                        Dims {
                            m,
                            n,
                            k,
                            z,
                            nsum: s,
                        },
                        av,
                        bv,
                        View::rows(&c, 0, n).z(m * n),
                        biasv,
                        acc,
                        1.0,
                    )
                    .unwrap();
                    rec.submit().unwrap();
                    let got = c.to_vec(&ctx).unwrap();
                    let w = want(
                        &a,
                        &b,
                        with_bias.then_some(&bias[..]),
                        acc.then_some(&c0[..]),
                        m,
                        n,
                        k,
                        z,
                        s,
                    );
                    let e = rel(&got, &w);
                    assert!(
                        e < TOL,
                        "{:?} case {ci} (m={m} n={n} k={k} z={z} nsum={s} bt={bt} acc={acc}): relative error {e:.3e}",
                        ctx.variant()
                    );
                }
            }
        }
    }

    /// `matmul_micro` (the tuner's register-tiled GEMM) on every load path: each operand
    /// along either index with vec4-aligned strides, and misaligned (scalar loads); summed
    /// batches, a long K, a single-row A, sizes off the 128 tile and off 4; bias and
    /// accumulation.
    #[test]
    fn micro_gemm_matches_reference() {
        let Some(ctx) = contexts()
            .into_iter()
            .find(|c| c.variant() == KernelVariant::Tiled)
        else {
            return;
        };
        ctx.set_gemm_micro(true);
        ctx.set_target_workgroups(1);
        layout_cases(&ctx, "matmul_micro");
    }

    /// `matmul_subgroup` (CPU drivers with 8-lane subgroups) on every load path, and bit for
    /// bit against `matmul_vec4`, whose summation order it keeps.
    #[test]
    fn subgroup_gemm_matches_reference() {
        let Some(ctx) = contexts()
            .into_iter()
            .find(|c| c.variant() == KernelVariant::Simple)
        else {
            return;
        };
        if !ctx.has_cpu_subgroups() {
            // lavapipe (CI's adapter) has them at its default width: there the kernel must be
            // tested.
            assert!(
                !ctx.adapter_name().contains("llvmpipe")
                    || std::env::var_os("LP_NATIVE_VECTOR_WIDTH").is_some(),
                "llvmpipe without 8-lane subgroups"
            );
            eprintln!("{}: no 8-lane subgroups, skipped", ctx.adapter_name());
            return;
        }
        ctx.set_cpu_subgroups(true);
        let with = layout_cases(&ctx, "matmul_subgroup");
        ctx.set_cpu_subgroups(false);
        let without = layout_cases(&ctx, "matmul_vec4");
        for (i, (a, b)) in with.iter().zip(&without).enumerate() {
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "result {i}: matmul_subgroup and matmul_vec4 differ");
        }
    }

    /// The vec4-layout GEMM cases (A stored either way, B either way, aligned or not, summed
    /// batches, bias, accumulation, K tails) against the reference on `ctx` as configured;
    /// returns every result.
    fn layout_cases(ctx: &Context, kernel: &str) -> Vec<Vec<f32>> {
        let mut results = Vec::new();
        // (m, n, k, z, nsum, A stored transposed, B stored [n, k], vec4-aligned strides)
        let cases = [
            (130, 131, 37, 2, 1, false, false, true),
            (130, 131, 37, 2, 1, true, true, true),
            (129, 257, 19, 1, 2, false, true, true),
            (131, 129, 23, 1, 1, true, false, false),
            (256, 128, 1031, 1, 1, false, true, true),
            (1, 16411, 9, 1, 1, true, true, false),
            (17, 1031, 8, 1, 1, false, false, true),
            // N a multiple of 4, so that C allows the simple variant's vec4 kernels too.
            (130, 132, 37, 2, 1, true, true, true),
            (61, 68, 6, 1, 2, true, false, true),
            (33, 200, 11, 3, 1, false, false, true),
            (1, 4, 1, 1, 1, true, true, true),
        ];
        let up4 = |x: usize| x.div_ceil(4) * 4;
        for (ci, &(m, n, k, z, s, a_t, b_t, align)) in cases.iter().enumerate() {
            let seed = 500 + ci as u64;
            let (a, b) = (data(seed, z * s * m * k), data(seed + 1, z * s * n * k));
            let (bias, c0) = (data(seed + 2, z * n), data(seed + 3, z * m * n));
            // Lays out `src` ([Z*S] blocks of rows x cols, row-major) stored as given or
            // transposed, rows `stride` apart, blocks `blk` apart, from `off`.
            let pad = |d: usize| if align { up4(d) } else { up4(d) + 1 };
            let off = if align { 4 } else { 3 };
            let lay = |src: &[f32], rows: usize, cols: usize, tr: bool| {
                let (r, c) = if tr { (cols, rows) } else { (rows, cols) };
                let stride = pad(c);
                let blk = if align {
                    up4(r * stride)
                } else {
                    r * stride + 1
                };
                let mut v = vec![0f32; off + z * s * blk];
                for q in 0..z * s {
                    for i in 0..rows {
                        for j in 0..cols {
                            let (rr, cc) = if tr { (j, i) } else { (i, j) };
                            v[off + q * blk + rr * stride + cc] =
                                src[q * rows * cols + i * cols + j];
                        }
                    }
                }
                (v, stride, blk)
            };
            let (av, a_st, a_blk) = lay(&a, m, k, a_t);
            // b holds [Z, S, n, k]; the GEMM's B is its transpose [k, n]: stored [n, k] is B read
            // along k (b_t), stored [k, n] is B read along n.
            let (bvec, b_st, b_blk) = lay(&b, n, k, !b_t);
            let at = Tensor::from_f32(ctx, "a", &[av.len()], &av).unwrap();
            let btn = Tensor::from_f32(ctx, "b", &[bvec.len()], &bvec).unwrap();
            let biast = Tensor::from_f32(ctx, "bias", &[bias.len()], &bias).unwrap();
            let a_view = {
                let v = View::rows(&at, off, a_st);
                let v = if a_t { v.t() } else { v };
                v.z(s * a_blk).s(a_blk)
            };
            let b_view = {
                let v = View::rows(&btn, off, b_st);
                let v = if b_t { v.t() } else { v };
                v.z(s * b_blk).s(b_blk)
            };
            for (acc, with_bias) in [(false, false), (true, true)] {
                let c = Tensor::from_f32(ctx, "c", &[c0.len()], &c0).unwrap();
                let mut rec = Recorder::new(ctx);
                let dims = Dims {
                    m,
                    n,
                    k,
                    z,
                    nsum: s,
                };
                let biasv = with_bias.then(|| View::rows(&biast, 0, n).z(n));
                let cv = View::rows(&c, 0, n).z(m * n);
                gemm(&mut rec, dims, a_view, b_view, cv, biasv, acc, 1.0).unwrap();
                rec.submit().unwrap();
                let got = c.to_vec(ctx).unwrap();
                let bias_w = with_bias.then_some(&bias[..]);
                let w = want(&a, &b, bias_w, acc.then_some(&c0[..]), m, n, k, z, s);
                let e = rel(&got, &w);
                assert!(
                    e < TOL,
                    "{kernel} case {ci} (m={m} n={n} k={k} z={z} nsum={s} a_t={a_t} b_t={b_t} \
                     align={align} acc={acc}, seed {seed}): relative error {e:.3e}"
                );
                results.push(got);
            }
        }
        results
    }

    /// Operands whose strides are not multiples of 4, large enough for the CPU drivers'
    /// re-layout into vec4 copies (`gemm_relaid`): A and B in both orientations, at an
    /// offset, C misaligned with bias and accumulation. Every variant runs them.
    #[test]
    fn misaligned_operands_match_reference() {
        for ctx in contexts() {
            for (ci, &(m, n, k, at, bt, off)) in [
                (67usize, 131usize, 129usize, false, false, 0usize),
                (130, 7, 1153, true, true, 3),
                (37, 257, 130, true, false, 1),
                (1031, 65, 33, false, true, 0),
            ]
            .iter()
            .enumerate()
            {
                assert!(m * n * k >= RELAYOUT_MIN_MACS);
                let seed = 300 + ci as u64;
                let (a, b) = (data(seed, m * k), data(seed + 1, n * k)); // [m, k], [n, k]
                let (bias, c0) = (data(seed + 2, n), data(seed + 3, m * n));
                let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
                let lay = |v: &[f32], r: usize, c: usize, tr: bool| -> Vec<f32> {
                    let body: Vec<f32> = if tr {
                        transpose(&f(v), r, c).iter().map(|&x| x as f32).collect()
                    } else {
                        v.to_vec()
                    };
                    std::iter::repeat_n(0.5, off).chain(body).collect()
                };
                // A as [m, k] (or [k, m] read transposed); B as [k, n] (or [n, k] transposed).
                let at_t = Tensor::from_f32(&ctx, "a", &[off + m * k], &lay(&a, m, k, at)).unwrap();
                let bt_t =
                    Tensor::from_f32(&ctx, "b", &[off + n * k], &lay(&b, n, k, !bt)).unwrap();
                let biast = Tensor::from_f32(&ctx, "bias", &[n], &bias).unwrap();
                let av = if at {
                    View::rows(&at_t, off, m).t()
                } else {
                    View::rows(&at_t, off, k)
                };
                let bv = if bt {
                    View::rows(&bt_t, off, k).t()
                } else {
                    View::rows(&bt_t, off, n)
                };
                let c = Tensor::from_f32(&ctx, "c", &[m * n], &c0).unwrap();
                let mut rec = Recorder::new(&ctx);
                let dims = Dims {
                    m,
                    n,
                    k,
                    z: 1,
                    nsum: 1,
                };
                let biasv = Some(View::rows(&biast, 0, n));
                gemm(
                    &mut rec,
                    dims,
                    av,
                    bv,
                    View::rows(&c, 0, n),
                    biasv,
                    true,
                    1.0,
                )
                .unwrap();
                rec.submit().unwrap();
                let w = want(&a, &b, Some(&bias), Some(&c0), m, n, k, 1, 1);
                let e = rel(&c.to_vec(&ctx).unwrap(), &w);
                assert!(
                    e < TOL,
                    "{:?} case {ci} (m={m} n={n} k={k} at={at} bt={bt} off={off}): relative error {e:.3e}",
                    ctx.variant()
                );
            }
        }
    }

    /// The strided copy behind the re-layout, against its twin: plain and transposed reads,
    /// offsets, padding columns zeroed, elements outside the block untouched.
    #[test]
    fn copy_strided_matches_reference() {
        use crate::reference::matmul::copy_strided as twin;
        for ctx in contexts() {
            // (rows, cols, source strides (rs, cs), source offset, dst offset, dst row stride,
            // dst columns)
            for (rows, cols, (s_rs, s_cs), s_off, d_off, d_rs, d_cols) in [
                (
                    1usize,
                    1usize,
                    (1usize, 1usize),
                    0usize,
                    0usize,
                    4usize,
                    4usize,
                ),
                (7, 5, (5, 1), 3, 1, 8, 8),
                (5, 7, (1, 5), 0, 2, 8, 7),
                (13, 3, (11, 2), 1, 0, 4, 4),
            ] {
                let n_src = s_off + (rows - 1) * s_rs + (cols - 1) * s_cs + 1;
                let x = data(21, n_src);
                let n_dst = d_off + rows * d_rs + 2;
                let src = Tensor::from_f32(&ctx, "src", &[n_src], &x).unwrap();
                let dst = Tensor::from_f32(&ctx, "dst", &[n_dst], &vec![7.5; n_dst]).unwrap();
                let mut rec = Recorder::new(&ctx);
                copy_strided(
                    &mut rec,
                    &src,
                    (s_off, s_rs, s_cs),
                    &dst,
                    (d_off, d_rs),
                    rows,
                    cols,
                    d_cols,
                )
                .unwrap();
                rec.submit().unwrap();
                let mut want = vec![7.5; n_dst];
                let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                twin(
                    &xs,
                    (s_off, s_rs, s_cs),
                    &mut want,
                    (d_off, d_rs),
                    rows,
                    cols,
                    d_cols,
                );
                let got: Vec<f64> = dst
                    .to_vec(&ctx)
                    .unwrap()
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                assert_eq!(
                    got, want,
                    "copy {rows}x{cols} strides ({s_rs}, {s_cs}) -> {d_rs}, {d_cols}"
                );
            }
        }
    }

    #[test]
    fn transpose_matches_reference() {
        for ctx in contexts() {
            for (nz, rows, cols) in [(1, 1, 1), (2, 7, 3), (1, 65, 129)] {
                let x = data(7, nz * rows * cols);
                let src = Tensor::from_f32(&ctx, "x", &[x.len()], &x).unwrap();
                let dst = Tensor::empty(&ctx, "xt", &[x.len()], DType::F32).unwrap();
                let mut rec = Recorder::new(&ctx);
                crate::kernels::transpose::transpose(&mut rec, &src, &dst, nz, rows, cols).unwrap();
                rec.submit().unwrap();
                let got = dst.to_vec(&ctx).unwrap();
                let mut w = Vec::new();
                for q in 0..nz {
                    let blk: Vec<f64> = x[q * rows * cols..(q + 1) * rows * cols]
                        .iter()
                        .map(|&v| v as f64)
                        .collect();
                    w.extend(transpose(&blk, rows, cols));
                }
                assert_eq!(
                    got.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                    w,
                    "transpose {nz}x{rows}x{cols}"
                );
            }
        }
    }

    /// The value of an IEEE binary16 bit pattern.
    fn f16_value(h: u32) -> f64 {
        let (sign, exp, frac) = ((h >> 15) & 1, (h >> 10) & 31, h & 1023);
        let mag = match exp {
            0 => frac as f64 * (-24f64).exp2(),
            _ => (1.0 + frac as f64 / 1024.0) * (exp as f64 - 15.0).exp2(),
        };
        if sign == 1 { -mag } else { mag }
    }

    /// Sentinel words around the written range show that nothing else is touched.
    const SENTINEL: u32 = 0xdead_beef;

    /// `transpose_into` at an offset and `pack_f16_forward` (as stored and transposed, odd
    /// element counts, even offsets) against the reference. WGSL lets pack2x16float round
    /// either way, so each value may be one f16 ulp from round-to-nearest.
    #[test]
    fn staged_weights_match_reference() {
        use crate::kernels::transpose::stage_weights;
        for ctx in contexts() {
            for (nz, rows, cols) in [(1, 1, 1), (2, 7, 3), (1, 13, 13), (3, 5, 65)] {
                let n = nz * rows * cols;
                let x = data(11, n);
                let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let src = Tensor::from_f32(&ctx, "x", &[n], &x).unwrap();
                for (transposed, f16) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    let off = 6;
                    // Words: f32 values, or f16 pairs; two spare words after the range.
                    let words = if f16 { (off + n).div_ceil(2) } else { off + n } + 2;
                    let dst =
                        Tensor::from_u32(&ctx, "dst", &[words], &vec![SENTINEL; words]).unwrap();
                    let mut rec = Recorder::new(&ctx);
                    stage_weights(&mut rec, &src, &dst, off, transposed, f16, nz, rows, cols)
                        .unwrap();
                    rec.submit().unwrap();
                    let got = dst.to_vec_u32(&ctx).unwrap();
                    let what = format!("{nz}x{rows}x{cols} transposed={transposed} f16={f16}");
                    let (first, last) = if f16 {
                        (off / 2, (off + n).div_ceil(2))
                    } else {
                        (off, off + n)
                    };
                    assert!(
                        got[..first]
                            .iter()
                            .chain(&got[last..])
                            .all(|&w| w == SENTINEL),
                        "{what}: words outside the range changed"
                    );
                    if !f16 {
                        let mut w = Vec::new();
                        for q in 0..nz {
                            let blk = &x64[q * rows * cols..(q + 1) * rows * cols];
                            match transposed {
                                true => w.extend(transpose(blk, rows, cols)),
                                false => w.extend_from_slice(blk),
                            }
                        }
                        let g: Vec<f64> = got[off..off + n]
                            .iter()
                            .map(|&b| f32::from_bits(b) as f64)
                            .collect();
                        assert_eq!(g, w, "{what}");
                        continue;
                    }
                    let want = pack_f16(&x64, nz, rows, cols, transposed);
                    for (i, &wv) in want.iter().enumerate() {
                        let e = off + i;
                        let g = f16_value((got[e / 2] >> (16 * (e % 2))) & 0xffff);
                        assert!(
                            (g - wv).abs() <= f16_ulp(wv),
                            "{what}: element {i} is {g:e}, reference {wv:e}"
                        );
                    }
                    // The padding half after an odd count is zero.
                    if (off + n) % 2 == 1 {
                        assert_eq!(got[(off + n) / 2] >> 16, 0, "{what}: padding half");
                    }
                }
            }
        }
    }
}
