//! Many-to-one: sentence classification (SST-2 sentiment). Model, data, training, prediction
//! and the checkpoint folder.
//!
//! Model: `embedding [V, E]` (padding id 0) -> RNN stack, bidirectional by default, over each
//! sentence's own length (PyTorch's packed sequences) -> pooling over the valid steps only
//! (`last`: the forward direction at the last valid step next to the reverse direction at step
//! 0; `mean`; `max`) -> dropout -> `classifier [K, D*H] + bias` -> softmax. Padded steps never
//! change the result (the RNN carries its state and outputs zeros there, the pooling reads only
//! valid steps) and never receive gradient. In PyTorch: `nn.Embedding(V, E, padding_idx=0)`,
//! `nn.LSTM(E, H, L, bidirectional=True)` on a `PackedSequence`, the pooling, `nn.Dropout`,
//! `nn.Linear(D*H, K)`.
//!
//! Data: lines `LABEL tokenized sentence`, integer labels `0..K-1` with K from the training
//! file. The vocabulary is `<pad>`, `<unk>` and every training token seen at least
//! `min_count` times. Batches are bucketed by length ([`super::corpus::buckets`]) and their
//! order shuffled per epoch from `(seed, epoch)`; word dropout (a token replaced by `<unk>`
//! during training) and the dropout masks are keyed by the step, so a resumed run repeats the
//! one-go run bit for bit.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::checkpoint::{self, FORMAT_VERSION, field, read_config};
use super::corpus::{Vocab, buckets};
use super::epochs;
pub use super::epochs::Budget;
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::nn::{
    AdamConfig, CeOutput, Dropout, Embedding, Linear, LinearGrads, Optimizer, ParamStore,
    record_log_softmax, record_softmax_cross_entropy, targets,
};
use crate::ops::{self, PoolKind};
use crate::reference::dropout::mix32;
use crate::rnn::{ForwardInputs, HostTensor, LayerParams, Mode, Rnn, RnnConfig, Upstream};
use crate::tensor::Tensor;

/// Padding id (its embedding row gets no gradient).
pub const PAD: u32 = 0;
/// Unknown-word id.
pub const UNK: u32 = 1;

/// How the states of a sentence become one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// The forward direction at the last valid step, the reverse direction at step 0.
    Last,
    /// The mean over the valid steps.
    Mean,
    /// The maximum over the valid steps (the gradient goes to the first arg-max step).
    Max,
}

impl Pool {
    /// Parses `last`, `mean`, `max`.
    pub fn parse(s: &str) -> Result<Pool> {
        match s {
            "last" => Ok(Pool::Last),
            "mean" => Ok(Pool::Mean),
            "max" => Ok(Pool::Max),
            _ => Err(Error::config(format!(
                "--pool {s:?}: expected last, mean or max"
            ))),
        }
    }
}

/// The hyperparameters of a classifier and its training (`train-classify`'s flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifyConfig {
    /// `lstm`, `gru`, `rnn_tanh` or `rnn_relu`.
    pub mode: String,
    /// Stacked layers.
    pub layers: usize,
    /// Hidden units per direction.
    pub hidden: usize,
    /// Embedding size.
    pub embed: usize,
    /// Two directions.
    pub bidirectional: bool,
    /// The pooling.
    pub pool: Pool,
    /// Dropout between layers and before the classifier.
    pub dropout: f32,
    /// Probability of replacing a training token by `<unk>`.
    pub word_dropout: f32,
    /// Training tokens seen fewer times are `<unk>`.
    pub min_count: usize,
    /// Sentences per batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Gradient-norm clip (0: none).
    pub clip: f32,
    /// Seed of the initialisation, batch order, word dropout and dropout masks.
    pub seed: u64,
}

