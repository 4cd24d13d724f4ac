//! Linear layer (torch.nn.Linear): `y [..., out] = x [..., in] W^T + b` over any leading shape,
//! on the engine's GEMM.
//!
//! Forward: a transposed copy `W^T [in, out]` (so neighbouring invocations read neighbouring
//! weights, as the RNN's input projection does), then one GEMM with the bias; 2 dispatches.
//! Backward: `dx = dy W` and `dW (+)= dy^T x` (two GEMMs over all M = prod(leading) rows),
//! `db (+)= column sums of dy`; 3 dispatches, fixed summation order.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::store::ParamStore;
use crate::context::{Context, KernelVariant};
use crate::encoder::Recorder;
use crate::error::{Error, Result, check_shape};
use crate::kernels::gemm::{Dims, View, gemm};
use crate::kernels::reduce::colsum;
use crate::kernels::transpose::transpose;
use crate::tensor::{DType, Tensor};

/// `shape` with its last dimension replaced by `last`.
fn with_last(shape: &[usize], last: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    if let Some(l) = s.last_mut() {
        *l = last;
    }
    s
}

/// `weight [out, in]`, `bias [out]`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[out, in]`
    pub weight: Tensor,
    /// `[out]`
    pub bias: Option<Tensor>,
    fan_in: usize,
    fan_out: usize,
}

/// Gradients of a [`Linear`]'s parameters, laid out like them.
#[derive(Clone, Debug)]
pub struct LinearGrads {
    /// `[out, in]`
    pub weight: Tensor,
    /// `[out]`
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A layer from `weight` (row-major `[out, in]`) and an optional `bias [out]`.
    pub fn new(
        ctx: &Context,
        fan_in: usize,
        fan_out: usize,
        weight: &[f32],
        bias: Option<&[f32]>,
    ) -> Result<Self> {
        if fan_in == 0 || fan_out == 0 {
            return Err(Error::config(format!(
                "linear: in_features {fan_in} and out_features {fan_out} must be at least 1"
            )));
        }
        Ok(Linear {
            weight: Tensor::from_f32(ctx, "linear.weight", &[fan_out, fan_in], weight)?,
            bias: bias
                .map(|b| Tensor::from_f32(ctx, "linear.bias", &[fan_out], b))
                .transpose()?,
            fan_in,
            fan_out,
        })
    }

