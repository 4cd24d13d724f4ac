//! Launchers for `loss.wgsl`: fused softmax cross-entropy (count, per-row loss and gradient,
//! mean), log-softmax and its backward.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::Result;
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const COUNT: KernelSpec = KernelSpec {
    shader: Shader::Loss,
    entry: "softmax_ce_count",
    bindings: &[R, RW],
};
const FORWARD: KernelSpec = KernelSpec {
    shader: Shader::Loss,
    entry: "softmax_ce_forward",
    bindings: &[R, R, R, RW, RW],
};
const FINALIZE: KernelSpec = KernelSpec {
    shader: Shader::Loss,
    entry: "softmax_ce_finalize",
    bindings: &[R, R, RW],
};
const LOG_SOFTMAX: KernelSpec = KernelSpec {
    shader: Shader::Loss,
    entry: "log_softmax_forward",
    bindings: &[R, RW],
};

const LOG_SOFTMAX_BACKWARD: KernelSpec = KernelSpec {
    shader: Shader::Loss,
    entry: "log_softmax_backward",
    bindings: &[R, R, RW],
};

/// Invocations per row of `softmax_ce_forward` / `log_softmax_forward` (the WGSL `WG`).
const ROW_WG: usize = 64;

/// The uniform `Loss` struct in declaration order.
fn params(rows: usize, vocab: usize, ignore: u32, grad: bool) -> [u32; 4] {
    [rows as u32, vocab as u32, ignore, grad as u32]
}

/// `count [1] =` number of `targets [N]` that are not `ignore`.
pub(crate) fn softmax_ce_count(
    rec: &mut Recorder,
    rows: usize,
    ignore: u32,
    targets: &Tensor,
    count: &Tensor,
) -> Result<()> {
    if rows > 0 {
        check_extent("targets", targets, rows - 1)?;
    }
    check_extent("count", count, 0)?;
    let p = params(rows, 0, ignore, false);
    rec.dispatch(COUNT, &[], &p, &[targets, count], [1, 1, 1])
}

/// Per-row losses `row_loss [N]` and, with `grad`, the gradient of the mean loss
/// `dlogits [N, V]` from `logits [N, V]`, `targets [N]` and `count [1]`. Without `grad`,
/// `dlogits` is not touched and may be any tensor distinct from `row_loss`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn softmax_ce_forward(
    rec: &mut Recorder,
    rows: usize,
    vocab: usize,
    ignore: u32,
    logits: &Tensor,
    targets: &Tensor,
    count: &Tensor,
    row_loss: &Tensor,
    dlogits: &Tensor,
    grad: bool,
) -> Result<()> {
    if rows == 0 {
        return Ok(());
    }
    check_extent("logits", logits, rows * vocab - 1)?;
    check_extent("targets", targets, rows - 1)?;
    check_extent("row loss", row_loss, rows - 1)?;
    if grad {
        // The gradient reads count[0].
        check_extent("count", count, 0)?;
        check_extent("dlogits", dlogits, rows * vocab - 1)?;
    }
    rec.dispatch(
        FORWARD,
        &[],
        &params(rows, vocab, ignore, grad),
        &[logits, targets, count, row_loss, dlogits],
        grid_1d(rows * ROW_WG, ROW_WG),
    )
}

/// `mean [1] = sum row_loss [N] / count` (0 when count = 0), in a fixed order.
pub(crate) fn softmax_ce_finalize(
    rec: &mut Recorder,
    rows: usize,
    row_loss: &Tensor,
    count: &Tensor,
    mean: &Tensor,
) -> Result<()> {
    if rows > 0 {
        check_extent("row loss", row_loss, rows - 1)?;
    }
    // The mean divides by count[0].
    check_extent("count", count, 0)?;
    check_extent("mean", mean, 0)?;
    let p = params(rows, 0, 0, false);
    rec.dispatch(FINALIZE, &[], &p, &[row_loss, count, mean], [1, 1, 1])
}

/// `logp [N, V] = log_softmax(logits [N, V])` row by row.
pub(crate) fn log_softmax_forward(
    rec: &mut Recorder,
    rows: usize,
    vocab: usize,
    logits: &Tensor,
    logp: &Tensor,
) -> Result<()> {
    if rows * vocab == 0 {
        return Ok(());
    }
    check_extent("logits", logits, rows * vocab - 1)?;
    check_extent("log-probabilities", logp, rows * vocab - 1)?;
    let p = params(rows, vocab, 0, false);
    rec.dispatch(
        LOG_SOFTMAX,
        &[],
        &p,
        &[logits, logp],
        grid_1d(rows * ROW_WG, ROW_WG),
    )
}

/// `dx [N, V] (+)= dy - exp(logp) * sum_v dy` row by row (the backward of log-softmax).
pub(crate) fn log_softmax_backward(
    rec: &mut Recorder,
    rows: usize,
    vocab: usize,
    logp: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    accumulate: bool,
) -> Result<()> {
    if rows * vocab == 0 {
        return Ok(());
    }
    check_extent("log-probabilities", logp, rows * vocab - 1)?;
    check_extent("log-probability gradient", dy, rows * vocab - 1)?;
    check_extent("logit gradient", dx, rows * vocab - 1)?;
    let p = params(rows, vocab, 0, accumulate);
    rec.dispatch(
        LOG_SOFTMAX_BACKWARD,
        &[],
        &p,
        &[logp, dy, dx],
        grid_1d(rows * ROW_WG, ROW_WG),
    )
}
