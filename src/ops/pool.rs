//! Pooling over time with per-sequence lengths (`pool.wgsl`) and row gathers by device
//! indices (`elementwise.wgsl`, backward on the embedding's deterministic scatter-add).

use super::{AsView, View, check_u32};
use crate::encoder::Recorder;
use crate::error::{Error, Result, check_shape};
use crate::kernels::embedding::{
    EmbedDims, NO_PADDING, embedding_backward, embedding_segments, embedding_sort,
};
use crate::kernels::pool::{Kind, PoolDims, pool_backward, pool_forward};
use crate::tensor::{DType, Tensor};

/// Which pooling a backward undoes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// [`record_pool_mean`]
    Mean,
    /// [`record_pool_max`] (needs its arg-max tensor)
    Max,
    /// [`record_last_step`] with its `split`
    Last {
        /// Columns below it took the last valid step, the others step 0.
        split: usize,
    },
}

/// `(T, B, C)` of `x [T, B, C]`, checking `lengths [B]`.
fn tbc(x: &View, lengths: &Tensor) -> Result<(usize, usize, usize)> {
    x.f32("pool input")?;
    let [t, b, c] = *x.shape() else {
        return Err(Error::shape(
            "pool input",
            format!("{} must be [T, B, C], got {:?}", x.name(), x.shape()),
        ));
    };
    check_u32("lengths", lengths, b)?;
    Ok((t, b, c))
}

fn forward(
    rec: &mut Recorder,
    kind: Kind,
    x: &View,
    lengths: &Tensor,
    split: usize,
) -> Result<(Tensor, Option<Tensor>)> {
    let (t, b, c) = tbc(x, lengths)?;
    let ctx = rec.ctx();
    let out = Tensor::empty(ctx, "pooled", &[b, c], DType::F32)?;
    let arg = match kind {
        Kind::Max => Some(Tensor::empty(ctx, "pool arg-max", &[b, c], DType::U32)?),
        _ => None,
    };
    let d = PoolDims {
        seq: t,
        batch: b,
        cols: c,
        split,
    };
    pool_forward(rec, kind, d, x, lengths, &out, arg.as_ref())?;
    Ok((out, arg))
}

/// `[B, C]`: the mean of `x [T, B, C]` over each sequence's valid steps `t < lengths[b]`.
/// Lengths come from [`super::lengths`] (checked to lie in `1..=T`); device-made lengths are
/// clamped to `1..=T`.
pub fn record_pool_mean(rec: &mut Recorder, x: &impl AsView, lengths: &Tensor) -> Result<Tensor> {
    Ok(forward(rec, Kind::Mean, &x.view(), lengths, 0)?.0)
}

/// `([B, C], arg [B, C] u32)`: the maximum of `x [T, B, C]` over each sequence's valid steps
/// and the first step that holds it (ties go to the earliest step); the backward routes the
/// gradient there.
pub fn record_pool_max(
    rec: &mut Recorder,
    x: &impl AsView,
    lengths: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let (out, arg) = forward(rec, Kind::Max, &x.view(), lengths, 0)?;
    let arg = arg.ok_or_else(|| Error::Device("internal: no arg-max".into()))?;
    Ok((out, arg))
}

/// `[B, C]`: each sequence's state at its last valid step, `x[lengths[b] - 1, b, c]`, for
/// columns `c < split`, and at step 0 for the others: for a bidirectional output
/// `[T, B, 2H]` with `split = H`, the forward direction's final state next to the reverse
/// direction's (PyTorch's `h_n` of a packed sequence); `split = C` for one direction.
pub fn record_last_step(
    rec: &mut Recorder,
    x: &impl AsView,
    lengths: &Tensor,
    split: usize,
) -> Result<Tensor> {
    let x = x.view();
    if split > x.cols() {
        return Err(Error::shape(
            "split",
            format!("{split} exceeds the {} columns", x.cols()),
        ));
    }
    Ok(forward(rec, Kind::Last, &x, lengths, split)?.0)
}

/// The backward of a pooling: `dx [T, B, C] (+)=` the gradient `dy [B, C]` routed to the steps
/// the forward read (mean: `dy / len` to every valid step; max: to the arg-max step; last: to
/// the step it took). Positions past a sequence's length get nothing.
pub fn record_pool_backward(
    rec: &mut Recorder,
    kind: PoolKind,
    dy: &Tensor,
    lengths: &Tensor,
    arg: Option<&Tensor>,
    dx: &impl AsView,
) -> Result<()> {
    let dx = dx.view();
    dx.writable("pool input gradient")?;
    let (t, b, c) = tbc(&dx, lengths)?;
    check_shape("pool output gradient", dy.shape(), &[b, c])?;
    let (k, split) = match kind {
        PoolKind::Mean => (Kind::Mean, 0),
        PoolKind::Max => {
            let a = arg.ok_or_else(|| Error::shape("arg", "max pooling's backward needs it"))?;
            if a.dtype() != DType::U32 {
                return Err(Error::shape(
                    "arg",
                    "must be the u32 arg-max of the forward",
                ));
            }
            check_shape("arg", a.shape(), &[b, c])?;
            (Kind::Max, 0)
        }
        PoolKind::Last { split } => (Kind::Last, split),
    };
    let d = PoolDims {
        seq: t,
        batch: b,
        cols: c,
        split,
    };
    pool_backward(rec, k, d, dy, lengths, arg, &dx, true)
}

/// `out [M, C] = x [N, C] [idx [M]]`: rows of a view picked by device indices (u32; reordering
/// beams, picking per-word states). Indices from [`super::indices`] are checked on the host; a
/// device-made index `>= N` gives a row of NaN.
pub fn record_gather_rows(rec: &mut Recorder, x: &impl AsView, idx: &Tensor) -> Result<Tensor> {
    let x = x.view().with_leading(&[x.view().rows()])?;
    x.f32("gather source")?;
    if idx.dtype() != DType::U32 {
        return Err(Error::shape(idx.name(), "indices must be u32"));
    }
    let m = idx.numel();
    let out = Tensor::empty(rec.ctx(), "gathered", &[m, x.cols()], DType::F32)?;
    crate::kernels::elementwise::gather_rows(rec, &x, idx, &out.as_view())?;
    Ok(out)
}

/// The backward of [`record_gather_rows`]: `dx [N, C] (+)=` each row of `dy [M, C]` added to
/// the row its index picked, as a deterministic scatter-add (the positions sorted by index,
/// each row's sum in position order; no atomics). `dx` is a whole tensor.
pub fn record_gather_rows_backward(
    rec: &mut Recorder,
    idx: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<()> {
    let n = dx.shape().first().copied().unwrap_or(0);
    let c = dx.numel() / n.max(1);
    if idx.dtype() != DType::U32 || dx.dtype() != DType::F32 {
        return Err(Error::shape(
            "gather backward",
            "u32 indices and an f32 gradient",
        ));
    }
    check_shape("gather output gradient", dy.shape(), &[idx.numel(), c])?;
    let d = EmbedDims {
        n: idx.numel(),
        dim: c,
        vocab: n,
        padding: NO_PADDING,
    };
    let ctx = rec.ctx();
    let perm = Tensor::empty(ctx, "gather order", &[d.p2()], DType::U32)?;
    let starts = Tensor::empty(ctx, "gather segments", &[n + 1], DType::U32)?;
    embedding_sort(rec, d, idx, &perm)?;
    embedding_segments(rec, d, idx, &perm, &starts)?;
    embedding_backward(rec, d, &starts, &perm, dy, dx, true)
}
