//! Neural language models (character or word level): the recurrent model and the fixed-window
//! model, truncated-BPTT training with the whole step in one submission, perplexity on a
//! stream scored in chunks, next-token distributions, sampling on the device, and the
//! checkpoint folder. [`gradflow`] measures how gradients reach back through time.
//!
//! Recurrent model (`model = "rnn"`): `embedding [V, E]` (no padding id) -> RNN stack (LSTM,
//! GRU or Elman; L layers, inter-layer dropout) -> dropout (training only) -> `decoder [V, H]
//! + bias` -> softmax. In PyTorch: `nn.Embedding(V, E)`, `nn.LSTM(E, H, L, dropout=p)`,
//! `nn.Dropout(p)`, `nn.Linear(H, V)` (scripts/torch_lm.py loads a checkpoint into exactly that).
//!
//! Fixed-window model (`model = "window"`, Bengio et al. 2003 without the direct connections):
//! token i is predicted from the N tokens before it, `x = concat(embedding[w_{i-N}], ...,
//! embedding[w_{i-1}]) [N E]` (oldest first), `h = tanh(hidden.weight x + hidden.bias) [H]`,
//! dropout, `decoder [V, H] + bias`, softmax. Text before the start of a stream reads the
//! line-end token (`\n` or `<eos>`: the split and a prime start after a line end), when the
//! vocabulary has one; without it, the first N tokens of a stream are not predicted. Its
//! checkpoint has no `rnn.safetensors`; `model.safetensors` holds `embedding.weight`,
//! `hidden.weight`, `hidden.bias`, `decoder.weight`, `decoder.bias`.
//!
//! Training (char-rnn's contiguous batches): the training ids are cut into B streams of
//! `L = N / B` tokens, stored on the device time-major `[L, B]`, so step s reads the rows
//! `p .. p + T` (inputs) and `p + 1 .. p + T + 1` (targets) with `p = (s mod E) T`, E the
//! steps per epoch. The hidden state carries over from step to step (the previous step's
//! `h_n`, `c_n` become `h0`, `c0`) without backpropagating into the previous step, and is reset
//! to zeros at each epoch start. One step records embedding, RNN, dropout, decoder, softmax
//! cross-entropy, every backward, gradient clipping and Adam into one submission; only the
//! loss is read back. Dropout masks come from `(seed, step)`, so a resumed run repeats the
//! masks it would have drawn. The window model trains on the same positions (the contexts of
//! every training position are laid out once on the device in the streams' order), with no
//! state to carry.

pub mod gradflow;
mod window;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::checkpoint::{self, FORMAT_VERSION, field, read_config};
use super::corpus::{Corpus, Unit, Vocab};
use super::metrics::{Metrics, Row};
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::files::read_f32_tensors;
use crate::nn::{
    AdamConfig, CeOutput, Dropout, Embedding, Linear, LinearGrads, Optimizer, ParamStore,
    record_softmax_cross_entropy,
};
use crate::ops::{Sampling, record_argmax_into, record_sample_into};
use crate::reference::dropout::mix32;
use crate::rnn::{ForwardInputs, HostTensor, LayerParams, Mode, Rnn, RnnConfig, Upstream};
use crate::tensor::{DType, Tensor};

/// The hyperparameters of a language model and its training (`train-lm`'s flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    /// `lstm`, `gru`, `rnn_tanh` or `rnn_relu`.
    pub mode: String,
    /// Stacked layers L.
    pub layers: usize,
    /// Hidden units H.
    pub hidden: usize,
    /// Embedding size E.
    pub embed: usize,
    /// Dropout between layers and before the decoder (training only).
    pub dropout: f32,
    /// BPTT length T.
    pub seq_len: usize,
    /// Parallel streams B.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Global gradient-norm clip (0: none).
    pub clip: f32,
    /// Seed of the initialisation and the dropout masks.
    pub seed: u64,
    /// `rnn` (the recurrent stack of `mode`) or `window` (the fixed-window model).
    #[serde(default = "default_model")]
    pub model: String,
    /// The window model's context: the N previous tokens it reads (0 for recurrent models).
    #[serde(default)]
    pub context: usize,
    /// Characters or words.
    #[serde(default = "default_unit")]
    pub unit: Unit,
    /// Word level: a training token seen fewer times is `<unk>`.
    #[serde(default = "default_min_count")]
    pub min_count: usize,
}

fn default_model() -> String {
    "rnn".into()
}

fn default_unit() -> Unit {
    Unit::Char
}

fn default_min_count() -> usize {
    2
}

/// The window model's context when `--context` is not given.
pub const DEFAULT_CONTEXT: usize = 5;

impl Default for LmConfig {
    /// The main job's model: a small, wide-batch LSTM that learns fast on a CPU driver
    /// (docs/RESULTS.md has what it reaches).
    fn default() -> Self {
        LmConfig {
            mode: "lstm".into(),
            layers: 1,
            hidden: 128,
            embed: 32,
            dropout: 0.0,
            seq_len: 32,
            batch: 32,
            lr: 1e-2,
            clip: 5.0,
            seed: 1,
            model: default_model(),
            context: 0,
            unit: Unit::Char,
            min_count: default_min_count(),
        }
    }
}

impl LmConfig {
    /// The defaults at `unit` level: characters as [`Default`]; words with a wider embedding
    /// and a smaller learning rate (a step over Tiny Shakespeare's 7,050 words takes about
    /// 1.4 s on lavapipe, so `--steps 20` and the validation take well under 2 minutes).
    pub fn for_unit(unit: Unit) -> LmConfig {
        match unit {
            Unit::Char => LmConfig::default(),
            Unit::Word => LmConfig {
                embed: 64,
                lr: 5e-3,
                unit,
                ..LmConfig::default()
            },
        }
    }

    /// True for the fixed-window model.
    pub fn is_window(&self) -> bool {
        self.model == "window"
    }

    /// The cell.
    pub fn cell(&self) -> Result<Mode> {
        Mode::parse(&self.mode)
    }