    /// PyTorch's initialisation: weight and bias U(-1/sqrt(in), 1/sqrt(in)), from ChaCha8 seeded
    /// with `seed` (weight first, then bias).
    pub fn random(
        ctx: &Context,
        fan_in: usize,
        fan_out: usize,
        bias: bool,
        seed: u64,
    ) -> Result<Self> {
        let n = ctx.check_tensor("linear.weight", &[fan_out, fan_in])?;
        let k = 1.0 / (fan_in.max(1) as f32).sqrt();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut draw = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| crate::rnn::uniform(&mut rng, -k, k))
                .collect()
        };
        let w = draw(n);
        let b = bias.then(|| draw(fan_out));
        Self::new(ctx, fan_in, fan_out, &w, b.as_deref())
    }

    /// in_features
    pub fn fan_in(&self) -> usize {
        self.fan_in
    }

    /// out_features
    pub fn fan_out(&self) -> usize {
        self.fan_out
    }

    /// Rows M of `x [..., in]`, checking its last dimension.
    fn rows(&self, name: &str, x: &Tensor, last: usize) -> Result<usize> {
        let s = x.shape();
        if s.is_empty() || s[s.len() - 1] != last || x.dtype() != DType::F32 {
            return Err(Error::shape(
                name,
                format!("expected f32 [..., {last}], got {:?} {s:?}", x.dtype()),
            ));
        }
        Ok(x.numel() / last)
    }

    /// Records `y [..., out] = x [..., in] W^T + b`.
    pub fn record_forward(&self, rec: &mut Recorder, x: &Tensor) -> Result<Tensor> {
        let ctx = rec.ctx();
        let m = self.rows("input", x, self.fan_in)?;
        let (i, o) = (self.fan_in, self.fan_out);
        let y = Tensor::empty(ctx, "linear output", &with_last(x.shape(), o), DType::F32)?;
        // GPUs read W^T from a transposed copy (coalesced loads); the CPU drivers' vec4 kernel
        // reads W as stored, along k, and skips the copy.
        let cpu = ctx.variant() == KernelVariant::Simple && ctx.cpu_blocks();
        let wt = if cpu {
            None
        } else {
            let wt = Tensor::empty(ctx, "linear weight transposed", &[i, o], DType::F32)?;
            transpose(rec, &self.weight, &wt, 1, o, i)?;
            Some(wt)
        };
        let wview = match &wt {
            Some(wt) => View::rows(wt, 0, o),
            None => View::rows(&self.weight, 0, i).t(),
        };
        gemm(
            rec,
            Dims {
                m,
                n: o,
                k: i,
                z: 1,
                nsum: 1,
            },
            View::rows(x, 0, i),
            wview,
            View::rows(&y, 0, o),
            self.bias.as_ref().map(|b| View::rows(b, 0, o)),
            false,
            1.0,
        )?;
        Ok(y)
    }

    /// The forward, one submit.
    pub fn forward(&self, ctx: &Context, x: &Tensor) -> Result<Tensor> {
        let mut rec = Recorder::new(ctx);
        let y = self.record_forward(&mut rec, x)?;
        rec.submit()?;
        Ok(y)
    }

    /// Zero-filled gradients for the parameters.
    pub fn zero_grads(&self, ctx: &Context) -> Result<LinearGrads> {
        Ok(LinearGrads {
            weight: Tensor::zeros(ctx, "grad.linear.weight", &[self.fan_out, self.fan_in])?,
            bias: self
                .bias
                .as_ref()
                .map(|_| Tensor::zeros(ctx, "grad.linear.bias", &[self.fan_out]))
                .transpose()?,
        })
    }

    /// Records the backward from the forward's input `x [..., in]` and `dy [..., out]`:
    /// `grads.weight (+)= dy^T x`, `grads.bias (+)= sum of dy over rows` (`accumulate` adds to
    /// their content, else overwrites it); returns `dx [..., in] = dy W`.
    pub fn record_backward(
        &self,
        rec: &mut Recorder,
        x: &Tensor,
        dy: &Tensor,
        grads: &LinearGrads,
        accumulate: bool,
    ) -> Result<Tensor> {
        let ctx = rec.ctx();
        let m = self.rows("input", x, self.fan_in)?;
        let (i, o) = (self.fan_in, self.fan_out);
        check_shape("grad_output", dy.shape(), &with_last(x.shape(), o))?;
        check_shape("grad_weight", grads.weight.shape(), &[o, i])?;
        match (&self.bias, &grads.bias) {
            (Some(_), Some(db)) => check_shape("grad_bias", db.shape(), &[o])?,
            (None, None) => {}
            _ => {
                return Err(Error::shape(
                    "grad_bias",
                    "present iff the layer has a bias",
                ));
            }
        }
        let dx = Tensor::empty(ctx, "grad_input", x.shape(), DType::F32)?;
        if m == 0 {
            // No rows: the parameter gradients of an empty batch are zero.
            if !accumulate {
                rec.clear(&grads.weight, 0, o * i)?;
                if let Some(db) = &grads.bias {
                    rec.clear(db, 0, o)?;
                }
            }
            return Ok(dx);
        }
        // dx [M, in] = dy [M, out] W [out, in]
        gemm(
            rec,
            Dims {
                m,
                n: i,
                k: o,
                z: 1,
                nsum: 1,
            },
            View::rows(dy, 0, o),
            View::rows(&self.weight, 0, i),
            View::rows(&dx, 0, i),
            None,
            false,
            1.0,
        )?;
        // dW [out, in] (+)= dy^T [out, M] x [M, in]
        gemm(
            rec,
            Dims {
                m: o,
                n: i,
                k: m,
                z: 1,
                nsum: 1,
            },
            View::rows(dy, 0, o).t(),
            View::rows(x, 0, i),
            View::rows(&grads.weight, 0, i),
            None,
            accumulate,
            1.0,
        )?;
        if let Some(db) = &grads.bias {
            colsum(rec, dy, 0, o, 0, m, o, 1, db, 0, accumulate)?;
        }
        Ok(dx)
    }

    /// The backward into fresh gradients, one submit; returns `(dx, grads)`.
    pub fn backward(
        &self,
        ctx: &Context,
        x: &Tensor,
        dy: &Tensor,
    ) -> Result<(Tensor, LinearGrads)> {
        let grads = LinearGrads {
            weight: Tensor::empty(
                ctx,
                "grad.linear.weight",
                &[self.fan_out, self.fan_in],
                DType::F32,
            )?,
            bias: self
                .bias
                .as_ref()
                .map(|_| Tensor::empty(ctx, "grad.linear.bias", &[self.fan_out], DType::F32))
                .transpose()?,
        };
        let mut rec = Recorder::new(ctx);
        let dx = self.record_backward(&mut rec, x, dy, &grads, false)?;
        rec.submit()?;
        Ok((dx, grads))
    }

    /// Registers `prefix.weight` (and `prefix.bias`) with their gradients in `store`.
    pub fn register(
        &self,
        store: &mut ParamStore,
        prefix: &str,
        grads: &LinearGrads,
    ) -> Result<()> {
        store.add(&format!("{prefix}.weight"), &self.weight, &grads.weight)?;
        match (&self.bias, &grads.bias) {
            (Some(b), Some(db)) => store.add(&format!("{prefix}.bias"), b, db),
            (None, None) => Ok(()),
            _ => Err(Error::shape(
                format!("{prefix}.bias"),
                "gradient present iff the layer has a bias",
            )),
        }
    }
}
