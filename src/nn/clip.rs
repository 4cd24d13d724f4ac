//! Global-norm gradient clipping on the device (torch.nn.utils.clip_grad_norm_).

use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::Result;
use crate::kernels::reduce::{norm_finalize, scale_apply, sumsq, sumsq_parts};
use crate::tensor::{DType, Tensor};

/// Scales every tensor in `grads` by `min(1, max_norm / (norm + 1e-6))`, where `norm` is the L2
/// norm over all of them; returns `norm`. The norm and the scale are computed on the device, in a
/// fixed order (deterministic); only the norm is read back. `max_norm <= 0` only measures.
pub fn clip_grad_norm(ctx: &Context, grads: &[&Tensor], max_norm: f32) -> Result<f32> {
    let mut rec = Recorder::new(ctx);
    let out = record_clip_grad_norm(&mut rec, grads, max_norm)?;
    rec.submit()?;
    Ok(out.read_range(ctx, 0, 1)?[0])
}

/// Records [`clip_grad_norm`] into `rec` without reading anything back; returns the device
/// tensor `[norm, scale]` (read element 0 for the norm once the recording was submitted).
pub fn record_clip_grad_norm(
    rec: &mut Recorder,
    grads: &[&Tensor],
    max_norm: f32,
) -> Result<Tensor> {
    let ctx = rec.ctx();
    let total: usize = grads.iter().map(|t| sumsq_parts(t.numel())).sum();
    let parts = Tensor::empty(ctx, "norm partials", &[total.max(1)], DType::F32)?;
    let out = Tensor::empty(ctx, "norm", &[2], DType::F32)?;
    let mut off = 0;
    for t in grads {
        sumsq(rec, t, 0, t.numel(), &parts, off)?;
        off += sumsq_parts(t.numel());
    }
    if total == 0 {
        rec.clear(&parts, 0, 1)?;
    }
    norm_finalize(rec, &parts, total.max(1), max_norm, &out)?;
    if max_norm > 0.0 {
        for t in grads {
            scale_apply(rec, &out, t, 0, t.numel())?;
        }
    }
    Ok(out)
}
