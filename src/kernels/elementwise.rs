//! Launchers for `elementwise.wgsl`: unary and binary maps over 2-D strided views (the
//! operation an override constant) and the indexed row copy of a gather.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::Result;
use crate::ops::View;
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const UNARY: KernelSpec = KernelSpec {
    shader: Shader::Elementwise,
    entry: "unary_forward",
    bindings: &[R, R, RW],
};
const BINARY: KernelSpec = KernelSpec {
    shader: Shader::Elementwise,
    entry: "binary_forward",
    bindings: &[R, R, RW],
};
const GATHER: KernelSpec = KernelSpec {
    shader: Shader::Elementwise,
    entry: "gather_rows_forward",
    bindings: &[R, R, RW],
};

/// The `OP` of `unary_forward`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unary {
    Copy = 0,
    Tanh = 1,
    Sigmoid = 2,
    Relu = 3,
}

/// The `OP` of `binary_forward`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binary {
    Add = 0,
    Sub = 1,
    Mul = 2,
    TanhAdd = 3,
    TanhBackward = 4,
    SigmoidBackward = 5,
    ReluBackward = 6,
}

/// The uniform `Ew` struct in declaration order.
#[allow(clippy::too_many_arguments)]
fn params(
    out: &View,
    alpha: f32,
    accumulate: bool,
    a: &View,
    b: Option<&View>,
    a_rows: usize,
) -> [u32; 11] {
    let (b_off, b_rs) = b.map_or((0, 0), |b| (b.offset(), b.stride()));
    [
        out.rows() as u32,
        out.cols() as u32,
        accumulate as u32,
        alpha.to_bits(),
        a.offset() as u32,
        a.stride() as u32,
        b_off as u32,
        b_rs as u32,
        out.offset() as u32,
        out.stride() as u32,
        a_rows as u32,
    ]
}

fn check(what: &str, v: &View) -> Result<()> {
    check_extent(what, v.tensor(), v.max_index())
}

/// Checks the elements the kernels read of the input `v`: `rows x cols` at its offset and row
/// stride, with `rows x cols` the output's (or the gather's) extents, not `v`'s own.
fn check_read(what: &str, v: &View, rows: usize, cols: usize) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    check_extent(
        what,
        v.tensor(),
        v.offset() + (rows - 1) * v.stride() + cols - 1,
    )
}

/// `out (+)= alpha * op(a)` over `out`'s rows and columns (`a` has the same).
pub(crate) fn unary(
    rec: &mut Recorder,
    op: Unary,
    a: &View,
    out: &View,
    alpha: f32,
    accumulate: bool,
) -> Result<()> {
    let n = out.rows() * out.cols();
    if n == 0 {
        return Ok(());
    }
    // The kernel reads `a` over out's rows and columns.
    check_read("elementwise input", a, out.rows(), out.cols())?;
    check("elementwise output", out)?;
    let p = params(out, alpha, accumulate, a, None, 0);
    rec.dispatch(
        UNARY,
        &[("OP", op as u32)],
        &p,
        &[a.tensor(), a.tensor(), out.tensor()],
        grid_1d(n, 256),
    )
}

/// `out (+)= alpha * op(a, b)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn binary(
    rec: &mut Recorder,
    op: Binary,
    a: &View,
    b: &View,
    out: &View,
    alpha: f32,
    accumulate: bool,
) -> Result<()> {
    let n = out.rows() * out.cols();
    if n == 0 {
        return Ok(());
    }
    // The kernel reads `a` and `b` over out's rows and columns.
    check_read("elementwise input a", a, out.rows(), out.cols())?;
    check_read("elementwise input b", b, out.rows(), out.cols())?;
    check("elementwise output", out)?;
    let p = params(out, alpha, accumulate, a, Some(b), 0);
    rec.dispatch(
        BINARY,
        &[("OP", op as u32)],
        &p,
        &[a.tensor(), b.tensor(), out.tensor()],
        grid_1d(n, 256),
    )
}

/// `out[i, c] = a[idx[i], c]` for `i < out.rows()`; `a` has `a.rows()` rows (an index beyond
/// them gives a NaN row).
pub(crate) fn gather_rows(rec: &mut Recorder, a: &View, idx: &Tensor, out: &View) -> Result<()> {
    let n = out.rows() * out.cols();
    if n == 0 {
        return Ok(());
    }
    // The kernel reads rows below a.rows() of `a`, but out's columns of each.
    check_read("gather source", a, a.rows(), out.cols())?;
    check("gather output", out)?;
    check_extent("gather indices", idx, out.rows() - 1)?;
    let p = params(out, 1.0, false, a, None, a.rows());
    rec.dispatch(
        GATHER,
        &[],
        &p,
        &[a.tensor(), idx, out.tensor()],
        grid_1d(n, 256),
    )
}
