//! Masked softmax over the last axis (attention weights over source positions) and the
//! backward of log-softmax (`softmax.wgsl`, `loss.wgsl`).

use super::{AsView, check_u32};
use crate::encoder::Recorder;
use crate::error::{Error, Result, check_shape};
use crate::kernels::softmax::{RowLengths, masked_softmax_backward, masked_softmax_forward};
use crate::tensor::{DType, Tensor};

/// Checks `lengths` for `rows` rows grouped `rows_per_length` to an entry.
fn row_lengths<'a>(
    lengths: Option<&'a Tensor>,
    rows: usize,
    rows_per_length: usize,
) -> Result<Option<RowLengths<'a>>> {
    let Some(l) = lengths else { return Ok(None) };
    if rows_per_length == 0 || rows % rows_per_length != 0 {
        return Err(Error::shape(
            "lengths",
            format!("{rows} rows do not split into groups of {rows_per_length}"),
        ));
    }
    check_u32("lengths", l, rows / rows_per_length)?;
    Ok(Some(RowLengths {
        lengths: l,
        rows_per_len: rows_per_length,
    }))
}

/// `y [..., C] = softmax(x)` over the last axis, each row restricted to its first `len`
/// columns: `len = lengths[r / rows_per_length]` for row r (scores `[N, M, S]` with source
/// lengths `[N]`: `rows_per_length = M`), all C without lengths. Positions at or past a row's
/// length get probability exactly 0. Lengths come from [`super::lengths`] (checked to lie in
/// `1..=C`); device-made lengths are clamped to C, and a length of 0 gives a row of zeros.
pub fn record_masked_softmax(
    rec: &mut Recorder,
    x: &impl AsView,
    lengths: Option<&Tensor>,
    rows_per_length: usize,
) -> Result<Tensor> {
    let x = x.view();
    x.f32("softmax input")?;
    let len = row_lengths(lengths, x.rows(), rows_per_length)?;
    let y = Tensor::empty(rec.ctx(), "softmax", x.shape(), DType::F32)?;
    masked_softmax_forward(rec, &x, len, &y)?;
    Ok(y)
}

/// The backward of [`record_masked_softmax`] from its output `y` and `dy` (both `[..., C]`):
/// `dx (+)= y * (dy - sum(dy * y))` over each row's valid columns; columns past the length get
/// nothing.
pub fn record_masked_softmax_backward(
    rec: &mut Recorder,
    y: &Tensor,
    dy: &Tensor,
    lengths: Option<&Tensor>,
    rows_per_length: usize,
    dx: &impl AsView,
) -> Result<()> {
    let dx = dx.view();
    dx.writable("softmax input gradient")?;
    check_shape("softmax output", y.shape(), dx.shape())?;
    check_shape("softmax output gradient", dy.shape(), dx.shape())?;
    let len = row_lengths(lengths, dx.rows(), rows_per_length)?;
    masked_softmax_backward(rec, y, dy, len, &dx, true)
}

/// The backward of [`crate::nn::record_log_softmax`] from its output `logp [..., V]`:
/// `dx (+)= dy - softmax * sum(dy)` row by row (all `[..., V]`).
pub fn record_log_softmax_backward(
    rec: &mut Recorder,
    logp: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<()> {
    let v = *logp.shape().last().unwrap_or(&0);
    for t in [dy, dx] {
        check_shape(t.name(), t.shape(), logp.shape())?;
    }
    if [logp, dy, dx].iter().any(|t| t.dtype() != DType::F32) || v == 0 {
        return Err(Error::shape(
            "log_softmax backward",
            "expects f32 [..., V], V >= 1",
        ));
    }
    crate::kernels::loss::log_softmax_backward(rec, logp.numel() / v, v, logp, dy, dx, true)
}
