//! Choices over the last axis on the device (`decode.wgsl`): arg-max, top-k and sampling, so
//! that greedy decoding, beam search and text generation keep the chosen ids on the device and
//! read back nothing but them.

use super::{AsView, View};
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::kernels::decode::{argmax, sample, topk};
use crate::tensor::{DType, Tensor};

/// How [`record_sample`] draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Softmax temperature, finite and > 0 (for greedy decoding use [`record_argmax`]).
    pub temperature: f32,
    /// Draw only among the `top_k` best (0: from the whole row).
    pub top_k: usize,
    /// Seed of the counter-based generator.
    pub seed: u32,
    /// Step of the generation: `(seed, step, row)` picks the uniform draw, so a run is
    /// reproducible and each step draws afresh.
    pub step: u32,
}

fn leading(x: &View) -> Vec<usize> {
    x.shape()[..x.shape().len() - 1].to_vec()
}

fn nonempty(x: &View, what: &str) -> Result<()> {
    x.f32(what)?;
    if x.cols() == 0 {
        return Err(Error::shape(what, format!("{} has no columns", x.name())));
    }
    Ok(())
}

fn check_out(x: &View, ids: &Tensor, offset: usize) -> Result<()> {
    if ids.dtype() != DType::U32 || offset + x.rows() > ids.numel() {
        return Err(Error::shape(
            ids.name(),
            format!(
                "needs u32 room for {} ids from offset {offset}, has {:?} {:?}",
                x.rows(),
                ids.dtype(),
                ids.shape()
            ),
        ));
    }
    Ok(())
}

/// `ids [...]` (u32, `x`'s leading shape): the index of each row's maximum of `x [..., C]`, the
/// lowest index on a tie.
pub fn record_argmax(rec: &mut Recorder, x: &impl AsView) -> Result<Tensor> {
    let x = x.view();
    nonempty(&x, "argmax input")?;
    let ids = Tensor::empty(rec.ctx(), "argmax", &leading(&x), DType::U32)?;
    argmax(rec, &x, &ids, 0)?;
    Ok(ids)
}

/// [`record_argmax`] written into `ids[offset .. offset + rows]` (a buffer of generated ids).
pub fn record_argmax_into(
    rec: &mut Recorder,
    x: &impl AsView,
    ids: &Tensor,
    offset: usize,
) -> Result<()> {
    let x = x.view();
    nonempty(&x, "argmax input")?;
    check_out(&x, ids, offset)?;
    argmax(rec, &x, ids, offset)
}

/// `(values [..., k], indices [..., k] u32)`: each row's `k` largest elements of `x [..., C]`
/// in descending order, a tie going to the lowest index first; `1 <= k <= C`.
pub fn record_topk(rec: &mut Recorder, x: &impl AsView, k: usize) -> Result<(Tensor, Tensor)> {
    let x = x.view();
    nonempty(&x, "top-k input")?;
    if k == 0 || k > x.cols() {
        return Err(Error::shape(
            "k",
            format!(
                "k = {k} must lie in 1..={} (the last axis of {})",
                x.cols(),
                x.name()
            ),
        ));
    }
    let mut shape = leading(&x);
    shape.push(k);
    let values = Tensor::empty(rec.ctx(), "top-k values", &shape, DType::F32)?;
    let indices = Tensor::empty(rec.ctx(), "top-k indices", &shape, DType::U32)?;
    topk(rec, &x, k, &values, &indices)?;
    Ok((values, indices))
}

fn check_sampling(x: &View, s: &Sampling) -> Result<()> {
    nonempty(x, "sample input")?;
    if !(s.temperature.is_finite() && s.temperature > 0.0) {
        return Err(Error::config(format!(
            "temperature {} must be finite and > 0 (use arg-max for greedy decoding)",
            s.temperature
        )));
    }
    if s.top_k > x.cols() {
        return Err(Error::shape(
            "top_k",
            format!("top-k {} exceeds the last axis ({})", s.top_k, x.cols()),
        ));
    }
    Ok(())
}

/// `ids [...]` (u32): one draw per row of `softmax(x [..., C] / temperature)`, restricted to
/// the row's `top_k` best elements when `top_k > 0`; see [`Sampling`].
pub fn record_sample(rec: &mut Recorder, x: &impl AsView, s: &Sampling) -> Result<Tensor> {
    let x = x.view();
    check_sampling(&x, s)?;
    let ids = Tensor::empty(rec.ctx(), "samples", &leading(&x), DType::U32)?;
    sample(rec, &x, s.top_k, s.temperature, s.seed, s.step, &ids, 0)?;
    Ok(ids)
}

/// [`record_sample`] written into `ids[offset .. offset + rows]`.
pub fn record_sample_into(
    rec: &mut Recorder,
    x: &impl AsView,
    s: &Sampling,
    ids: &Tensor,
    offset: usize,
) -> Result<()> {
    let x = x.view();
    check_sampling(&x, s)?;
    check_out(&x, ids, offset)?;
    sample(rec, &x, s.top_k, s.temperature, s.seed, s.step, ids, offset)
}
