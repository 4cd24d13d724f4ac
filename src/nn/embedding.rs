//! Embedding lookup (torch.nn.Embedding) with a deterministic gradient into the table.
//!
//! Forward: `out [..., E] = weight [V, E] [ids [...]]`, one dispatch.
//!
//! Backward, without floating-point atomics: the positions `0..N` are sorted on the device by
//! (id, position) with a bitonic sort (one dispatch per stage, `log2 P (log2 P + 1) / 2` for
//! `P = N` rounded up to a power of two), one binary search per id finds where its positions
//! start, and each element `(v, e)` of `dweight` sums `dy` over its id's positions in order. Every sum has a fixed order, so
//! two runs give identical bits; the padding id and out-of-range ids get no gradient.
//!
//! Ids from the host are validated before upload ([`Embedding::ids`]): an id `>= V` is an
//! [`Error::Shape`] naming its position. Ids already on the device cannot be checked without a
//! round trip: there, an id `>= V` yields a row of NaN in the forward (so the loss turns NaN
//! rather than silently training on a wrong row) and contributes nothing to the gradient.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::store::ParamStore;
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result, check_shape};
use crate::kernels::embedding::{
    EmbedDims, NO_PADDING, embedding_backward, embedding_forward, embedding_segments,
    embedding_sort,
};
use crate::tensor::{DType, Tensor, numel};

/// A lookup table `weight [V, E]`, optionally with a padding id whose row gets no gradient.
#[derive(Clone, Debug)]
pub struct Embedding {
    /// `[V, E]`
    pub weight: Tensor,
    vocab: usize,
    dim: usize,
    padding_idx: Option<u32>,
}

