//! Launchers for `transpose.wgsl`: transposes, strided copies, and half-precision packing of
//! weights.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::Result;
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const TRANSPOSE: KernelSpec = KernelSpec {
    shader: Shader::Transpose,
    entry: "transpose_forward",
    bindings: &[R, RW],
};

/// `dst [z, cols, rows] = src [z, rows, cols]^T`.
pub(crate) fn transpose(
    rec: &mut Recorder,
    src: &Tensor,
    dst: &Tensor,
    nz: usize,
    rows: usize,
    cols: usize,
) -> Result<()> {
    transpose_into(rec, src, dst, 0, nz, rows, cols)
}

/// Like [`transpose`], writing `dst[dst_off..]` (a slice of a packed buffer).
pub(crate) fn transpose_into(
    rec: &mut Recorder,
    src: &Tensor,
    dst: &Tensor,
    dst_off: usize,
    nz: usize,
    rows: usize,
    cols: usize,
) -> Result<()> {
    if nz * rows * cols == 0 {
        return Ok(());
    }
    check_extent("transpose src", src, nz * rows * cols - 1)?;
    check_extent("transpose dst", dst, dst_off + nz * rows * cols - 1)?;
    let p = [rows as u32, cols as u32, nz as u32, dst_off as u32, 0];
    rec.dispatch(
        TRANSPOSE,
        &[],
        &p,
        &[src, dst],
        [rows.div_ceil(64) as u32, cols as u32, nz as u32],
    )
}

const PACK_F16: KernelSpec = KernelSpec {
    shader: Shader::Transpose,
    entry: "pack_f16_forward",
    bindings: &[R, RW],
};

/// `src [nz, rows, cols]` (its transpose `[nz, cols, rows]` with `transposed`) rounded to f16
/// and packed two per word into `dst` from f16 element `dst_off` (even), for the recurrent
/// kernels' half-precision weights.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_f16(
    rec: &mut Recorder,
    src: &Tensor,
    dst: &Tensor,
    dst_off: usize,
    transposed: bool,
    nz: usize,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let n = nz * rows * cols;
    if n == 0 {
        return Ok(());
    }
    if dst_off % 2 != 0 || dst_off + n > 2 * dst.numel() {
        return Err(crate::error::Error::Device(format!(
            "internal: f16 pack of {n} values at {dst_off} into {} words",
            dst.numel()
        )));
    }
    check_extent("pack_f16 src", src, n - 1)?;
    let p = [
        rows as u32,
        cols as u32,
        nz as u32,
        dst_off as u32,
        transposed as u32,
    ];
    rec.dispatch(PACK_F16, &[], &p, &[src, dst], grid_1d(n.div_ceil(2), 64))
}

/// `src [nz, rows, cols]` into `dst` from element `dst_off` in the layout and precision a
/// recurrent forward kernel reads: as stored, transposed (`[nz, cols, rows]`), or either as f16
/// pairs (`dst_off` then counts f16 values and must be even).
#[allow(clippy::too_many_arguments)]
pub(crate) fn stage_weights(
    rec: &mut Recorder,
    src: &Tensor,
    dst: &Tensor,
    dst_off: usize,
    transposed: bool,
    f16: bool,
    nz: usize,
    rows: usize,
    cols: usize,
) -> Result<()> {
    if f16 {
        pack_f16(rec, src, dst, dst_off, transposed, nz, rows, cols)
    } else if transposed {
        transpose_into(rec, src, dst, dst_off, nz, rows, cols)
    } else {
        check_extent("staged weights", dst, dst_off + nz * rows * cols - 1)?;
        rec.copy(src, 0, dst, dst_off, nz * rows * cols)?;
        Ok(())
    }
}

const COPY_STRIDED: KernelSpec = KernelSpec {
    shader: Shader::Transpose,
    entry: "copy_strided",
    bindings: &[R, RW],
};

/// A `rows x cols` block read from `src` at `s_off + r s_rs + c s_cs`, written to `dst` at
/// `d_off + r d_rs + c` for `c < d_cols` (zeros in columns `cols..d_cols`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn copy_strided(
    rec: &mut Recorder,
    src: &Tensor,
    (s_off, s_rs, s_cs): (usize, usize, usize),
    dst: &Tensor,
    (d_off, d_rs): (usize, usize),
    rows: usize,
    cols: usize,
    d_cols: usize,
) -> Result<()> {
    if rows * cols == 0 {
        return Ok(());
    }
    check_extent(
        "strided copy src",
        src,
        s_off + (rows - 1) * s_rs + (cols - 1) * s_cs,
    )?;
    check_extent(
        "strided copy dst",
        dst,
        d_off + (rows - 1) * d_rs + d_cols.max(cols) - 1,
    )?;
    let p = [
        rows as u32,
        cols as u32,
        d_cols.max(cols) as u32,
        s_off as u32,
        s_rs as u32,
        s_cs as u32,
        d_off as u32,
        d_rs as u32,
    ];
    rec.dispatch(
        COPY_STRIDED,
        &[],
        &p,
        &[src, dst],
        grid_1d(rows * d_cols.max(cols), 64),
    )
}
