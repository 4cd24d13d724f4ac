//! Softmax cross-entropy over a vocabulary, fused with its gradient, and log-softmax
//! (torch.nn.functional.cross_entropy with `reduction="mean"` and `ignore_index`;
//! torch.log_softmax).
//!
//! One call records three dispatches: the count of non-ignored rows, one workgroup per row that
//! computes the row's loss and (optionally) writes the gradient of the mean loss w.r.t. the
//! logits, and a fixed-order mean. Rows are max-subtracted, so logits of any magnitude give
//! finite results. Probabilities never leave the device; the mean loss is a one-element device
//! tensor the caller reads only when it wants ([`CeOutput::loss`]).
//!
//! Targets from the host are validated before upload ([`targets`]). Targets already on the
//! device cannot be checked without a round trip: there, a target `>= V` that is not the
//! ignore index makes its row's loss (and so the mean) NaN, and its gradient row is the softmax
//! without the one-hot term.

use super::embedding::check_ids;
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::kernels::loss::{
    log_softmax_forward, softmax_ce_count, softmax_ce_finalize, softmax_ce_forward,
};
use crate::tensor::{DType, Tensor};

/// What [`record_softmax_cross_entropy`] leaves on the device.
#[derive(Clone, Debug)]
pub struct CeOutput {
    /// `[1]`: the mean loss over the non-ignored rows (0 when every row is ignored).
    pub loss: Tensor,
    /// `[...]` (the targets' shape): each row's loss, 0 for ignored rows.
    pub row_loss: Tensor,
    /// `[..., V]` (the logits' shape): gradient of the mean loss w.r.t. the logits, when asked
    /// for; zero on ignored rows.
    pub dlogits: Option<Tensor>,
    /// `[1]`: the number of non-ignored rows (as f32).
    pub count: Tensor,
}

impl CeOutput {
    /// Reads the mean loss (waits for the submission that computes it).
    pub fn loss(&self, ctx: &Context) -> Result<f32> {
        Ok(self.loss.read_range(ctx, 0, 1)?[0])
    }

    /// The logit gradient `[..., V]` (an internal error when it was not asked for).
    pub fn grad(&self) -> Result<&Tensor> {
        self.dlogits
            .as_ref()
            .ok_or_else(|| Error::Device("internal: no logit gradient".into()))
    }
}

/// Uploads targets of `shape` after checking each is below `vocab` or equal to `ignore_index`;
/// the error names the first offending position.
pub fn targets(
    ctx: &Context,
    shape: &[usize],
    data: &[u32],
    vocab: usize,
    ignore_index: Option<u32>,
) -> Result<Tensor> {
    check_ids("targets", shape, data, vocab, ignore_index)?;
    Tensor::from_u32(ctx, "targets", shape, data)
}

/// (rows N, vocabulary V) of `logits [..., V]`.
fn rows_vocab(logits: &Tensor) -> Result<(usize, usize)> {
    let s = logits.shape();
    match s.last() {
        Some(&v) if v > 0 && logits.dtype() == DType::F32 => Ok((logits.numel() / v, v)),
        _ => Err(Error::shape(
            "logits",
            format!("expected f32 [..., V] with V >= 1, got {s:?}"),
        )),
    }
}

/// Records the mean cross-entropy of `logits [..., V]` against `targets [...]` (u32), ignoring
/// rows whose target is `ignore_index`; with `grad`, also the gradient w.r.t. the logits.
pub fn record_softmax_cross_entropy(
    rec: &mut Recorder,
    logits: &Tensor,
    targets: &Tensor,
    ignore_index: Option<u32>,
    grad: bool,
) -> Result<CeOutput> {
    let ctx = rec.ctx();
    let (rows, vocab) = rows_vocab(logits)?;
    let s = logits.shape();
    if targets.dtype() != DType::U32 || targets.shape() != &s[..s.len() - 1] {
        return Err(Error::shape(
            "targets",
            format!(
                "expected u32 {:?} (the logits' leading shape), got {:?} {:?}",
                &s[..s.len() - 1],
                targets.dtype(),
                targets.shape()
            ),
        ));
    }
    let ignore = ignore_index.unwrap_or(u32::MAX);
    let count = Tensor::empty(ctx, "loss count", &[1], DType::F32)?;
    let row_loss = Tensor::empty(ctx, "row loss", targets.shape(), DType::F32)?;
    let loss = Tensor::empty(ctx, "loss", &[1], DType::F32)?;
    let dlogits = if grad {
        Tensor::empty(ctx, "grad_logits", s, DType::F32)?
    } else {
        Tensor::empty(ctx, "unused", &[4], DType::F32)?
    };
    softmax_ce_count(rec, rows, ignore, targets, &count)?;
    softmax_ce_forward(
        rec, rows, vocab, ignore, logits, targets, &count, &row_loss, &dlogits, grad,
    )?;
    softmax_ce_finalize(rec, rows, &row_loss, &count, &loss)?;
    Ok(CeOutput {
        loss,
        row_loss,
        dlogits: grad.then_some(dlogits),
        count,
    })
}

/// [`record_softmax_cross_entropy`], one submit.
pub fn softmax_cross_entropy(
    ctx: &Context,
    logits: &Tensor,
    targets: &Tensor,
    ignore_index: Option<u32>,
    grad: bool,
) -> Result<CeOutput> {
    let mut rec = Recorder::new(ctx);
    let out = record_softmax_cross_entropy(&mut rec, logits, targets, ignore_index, grad)?;
    rec.submit()?;
    Ok(out)
}

/// Records `log_softmax(logits [..., V])` over the last dimension -> `[..., V]`, for sampling
/// and beam search.
pub fn record_log_softmax(rec: &mut Recorder, logits: &Tensor) -> Result<Tensor> {
    let (rows, vocab) = rows_vocab(logits)?;
    let out = Tensor::empty(rec.ctx(), "log-probabilities", logits.shape(), DType::F32)?;
    log_softmax_forward(rec, rows, vocab, logits, &out)?;
    Ok(out)
}

/// [`record_log_softmax`], one submit.
pub fn log_softmax(ctx: &Context, logits: &Tensor) -> Result<Tensor> {
    let mut rec = Recorder::new(ctx);
    let out = record_log_softmax(&mut rec, logits)?;
    rec.submit()?;
    Ok(out)
}
