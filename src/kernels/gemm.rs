//! Launcher for `matmul.wgsl`: C[z] = alpha * sum_i A[z,i] B[z,i] (+ bias) (+ C).

use super::{R, RW, check_extent};
use crate::context::KernelVariant;
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
const REDUCE: KernelSpec = KernelSpec {
    shader: Shader::Matmul,
    entry: "matmul_reduce",
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

/// Sizes of one GEMM call: C is `[z, m, n]`, the inner dimension `k`, `nsum` products summed.
#[derive(Clone, Copy)]
pub(crate) struct Dims {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub z: usize,
    pub nsum: usize,
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
    let (spec, tile) = match ctx.variant() {
        // 128x128 tiles only where they still give a few workgroups per compute unit.
        KernelVariant::Tiled if m * n * z >= 128 * 128 * target => (LARGE, 128),
        KernelVariant::Tiled => (TILED, 64),
        KernelVariant::Simple => (REGBLOCK, 32),
    };
    let tiles = m.div_ceil(tile) * n.div_ceil(tile) * z;
    // Split-K when C alone gives too few workgroups and K is long (weight gradients: C is a
    // weight matrix, K is T*B): each split sums kchunk of K into a partial buffer and
    // matmul_reduce adds the partials in order (deterministic).
    let ksplit = if ctx.variant() == KernelVariant::Tiled && 2 * tiles <= target && k >= 1024 {
        (target / tiles).clamp(2, (k / 256).min(64))
    } else {
        1
    };
    let kchunk = k.div_ceil(ksplit).div_ceil(16) * 16;
    let ksplit = k.div_ceil(kchunk);
    let words = |c_off: usize, c_rs: usize, c_zs: usize, flags: u32, c_ss: usize| {
        [
            m as u32,
            n as u32,
            k as u32,
            nsum as u32,
            a.off as u32,
            a.rs as u32,
            a.cs as u32,
            a.zs as u32,
            b.off as u32,
            b.rs as u32,
            b.cs as u32,
            b.zs as u32,
            c_off as u32,
            c_rs as u32,
            c_zs as u32,
            a.ss as u32,
            b.ss as u32,
            bias_off as u32,
            bias_zs as u32,
            flags,
            alpha.to_bits(),
            ksplit as u32,
            kchunk as u32,
            c_ss as u32,
            z as u32,
        ]
    };
    // The bias binding is read-only; when there is no bias bind A (also read-only) rather than C.
    let bias_t = if bias.is_some() { bias_t } else { a.t };
    let groups = [
        n.div_ceil(tile) as u32,
        m.div_ceil(tile) as u32,
        (z * ksplit) as u32,
    ];
    if ksplit == 1 {
        let params = words(c.off, c.rs, c.zs, flags, 0);
        return rec.dispatch(spec, &[], &params, &[a.t, b.t, bias_t, c.t], groups);
    }
    let parts = Tensor::empty(
        ctx,
        "split-K partials",
        &[ksplit * z * m * n],
        crate::DType::F32,
    )?;
    let params = words(0, n, m * n, 0, z * m * n);
    rec.dispatch(spec, &[], &params, &[a.t, b.t, bias_t, &parts], groups)?;
    let params = words(c.off, c.rs, c.zs, flags, z * m * n);
    let grid = super::grid_1d(z * m * n, 256);
    rec.dispatch(REDUCE, &[], &params, &[&parts, &parts, bias_t, c.t], grid)
}
