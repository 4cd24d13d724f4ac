//! Launcher for `transpose.wgsl`.

use super::{R, RW, check_extent};
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
    if nz * rows * cols == 0 {
        return Ok(());
    }
    check_extent("transpose src", src, nz * rows * cols - 1)?;
    check_extent("transpose dst", dst, nz * rows * cols - 1)?;
    let p = [rows as u32, cols as u32, nz as u32];
    rec.dispatch(
        TRANSPOSE,
        &[],
        &p,
        &[src, dst],
        [rows.div_ceil(64) as u32, cols as u32, nz as u32],
    )
}