    /// The RNN stack's configuration (input = E).
    pub fn rnn(&self) -> Result<RnnConfig> {
        let cfg = RnnConfig::new(self.cell()?, self.embed, self.hidden)
            .layers(self.layers)
            .dropout(self.dropout);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Refuses sizes and rates that cannot train, naming the flag.
    pub fn validate(&self) -> Result<()> {
        let bad = |flag: &str, v: &dyn std::fmt::Display| {
            Err(Error::config(format!("--{flag} {v} is out of range")))
        };
        match self.model.as_str() {
            "rnn" => {
                self.rnn()?;
            }
            "window" => {
                if self.context == 0 {
                    return bad("context", &self.context);
                }
                if self.hidden == 0 {
                    return bad("hidden", &self.hidden);
                }
                if self.embed == 0 {
                    return bad("embed", &self.embed);
                }
            }
            m => {
                return Err(Error::config(format!(
                    "--model {m:?}: expected rnn or window"
                )));
            }
        }
        if self.seq_len == 0 {
            return bad("seq-len", &self.seq_len);
        }
        if self.batch == 0 {
            return bad("batch", &self.batch);
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", &self.lr);
        }
        if !(self.clip.is_finite() && self.clip >= 0.0) {
            return bad("clip", &self.clip);
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", &self.dropout);
        }
        Ok(())
    }

    /// The 32-bit seed of step `step`'s dropout masks.
    fn mask_seed(&self, step: u64) -> u32 {
        mix32(mix32(self.seed as u32 ^ (self.seed >> 32) as u32) ^ step as u32)
    }
}

/// The hash stream of the dropout before the decoder (the RNN's layers use 0..L-1).
const OUTPUT_DROPOUT_STREAM: u32 = 1000;

/// A language model on the device.
#[derive(Debug)]
pub struct LanguageModel {
    /// Its hyperparameters.
    pub config: LmConfig,
    /// `embedding.weight [V, E]`
    pub embedding: Embedding,
    /// What turns the embeddings into the decoder's input.
    pub body: Body,
    /// `decoder.weight [V, H]`, `decoder.bias [V]`
    pub decoder: Linear,
    dropout: Dropout,
    /// The line-end token's id, when the vocabulary has one: what the window model reads
    /// before the start of a stream, and what an empty prime means.
    pub line_end: Option<u32>,
}

/// The part between the embedding and the decoder.
#[derive(Debug)]
pub enum Body {
    /// The recurrent stack, PyTorch's layout.
    Rnn(Rnn),
    /// `hidden.weight [H, N E]`, `hidden.bias [H]` of the fixed-window model.
    Window(Linear),
}

/// A score on a token stream.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Score {
    /// Mean cross-entropy, nats per token.
    pub loss_nats: f64,
    /// Scored tokens.
    pub tokens: usize,
}

impl Score {
    /// Bits per token.
    pub fn bits(&self) -> f64 {
        self.loss_nats / std::f64::consts::LN_2
    }

    /// e^loss.
    pub fn perplexity(&self) -> f64 {
        self.loss_nats.exp()
    }
}

/// Tokens per forward when scoring a stream (one batch row).
const EVAL_CHUNK: usize = 256;
/// Chunks recorded into one submission when scoring.
const EVAL_CHUNKS_PER_SUBMIT: usize = 8;
/// Steps between rows of `metrics.csv`.
const LOG_EVERY: u64 = 10;
/// Tokens generated per submission when sampling (then read back and printed).
const SAMPLE_CHUNK: usize = 128;

impl LanguageModel {
    /// A fresh model over `vocab`: PyTorch's initialisation (embedding N(0, 1), RNN, hidden
    /// and decoder layers U(-1/sqrt(fan), 1/sqrt(fan))) from `config.seed`.
    pub fn new(ctx: &Context, vocab: &Vocab, config: &LmConfig) -> Result<LanguageModel> {
        config.validate()?;
        let s = config.seed;
        let v = vocab.len();
        let body = if config.is_window() {
            Body::Window(Linear::random(
                ctx,
                config.context * config.embed,
                config.hidden,
                true,
                s.wrapping_mul(3) + 1,
            )?)
        } else {
            Body::Rnn(Rnn::random(ctx, &config.rnn()?, s.wrapping_mul(3) + 1)?)
        };
        Ok(LanguageModel {
            embedding: Embedding::random(ctx, v, config.embed, None, s.wrapping_mul(3))?,
            body,
            decoder: Linear::random(ctx, config.hidden, v, true, s.wrapping_mul(3) + 2)?,
            dropout: Dropout::new(config.dropout, OUTPUT_DROPOUT_STREAM)?,
            line_end: vocab.id(config.unit.line_end()),
            config: config.clone(),
        })
    }

    /// The recurrent stack (an error for the window model).
    pub fn rnn(&self) -> Result<&Rnn> {
        match &self.body {
            Body::Rnn(r) => Ok(r),
            Body::Window(_) => Err(Error::config(
                "this is a fixed-window model: it has no recurrent stack",
            )),
        }
    }

    /// V
    pub fn vocab(&self) -> usize {
        self.embedding.vocab()
    }

    /// Records the forward of `ids [T, B]` from `state` (zeros when `None`): logits
    /// `[T, B, V]` and the final state; with `train`, dropout with the masks of `mask_seed`
    /// and the saved state for the backward.
    #[allow(clippy::type_complexity)]
    fn record_forward(
        &self,
        rec: &mut Recorder,
        ids: &Tensor,
        state: Option<&State>,
        train: Option<u32>,
    ) -> Result<(Tensor, Tensor, State, Option<(crate::ForwardState, Tensor)>)> {
        let x = self.embedding.record_forward(rec, ids)?;
        let inp = ForwardInputs {
            h0: state.map(|s| &s.h),
            c0: state.and_then(|s| s.c.as_ref()),
            dropout_seed: train.unwrap_or(0),
            ..Default::default()
        };
        let (out, saved) = self.rnn()?.record_forward(rec, &x, &inp, train.is_some())?;
        let y = match train {
            Some(seed) => self.dropout.record_forward(rec, &out.output, seed, true)?,
            None => out.output.clone(),
        };
        let logits = self.decoder.record_forward(rec, &y)?;
        let next = State {
            h: out.h_n,
            c: out.c_n,
        };
        Ok((logits, y, next, saved.map(|s| (s, x))))
    }

