//! Launchers for `reduce.wgsl`: column sums (bias gradients) and global-norm clipping.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::Result;
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const COLSUM: KernelSpec = KernelSpec {
    shader: Shader::Reduce,
    entry: "colsum_forward",
    bindings: &[R, RW],
};
const SUMSQ: KernelSpec = KernelSpec {
    shader: Shader::Reduce,
    entry: "sumsq_partial",
    bindings: &[R, RW],
};
const FINALIZE: KernelSpec = KernelSpec {
    shader: Shader::Reduce,
    entry: "norm_finalize",
    bindings: &[R, RW],
};
const SCALE: KernelSpec = KernelSpec {
    shader: Shader::Reduce,
    entry: "scale_apply",
    bindings: &[R, RW],
};

/// Elements each `sumsq_partial` workgroup reduces.
pub(crate) const SUMSQ_CHUNK: usize = 16384;

fn params(words: &[(usize, u32)]) -> [u32; 12] {
    let mut p = [0u32; 12];
    for &(i, v) in words {
        p[i] = v;
    }
    p
}

/// `out[z, n] (+)= sum_{r < rows} src[in_off + z*in_zs + r*in_rs + n]` for `n < cols`, `z < nz`;
/// `out` rows are `cols` apart from `out_off`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn colsum(
    rec: &mut Recorder,
    src: &Tensor,
    in_off: usize,
    in_rs: usize,
    in_zs: usize,
    rows: usize,
    cols: usize,
    nz: usize,
    out: &Tensor,
    out_off: usize,
    accumulate: bool,
) -> Result<()> {
    if rows == 0 || cols == 0 || nz == 0 {
        return Ok(());
    }
    check_extent(
        "colsum in",
        src,
        in_off + (nz - 1) * in_zs + (rows - 1) * in_rs + cols - 1,
    )?;
    check_extent("colsum out", out, out_off + nz * cols - 1)?;
    let p = params(&[
        (0, rows as u32),
        (1, cols as u32),
        (2, in_off as u32),
        (3, in_rs as u32),
        (4, in_zs as u32),
        (5, out_off as u32),
        (6, cols as u32),
        (7, accumulate as u32),
    ]);
    rec.dispatch(
        COLSUM,
        &[],
        &p,
        &[src, out],
        [cols.div_ceil(64) as u32, 1, nz as u32],
    )
}

/// Number of partial sums `sumsq` writes for a tensor of `len` elements.
pub(crate) fn sumsq_parts(len: usize) -> usize {
    len.div_ceil(SUMSQ_CHUNK)
}

/// Sums of squares of `src[in_off .. in_off+len]` in chunks, into `parts[out_off ..]`.
pub(crate) fn sumsq(
    rec: &mut Recorder,
    src: &Tensor,
    in_off: usize,
    len: usize,
    parts: &Tensor,
    out_off: usize,
) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    check_extent("sumsq in", src, in_off + len - 1)?;
    check_extent("sumsq out", parts, out_off + sumsq_parts(len) - 1)?;
    let p = params(&[
        (2, in_off as u32),
        (5, out_off as u32),
        (8, len as u32),
        (9, SUMSQ_CHUNK as u32),
    ]);
    rec.dispatch(
        SUMSQ,
        &[],
        &p,
        &[src, parts],
        [sumsq_parts(len) as u32, 1, 1],
    )
}

/// `out = [sqrt(sum parts[..nparts]), scale]` with `scale = min(1, max_norm / (norm + 1e-6))`
/// (1 when `max_norm <= 0`).
pub(crate) fn norm_finalize(
    rec: &mut Recorder,
    parts: &Tensor,
    nparts: usize,
    max_norm: f32,
    out: &Tensor,
) -> Result<()> {
    // The kernel reads parts[..nparts] and writes out[0..2].
    if nparts > 0 {
        check_extent("norm partials", parts, nparts - 1)?;
    }
    check_extent("norm", out, 1)?;
    let p = params(&[(10, max_norm.to_bits()), (11, nparts as u32)]);
    rec.dispatch(FINALIZE, &[], &p, &[parts, out], [1, 1, 1])
}

/// `x[in_off .. in_off+len] *= factor[1]`.
pub(crate) fn scale_apply(
    rec: &mut Recorder,
    factor: &Tensor,
    x: &Tensor,
    in_off: usize,
    len: usize,
) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    check_extent("scale_apply", x, in_off + len - 1)?;
    // The factor is element 1 of norm_finalize's [norm, scale].
    check_extent("scale_apply factor", factor, 1)?;
    let p = params(&[(2, in_off as u32), (8, len as u32)]);
    rec.dispatch(SCALE, &[], &p, &[factor, x], grid_1d(len, 256))
}
