//! The fixed-window model's forward, backward, scoring and sampling (see the parent module's
//! docs for the model). Contexts are rows of N token ids, oldest first; the embedding of
//! `ids [M, N]` is `[M, N, E]`, which read as `[M, N E]` is exactly the concatenation the
//! hidden layer takes, so no copy is needed.

use super::{LanguageModel, SAMPLE_CHUNK, SampleOptions, Score, score_in_chunks};
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::nn::{Linear, LinearGrads, record_softmax_cross_entropy};
use crate::ops::{record_tanh, record_tanh_backward};
use crate::tensor::{DType, Tensor};

/// What the window backward needs from the forward.
pub(super) struct WindowSaved {
    /// `[M, N E]`: the concatenated embeddings.
    x: Tensor,
    /// `[M, H]`: tanh's output.
    h: Tensor,
    /// `[M, H]`: the decoder's input (after dropout).
    pub hd: Tensor,
}

impl LanguageModel {
    /// The context of the token at position `i` of `ids`: `ids[i - N .. i]`, left-padded with
    /// the line-end token where it reaches before the start; `None` when it does and the
    /// vocabulary has no line end.
    pub(super) fn window_context(&self, ids: &[u32], i: usize) -> Option<Vec<u32>> {
        let n = self.config.context;
        if i >= n {
            return Some(ids[i - n..i].to_vec());
        }
        let pad = self.line_end?;
        let mut c = vec![pad; n - i];
        c.extend_from_slice(&ids[..i]);
        Some(c)
    }

    /// Records the forward of `ids [M, N]`: logits `[M, V]`; with `train` (the step's mask
    /// seed), dropout before the decoder.
    pub(super) fn record_window(
        &self,
        rec: &mut Recorder,
        hidden: &Linear,
        ids: &Tensor,
        train: Option<u32>,
    ) -> Result<(Tensor, WindowSaved)> {
        let m = ids.shape()[0];
        let emb = self.embedding.record_forward(rec, ids)?;
        let x = emb.reshape(&[m, hidden.fan_in()])?;
        let pre = hidden.record_forward(rec, &x)?;
        let h = record_tanh(rec, &pre)?;
        let hd = match train {
            Some(seed) => self.dropout.record_forward(rec, &h, seed, true)?,
            None => h.clone(),
        };
        let logits = self.decoder.record_forward(rec, &hd)?;
        Ok((logits, WindowSaved { x, h, hd }))
    }

    /// Records the backward below the output dropout, from `dh [M, H]` (the gradient of the
    /// tanh layer's output) into the gradient slots (accumulating), down to the embedding
    /// table.
    pub(super) fn record_window_backward(
        &self,
        rec: &mut Recorder,
        hidden: &Linear,
        ids: &Tensor,
        saved: &WindowSaved,
        dh: &Tensor,
        (demb, dhidden): (&Tensor, &LinearGrads),
    ) -> Result<()> {
        let dpre = Tensor::empty(rec.ctx(), "grad tanh input", saved.h.shape(), DType::F32)?;
        rec.clear(&dpre, 0, dpre.numel())?;
        record_tanh_backward(rec, dh, &saved.h, &dpre)?;
        let dx = hidden.record_backward(rec, &saved.x, &dpre, dhidden, true)?;
        let dx = dx.reshape(&[ids.shape()[0], ids.shape()[1], self.embedding.dim()])?;
        self.embedding.record_backward(rec, ids, &dx, demb, true)
    }