    /// Scores `ids` as one stream from a zero state: every token after the first is predicted
    /// from those before it (`len - 1` tokens; `limit` caps the tokens scored, for a cheap
    /// validation prefix). Chunks of 256 tokens carry the state, so the result equals one
    /// pass and no tensor grows with the stream.
    ///
    /// The window model scores the same tokens, each from the N before it (the line-end token
    /// standing for text before the stream); without a line-end token in its vocabulary it
    /// skips the first N, and `tokens` says how many it scored.
    pub fn evaluate(&self, ctx: &Context, ids: &[u32], limit: Option<usize>) -> Result<Score> {
        let n = ids
            .len()
            .min(limit.map_or(usize::MAX, |l| l.saturating_add(1)));
        if n < 2 {
            return Err(Error::config("scoring needs at least two tokens"));
        }
        if let Body::Window(hidden) = &self.body {
            return self.evaluate_window(ctx, hidden, &ids[..n]);
        }
        let stream = self.embedding.ids(ctx, &[n], &ids[..n])?;
        let mut state: Option<State> = None;
        score_in_chunks(ctx, n - 1, |rec, s, len| {
            let x = Tensor::empty(ctx, "eval ids", &[len, 1], DType::U32)?;
            let y = Tensor::empty(ctx, "eval targets", &[len, 1], DType::U32)?;
            rec.copy(&stream, s, &x, 0, len)?;
            rec.copy(&stream, s + 1, &y, 0, len)?;
            let (logits, _, next, _) = self.record_forward(rec, &x, state.as_ref(), None)?;
            state = Some(next);
            record_softmax_cross_entropy(rec, &logits, &y, None, false)
        })
    }

    /// Generates `opts.length` tokens after `prime` (at least one token): the prime is read in
    /// one forward, then each step's chosen id feeds the next step's embedding on the device,
    /// 128 steps to a submission; `on_chunk` gets each chunk's ids as they are read back. Greedy
    /// (arg-max) when the temperature is 0, else a draw from `softmax(logits / temperature)`,
    /// restricted to the `top_k` best when `top_k > 0`, keyed by `(seed, step)`.
    pub fn sample(
        &self,
        ctx: &Context,
        prime: &[u32],
        opts: &SampleOptions,
        on_chunk: &mut dyn FnMut(&[u32]),
    ) -> Result<Vec<u32>> {
        let SampleOptions {
            length,
            temperature,
            top_k,
            ..
        } = *opts;
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(Error::config(format!(
                "--temperature {temperature} must be finite and >= 0"
            )));
        }
        if top_k > self.vocab() {
            return Err(Error::config(format!(
                "--top-k {top_k} exceeds the vocabulary of {}",
                self.vocab()
            )));
        }
        let prime = self.prime_or_line_start(prime)?;
        if let Body::Window(hidden) = &self.body {
            return self.sample_window(ctx, hidden, &prime, opts, on_chunk);
        }
        let Some((&last, head)) = prime.split_last() else {
            return Err(Error::config("--prime: give at least one token"));
        };
        let mut state = None;
        if !head.is_empty() {
            let ids = self.embedding.ids(ctx, &[head.len(), 1], head)?;
            let mut rec = Recorder::new(ctx);
            let x = self.embedding.record_forward(&mut rec, &ids)?;
            let out = self
                .rnn()?
                .record_forward(&mut rec, &x, &ForwardInputs::default(), false)?
                .0;
            rec.submit()?;
            state = Some(State {
                h: out.h_n,
                c: out.c_n,
            });
        }
        let generated = Tensor::empty(ctx, "generated ids", &[length.max(1)], DType::U32)?;
        let first = self.embedding.ids(ctx, &[1, 1], &[last])?;
        let mut out = Vec::with_capacity(length);
        for c0 in (0..length).step_by(SAMPLE_CHUNK) {
            let c1 = (c0 + SAMPLE_CHUNK).min(length);
            let mut rec = Recorder::new(ctx);
            for i in c0..c1 {
                let ids = if i == 0 {
                    first.clone()
                } else {
                    let t = Tensor::empty(ctx, "step id", &[1, 1], DType::U32)?;
                    rec.copy(&generated, i - 1, &t, 0, 1)?;
                    t
                };
                let (logits, _, next, _) =
                    self.record_forward(&mut rec, &ids, state.as_ref(), None)?;
                let row = logits.reshape(&[1, self.vocab()])?;
                opts.record_choice(&mut rec, &row, i, &generated, i)?;
                state = Some(next);
            }
            rec.submit()?;
            let bytes = generated.to_vec_u32(ctx)?;
            on_chunk(&bytes[c0..c1]);
            out.extend_from_slice(&bytes[c0..c1]);
        }
        Ok(out)
    }

    /// A prime, or for an empty one the line-end token (the text starts a line); an error
    /// when the vocabulary has none.
    fn prime_or_line_start(&self, prime: &[u32]) -> Result<Vec<u32>> {
        match (prime.is_empty(), self.line_end) {
            (false, _) => Ok(prime.to_vec()),
            (true, Some(e)) => Ok(vec![e]),
            (true, None) => Err(Error::config(format!(
                "--prime is empty and the model's vocabulary has no line end ({:?}) to start from: give at least {} token(s)",
                self.config.unit.line_end(),
                if self.config.is_window() {
                    self.config.context
                } else {
                    1
                }
            ))),
        }
    }

    /// The `k` most likely next tokens after `prime` (all V when `k > V`) with their
    /// probabilities, most likely first (a tie goes to the lower id): the softmax of the logits at the prime's last
    /// token, computed and ranked on the device. An empty prime means the start of a line.
    pub fn predict_next(&self, ctx: &Context, prime: &[u32], k: usize) -> Result<Vec<(u32, f32)>> {
        if k == 0 {
            return Err(Error::config("--top-k must be >= 1"));
        }
        let k = k.min(self.vocab());
        let prime = self.prime_or_line_start(prime)?;
        let v = self.vocab();
        let mut rec = Recorder::new(ctx);
        let row = match &self.body {
            Body::Window(hidden) => {
                let c = self.window_context(&prime, prime.len()).ok_or_else(|| {
                    Error::config(format!(
                        "--prime has {} token(s); this window model reads {} and its vocabulary has no line end to pad with",
                        prime.len(),
                        self.config.context
                    ))
                })?;
                let ids = self.embedding.ids(ctx, &[1, c.len()], &c)?;
                self.record_window(&mut rec, hidden, &ids, None)?.0
            }
            Body::Rnn(_) => {
                let ids = self.embedding.ids(ctx, &[prime.len(), 1], &prime)?;
                let (logits, ..) = self.record_forward(&mut rec, &ids, None, None)?;
                let row = Tensor::empty(ctx, "last logits", &[1, v], DType::F32)?;
                rec.copy(&logits, (prime.len() - 1) * v, &row, 0, v)?;
                row
            }
        };
        let probs = crate::ops::record_masked_softmax(&mut rec, &row, None, 1)?;
        let (values, indices) = crate::ops::record_topk(&mut rec, &probs, k)?;
        rec.submit()?;
        let p = values.to_vec(ctx)?;
        let i = indices.to_vec_u32(ctx)?;
        Ok(i.into_iter().zip(p).collect())
    }

    /// The tensors of `model.safetensors` under PyTorch's names.
    fn named_tensors(&self) -> Result<Vec<(&'static str, &Tensor)>> {
        let mut v = vec![("embedding.weight", &self.embedding.weight)];
        if let Body::Window(h) = &self.body {
            v.push(("hidden.weight", &h.weight));
            v.push(("hidden.bias", bias(h)?));
        }
        v.push(("decoder.weight", &self.decoder.weight));
        v.push(("decoder.bias", bias(&self.decoder)?));
        Ok(v)
    }

    /// The RNN files of the checkpoint folder (none for the window model).
    fn rnn_files(&self) -> Vec<(&'static str, &Rnn)> {
        match &self.body {
            Body::Rnn(r) => vec![("rnn.safetensors", r)],
            Body::Window(_) => Vec::new(),
        }
    }

    /// Loads a checkpoint folder (or a training output's `best/`): its config, vocabulary
    /// and tensors, each checked against the others; errors name the file and the tensor.
    pub fn load(ctx: &Context, dir: &Path) -> Result<(LanguageModel, LmCheckpoint)> {
        let dir = checkpoint::resolve(dir)?;
        let cfg_path = dir.join("config.json");
        let conf = read_config(&dir, "lm")?;
        let info = LmCheckpoint::from_config(&conf, &cfg_path, dir.clone())?;
        let model = LanguageModel::new(ctx, &info.vocab, &info.config)?;
        model.load_tensors(ctx, &dir)?;
        Ok((model, info))
    }

    fn load_tensors(&self, ctx: &Context, dir: &Path) -> Result<()> {
        for (file, rnn) in self.rnn_files() {
            checkpoint::load_rnn(ctx, rnn, &dir.join(file))?;
        }
        checkpoint::load_named(ctx, &dir.join("model.safetensors"), &self.named_tensors()?)
    }
}