/// Standard normal values from ChaCha8 (Box-Muller on 24-bit uniforms): stable across versions.
pub(crate) fn normal(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u1 = 1.0 - crate::rnn::uniform(&mut rng, 0.0, 1.0) as f64; // (0, 1]
            let u2 = crate::rnn::uniform(&mut rng, 0.0, 1.0) as f64;
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

impl Embedding {
    /// A table of `vocab` rows of `dim` values from `weight` (row-major `[V, E]`).
    pub fn new(
        ctx: &Context,
        vocab: usize,
        dim: usize,
        padding_idx: Option<u32>,
        weight: &[f32],
    ) -> Result<Self> {
        if vocab == 0 || dim == 0 || vocab >= u32::MAX as usize {
            return Err(Error::config(format!(
                "embedding: vocabulary {vocab} and dimension {dim} must be in 1..2^32-1"
            )));
        }
        if let Some(p) = padding_idx
            && p as usize >= vocab
        {
            return Err(Error::config(format!(
                "embedding: padding id {p} is outside the vocabulary 0..{vocab}"
            )));
        }
        Ok(Embedding {
            weight: Tensor::from_f32(ctx, "embedding.weight", &[vocab, dim], weight)?,
            vocab,
            dim,
            padding_idx,
        })
    }

    /// PyTorch's initialisation: N(0, 1) from ChaCha8 seeded with `seed`, the padding row zero.
    pub fn random(
        ctx: &Context,
        vocab: usize,
        dim: usize,
        padding_idx: Option<u32>,
        seed: u64,
    ) -> Result<Self> {
        let n = ctx.check_tensor("embedding.weight", &[vocab, dim])?;
        let mut w = normal(seed, n);
        if let Some(p) = padding_idx
            && (p as usize) < vocab
        {
            w[p as usize * dim..(p as usize + 1) * dim].fill(0.0);
        }
        Self::new(ctx, vocab, dim, padding_idx, &w)
    }

    /// V
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// E
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The padding id, if any.
    pub fn padding_idx(&self) -> Option<u32> {
        self.padding_idx
    }

    /// Uploads ids of `shape` (e.g. `[T, B]`) after checking each is below V; the error names
    /// the first offending position.
    pub fn ids(&self, ctx: &Context, shape: &[usize], ids: &[u32]) -> Result<Tensor> {
        check_ids("ids", shape, ids, self.vocab, None)?;
        Tensor::from_u32(ctx, "ids", shape, ids)
    }

    fn dims(&self, ids: &Tensor) -> Result<EmbedDims> {
        if ids.dtype() != DType::U32 {
            return Err(Error::shape("ids", "must be u32"));
        }
        Ok(EmbedDims {
            n: ids.numel(),
            dim: self.dim,
            vocab: self.vocab,
            padding: self.padding_idx.unwrap_or(NO_PADDING),
        })
    }

    /// Records the lookup: `ids [...]` (u32) -> `[..., E]`.
    pub fn record_forward(&self, rec: &mut Recorder, ids: &Tensor) -> Result<Tensor> {
        let d = self.dims(ids)?;
        let mut shape = ids.shape().to_vec();
        shape.push(self.dim);
        let out = Tensor::empty(rec.ctx(), "embedding output", &shape, DType::F32)?;
        embedding_forward(rec, d, &self.weight, ids, &out)?;
        Ok(out)
    }

    /// The lookup, one submit.
    pub fn forward(&self, ctx: &Context, ids: &Tensor) -> Result<Tensor> {
        let mut rec = Recorder::new(ctx);
        let out = self.record_forward(&mut rec, ids)?;
        rec.submit()?;
        Ok(out)
    }

    /// A zero-filled gradient for the table, `[V, E]`.
    pub fn zero_grad(&self, ctx: &Context) -> Result<Tensor> {
        Tensor::zeros(ctx, "grad.embedding.weight", &[self.vocab, self.dim])
    }

    /// Records the gradient into the table: `dweight [V, E] (+)=` the sum of `dy [..., E]` over
    /// the positions of each id (`accumulate` adds to `dweight`'s content, else overwrites it).
    pub fn record_backward(
        &self,
        rec: &mut Recorder,
        ids: &Tensor,
        dy: &Tensor,
        dweight: &Tensor,
        accumulate: bool,
    ) -> Result<()> {
        let d = self.dims(ids)?;
        let mut shape = ids.shape().to_vec();
        shape.push(self.dim);
        check_shape("grad_output", dy.shape(), &shape)?;
        check_shape("grad_weight", dweight.shape(), &[self.vocab, self.dim])?;
        let perm = Tensor::empty(rec.ctx(), "embedding order", &[d.p2()], DType::U32)?;
        let starts = Tensor::empty(rec.ctx(), "embedding segments", &[d.vocab + 1], DType::U32)?;
        embedding_sort(rec, d, ids, &perm)?;
        embedding_segments(rec, d, ids, &perm, &starts)?;
        embedding_backward(rec, d, &starts, &perm, dy, dweight, accumulate)
    }

    /// The gradient into a fresh `[V, E]` tensor, one submit.
    pub fn backward(&self, ctx: &Context, ids: &Tensor, dy: &Tensor) -> Result<Tensor> {
        let dweight = Tensor::empty(
            ctx,
            "grad.embedding.weight",
            &[self.vocab, self.dim],
            DType::F32,
        )?;
        let mut rec = Recorder::new(ctx);
        self.record_backward(&mut rec, ids, dy, &dweight, false)?;
        rec.submit()?;
        Ok(dweight)
    }

    /// Registers `prefix.weight` with gradient `dweight` in `store`.
    pub fn register(&self, store: &mut ParamStore, prefix: &str, dweight: &Tensor) -> Result<()> {
        store.add(&format!("{prefix}.weight"), &self.weight, dweight)
    }
}

/// Checks that `ids` has `numel(shape)` values, each below `vocab` or equal to `allowed`; the
/// error names `what` and the first offending position (as an index into `shape`).
pub(crate) fn check_ids(
    what: &str,
    shape: &[usize],
    ids: &[u32],
    vocab: usize,
    allowed: Option<u32>,
) -> Result<()> {
    if ids.len() != numel(shape) {
        return Err(Error::shape(
            what,
            format!("{} values for shape {shape:?}", ids.len()),
        ));
    }
    if let Some(i) = ids
        .iter()
        .position(|&id| id as usize >= vocab && Some(id) != allowed)
    {
        let mut pos = vec![0; shape.len()];
        let mut r = i;
        for (k, &s) in shape.iter().enumerate().rev() {
            pos[k] = r % s;
            r /= s;
        }
        return Err(Error::shape(
            what,
            format!(
                "{what}{pos:?} = {} is outside the vocabulary 0..{vocab}",
                ids[i]
            ),
        ));
    }
    Ok(())
}
