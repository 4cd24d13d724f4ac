//! Launchers for `softmax.wgsl`: the masked softmax and its backward, one workgroup per row.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::Result;
use crate::ops::View;
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const FORWARD: KernelSpec = KernelSpec {
    shader: Shader::Softmax,
    entry: "masked_softmax_forward",
    bindings: &[R, R, RW],
};
const BACKWARD: KernelSpec = KernelSpec {
    shader: Shader::Softmax,
    entry: "masked_softmax_backward",
    bindings: &[R, R, R, RW],
};

/// Lanes per row (the WGSL `WG`).
const ROW_WG: usize = 64;

/// Per-row lengths: `lengths[r / rows_per_len]` valid columns of row r.
#[derive(Clone, Copy)]
pub(crate) struct RowLengths<'a> {
    pub lengths: &'a Tensor,
    pub rows_per_len: usize,
}

fn params(
    rows: usize,
    cols: usize,
    acc: bool,
    len: Option<RowLengths>,
    x: (usize, usize),
    o: (usize, usize),
) -> [u32; 8] {
    [
        rows as u32,
        cols as u32,
        acc as u32 | (len.is_some() as u32) << 1,
        len.map_or(1, |l| l.rows_per_len.max(1)) as u32,
        x.0 as u32,
        x.1 as u32,
        o.0 as u32,
        o.1 as u32,
    ]
}

fn check_lengths(len: Option<RowLengths>, rows: usize) -> Result<()> {
    if let Some(l) = len {
        check_extent(
            "softmax lengths",
            l.lengths,
            (rows - 1) / l.rows_per_len.max(1),
        )?;
    }
    Ok(())
}

/// `y [rows, cols] = masked softmax of x` (a view).
pub(crate) fn masked_softmax_forward(
    rec: &mut Recorder,
    x: &View,
    len: Option<RowLengths>,
    y: &Tensor,
) -> Result<()> {
    let (rows, cols) = (x.rows(), x.cols());
    if rows * cols == 0 {
        return Ok(());
    }
    check_extent("softmax input", x.tensor(), x.max_index())?;
    check_extent("softmax output", y, rows * cols - 1)?;
    check_lengths(len, rows)?;
    let p = params(rows, cols, false, len, (x.offset(), x.stride()), (0, cols));
    let lt = len.map_or(x.tensor(), |l| l.lengths); // a read-only placeholder
    rec.dispatch(
        FORWARD,
        &[],
        &p,
        &[x.tensor(), lt, y],
        grid_1d(rows * ROW_WG, ROW_WG),
    )
}

/// `dx (+)= masked softmax backward` from the forward's `y` and `dy` (both `[rows, cols]`).
pub(crate) fn masked_softmax_backward(
    rec: &mut Recorder,
    y: &Tensor,
    dy: &Tensor,
    len: Option<RowLengths>,
    dx: &View,
    accumulate: bool,
) -> Result<()> {
    let (rows, cols) = (dx.rows(), dx.cols());
    if rows * cols == 0 {
        return Ok(());
    }
    check_extent("softmax output", y, rows * cols - 1)?;
    check_extent("softmax output gradient", dy, rows * cols - 1)?;
    check_extent("softmax input gradient", dx.tensor(), dx.max_index())?;
    check_lengths(len, rows)?;
    let p = params(
        rows,
        cols,
        accumulate,
        len,
        (0, cols),
        (dx.offset(), dx.stride()),
    );
    let lt = len.map_or(y, |l| l.lengths);
    rec.dispatch(
        BACKWARD,
        &[],
        &p,
        &[y, lt, dy, dx.tensor()],
        grid_1d(rows * ROW_WG, ROW_WG),
    )
}