/// The validation ids of `data` as the checkpoint `info` reads text: characters must form the
/// checkpoint's vocabulary exactly; words outside its vocabulary are `<unk>`, as in training.
pub fn validation_ids(info: &LmCheckpoint, data: &Path) -> Result<Vec<u32>> {
    let c = &info.config;
    let corpus = Corpus::read(data, c.unit, c.min_count, Some(&info.vocab))?;
    if corpus.vocab != info.vocab {
        return Err(Error::Format {
            path: data.display().to_string(),
            problem: format!(
                "its vocabulary ({} tokens) differs from the checkpoint's ({})",
                corpus.vocab.len(),
                info.vocab.len()
            ),
        });
    }
    Ok(corpus.valid)
}

/// The score of `total` predicted tokens recorded chunk by chunk: `chunk(rec, start, len)`
/// records the cross-entropy of tokens `start .. start + len` (256 to a chunk, 8 chunks to a
/// submission); one float per chunk is read back, and the mean is their length-weighted sum.
fn score_in_chunks(
    ctx: &Context,
    total: usize,
    mut chunk: impl FnMut(&mut Recorder, usize, usize) -> Result<CeOutput>,
) -> Result<Score> {
    let chunks: Vec<(usize, usize)> = (0..total)
        .step_by(EVAL_CHUNK)
        .map(|s| (s, EVAL_CHUNK.min(total - s)))
        .collect();
    let sums = Tensor::empty(ctx, "chunk losses", &[chunks.len()], DType::F32)?;
    for group in chunks.chunks(EVAL_CHUNKS_PER_SUBMIT) {
        let mut rec = Recorder::new(ctx);
        for &(s, len) in group {
            let ce = chunk(&mut rec, s, len)?;
            rec.copy(&ce.loss, 0, &sums, s / EVAL_CHUNK, 1)?;
        }
        rec.submit()?;
    }
    let means = sums.to_vec(ctx)?;
    let sum: f64 = chunks
        .iter()
        .zip(&means)
        .map(|(&(_, len), &m)| m as f64 * len as f64)
        .sum();
    Ok(Score {
        loss_nats: sum / total as f64,
        tokens: total,
    })
}

/// A linear layer's bias (every layer of these models has one).
fn bias(l: &Linear) -> Result<&Tensor> {
    l.bias
        .as_ref()
        .ok_or_else(|| Error::Device("internal: linear layer without bias".into()))
}

/// How [`LanguageModel::sample`] generates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleOptions {
    /// Tokens to generate.
    pub length: usize,
    /// Softmax temperature; 0 is greedy.
    pub temperature: f32,
    /// Sample among the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Seed of the sampler.
    pub seed: u32,
}

impl SampleOptions {
    /// Records the choice of generated token `step` from `logits [1, V]` into `ids[at]`:
    /// arg-max at temperature 0, else a draw keyed by `(seed, step)`.
    fn record_choice(
        &self,
        rec: &mut Recorder,
        logits: &Tensor,
        step: usize,
        ids: &Tensor,
        at: usize,
    ) -> Result<()> {
        if self.temperature == 0.0 {
            return record_argmax_into(rec, logits, ids, at);
        }
        let s = Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            seed: self.seed,
            step: step as u32,
        };
        record_sample_into(rec, logits, &s, ids, at)
    }
}

/// A carried recurrent state `[L, B, H]` (and the LSTM's cell state).
#[derive(Clone, Debug)]
pub struct State {
    /// Hidden state.
    pub h: Tensor,
    /// Cell state (LSTM).
    pub c: Option<Tensor>,
}

/// What a checkpoint's `config.json` says besides the tensors.
#[derive(Clone, Debug)]
pub struct LmCheckpoint {
    /// The folder.
    pub dir: PathBuf,
    /// Hyperparameters.
    pub config: LmConfig,
    /// The vocabulary.
    pub vocab: Vocab,
    /// The training file recorded at training time.
    pub data: String,
    /// Optimiser steps taken.
    pub step: u64,
    /// The whole `config.json`.
    pub json: Value,
}