    /// [`LanguageModel::evaluate`] for the window model over `ids` (already cut to its limit).
    pub(super) fn evaluate_window(
        &self,
        ctx: &Context,
        hidden: &Linear,
        ids: &[u32],
    ) -> Result<Score> {
        let n = self.config.context;
        let mut rows = Vec::new();
        let mut targets = Vec::new();
        for i in 1..ids.len() {
            if let Some(c) = self.window_context(ids, i) {
                rows.extend(c);
                targets.push(ids[i]);
            }
        }
        let total = targets.len();
        if total == 0 {
            return Err(Error::config(format!(
                "scoring needs more than {n} tokens: the window model has no line end to pad with"
            )));
        }
        let contexts = self.embedding.ids(ctx, &[total, n], &rows)?;
        let all_targets = self.embedding.ids(ctx, &[total], &targets)?;
        score_in_chunks(ctx, total, |rec, s, len| {
            let x = Tensor::empty(ctx, "eval contexts", &[len, n], DType::U32)?;
            let y = Tensor::empty(ctx, "eval targets", &[len], DType::U32)?;
            rec.copy(&contexts, s * n, &x, 0, len * n)?;
            rec.copy(&all_targets, s, &y, 0, len)?;
            let (logits, _) = self.record_window(rec, hidden, &x, None)?;
            record_softmax_cross_entropy(rec, &logits, &y, None, false)
        })
    }

    /// [`LanguageModel::sample`] for the window model: one device buffer holds the prime's
    /// last N tokens (padded) followed by the generated ids, and step i reads its context as
    /// the buffer's elements `i .. i + N`, so nothing returns to the host inside a chunk.
    pub(super) fn sample_window(
        &self,
        ctx: &Context,
        hidden: &Linear,
        prime: &[u32],
        opts: &SampleOptions,
        on_chunk: &mut dyn FnMut(&[u32]),
    ) -> Result<Vec<u32>> {
        let n = self.config.context;
        let start = self.window_context(prime, prime.len()).ok_or_else(|| {
            Error::config(format!(
                "--prime has {} token(s); this window model reads {n} and its vocabulary has no line end to pad with",
                prime.len()
            ))
        })?;
        let length = opts.length;
        let mut init = start;
        init.resize(n + length.max(1), 0);
        let buffer = self.embedding.ids(ctx, &[init.len()], &init)?;
        let mut out = Vec::with_capacity(length);
        for c0 in (0..length).step_by(SAMPLE_CHUNK) {
            let c1 = (c0 + SAMPLE_CHUNK).min(length);
            let mut rec = Recorder::new(ctx);
            for i in c0..c1 {
                let ids = Tensor::empty(ctx, "window context", &[1, n], DType::U32)?;
                rec.copy(&buffer, i, &ids, 0, n)?;
                let (logits, _) = self.record_window(&mut rec, hidden, &ids, None)?;
                opts.record_choice(&mut rec, &logits, i, &buffer, n + i)?;
            }
            rec.submit()?;
            let ids = buffer.to_vec_u32(ctx)?;
            on_chunk(&ids[n + c0..n + c1]);
            out.extend_from_slice(&ids[n + c0..n + c1]);
        }
        Ok(out)
    }
}

/// The window trainer's device data: the context of every training position in the streams'
/// time-major order (row `t B + b` predicts stream b's token t + 1) and its target, or
/// `u32::MAX` (ignored by the loss) where a context would reach before the text and there is
/// no line end to pad with.
pub(super) struct WindowData {
    /// `[per B, N]`
    pub contexts: Tensor,
    /// `[per B]`
    pub targets: Tensor,
}

/// The target id the loss ignores.
pub(super) const IGNORE: u32 = u32::MAX;

impl WindowData {
    /// Lays out `train` cut into `batch` streams of `per` tokens (rows `0 .. per - 1`).
    pub fn new(
        ctx: &Context,
        model: &LanguageModel,
        train: &[u32],
        per: usize,
        batch: usize,
    ) -> Result<WindowData> {
        let n = model.config.context;
        let rows = (per - 1) * batch;
        let mut contexts = Vec::with_capacity(rows * n);
        let mut targets = Vec::with_capacity(rows);
        for t in 0..per - 1 {
            for b in 0..batch {
                let i = b * per + t + 1;
                match model.window_context(train, i) {
                    Some(c) => {
                        contexts.extend(c);
                        targets.push(train[i]);
                    }
                    None => {
                        contexts.extend(std::iter::repeat_n(0, n));
                        targets.push(IGNORE);
                    }
                }
            }
        }
        Ok(WindowData {
            contexts: model.embedding.ids(ctx, &[rows, n], &contexts)?,
            targets: Tensor::from_u32(ctx, "window targets", &[rows], &targets)?,
        })
    }
}