impl Default for ClassifyConfig {
    /// The defaults of `train-classify` (docs/RESULTS.md has what they reach).
    fn default() -> Self {
        ClassifyConfig {
            mode: "gru".into(),
            layers: 1,
            hidden: 64,
            embed: 64,
            bidirectional: true,
            pool: Pool::Max,
            dropout: 0.5,
            word_dropout: 0.2,
            min_count: 2,
            batch: 32,
            lr: 2e-3,
            clip: 5.0,
            seed: 1,
        }
    }
}

impl ClassifyConfig {
    fn rnn(&self) -> Result<RnnConfig> {
        let cfg = RnnConfig::new(Mode::parse(&self.mode)?, self.embed, self.hidden)
            .layers(self.layers)
            .bidirectional(self.bidirectional)
            .dropout(self.dropout);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Refuses sizes and rates that cannot train, naming the flag.
    pub fn validate(&self) -> Result<()> {
        self.rnn()?;
        let bad = |flag: &str, v: &dyn std::fmt::Display| {
            Err(Error::config(format!("--{flag} {v} is out of range")))
        };
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
        if !(0.0..1.0).contains(&self.word_dropout) {
            return bad("word-dropout", &self.word_dropout);
        }
        Ok(())
    }

    fn dirs(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    fn mask_seed(&self, step: u64) -> u32 {
        mix32(mix32(self.seed as u32 ^ (self.seed >> 32) as u32) ^ step as u32)
    }
}

/// One labelled sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// The class.
    pub label: u32,
    /// The tokens.
    pub tokens: Vec<String>,
}

fn line_err(path: &str, line: usize, problem: impl std::fmt::Display) -> Error {
    Error::Format {
        path: path.to_string(),
        problem: format!("line {line}: {problem}"),
    }
}

/// Reads `LABEL tokenized sentence` lines; an empty line, a missing or non-integer label, a
/// sentence without tokens, or (with `classes`) a label outside `0..classes` is an error
/// naming the file and line.
pub fn read_labelled(path: &Path, classes: Option<usize>) -> Result<Vec<Example>> {
    let p = path.display().to_string();
    let text = super::corpus::read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut it = line.split_whitespace();
        let Some(lab) = it.next() else {
            return Err(line_err(&p, n, "empty line (expected LABEL sentence)"));
        };
        let label: u32 = lab.parse().map_err(|_| {
            line_err(
                &p,
                n,
                format!("label {lab:?} is not a non-negative integer"),
            )
        })?;
        if let Some(k) = classes
            && label as usize >= k
        {
            return Err(line_err(
                &p,
                n,
                format!("label {label} is outside 0..{k} (the classes of the training file)"),
            ));
        }
        let tokens: Vec<String> = it.map(String::from).collect();
        if tokens.is_empty() {
            return Err(line_err(&p, n, "a label without a sentence"));
        }
        out.push(Example { label, tokens });
    }
    Ok(out)
}

/// Reads unlabelled tokenized sentences, one per line, from `input` (`name` for messages); an
/// empty line is an error with its line number.
pub fn read_sentences(input: impl BufRead, name: &str) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| line_err(name, i + 1, e))?;
        let tokens: Vec<String> = line.split_whitespace().map(String::from).collect();
        if tokens.is_empty() {
            return Err(line_err(
                name,
                i + 1,
                "empty line (expected a tokenized sentence)",
            ));
        }
        out.push(tokens);
    }
    Ok(out)
}

/// A sentence classifier on the device.
#[derive(Debug)]
pub struct Classifier {
    /// Its hyperparameters.
    pub config: ClassifyConfig,
    /// The word vocabulary (`<pad>`, `<unk>`, then the words).
    pub vocab: Vocab,
    /// `embedding.weight [V, E]`
    pub embedding: Embedding,
    /// The stack, PyTorch's layout.
    pub rnn: Rnn,
    /// `classifier.weight [K, D*H]`, `classifier.bias [K]`
    pub classifier: Linear,
    dropout: Dropout,
}

/// A batch on the device: ids `[T, B]` (padded with `<pad>`), lengths on the host and the
/// device.
struct Batch {
    ids: Tensor,
    lengths: Vec<usize>,
    lengths_t: Tensor,
}