impl LmCheckpoint {
    fn from_config(conf: &Value, path: &Path, dir: PathBuf) -> Result<LmCheckpoint> {
        let config: LmConfig = field(conf, path, "model")?;
        let tokens: Vec<String> = field(conf, path, "vocab")?;
        let unit: String = field(conf, path, "unit")?;
        if unit != config.unit.name() {
            return Err(Error::Format {
                path: path.display().to_string(),
                problem: format!(
                    "\"unit\" is {unit:?} but the model's is {:?}",
                    config.unit.name()
                ),
            });
        }
        Ok(LmCheckpoint {
            dir,
            config,
            vocab: Vocab::new(tokens)?,
            data: field(conf, path, "data")?,
            step: field(conf, path, "step")?,
            json: conf.clone(),
        })
    }
}

/// The gradient slots of a [`Body`], and the window trainer's device contexts.
enum BodyGrads {
    Rnn(Vec<LayerParams>),
    Window(LinearGrads, window::WindowData),
}

/// Training: the model with its gradients, optimiser, the device copy of the training streams
/// and the carried state.
pub struct Trainer {
    /// The model being trained.
    pub model: LanguageModel,
    demb: Tensor,
    dbody: BodyGrads,
    ddec: LinearGrads,
    store: ParamStore,
    opt: Optimizer,
    streams: Tensor,
    steps_per_epoch: u64,
    carried: Option<State>,
    /// Optimiser steps taken.
    pub step: u64,
}

impl Trainer {
    /// A trainer of `model` on `train` ids: B streams of `floor(N / B)` tokens on the device.
    /// Errors when the text is shorter than one batch (`B (T + 1)` tokens).
    pub fn new(ctx: &Context, model: LanguageModel, train: &[u32]) -> Result<Trainer> {
        let c = model.config.clone();
        let per = train.len() / c.batch;
        if per < c.seq_len + 1 {
            return Err(Error::config(format!(
                "the training text ({} tokens) is shorter than one batch: --batch {} x (--seq-len {} + 1) = {} tokens",
                train.len(),
                c.batch,
                c.seq_len,
                c.batch * (c.seq_len + 1)
            )));
        }
        // Time-major [per, B]: row t holds token t of every stream.
        let mut tm = vec![0u32; per * c.batch];
        for b in 0..c.batch {
            for t in 0..per {
                tm[t * c.batch + b] = train[b * per + t];
            }
        }
        let streams = model.embedding.ids(ctx, &[per, c.batch], &tm)?;
        let demb = model.embedding.zero_grad(ctx)?;
        let ddec = model.decoder.zero_grads(ctx)?;
        let mut store = ParamStore::new();
        model.embedding.register(&mut store, "embedding", &demb)?;
        let dbody = match &model.body {
            Body::Rnn(rnn) => {
                let drnn = rnn.zero_grads(ctx)?;
                store.add_rnn("rnn", rnn, &drnn)?;
                BodyGrads::Rnn(drnn)
            }
            Body::Window(hidden) => {
                let dh = hidden.zero_grads(ctx)?;
                hidden.register(&mut store, "hidden", &dh)?;
                let data = window::WindowData::new(ctx, &model, train, per, c.batch)?;
                BodyGrads::Window(dh, data)
            }
        };
        model.decoder.register(&mut store, "decoder", &ddec)?;
        let opt = Optimizer::adam(ctx, &store, AdamConfig::adam(c.lr))?;
        Ok(Trainer {
            steps_per_epoch: ((per - 1) / c.seq_len) as u64,
            model,
            demb,
            dbody,
            ddec,
            store,
            opt,
            streams,
            carried: None,
            step: 0,
        })
    }

    /// Tokens one step trains on (T B).
    pub fn tokens_per_step(&self) -> usize {
        self.model.config.seq_len * self.model.config.batch
    }

    /// Steps in one pass over the training streams.
    pub fn steps_per_epoch(&self) -> u64 {
        self.steps_per_epoch
    }

    /// Records step `self.step`'s forward and backward (the gradients into the store's slots)
    /// and, with `update`, clipping and the optimiser; returns the loss output and the state
    /// to carry.
    fn record_step(
        &mut self,
        rec: &mut Recorder,
        update: bool,
    ) -> Result<(CeOutput, Option<State>)> {
        let ctx = rec.ctx();
        let c = self.model.config.clone();
        let (t, b) = (c.seq_len, c.batch);
        let e = self.step % self.steps_per_epoch;
        if e == 0 {
            self.carried = None; // a new pass over the streams starts from zeros
        }
        let p = e as usize * t;
        let seed = c.mask_seed(self.step);
        let m = &self.model;
        self.store.record_zero_grads(rec)?;
        // The body's forward over the step's rows: logits, the decoder's input, the targets,
        // and what the body's backward needs.
        enum Saved {
            Window(Tensor, window::WindowSaved),
            Rnn(Tensor, crate::ForwardState),
        }
        let (logits, yd, y, ignore, saved, next) = match (&m.body, &self.dbody) {
            (Body::Window(hidden), BodyGrads::Window(_, data)) => {
                let n = c.context;
                let rows = t * b;
                let x = Tensor::empty(ctx, "window contexts", &[rows, n], DType::U32)?;
                let y = Tensor::empty(ctx, "window targets", &[rows], DType::U32)?;
                rec.copy(&data.contexts, p * b * n, &x, 0, rows * n)?;
                rec.copy(&data.targets, p * b, &y, 0, rows)?;
                let (logits, sv) = m.record_window(rec, hidden, &x, Some(seed))?;
                let yd = sv.hd.clone();
                // The window model carries no state.
                (
                    logits,
                    yd,
                    y,
                    Some(window::IGNORE),
                    Saved::Window(x, sv),
                    None,
                )
            }
            _ => {
                let x = Tensor::empty(ctx, "input ids", &[t, b], DType::U32)?;
                let y = Tensor::empty(ctx, "target ids", &[t, b], DType::U32)?;
                rec.copy(&self.streams, p * b, &x, 0, t * b)?;
                rec.copy(&self.streams, (p + 1) * b, &y, 0, t * b)?;
                let (logits, yd, next, saved) =
                    m.record_forward(rec, &x, self.carried.as_ref(), Some(seed))?;
                let (saved, _) =
                    saved.ok_or_else(|| Error::Device("internal: no saved state".into()))?;
                (logits, yd, y, None, Saved::Rnn(x, saved), Some(next))
            }
        };
        let ce = record_softmax_cross_entropy(rec, &logits, &y, ignore, true)?;
        let dyd = m
            .decoder
            .record_backward(rec, &yd, ce.grad()?, &self.ddec, true)?;
        let dy = m.dropout.record_backward(rec, &dyd, seed)?;
        match (&saved, &m.body, &self.dbody) {
            (Saved::Window(x, sv), Body::Window(hidden), BodyGrads::Window(dhidden, _)) => {
                m.record_window_backward(rec, hidden, x, sv, &dy, (&self.demb, dhidden))?;
            }
            (Saved::Rnn(x, sv), Body::Rnn(rnn), BodyGrads::Rnn(drnn)) => {
                let up = Upstream {
                    output: Some(&dy),
                    ..Default::default()
                };
                let g = rnn.record_backward(rec, sv, &up, Some(drnn))?;
                m.embedding
                    .record_backward(rec, x, &g.input, &self.demb, true)?;
            }
            _ => return Err(Error::Device("internal: trainer and model disagree".into())),
        }
        if update {
            if c.clip > 0.0 {
                self.store.record_clip_grad_norm(rec, c.clip)?;
            }
            self.opt.record_step(rec, &self.store)?;
        }
        Ok((ce, next))
    }

