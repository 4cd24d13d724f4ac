//! The skip-gram model with negative sampling (Mikolov et al. 2013, word2vec's SGNS): input
//! (word) vectors `input [V, D]` and output (context) vectors `output [V, D]`; the loss of a
//! batch of N (center, context) pairs with K negatives each is
//! `scale * sum_n [-log sigmoid(v_c . u_o) - sum_k log sigmoid(-v_c . u_k)]`, fused in
//! `wordvec.wgsl` with the coefficients of its gradient; the gradients reach the two tables by
//! the embedding's deterministic scatter-add.

use super::embedding::check_ids;
use super::store::ParamStore;
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result, check_shape};
use crate::kernels::wordvec::{
    SgnsDims, sgns_center_grad, sgns_context_grad, sgns_forward, sgns_loss_sum,
};
use crate::nn::Embedding;
use crate::tensor::{DType, Tensor};

/// The two tables.
#[derive(Clone, Debug)]
pub struct SkipGram {
    /// `input.weight [V, D]`: the word vectors.
    pub input: Embedding,
    /// `output.weight [V, D]`: the context vectors.
    pub output: Embedding,
}

/// Gradients of both tables, `[V, D]` each.
pub struct SkipGramGrads {
    /// Of `input.weight`.
    pub input: Tensor,
    /// Of `output.weight`.
    pub output: Tensor,
}

/// A batch on the device: `centers [N]` and `contexts [N, K + 1]` (slot 0 the true context),
/// built by [`SkipGram::batch`], which checks every id against the model's vocabulary. The
/// fields are private so that a batch always carries the vocabulary its ids were checked
/// against: [`SkipGram::record_loss`] refuses a batch of another vocabulary size.
pub struct SgnsBatch {
    /// `[N]`
    pub(crate) centers: Tensor,
    /// `[N, K + 1]`
    pub(crate) contexts: Tensor,
    /// The V the ids were checked against (all ids are below it).
    pub(crate) vocab: usize,
}

impl SgnsBatch {
    /// `centers [N]`.
    pub fn centers(&self) -> &Tensor {
        &self.centers
    }

    /// `contexts [N, K + 1]`.
    pub fn contexts(&self) -> &Tensor {
        &self.contexts
    }

    /// The vocabulary size V the batch's ids were checked against.
    pub fn vocab(&self) -> usize {
        self.vocab
    }
}

impl SkipGram {
    /// word2vec's initialisation: input vectors uniform in `(-0.5/D, 0.5/D)` from `seed`,
    /// output vectors zero.
    pub fn random(ctx: &Context, vocab: usize, dim: usize, seed: u64) -> Result<SkipGram> {
        let n = ctx.check_tensor("skipgram.input.weight", &[vocab, dim])?;
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
        let w: Vec<f32> = (0..n)
            .map(|_| crate::rnn::uniform(&mut rng, -0.5, 0.5) / dim as f32)
            .collect();
        Ok(SkipGram {
            input: Embedding::new(ctx, vocab, dim, None, &w)?,
            output: Embedding::new(ctx, vocab, dim, None, &vec![0.0; n])?,
        })
    }

    /// V
    pub fn vocab(&self) -> usize {
        self.input.vocab()
    }

    /// D
    pub fn dim(&self) -> usize {
        self.input.dim()
    }

    /// Zeroed gradients.
    pub fn zero_grads(&self, ctx: &Context) -> Result<SkipGramGrads> {
        Ok(SkipGramGrads {
            input: self.input.zero_grad(ctx)?,
            output: self.output.zero_grad(ctx)?,
        })
    }

    /// Registers `input.weight` and `output.weight`.
    pub fn register(&self, store: &mut ParamStore, g: &SkipGramGrads) -> Result<()> {
        self.input.register(store, "input", &g.input)?;
        self.output.register(store, "output", &g.output)
    }

    /// The device batch of `centers [N]` and `contexts [N * (K + 1)]`; ids must be below V.
    pub fn batch(&self, ctx: &Context, centers: &[u32], contexts: &[u32]) -> Result<SgnsBatch> {
        let n = centers.len();
        if n == 0 || contexts.len() % n != 0 || contexts.len() / n < 2 {
            return Err(Error::shape(
                "contexts",
                format!(
                    "{} context ids for {n} centers: need N > 0 and N * (K + 1) ids, K >= 1",
                    contexts.len()
                ),
            ));
        }
        let v = self.vocab();
        check_ids("centers", &[n], centers, v, None)?;
        check_ids("contexts", &[n, contexts.len() / n], contexts, v, None)?;
        Ok(SgnsBatch {
            centers: Tensor::from_u32(ctx, "skip-gram centers", &[n], centers)?,
            contexts: Tensor::from_u32(
                ctx,
                "skip-gram contexts",
                &[n, contexts.len() / n],
                contexts,
            )?,
            vocab: v,
        })
    }

    /// Records the loss of `bt` times `scale` into `total [1]` (added to its content when
    /// `accumulate`) and, given `g`, the gradients of both tables (added to `g`'s content).
    /// `bt` must come from [`SkipGram::batch`] of a model with this vocabulary size.
    pub fn record_loss(
        &self,
        rec: &mut Recorder,
        bt: &SgnsBatch,
        scale: f32,
        total: &Tensor,
        accumulate: bool,
        g: Option<&SkipGramGrads>,
    ) -> Result<()> {
        // The batch's ids were checked against its own V only: one of another model's
        // vocabulary could name rows this model's tables do not have.
        if bt.vocab != self.vocab() {
            return Err(Error::shape(
                "skip-gram batch",
                format!(
                    "built for a vocabulary of {} words, the model has {}",
                    bt.vocab,
                    self.vocab()
                ),
            ));
        }
        let ctx = rec.ctx();
        let (n, slots) = (bt.centers.numel(), bt.contexts.shape()[1]);
        check_shape("skip-gram loss total", total.shape(), &[1])?;
        let d = SgnsDims {
            n,
            slots,
            dim: self.dim(),
            vocab: self.vocab(),
            scale,
        };
        let coef = Tensor::empty(ctx, "skip-gram coefficients", &[n, slots], DType::F32)?;
        let loss = Tensor::empty(ctx, "skip-gram losses", &[n], DType::F32)?;
        let (win, wout) = (&self.input.weight, &self.output.weight);
        sgns_forward(rec, d, win, wout, &bt.centers, &bt.contexts, &coef, &loss)?;
        sgns_loss_sum(rec, d, &loss, total, accumulate)?;
        let Some(g) = g else { return Ok(()) };
        let dc = Tensor::empty(ctx, "skip-gram center gradient", &[n, d.dim], DType::F32)?;
        let dx = Tensor::empty(
            ctx,
            "skip-gram context gradient",
            &[n, slots, d.dim],
            DType::F32,
        )?;
        sgns_center_grad(rec, d, wout, &bt.contexts, &coef, &dc)?;
        sgns_context_grad(rec, d, win, &bt.centers, &coef, &dx)?;
        self.input
            .record_backward(rec, &bt.centers, &dc, &g.input, true)?;
        self.output
            .record_backward(rec, &bt.contexts, &dx, &g.output, true)
    }
}
