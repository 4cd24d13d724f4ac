//! Beam search on the device (`beam.wgsl`), batched over sentences: the search state lives in
//! device buffers, each step is one dispatch after the model's log-probabilities, and the
//! decoder states are reordered by the device-written row indices with
//! [`record_gather_rows`](super::record_gather_rows). Nothing is read back until the search
//! ends; then [`BeamSearch::finished`] follows the parent pointers.
//!
//! The rules are fairseq's (`sequence_generator.py`): at step t the 2K best continuations
//! (beam, token) of each sentence by cumulative log-probability; a `</s>` among the first K
//! finishes a hypothesis with the length-normalised score `sum log p / (t + 1)^alpha` (its
//! tokens and `</s>`: fairseq's `--lenpen`; alpha = 0 ranks by the raw sum); the first K
//! others stay alive; a sentence is done once K hypotheses have finished; at the length limit
//! the alive beams fill its remaining slots. With K = 1 this is greedy decoding exactly.

use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::kernels::beam::{BeamStep, beam_step};
use crate::tensor::{DType, Tensor};

/// The largest beam (the kernel keeps 2K candidates in workgroup memory).
pub const MAX_BEAM: usize = 32;
/// The score of a beam that does not exist yet (beams 1..K before the first step).
pub const DEAD: f32 = -1e30;

/// One finished hypothesis of a sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    /// Its tokens, `</s>` not included.
    pub ids: Vec<u32>,
    /// `sum log p / len^alpha`, len counting `</s>` when it ended with one.
    pub score: f32,
    /// For each token (and the `</s>`, when it ended with one): the row `b*K + k` of the step's
    /// decoder batch whose distribution chose it (to pick the step's attention weights).
    pub rows: Vec<usize>,
    /// Whether it ended with `</s>` (otherwise at the length limit).
    pub ended: bool,
}

/// The device state of a search over B sentences with K beams each, T steps at most, for a
/// decoder with an L-layer state `[L, B*K, H]`.
pub struct BeamSearch {
    /// B.
    pub batch: usize,
    /// K.
    pub k: usize,
    /// T, the length limit.
    pub steps: usize,
    /// L.
    pub layers: usize,
    /// The end-of-sentence id.
    pub eos: u32,
    /// The length-normalisation exponent.
    pub alpha: f32,
    /// tokens `[T, B*K]` | parents `[T, B*K]` | fin_len `[B*K]` | fin_beam `[B*K]` |
    /// fin_count `[B]`.
    ints: Tensor,
    /// scores `[B*K]` | fin_score `[B*K]`.
    floats: Tensor,
    /// `[L*B*K]`: after a step, the state row each new beam's row takes (`l*B*K + b*K + parent`).
    pub reorder: Tensor,
    /// `[B*K]`: the same for one layer (`b*K + parent`): for per-row tensors such as the input
    /// feed.
    pub rows: Tensor,
}

impl BeamSearch {
    /// A fresh search: beam 0 of every sentence alive with score 0, the others dead.
    ///
    /// Errors: K outside `1..=MAX_BEAM`, no steps or sentences, alpha negative or not finite.
    pub fn new(
        ctx: &Context,
        batch: usize,
        k: usize,
        steps: usize,
        layers: usize,
        eos: u32,
        alpha: f32,
    ) -> Result<BeamSearch> {
        if k == 0 || k > MAX_BEAM {
            return Err(Error::config(format!(
                "beam size {k} must lie in 1..={MAX_BEAM}"
            )));
        }
        if batch == 0 || steps == 0 || layers == 0 {
            return Err(Error::config(
                "a beam search needs sentences, steps and layers",
            ));
        }
        if !(alpha.is_finite() && alpha >= 0.0) {
            return Err(Error::config(format!(
                "length penalty {alpha} must be finite and >= 0"
            )));
        }
        let bk = batch * k;
        let mut floats = vec![0.0f32; 2 * bk];
        for (i, s) in floats[..bk].iter_mut().enumerate() {
            if i % k != 0 {
                *s = DEAD;
            }
        }
        let ints = vec![0u32; 2 * steps * bk + 2 * bk + batch];
        Ok(BeamSearch {
            batch,
            k,
            steps,
            layers,
            eos,
            alpha,
            ints: Tensor::from_u32(ctx, "beam history", &[ints.len()], &ints)?,
            floats: Tensor::from_f32(ctx, "beam scores", &[2 * bk], &floats)?,
            reorder: Tensor::from_u32(
                ctx,
                "beam state rows",
                &[layers * bk],
                &vec![0; layers * bk],
            )?,
            rows: Tensor::from_u32(ctx, "beam rows", &[bk], &vec![0; bk])?,
        })
    }