/// The hash stream of the dropout before the classifier.
const OUTPUT_DROPOUT_STREAM: u32 = 1000;
/// Sentences per batch when predicting.
const PREDICT_BATCH: usize = 64;

impl Classifier {
    /// A fresh classifier with PyTorch's initialisation from `config.seed`.
    pub fn new(
        ctx: &Context,
        vocab: Vocab,
        classes: usize,
        config: &ClassifyConfig,
    ) -> Result<Classifier> {
        config.validate()?;
        if classes < 2 {
            return Err(Error::config(format!(
                "{classes} class: a classifier needs at least two labels"
            )));
        }
        let s = config.seed.wrapping_mul(5);
        Ok(Classifier {
            embedding: Embedding::random(ctx, vocab.len(), config.embed, Some(PAD), s)?,
            rnn: Rnn::random(ctx, &config.rnn()?, s + 1)?,
            classifier: Linear::random(ctx, config.dirs() * config.hidden, classes, true, s + 2)?,
            dropout: Dropout::new(config.dropout, OUTPUT_DROPOUT_STREAM)?,
            config: config.clone(),
            vocab,
        })
    }

    /// K
    pub fn classes(&self) -> usize {
        self.classifier.fan_out()
    }

    fn batch(&self, ctx: &Context, sents: &[&[u32]]) -> Result<Batch> {
        let lengths: Vec<usize> = sents.iter().map(|s| s.len()).collect();
        let t = lengths.iter().copied().max().unwrap_or(1).max(1);
        let b = sents.len();
        let mut ids = vec![PAD; t * b];
        for (j, s) in sents.iter().enumerate() {
            for (i, &id) in s.iter().enumerate() {
                ids[i * b + j] = id;
            }
        }
        Ok(Batch {
            ids: self.embedding.ids(ctx, &[t, b], &ids)?,
            lengths_t: ops::lengths(ctx, "lengths", &lengths, t)?,
            lengths,
        })
    }

    fn pool_kind(&self) -> PoolKind {
        match self.config.pool {
            Pool::Mean => PoolKind::Mean,
            Pool::Max => PoolKind::Max,
            Pool::Last => PoolKind::Last {
                split: self.config.hidden,
            },
        }
    }

    /// Records the logits `[B, K]` of a batch; with `train`, dropout with `seed` and what the
    /// backward needs.
    fn record_logits(
        &self,
        rec: &mut Recorder,
        b: &Batch,
        train: Option<u32>,
    ) -> Result<(Tensor, Option<Saved>)> {
        let x = self.embedding.record_forward(rec, &b.ids)?;
        let inp = ForwardInputs {
            lengths: Some(&b.lengths),
            dropout_seed: train.unwrap_or(0),
            ..Default::default()
        };
        let (out, state) = self.rnn.record_forward(rec, &x, &inp, train.is_some())?;
        let (pooled, arg) = match self.config.pool {
            Pool::Mean => (ops::record_pool_mean(rec, &out.output, &b.lengths_t)?, None),
            Pool::Max => {
                let (p, a) = ops::record_pool_max(rec, &out.output, &b.lengths_t)?;
                (p, Some(a))
            }
            Pool::Last => (
                ops::record_last_step(rec, &out.output, &b.lengths_t, self.config.hidden)?,
                None,
            ),
        };
        let d = match train {
            Some(seed) => self.dropout.record_forward(rec, &pooled, seed, true)?,
            None => pooled,
        };
        let logits = self.classifier.record_forward(rec, &d)?;
        let saved = match (train, state) {
            (Some(_), Some(state)) => Some(Saved {
                state,
                arg,
                pooled_in: d,
                output_shape: out.output.shape().to_vec(),
            }),
            _ => None,
        };
        Ok((logits, saved))
    }