    /// One training step, recorded into one submission; returns its mean loss (the only value
    /// read back).
    pub fn train_step(&mut self, ctx: &Context) -> Result<f32> {
        let mut rec = Recorder::new(ctx);
        let (ce, next) = self.record_step(&mut rec, true)?;
        rec.submit()?;
        self.carried = next;
        self.step += 1;
        ce.loss(ctx)
    }

    /// The loss of the next step and the gradient of every parameter (PyTorch's names:
    /// `embedding.weight`, `rnn.weight_ih_l0`, ..., `decoder.bias`), without clipping or
    /// updating anything (gradient checks).
    pub fn gradients(&mut self, ctx: &Context) -> Result<(f32, Vec<(String, HostTensor)>)> {
        let carried = self.carried.clone();
        let mut rec = Recorder::new(ctx);
        let (ce, _) = self.record_step(&mut rec, false)?;
        rec.submit()?;
        self.carried = carried;
        let grads = self
            .store
            .params()
            .iter()
            .map(|p| Ok((p.name.clone(), self.store.grad_to_host(ctx, &p.name)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((ce.loss(ctx)?, grads))
    }

    /// Writes the checkpoint folder `dir` atomically: `rnn.safetensors` (interop format),
    /// `model.safetensors`, `optimizer.safetensors`, `state.safetensors` (the carried state)
    /// and `config.json` (with `extra` merged in).
    pub fn save(&self, ctx: &Context, dir: &Path, corpus: &Corpus, extra: Value) -> Result<()> {
        let m = &self.model;
        let state: Vec<(String, HostTensor)> = match &self.carried {
            Some(s) => {
                let mut v = vec![(
                    "h".to_string(),
                    HostTensor::new(s.h.shape().to_vec(), s.h.to_vec(ctx)?)?,
                )];
                if let Some(c) = &s.c {
                    v.push((
                        "c".to_string(),
                        HostTensor::new(c.shape().to_vec(), c.to_vec(ctx)?)?,
                    ));
                }
                v
            }
            None => Vec::new(),
        };
        let mut conf = json!({
            "kind": "lm",
            "format_version": FORMAT_VERSION,
            "unit": m.config.unit.name(),
            "model": m.config,
            "vocab": corpus.vocab.tokens(),
            "data": corpus.path,
            "step": self.step,
            "tokens_seen": self.step * self.tokens_per_step() as u64,
            "steps_per_epoch": self.steps_per_epoch,
            "position": (self.step % self.steps_per_epoch) * m.config.seq_len as u64,
            "rng": {"seed": m.config.seed, "next_step": self.step,
                    "note": "dropout masks of step s come from mix32(seed, s); nothing else is random"},
            "carried_state": if state.is_empty() { Value::Null } else { json!("state.safetensors") },
            "kernels": checkpoint::kernel_config(ctx),
        });
        if let (Some(o), Value::Object(e)) = (conf.as_object_mut(), extra) {
            o.extend(e);
        }
        let extra = [("state.safetensors", state)];
        let folder = checkpoint::Folder {
            rnns: &m.rnn_files(),
            model: &m.named_tensors()?,
            optimizer: Some((&self.opt, &self.store)),
            extra: if extra[0].1.is_empty() { &[] } else { &extra },
            config: &conf,
        };
        checkpoint::write_folder(ctx, dir, &folder)
    }

    /// Restores the optimiser, the step and the carried state from a checkpoint written by
    /// [`Trainer::save`] (the model's tensors are loaded by [`LanguageModel::load`]).
    pub fn restore(&mut self, ctx: &Context, info: &LmCheckpoint) -> Result<()> {
        self.opt
            .load(ctx, &self.store, info.dir.join("optimizer.safetensors"))?;
        if self.opt.steps() != info.step {
            return Err(Error::Format {
                path: info.dir.join("optimizer.safetensors").display().to_string(),
                problem: format!(
                    "{} optimiser steps, config.json says {}",
                    self.opt.steps(),
                    info.step
                ),
            });
        }
        self.step = info.step;
        self.carried = None;
        if info
            .json
            .get("carried_state")
            .and_then(Value::as_str)
            .is_some()
        {
            let path = info.dir.join("state.safetensors");
            let (tensors, _) = read_f32_tensors(&path)?;
            let c = &self.model.config;
            let shape = vec![c.layers, c.batch, c.hidden];
            let mut h = None;
            let mut cs = None;
            for (name, t) in tensors {
                if t.shape != shape {
                    return Err(Error::Format {
                        path: path.display().to_string(),
                        problem: format!("{name}: shape {:?}, expected {shape:?}", t.shape),
                    });
                }
                let dev = Tensor::from_f32(ctx, &name, &shape, &t.data)?;
                match name.as_str() {
                    "h" => h = Some(dev),
                    "c" => cs = Some(dev),
                    _ => {}
                }
            }
            let h = h.ok_or_else(|| Error::Format {
                path: path.display().to_string(),
                problem: "h: missing".into(),
            })?;
            self.carried = Some(State { h, c: cs });
        }
        Ok(())
    }
}

/// How long `train` runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// Until this many optimiser steps in total (a resumed run counts the steps it had).
    Steps(u64),
    /// This many minutes of wall time for the whole command, final validation and checkpoint
    /// included.
    Minutes(f64),
}

/// `train`'s inputs.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The text; `None`: the shipped Tiny Shakespeare for a new run, the checkpoint's file on
    /// resume.
    pub data: Option<PathBuf>,
    /// The output folder (`last/`, `best/`, `metrics.csv`, `loss.png`).
    pub out: PathBuf,
    /// The model and training hyperparameters (on resume the checkpoint's hold).
    pub config: LmConfig,
    /// When to stop.
    pub budget: Budget,
    /// Continue the run in `out`.
    pub resume: bool,
    /// Validate (and checkpoint) every this many steps; `None`: every 60 s of training.
    pub eval_every: Option<u64>,
    /// Validation tokens scored at the intermediate validations (all of them at the end).
    pub eval_prefix: usize,
}

/// The text `train-lm` and `eval-lm` read when no `--data` is given.
pub const DEFAULT_DATA: &str = "data/tinyshakespeare/input.txt";

/// What `train` reports as it goes.
#[derive(Clone, Debug)]
pub enum Event {
    /// Training started (or resumed) at `step`.
    Started {
        /// The adapter.
        adapter: String,
        /// The step it starts from.
        step: u64,
        /// Parameters of the model.
        params: usize,
        /// Tokens per step.
        tokens_per_step: usize,
        /// What the tokens are.
        unit: Unit,
    },
    /// A step finished.
    Step {
        /// Steps taken.
        step: u64,
        /// Its loss.
        loss: f32,
        /// Training tokens per second (this run so far).
        tokens_per_s: f64,
        /// Seconds since the command started.
        elapsed: f64,
    },
    /// A validation (and checkpoint) finished.
    Validated {
        /// Steps taken.
        step: u64,
        /// Validation loss, nats per token.
        loss: f64,
        /// Over the whole validation split (the final validation) rather than its prefix.
        whole: bool,
        /// Whether `best/` was written.
        best: bool,
    },
}

/// Why training stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The step budget was reached.
    Steps,
    /// The time budget was reached.
    Minutes,
    /// Interrupted (Ctrl-C).
    Interrupted,
}