    /// Records step `t` from `logp [B*K, V]`, each beam row's log-probabilities of its next
    /// token; afterwards [`Self::reorder`] and [`Self::rows`] say which rows the new beams
    /// continue.
    pub fn record_step(&self, rec: &mut Recorder, logp: &Tensor, t: usize) -> Result<()> {
        let bk = self.batch * self.k;
        let s = logp.shape();
        if s.len() != 2 || s[0] != bk || s[1] == 0 || logp.dtype() != DType::F32 {
            return Err(Error::shape(
                "beam log-probabilities",
                format!("expected f32 [{bk}, V], got {s:?}"),
            ));
        }
        if t >= self.steps {
            return Err(Error::config(format!(
                "beam step {t} is past the length limit {}",
                self.steps
            )));
        }
        let step = BeamStep {
            batch: self.batch,
            k: self.k,
            vocab: s[1],
            layers: self.layers,
            t,
            last: t + 1 == self.steps,
            eos: self.eos,
            steps: self.steps,
            alpha: self.alpha,
        };
        beam_step(
            rec,
            &step,
            logp,
            &self.ints,
            &self.floats,
            &self.reorder,
            &self.rows,
        )
    }

    /// The tokens step `t` chose, `[1, B*K]`: the next step's decoder input.
    pub fn record_tokens(&self, rec: &mut Recorder, t: usize) -> Result<Tensor> {
        let bk = self.batch * self.k;
        let ids = Tensor::empty(rec.ctx(), "beam tokens", &[1, bk], DType::U32)?;
        rec.copy(&self.ints, t * bk, &ids, 0, bk)?;
        Ok(ids)
    }

    /// Reads the search back (waits for its submission): each sentence's finished hypotheses,
    /// best first.
    pub fn finished(&self, ctx: &Context) -> Result<Vec<Vec<Finished>>> {
        let ints = self.ints.to_vec_u32(ctx)?;
        let floats = self.floats.to_vec(ctx)?;
        Ok(unpack(&ints, &floats, self.batch, self.k, self.steps))
    }
}

/// The finished hypotheses of the packed state (`beam.wgsl`'s layout), following parents.
pub(crate) fn unpack(
    ints: &[u32],
    floats: &[f32],
    batch: usize,
    k: usize,
    steps: usize,
) -> Vec<Vec<Finished>> {
    let bk = batch * k;
    let (tokens, parents) = (&ints[..steps * bk], &ints[steps * bk..2 * steps * bk]);
    let fin_len = &ints[2 * steps * bk..2 * steps * bk + bk];
    let fin_beam = &ints[2 * steps * bk + bk..2 * steps * bk + 2 * bk];
    let count = &ints[2 * steps * bk + 2 * bk..];
    (0..batch)
        .map(|b| {
            (0..(count[b] as usize).min(k))
                .map(|i| {
                    let len = fin_len[b * k + i] as usize;
                    let end = fin_beam[b * k + i] as usize;
                    // `</s>` at step len (< T), or the length limit (len = T).
                    let ended = len < steps;
                    let mut ids = Vec::with_capacity(len);
                    let mut rows = Vec::with_capacity(len + 1);
                    let mut beam = end;
                    for t in (0..len).rev() {
                        ids.push(tokens[t * bk + b * k + beam]);
                        beam = parents[t * bk + b * k + beam] as usize;
                        rows.push(b * k + beam);
                    }
                    ids.reverse();
                    rows.reverse();
                    if ended {
                        rows.push(b * k + end);
                    }
                    Finished {
                        ids,
                        score: floats[bk + b * k + i],
                        rows,
                        ended,
                    }
                })
                .collect()
        })
        .collect()
}