    /// The class probabilities of every sentence (ids), in input order, computed in batches of
    /// similar length on the device.
    pub fn predict(&self, ctx: &Context, sents: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let k = self.classes();
        let lens: Vec<usize> = sents.iter().map(|s| s.len()).collect();
        let mut order: Vec<usize> = (0..sents.len()).collect();
        order.sort_by_key(|&i| (lens[i], i));
        let mut out = vec![Vec::new(); sents.len()];
        for chunk in order.chunks(PREDICT_BATCH) {
            let refs: Vec<&[u32]> = chunk.iter().map(|&i| sents[i].as_slice()).collect();
            let b = self.batch(ctx, &refs)?;
            let mut rec = Recorder::new(ctx);
            let (logits, _) = self.record_logits(&mut rec, &b, None)?;
            let logp = record_log_softmax(&mut rec, &logits)?;
            rec.submit()?;
            let v = logp.to_vec(ctx)?;
            for (r, &i) in chunk.iter().enumerate() {
                out[i] = v[r * k..(r + 1) * k].iter().map(|l| l.exp()).collect();
            }
        }
        Ok(out)
    }

    /// Token ids of `tokens` (`<unk>` for unknown words).
    pub fn encode(&self, tokens: &[String]) -> Vec<u32> {
        self.vocab.encode_words(tokens, UNK)
    }

    /// The accuracy (fraction correct) and count over `examples`; a label outside the classes
    /// counts as wrong.
    pub fn accuracy(&self, ctx: &Context, examples: &[Example]) -> Result<(f64, usize)> {
        let sents: Vec<Vec<u32>> = examples.iter().map(|e| self.encode(&e.tokens)).collect();
        let probs = self.predict(ctx, &sents)?;
        let right = examples
            .iter()
            .zip(&probs)
            .filter(|(e, p)| argmax(p) == e.label as usize)
            .count();
        Ok((right as f64 / examples.len().max(1) as f64, examples.len()))
    }

    fn named(&self) -> Result<[(&'static str, &Tensor); 3]> {
        let bias = self
            .classifier
            .bias
            .as_ref()
            .ok_or_else(|| Error::Device("internal: classifier without bias".into()))?;
        Ok([
            ("embedding.weight", &self.embedding.weight),
            ("classifier.weight", &self.classifier.weight),
            ("classifier.bias", bias),
        ])
    }

    /// Loads a checkpoint folder (or a training output's `best/`); returns the classifier and
    /// its `config.json`.
    pub fn load(ctx: &Context, dir: &Path) -> Result<(Classifier, Value)> {
        let dir = checkpoint::resolve(dir)?;
        let path = dir.join("config.json");
        let conf = read_config(&dir, "classify")?;
        let config: ClassifyConfig = field(&conf, &path, "model")?;
        let vocab = Vocab::new(field(&conf, &path, "vocab")?)?;
        let classes: usize = field(&conf, &path, "classes")?;
        let m = Classifier::new(ctx, vocab, classes, &config)?;
        checkpoint::load_rnn(ctx, &m.rnn, &dir.join("rnn.safetensors"))?;
        checkpoint::load_named(ctx, &dir.join("model.safetensors"), &m.named()?)?;
        Ok((m, conf))
    }
}

/// The index of the largest value (the first on a tie).
pub fn argmax(p: &[f32]) -> usize {
    (0..p.len()).fold(0, |b, i| if p[i] > p[b] { i } else { b })
}

/// What a training forward keeps for the backward.
struct Saved {
    state: crate::ForwardState,
    arg: Option<Tensor>,
    pooled_in: Tensor,
    output_shape: Vec<usize>,
}

/// Training: the classifier with its gradients and optimiser, the data as ids, and where the
/// run is in its batch order.
pub struct ClassifyTrainer {
    /// The model being trained.
    pub model: Classifier,
    demb: Tensor,
    drnn: Vec<LayerParams>,
    dcls: LinearGrads,
    store: ParamStore,
    opt: Optimizer,
    train: Vec<(Vec<u32>, u32)>,
    /// Optimiser steps taken.
    pub step: u64,
    /// The epoch in progress (0-based).
    pub epoch: u64,
    /// Batches of the epoch in progress already taken.
    pub batch_in_epoch: usize,
    /// The dev set the run evaluates on.
    pub dev: Vec<Example>,
    /// The files, recorded in checkpoints.
    pub data: TrainData,
}

impl ClassifyTrainer {
    /// A trainer of `model` on `train` examples.
    pub fn new(ctx: &Context, model: Classifier, train: &[Example]) -> Result<ClassifyTrainer> {
        let demb = model.embedding.zero_grad(ctx)?;
        let drnn = model.rnn.zero_grads(ctx)?;
        let dcls = model.classifier.zero_grads(ctx)?;
        let mut store = ParamStore::new();
        model.embedding.register(&mut store, "embedding", &demb)?;
        store.add_rnn("rnn", &model.rnn, &drnn)?;
        model.classifier.register(&mut store, "classifier", &dcls)?;
        let opt = Optimizer::adam(ctx, &store, AdamConfig::adam(model.config.lr))?;
        let train = train
            .iter()
            .map(|e| (model.encode(&e.tokens), e.label))
            .collect();
        Ok(ClassifyTrainer {
            model,
            demb,
            drnn,
            dcls,
            store,
            opt,
            train,
            step: 0,
            epoch: 0,
            batch_in_epoch: 0,
            dev: Vec::new(),
            data: TrainData::default(),
        })
    }