/// What `train` did.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// Steps taken in total.
    pub steps: u64,
    /// The final validation over the whole validation split.
    pub final_score: Score,
    /// The best validation loss of the run (prefix scores, as `best/` is chosen).
    pub best_loss: f64,
    /// Training tokens per second over this run.
    pub tokens_per_s: f64,
    /// Why it stopped.
    pub stop: Stop,
}

/// The training loop's bookkeeping: metrics, best score, what validations and checkpoints cost.
struct Run<'a> {
    ctx: &'a Context,
    opts: &'a TrainOptions,
    corpus: &'a Corpus,
    metrics: Metrics,
    best: f64,
    /// Loss sum, steps and seconds since the last metrics row.
    window: (f64, u64, f64),
    eval_secs_per_token: f64,
    save_secs: f64,
}

impl Run<'_> {
    /// Validates (a prefix, or the whole split with `full`), writes `last/` (and `best/`),
    /// `metrics.csv` and `loss.png`; returns the score and whether it was a new best.
    fn checkpoint(&mut self, trainer: &Trainer, full: bool) -> Result<(Score, bool)> {
        let t0 = Instant::now();
        let limit = (!full).then_some(self.opts.eval_prefix);
        let score = trainer
            .model
            .evaluate(self.ctx, &self.corpus.valid, limit)?;
        self.eval_secs_per_token = t0.elapsed().as_secs_f64() / score.tokens as f64;
        if !score.loss_nats.is_finite() {
            return Err(Error::Diverged(format!(
                "the validation loss is {} at step {}; the last checkpoint is kept",
                score.loss_nats, trainer.step
            )));
        }
        // best/ follows the prefix score at every validation; the final whole-split score is
        // recorded beside it.
        let prefix = if full {
            trainer
                .model
                .evaluate(self.ctx, &self.corpus.valid, Some(self.opts.eval_prefix))?
        } else {
            score
        };
        let is_best = prefix.loss_nats < self.best;
        if is_best {
            self.best = prefix.loss_nats;
        }
        // The curve stays one quantity: the prefix score (the whole split goes to config.json).
        self.log_row(trainer, Some(prefix.loss_nats));
        let t1 = Instant::now();
        let mut extra = json!({
            "val_loss": prefix.loss_nats,
            "val_tokens": prefix.tokens,
            "best_val_loss": self.best,
        });
        if full {
            extra["val_loss_full"] = json!(score.loss_nats);
            extra["val_tokens_full"] = json!(score.tokens);
        }
        trainer.save(
            self.ctx,
            &self.opts.out.join("last"),
            self.corpus,
            extra.clone(),
        )?;
        if is_best {
            trainer.save(self.ctx, &self.opts.out.join("best"), self.corpus, extra)?;
        }
        let c = &trainer.model.config;
        let (unit, header) = match c.unit {
            Unit::Char => ("character", "step,train_loss,val_loss,chars_per_s"),
            Unit::Word => ("word", "step,train_loss,val_loss,tokens_per_s"),
        };
        self.metrics
            .write_csv(&self.opts.out.join("metrics.csv"), header)?;
        let model = if c.is_window() {
            format!("window-{}", c.context)
        } else {
            c.mode.clone()
        };
        self.metrics.plot(
            &self.opts.out.join("loss.png"),
            &format!("wgrnn {unit} LM ({model}) on the GPU: cross-entropy"),
            &format!("nats per {unit}"),
            "validation loss",
            |r| r.val_loss,
        )?;
        self.save_secs = t1.elapsed().as_secs_f64();
        Ok((score, is_best))
    }

    /// Adds the metrics row of `trainer.step` (the mean training loss and speed since the
    /// previous row), or, when a row for this step exists and no step ran since, sets its
    /// validation loss.
    fn log_row(&mut self, trainer: &Trainer, val_loss: Option<f64>) {
        let (sum, steps, secs) = std::mem::take(&mut self.window);
        match self.metrics.rows.last_mut() {
            Some(r) if r.step == trainer.step && steps == 0 => {
                if val_loss.is_some() {
                    r.val_loss = val_loss;
                }
            }
            _ => self.metrics.rows.push(Row {
                step: trainer.step,
                train_loss: if steps > 0 {
                    sum / steps as f64
                } else {
                    f64::NAN
                },
                val_loss,
                tokens_per_s: if secs > 0.0 {
                    (steps as usize * trainer.tokens_per_step()) as f64 / secs
                } else {
                    0.0
                },
                extra: None,
            }),
        }
    }

    /// Seconds the end of the run needs: the final validations (prefix and whole split) and
    /// two checkpoints, at the rates measured so far.
    fn reserve(&self) -> f64 {
        let v = self.corpus.valid.len() as f64 + self.opts.eval_prefix as f64;
        self.eval_secs_per_token * v + 2.0 * self.save_secs + 1.0
    }
}

