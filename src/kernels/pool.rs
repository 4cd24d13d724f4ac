//! Launchers for `pool.wgsl`: mean, max and last-step pooling over time with lengths, and
//! their one backward kernel.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::Result;
use crate::ops::View;
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const MEAN: KernelSpec = KernelSpec {
    shader: Shader::Pool,
    entry: "pool_mean_forward",
    bindings: &[R, R, RW],
};
const MAX: KernelSpec = KernelSpec {
    shader: Shader::Pool,
    entry: "pool_max_forward",
    bindings: &[R, R, RW, RW],
};
const LAST: KernelSpec = KernelSpec {
    shader: Shader::Pool,
    entry: "pool_last_forward",
    bindings: &[R, R, RW],
};
const BACKWARD: KernelSpec = KernelSpec {
    shader: Shader::Pool,
    entry: "pool_backward",
    bindings: &[R, R, R, RW],
};

/// Which pooling (the backward's `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Mean = 0,
    Max = 1,
    Last = 2,
}

/// Sizes of one call: x is `[seq, batch, cols]`, columns `< split` take the last valid step
/// (last pooling).
#[derive(Clone, Copy)]
pub(crate) struct PoolDims {
    pub seq: usize,
    pub batch: usize,
    pub cols: usize,
    pub split: usize,
}

fn params(d: PoolDims, acc: bool, x: &View, kind: Kind) -> [u32; 8] {
    [
        d.seq as u32,
        d.batch as u32,
        d.cols as u32,
        acc as u32,
        x.offset() as u32,
        x.stride() as u32,
        d.split as u32,
        kind as u32,
    ]
}

/// `out [B, C]` (and for max `arg [B, C]`) from `x [T, B, C]` (a view) and `lengths [B]`.
pub(crate) fn pool_forward(
    rec: &mut Recorder,
    kind: Kind,
    d: PoolDims,
    x: &View,
    lengths: &Tensor,
    out: &Tensor,
    arg: Option<&Tensor>,
) -> Result<()> {
    let n = d.batch * d.cols;
    if n == 0 || d.seq == 0 {
        return Ok(());
    }
    check_extent("pool input", x.tensor(), x.max_index())?;
    check_extent("pool lengths", lengths, d.batch - 1)?;
    check_extent("pool output", out, n - 1)?;
    let p = params(d, false, x, kind);
    let grid = grid_1d(n, 256);
    match (kind, arg) {
        (Kind::Max, Some(a)) => {
            check_extent("pool arg-max", a, n - 1)?;
            rec.dispatch(MAX, &[], &p, &[x.tensor(), lengths, out, a], grid)
        }
        (Kind::Mean, _) => rec.dispatch(MEAN, &[], &p, &[x.tensor(), lengths, out], grid),
        (Kind::Last, _) => rec.dispatch(LAST, &[], &p, &[x.tensor(), lengths, out], grid),
        (Kind::Max, None) => Err(crate::error::Error::Device(
            "internal: max pooling without an arg-max tensor".into(),
        )),
    }
}

/// `dx [T, B, C] (+)=` the pooling's gradient from `dy [B, C]` (a view for dx).
#[allow(clippy::too_many_arguments)]
pub(crate) fn pool_backward(
    rec: &mut Recorder,
    kind: Kind,
    d: PoolDims,
    dy: &Tensor,
    lengths: &Tensor,
    arg: Option<&Tensor>,
    dx: &View,
    accumulate: bool,
) -> Result<()> {
    let n = d.seq * d.batch * d.cols;
    if n == 0 {
        return Ok(());
    }
    check_extent("pool output gradient", dy, d.batch * d.cols - 1)?;
    check_extent("pool lengths", lengths, d.batch - 1)?;
    check_extent("pool input gradient", dx.tensor(), dx.max_index())?;
    let arg = match (kind, arg) {
        (Kind::Max, Some(a)) => {
            check_extent("pool arg-max", a, d.batch * d.cols - 1)?;
            a
        }
        // Max pooling's backward reads arg [B, C]: no stand-in of another size will do.
        (Kind::Max, None) => {
            return Err(crate::error::Error::Device(
                "internal: max pooling backward without an arg-max tensor".into(),
            ));
        }
        // Mean and last pooling never read `arg`: `lengths` only fills the binding.
        _ => lengths,
    };
    let p = params(d, accumulate, dx, kind);
    rec.dispatch(
        BACKWARD,
        &[],
        &p,
        &[dy, lengths, arg, dx.tensor()],
        grid_1d(n, 256),
    )
}