    /// The batches of epoch `e` (indices into the training set).
    fn epoch_batches(&self, e: u64) -> Vec<Vec<usize>> {
        let lens: Vec<usize> = self.train.iter().map(|(s, _)| s.len()).collect();
        buckets(&lens, self.model.config.batch, self.model.config.seed, e)
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.model.config.batch)
    }

    /// The ids of batch `items` for step `self.step`, with word dropout when `train`.
    fn items(&self, items: &[usize], train: bool) -> (Vec<Vec<u32>>, Vec<u32>) {
        let c = &self.model.config;
        let mut rng =
            ChaCha8Rng::seed_from_u64(c.seed ^ self.step.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let sents = items
            .iter()
            .map(|&i| {
                self.train[i]
                    .0
                    .iter()
                    .map(|&id| {
                        let drop =
                            train && c.word_dropout > 0.0 && rng.random::<f32>() < c.word_dropout;
                        if drop { UNK } else { id }
                    })
                    .collect()
            })
            .collect();
        (sents, items.iter().map(|&i| self.train[i].1).collect())
    }

    /// Records the forward and backward of `sents` with `labels` (the gradients into the
    /// store's slots; `ignore` rows carry no loss) and, with `update`, clipping and Adam.
    fn record(
        &mut self,
        rec: &mut Recorder,
        sents: &[Vec<u32>],
        labels: &[u32],
        update: bool,
    ) -> Result<CeOutput> {
        let ctx = rec.ctx();
        let m = &self.model;
        let seed = m.config.mask_seed(self.step);
        let refs: Vec<&[u32]> = sents.iter().map(|s| s.as_slice()).collect();
        let b = m.batch(ctx, &refs)?;
        let tg = targets(ctx, &[labels.len()], labels, m.classes(), Some(u32::MAX))?;
        self.store.record_zero_grads(rec)?;
        let (logits, saved) = m.record_logits(rec, &b, Some(seed))?;
        let saved = saved.ok_or_else(|| Error::Device("internal: no saved state".into()))?;
        let ce = record_softmax_cross_entropy(rec, &logits, &tg, Some(u32::MAX), true)?;
        let dlogits = ce.grad()?;
        let dd = m
            .classifier
            .record_backward(rec, &saved.pooled_in, dlogits, &self.dcls, true)?;
        let dpooled = m.dropout.record_backward(rec, &dd, seed)?;
        let dout = Tensor::zeros(ctx, "grad rnn output", &saved.output_shape)?;
        ops::record_pool_backward(
            rec,
            m.pool_kind(),
            &dpooled,
            &b.lengths_t,
            saved.arg.as_ref(),
            &dout,
        )?;
        let up = Upstream {
            output: Some(&dout),
            ..Default::default()
        };
        let g = m
            .rnn
            .record_backward(rec, &saved.state, &up, Some(&self.drnn))?;
        m.embedding
            .record_backward(rec, &b.ids, &g.input, &self.demb, true)?;
        if update {
            if m.config.clip > 0.0 {
                self.store.record_clip_grad_norm(rec, m.config.clip)?;
            }
            self.opt.record_step(rec, &self.store)?;
        }
        Ok(ce)
    }

    /// One training step on the next batch of the epoch order (one submission); returns the
    /// batch's mean loss.
    pub fn train_step(&mut self, ctx: &Context) -> Result<f32> {
        if self.batch_in_epoch >= self.batches_per_epoch() {
            self.epoch += 1;
            self.batch_in_epoch = 0;
        }
        let items = self.epoch_batches(self.epoch)[self.batch_in_epoch].clone();
        let (sents, labels) = self.items(&items, true);
        let mut rec = Recorder::new(ctx);
        let ce = self.record(&mut rec, &sents, &labels, true)?;
        rec.submit()?;
        self.step += 1;
        self.batch_in_epoch += 1;
        ce.loss(ctx)
    }

    /// The mean loss of `sents` / `labels` (a label `u32::MAX` is ignored) and the gradient of
    /// every parameter by name, with dropout as at step `self.step` and nothing updated
    /// (gradient checks).
    pub fn gradients(
        &mut self,
        ctx: &Context,
        sents: &[Vec<u32>],
        labels: &[u32],
    ) -> Result<(f32, Vec<(String, HostTensor)>)> {
        let mut rec = Recorder::new(ctx);
        let ce = self.record(&mut rec, sents, labels, false)?;
        rec.submit()?;
        let grads = self
            .store
            .params()
            .iter()
            .map(|p| Ok((p.name.clone(), self.store.grad_to_host(ctx, &p.name)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((ce.loss(ctx)?, grads))
    }

    /// Writes the checkpoint folder `dir` atomically (with `extra` merged into config.json).
    pub fn save(&self, ctx: &Context, dir: &Path, extra: Value) -> Result<()> {
        let m = &self.model;
        let mut conf = json!({
            "kind": "classify",
            "format_version": FORMAT_VERSION,
            "model": m.config,
            "classes": m.classes(),
            "vocab": m.vocab.tokens(),
            "train": self.data.train,
            "dev": self.data.dev,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "rng": {"seed": m.config.seed, "next_step": self.step,
                    "note": "batch order from (seed, epoch); word dropout and dropout masks from (seed, step)"},
            "kernels": checkpoint::kernel_config(ctx),
        });
        if let (Some(o), Value::Object(e)) = (conf.as_object_mut(), extra) {
            o.extend(e);
        }
        let folder = checkpoint::Folder {
            rnns: &[("rnn.safetensors", &m.rnn)],
            model: &m.named()?,
            optimizer: Some((&self.opt, &self.store)),
            extra: &[],
            config: &conf,
        };
        checkpoint::write_folder(ctx, dir, &folder)
    }

    /// Restores the optimiser and the position in the batch order from a checkpoint.
    pub fn restore(&mut self, ctx: &Context, dir: &Path, conf: &Value) -> Result<()> {
        (self.step, self.epoch, self.batch_in_epoch) =
            epochs::restore_position(ctx, &mut self.opt, &self.store, dir, conf)?;
        Ok(())
    }
}

/// The files a run trains and selects on.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TrainData {
    /// Training file.
    pub train: String,
    /// Development file.
    pub dev: String,
}

/// [`train`]'s inputs.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Training file (`LABEL sentence` lines).
    pub train: PathBuf,
    /// Development file (selects `best/`).
    pub dev: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Hyperparameters (on resume the checkpoint's hold).
    pub config: ClassifyConfig,
    /// When to stop.
    pub budget: Budget,
    /// Continue the run in `out`.
    pub resume: bool,
}

/// Trains a classifier as `train-classify` does ([`super::epochs::run`]: dev accuracy and
/// checkpoints at every epoch end and at the end; `best/` holds the best dev accuracy).
/// `on_started` gets the adapter, the step it starts from, the parameter count and the
/// batches per epoch.
pub fn train(
    opts: &TrainOptions,
    stop: &AtomicBool,
    on_started: &mut dyn FnMut(&str, u64, usize, usize),
    on_event: &mut dyn FnMut(&epochs::Event),
) -> Result<epochs::Summary> {
    let start = epochs::start(&opts.out, opts.resume, "classify")?;
    let (resume_from, ctx) = (&start.from, &start.ctx);
    let train_ex = read_labelled(&opts.train, None)?;
    let classes = train_ex
        .iter()
        .map(|e| e.label as usize + 1)
        .max()
        .unwrap_or(0);
    let dev_ex = read_labelled(&opts.dev, Some(classes))?;
    let data = TrainData {
        train: opts.train.display().to_string(),
        dev: opts.dev.display().to_string(),
    };
    let (model, conf) = match &resume_from {
        Some(dir) => {
            let (m, c) = Classifier::load(ctx, dir)?;
            if m.classes() != classes {
                return Err(Error::Format {
                    path: data.train.clone(),
                    problem: format!("{classes} classes, the checkpoint has {}", m.classes()),
                });
            }
            (m, Some(c))
        }
        None => {
            let c = &opts.config;
            c.validate()?;
            let words = train_ex
                .iter()
                .flat_map(|e| e.tokens.iter().map(String::as_str));
            let vocab = Vocab::from_counts(words, c.min_count, &["<pad>", "<unk>"])?;
            (Classifier::new(ctx, vocab, classes, c)?, None)
        }
    };
    let mut tr = ClassifyTrainer::new(ctx, model, &train_ex)?;
    tr.dev = dev_ex;
    tr.data = data;
    if let (Some(dir), Some(c)) = (resume_from, &conf) {
        tr.restore(ctx, dir, c)?;
    }
    on_started(
        ctx.adapter_name(),
        tr.step,
        tr.store.params().iter().map(|p| p.len()).sum(),
        tr.batches_per_epoch(),
    );
    let curves = epochs::Curves {
        header: "step,train_loss,dev_accuracy,sentences_per_s",
        png: "curves.png",
        title: "wgrnn sentence classifier: training loss and dev accuracy",
        unit: "loss (nats) / accuracy",
        score: "dev accuracy",
        second: |r| r.val_loss,
    };
    epochs::run(
        ctx,
        &mut tr,
        &opts.out,
        opts.budget,
        start.best(),
        &curves,
        stop,
        on_event,
    )
}

impl epochs::EpochTrainer for ClassifyTrainer {
    fn train_step(&mut self, ctx: &Context) -> Result<f32> {
        ClassifyTrainer::train_step(self, ctx)
    }
    fn step(&self) -> u64 {
        self.step
    }
    fn position(&self) -> (u64, usize) {
        (self.epoch, self.batch_in_epoch)
    }
    fn batches_per_epoch(&self) -> usize {
        ClassifyTrainer::batches_per_epoch(self)
    }
    fn batch_size(&self) -> usize {
        self.model.config.batch
    }
    fn rnn_shape(&self) -> Option<(usize, usize)> {
        Some((self.model.config.hidden, self.model.config.batch))
    }
    fn evaluate(&self, ctx: &Context) -> Result<f64> {
        Ok(self.model.accuracy(ctx, &self.dev)?.0)
    }
    fn save(&self, ctx: &Context, dir: &Path, extra: Value) -> Result<()> {
        ClassifyTrainer::save(self, ctx, dir, extra)
    }
}