/// Trains a language model as `train-lm` does (see the module docs): validates and writes
/// `last/` (and `best/` on a new best) at every validation and at the end, keeps
/// `metrics.csv` and `loss.png` current, stops at the budget or when `stop` is set (Ctrl-C),
/// and ends with a validation over the whole validation split. A non-finite loss stops with
/// [`Error::Diverged`] before anything is written.
pub fn train(
    opts: &TrainOptions,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<TrainSummary> {
    let start = Instant::now();
    let resume_from = checkpoint::prepare_out(&opts.out, opts.resume)?;
    let resumed = match &resume_from {
        Some(dir) => Some(read_config(dir, "lm")?),
        None => None,
    };
    let ctx = checkpoint::context_for(resumed.as_ref())?;
    let recorded: Option<String> = match (&resumed, &resume_from) {
        (Some(c), Some(d)) => Some(field(c, &d.join("config.json"), "data")?),
        _ => None,
    };
    let data = opts
        .data
        .clone()
        .or(recorded.map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    let read = |c: &LmConfig| Corpus::read(&data, c.unit, c.min_count, None);
    let (corpus, model, info) = match &resume_from {
        Some(dir) => {
            let (m, i) = LanguageModel::load(&ctx, dir)?;
            let corpus = read(&i.config)?;
            if i.vocab != corpus.vocab {
                return Err(Error::Format {
                    path: corpus.path.clone(),
                    problem: "its vocabulary differs from the checkpoint's".into(),
                });
            }
            (corpus, m, Some(i))
        }
        None => {
            let corpus = read(&opts.config)?;
            ctx.use_tuned(opts.config.hidden, opts.config.batch);
            let m = LanguageModel::new(&ctx, &corpus.vocab, &opts.config)?;
            (corpus, m, None)
        }
    };
    let mut trainer = Trainer::new(&ctx, model, &corpus.train)?;
    let mut run = Run {
        ctx: &ctx,
        opts,
        corpus: &corpus,
        metrics: Metrics::default(),
        best: f64::INFINITY,
        window: (0.0, 0, 0.0),
        eval_secs_per_token: 0.0,
        save_secs: 2.0,
    };
    if let Some(i) = &info {
        trainer.restore(&ctx, i)?;
        run.best = i
            .json
            .get("best_val_loss")
            .and_then(Value::as_f64)
            .unwrap_or(f64::INFINITY);
    }
    run.metrics = Metrics::read_csv(&opts.out.join("metrics.csv"), trainer.step)?;
    // What a validation costs per token, measured on a short prefix before training (the
    // first pass compiles the pipelines; the second is timed).
    trainer
        .model
        .evaluate(&ctx, &corpus.valid, Some(EVAL_CHUNK))?;
    let t0 = Instant::now();
    let probe = trainer
        .model
        .evaluate(&ctx, &corpus.valid, Some(EVAL_CHUNK))?;
    run.eval_secs_per_token = t0.elapsed().as_secs_f64() / probe.tokens as f64;
    on_event(&Event::Started {
        adapter: ctx.adapter_name().to_string(),
        step: trainer.step,
        params: trainer.store.params().iter().map(|p| p.len()).sum(),
        tokens_per_step: trainer.tokens_per_step(),
        unit: trainer.model.config.unit,
    });

    let end = match opts.budget {
        Budget::Minutes(m) => Some(start + Duration::from_secs_f64(m * 60.0)),
        Budget::Steps(_) => None,
    };
    let first_step = trainer.step;
    let mut train_secs = 0.0f64;
    let mut last_eval = Instant::now();
    let stop_reason = loop {
        if stop.load(Ordering::Relaxed) {
            break Stop::Interrupted;
        }
        if let Budget::Steps(n) = opts.budget
            && trainer.step >= n
        {
            break Stop::Steps;
        }
        if let Some(end) = end {
            let per_step = match trainer.step - first_step {
                0 => 0.0,
                n => train_secs / n as f64,
            };
            if Instant::now() + Duration::from_secs_f64(run.reserve() + per_step) >= end {
                break Stop::Minutes;
            }
        }
        let t0 = Instant::now();
        let loss = trainer.train_step(&ctx)?;
        let dt = t0.elapsed().as_secs_f64();
        if !loss.is_finite() {
            return Err(Error::Diverged(format!(
                "the training loss is {loss} at step {}; the last checkpoint is kept (try a smaller --lr or --clip)",
                trainer.step
            )));
        }
        train_secs += dt;
        run.window.0 += loss as f64;
        run.window.1 += 1;
        run.window.2 += dt;
        if trainer.step % LOG_EVERY == 0 {
            run.log_row(&trainer, None);
        }
        on_event(&Event::Step {
            step: trainer.step,
            loss,
            tokens_per_s: ((trainer.step - first_step) as usize * trainer.tokens_per_step()) as f64
                / train_secs.max(1e-9),
            elapsed: start.elapsed().as_secs_f64(),
        });
        let due = match opts.eval_every {
            Some(n) => trainer.step % n.max(1) == 0,
            None => last_eval.elapsed() >= Duration::from_secs(60),
        };
        if due {
            let (score, best) = run.checkpoint(&trainer, false)?;
            last_eval = Instant::now();
            on_event(&Event::Validated {
                step: trainer.step,
                loss: score.loss_nats,
                whole: false,
                best,
            });
        }
    };
    if trainer.step == 0 {
        return Err(Error::config(
            "training stopped before its first step (budget too small): nothing was saved",
        ));
    }
    let (final_score, best) = run.checkpoint(&trainer, true)?;
    on_event(&Event::Validated {
        step: trainer.step,
        loss: final_score.loss_nats,
        whole: true,
        best,
    });
    Ok(TrainSummary {
        steps: trainer.step,
        final_score,
        best_loss: run.best,
        tokens_per_s: ((trainer.step - first_step) as usize * trainer.tokens_per_step()) as f64
            / train_secs.max(1e-9),
        stop: stop_reason,
    })
}
