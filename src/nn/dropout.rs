//! Inverted dropout (torch.nn.Dropout), training only, from the same counter-based hash as the
//! RNN's inter-layer dropout (`dropout.wgsl`; CPU twin [`crate::reference::dropout`]), so CPU
//! and GPU masks agree bit for bit and no mask tensor is stored.
//!
//! A tensor `[..., B, U]` is treated as `[T, B, U]` with T the product of the leading
//! dimensions (a 1-D tensor as `[1, 1, U]`): element (t, b, u) is kept when
//! `hash(seed, stream, t, b, u)` clears the threshold. The RNN uses streams `0..L-1` for its
//! layers with its own `dropout_seed`; give each dropout layer a stream of its own (e.g. 1000 +
//! its index) so masks of layers sharing a seed are independent.

use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::kernels::dropout::{MaskKey, dropout};
use crate::tensor::{DType, Tensor};

/// Dropout with probability `p`, its masks from hash stream `stream`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// Probability of zeroing an element, in `[0, 1]`.
    pub p: f32,
    /// Hash stream (distinguishes dropout layers that share a seed).
    pub stream: u32,
}

/// (batch B, units U) of a tensor `[..., B, U]`.
fn geometry(x: &Tensor) -> (usize, usize) {
    let s = x.shape();
    let u = s.last().copied().unwrap_or(1);
    let b = if s.len() >= 2 { s[s.len() - 2] } else { 1 };
    (b, u)
}

impl Dropout {
    /// Dropout with probability `p` on hash stream `stream`.
    pub fn new(p: f32, stream: u32) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::config(format!(
                "dropout probability {p} is outside [0, 1]"
            )));
        }
        Ok(Dropout { p, stream })
    }

    fn apply(&self, rec: &mut Recorder, backward: bool, x: &Tensor, seed: u32) -> Result<Tensor> {
        if x.dtype() != DType::F32 {
            return Err(Error::shape("input", "must be f32"));
        }
        let (b, u) = geometry(x);
        let out = Tensor::empty(rec.ctx(), "dropout output", x.shape(), DType::F32)?;
        let key = MaskKey {
            seed,
            stream: self.stream,
            p: self.p,
            t0: 0,
        };
        dropout(rec, backward, key, b, u, x, &out)?;
        Ok(out)
    }

    /// Records `y = mask * x / (1 - p)` for `x [..., B, U]` with the mask of `seed`. Outside
    /// training (or with p = 0) returns `x` itself and records nothing.
    pub fn record_forward(
        &self,
        rec: &mut Recorder,
        x: &Tensor,
        seed: u32,
        train: bool,
    ) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(x.clone());
        }
        self.apply(rec, false, x, seed)
    }

    /// Records `dx = mask * dy / (1 - p)` with the forward's `seed` (training forward only;
    /// with p = 0 returns `dy` itself).
    pub fn record_backward(&self, rec: &mut Recorder, dy: &Tensor, seed: u32) -> Result<Tensor> {
        if self.p == 0.0 {
            return Ok(dy.clone());
        }
        self.apply(rec, true, dy, seed)
    }

    /// [`record_forward`](Self::record_forward), one submit.
    pub fn forward(&self, ctx: &Context, x: &Tensor, seed: u32, train: bool) -> Result<Tensor> {
        let mut rec = Recorder::new(ctx);
        let y = self.record_forward(&mut rec, x, seed, train)?;
        rec.submit()?;
        Ok(y)
    }

    /// [`record_backward`](Self::record_backward), one submit.
    pub fn backward(&self, ctx: &Context, dy: &Tensor, seed: u32) -> Result<Tensor> {
        let mut rec = Recorder::new(ctx);
        let dx = self.record_backward(&mut rec, dy, seed)?;
        rec.submit()?;
        Ok(dx)
    }
}
