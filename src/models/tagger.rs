//! Many-to-many: part-of-speech tagging (UPOS on UD English EWT), with character-level word
//! features. Model, data, training, tagging and the checkpoint folder.
//!
//! Model, per batch of B sentences of up to T words (time-major, padded):
//!   w = word_embedding(ids)                           [T, B, Ew]   (padding id 0)
//!   c = chars of every position as one ragged batch   [Tc, T*B]    (a word capped to its first
//!       and last CHAR_KEEP characters; padding positions a one-character dummy)
//!   f = last_step(char BiRNN(char_embedding(c)))      [T*B, 2Hc]   (forward direction at the
//!       last character, reverse direction at the first)
//!   y = BiRNN([w ; f], sentence lengths)              [T, B, 2H]
//!   logits = tagger(dropout(y))                       [T, B, K]    -> cross-entropy over the
//!       valid positions only (padded positions carry the ignore index: no loss, no gradient)
//! The gradient flows back through the concatenation into the character RNN and both
//! embeddings. With `char_features = false` the model is word embedding -> BiRNN -> tagger.
//!
//! Vocabularies: words `<pad>`, `<unk>` and the training forms seen at least `min_count`
//! times; characters `<pad>`, `<unk>` and every training character; tags every training UPOS
//! sorted. Batches bucketed by length, order from (seed, epoch); word dropout and masks keyed
//! by the step, so `--resume` is exact.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::checkpoint::{self, FORMAT_VERSION, field, read_config};
use super::conllu::{self, Document, Word};
use super::corpus::{Vocab, buckets};
use super::epochs;
pub use super::epochs::Budget;
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::nn::{
    AdamConfig, CeOutput, Dropout, Embedding, Linear, LinearGrads, Optimizer, ParamStore,
    record_softmax_cross_entropy,
};
use crate::ops;
use crate::reference::dropout::mix32;
use crate::rnn::{ForwardInputs, HostTensor, LayerParams, Mode, Rnn, RnnConfig, Upstream};
use crate::tensor::{DType, Tensor};

/// Padding id (words and characters).
pub const PAD: u32 = 0;
/// Unknown id (words and characters).
pub const UNK: u32 = 1;
/// A word longer than `2 * CHAR_KEEP` characters keeps its first and last `CHAR_KEEP`.
pub const CHAR_KEEP: usize = 10;
/// The ignore index of the loss (padded positions).
const IGNORE: u32 = u32::MAX;

/// The hyperparameters of a tagger and its training (`train-tagger`'s flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaggerConfig {
    /// `lstm`, `gru`, `rnn_tanh` or `rnn_relu` (both RNNs).
    pub mode: String,
    /// Layers of the word RNN.
    pub layers: usize,
    /// Hidden units per direction of the word RNN.
    pub hidden: usize,
    /// Word embedding size.
    pub embed: usize,
    /// Character features on or off.
    pub char_features: bool,
    /// Character embedding size.
    pub char_embed: usize,
    /// Hidden units per direction of the character RNN.
    pub char_hidden: usize,
    /// Dropout between layers and before the tagger.
    pub dropout: f32,
    /// Probability of replacing a training word by `<unk>` (its characters stay).
    pub word_dropout: f32,
    /// Training forms seen fewer times are `<unk>`.
    pub min_count: usize,
    /// Sentences per batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Gradient-norm clip (0: none).
    pub clip: f32,
    /// Seed of the initialisation, batch order, word dropout and masks.
    pub seed: u64,
}

impl Default for TaggerConfig {
    /// The defaults of `train-tagger` (docs/RESULTS.md has what they reach).
    fn default() -> Self {
        TaggerConfig {
            mode: "lstm".into(),
            layers: 1,
            hidden: 64,
            embed: 64,
            char_features: true,
            char_embed: 16,
            char_hidden: 32,
            dropout: 0.3,
            word_dropout: 0.05,
            min_count: 2,
            batch: 32,
            lr: 2e-3,
            clip: 5.0,
            seed: 1,
        }
    }
}

impl TaggerConfig {
    fn input(&self) -> usize {
        self.embed
            + if self.char_features {
                2 * self.char_hidden
            } else {
                0
            }
    }

    fn word_rnn(&self) -> Result<RnnConfig> {
        let cfg = RnnConfig::new(Mode::parse(&self.mode)?, self.input(), self.hidden)
            .layers(self.layers)
            .bidirectional(true)
            .dropout(self.dropout);
        cfg.validate()?;
        Ok(cfg)
    }

    fn char_rnn(&self) -> Result<RnnConfig> {
        let cfg = RnnConfig::new(Mode::parse(&self.mode)?, self.char_embed, self.char_hidden)
            .bidirectional(true);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Refuses sizes and rates that cannot train, naming the flag.
    pub fn validate(&self) -> Result<()> {
        self.word_rnn()?;
        if self.char_features {
            self.char_rnn()?;
        }
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

    fn mask_seed(&self, step: u64) -> u32 {
        mix32(mix32(self.seed as u32 ^ (self.seed >> 32) as u32) ^ step as u32)
    }
}

/// The character ids of a word, capped to its first and last [`CHAR_KEEP`] characters.
pub fn char_ids(chars: &Vocab, form: &str) -> Vec<u32> {
    let cs: Vec<char> = form.chars().collect();
    let kept: Vec<char> = if cs.len() > 2 * CHAR_KEEP {
        cs[..CHAR_KEEP]
            .iter()
            .chain(&cs[cs.len() - CHAR_KEEP..])
            .copied()
            .collect()
    } else {
        cs
    };
    let mut buf = [0u8; 4];
    let ids: Vec<u32> = kept
        .iter()
        .map(|c| chars.id(c.encode_utf8(&mut buf)).unwrap_or(UNK))
        .collect();
    if ids.is_empty() { vec![UNK] } else { ids }
}

/// A sentence as ids: words, characters of each word, tags (`IGNORE` where unknown).
#[derive(Clone, Debug)]
struct Encoded {
    words: Vec<u32>,
    chars: Vec<Vec<u32>>,
    tags: Vec<u32>,
}

/// A tagger on the device.
#[derive(Debug)]
pub struct Tagger {
    /// Its hyperparameters.
    pub config: TaggerConfig,
    /// Words (`<pad>`, `<unk>`, then the forms).
    pub words: Vocab,
    /// Characters (`<pad>`, `<unk>`, then the characters).
    pub chars: Vocab,
    /// The UPOS tags in id order.
    pub tags: Vocab,
    /// `embedding.weight [Vw, Ew]`
    pub embedding: Embedding,
    /// `char_embedding.weight [Vc, Ec]` (with character features)
    pub char_embedding: Option<Embedding>,
    /// The character BiRNN (with character features).
    pub char_rnn: Option<Rnn>,
    /// The word BiRNN.
    pub rnn: Rnn,
    /// `tagger.weight [K, 2H]`, `tagger.bias [K]`
    pub tagger: Linear,
    dropout: Dropout,
}

/// A batch on the device.
struct Batch {
    ids: Tensor,
    lengths: Vec<usize>,
    targets: Tensor,
    chars: Option<CharBatch>,
}

/// The characters of a batch's words: each distinct word once, the distinct words in buckets
/// of similar length (one character-RNN call each), and for every position of the batch the
/// row of its word's features (padding positions: the zero row after the `unique` words).
struct CharBatch {
    buckets: Vec<CharBucket>,
    unique: usize,
    rows: Tensor,
}

/// Words of similar length: characters `[Tc, n]`, their lengths, and where their features go
/// among the distinct words.
struct CharBucket {
    ids: Tensor,
    lengths: Vec<usize>,
    lengths_t: Tensor,
    offset: usize,
}

/// Upper bounds of the word-length buckets of the character RNN (a word has at most
/// `2 * CHAR_KEEP` characters).
const CHAR_BUCKETS: [usize; 4] = [4, 7, 11, 2 * CHAR_KEEP];

/// What a training forward keeps for the backward.
struct Saved {
    state: crate::ForwardState,
    /// The character RNN's saved state of each bucket.
    char_states: Vec<crate::ForwardState>,
    y: Tensor,
}

const OUTPUT_DROPOUT_STREAM: u32 = 1000;
const PREDICT_BATCH: usize = 64;

impl Tagger {
    /// A fresh tagger with PyTorch's initialisation from `config.seed`.
    pub fn new(
        ctx: &Context,
        words: Vocab,
        chars: Vocab,
        tags: Vocab,
        config: &TaggerConfig,
    ) -> Result<Tagger> {
        config.validate()?;
        let s = config.seed.wrapping_mul(7);
        let (char_embedding, char_rnn) = if config.char_features {
            (
                Some(Embedding::random(
                    ctx,
                    chars.len(),
                    config.char_embed,
                    Some(PAD),
                    s + 3,
                )?),
                Some(Rnn::random(ctx, &config.char_rnn()?, s + 4)?),
            )
        } else {
            (None, None)
        };
        Ok(Tagger {
            embedding: Embedding::random(ctx, words.len(), config.embed, Some(PAD), s)?,
            rnn: Rnn::random(ctx, &config.word_rnn()?, s + 1)?,
            tagger: Linear::random(ctx, 2 * config.hidden, tags.len(), true, s + 2)?,
            char_embedding,
            char_rnn,
            dropout: Dropout::new(config.dropout, OUTPUT_DROPOUT_STREAM)?,
            config: config.clone(),
            words,
            chars,
            tags,
        })
    }

    fn encode(&self, sentence: &[Word]) -> Encoded {
        Encoded {
            words: sentence
                .iter()
                .map(|w| self.words.id(&w.form).unwrap_or(UNK))
                .collect(),
            chars: sentence
                .iter()
                .map(|w| char_ids(&self.chars, &w.form))
                .collect(),
            tags: sentence
                .iter()
                .map(|w| self.tags.id(&w.upos).unwrap_or(IGNORE))
                .collect(),
        }
    }

    fn batch(&self, ctx: &Context, sents: &[&Encoded]) -> Result<Batch> {
        let lengths: Vec<usize> = sents.iter().map(|s| s.words.len()).collect();
        let t = lengths.iter().copied().max().unwrap_or(1).max(1);
        let b = sents.len();
        let mut ids = vec![PAD; t * b];
        let mut tg = vec![IGNORE; t * b];
        for (j, s) in sents.iter().enumerate() {
            for i in 0..s.words.len() {
                ids[i * b + j] = s.words[i];
                tg[i * b + j] = s.tags[i];
            }
        }
        let chars = if self.config.char_features {
            // Distinct words of the batch (first seen first), and each position's row.
            let mut index: HashMap<&[u32], u32> = HashMap::new();
            let mut unique: Vec<&[u32]> = Vec::new();
            let mut rows = vec![0u32; t * b];
            for (p, row) in rows.iter_mut().enumerate() {
                let (i, j) = (p / b, p % b);
                *row = match sents[j].chars.get(i) {
                    Some(c) => *index.entry(c.as_slice()).or_insert_with(|| {
                        unique.push(c.as_slice());
                        unique.len() as u32 - 1
                    }),
                    None => u32::MAX, // padding: the zero row, set below
                };
            }
            let u = unique.len();
            for r in rows.iter_mut().filter(|r| **r == u32::MAX) {
                *r = u as u32;
            }
            // Buckets by length, words sorted by (length, first occurrence); features are
            // laid out in that order, so renumber the rows.
            let mut order: Vec<usize> = (0..u).collect();
            order.sort_by_key(|&w| (unique[w].len(), w));
            let mut new_row = vec![0u32; u + 1];
            new_row[u] = u as u32;
            for (k, &w) in order.iter().enumerate() {
                new_row[w] = k as u32;
            }
            for r in rows.iter_mut() {
                *r = new_row[*r as usize];
            }
            let emb = self
                .char_embedding
                .as_ref()
                .ok_or_else(|| Error::Device("internal: no char embedding".into()))?;
            let mut buckets = Vec::new();
            let mut start = 0;
            for &limit in &CHAR_BUCKETS {
                let end = start
                    + order[start..]
                        .iter()
                        .take_while(|&&w| unique[w].len() <= limit)
                        .count();
                if end > start {
                    let words: Vec<&[u32]> = order[start..end].iter().map(|&w| unique[w]).collect();
                    let lens: Vec<usize> = words.iter().map(|w| w.len()).collect();
                    let tc = lens.iter().copied().max().unwrap_or(1);
                    let n = words.len();
                    let mut cids = vec![PAD; tc * n];
                    for (q, w) in words.iter().enumerate() {
                        for (k, &id) in w.iter().enumerate() {
                            cids[k * n + q] = id;
                        }
                    }
                    buckets.push(CharBucket {
                        ids: emb.ids(ctx, &[tc, n], &cids)?,
                        lengths_t: ops::lengths(ctx, "char lengths", &lens, tc)?,
                        lengths: lens,
                        offset: start,
                    });
                }
                start = end;
            }
            Some(CharBatch {
                buckets,
                unique: u,
                rows: ops::indices(ctx, "word rows", &rows, u + 1)?,
            })
        } else {
            None
        };
        Ok(Batch {
            ids: self.embedding.ids(ctx, &[t, b], &ids)?,
            targets: Tensor::from_u32(ctx, "tags", &[t, b], &tg)?,
            lengths,
            chars,
        })
    }

    /// Records the character features `[T, B, 2Hc]` of a batch (and each bucket's saved
    /// state in training): one character-RNN call per bucket, its last-step features copied to
    /// the bucket's rows of the distinct words' features, then gathered to the positions.
    fn record_char_features(
        &self,
        rec: &mut Recorder,
        cb: &CharBatch,
        t: usize,
        b: usize,
        train: Option<u32>,
    ) -> Result<(Tensor, Vec<crate::ForwardState>)> {
        let (emb, rnn) = match (&self.char_embedding, &self.char_rnn) {
            (Some(e), Some(r)) => (e, r),
            _ => return Err(Error::Device("internal: no character model".into())),
        };
        let f2 = 2 * self.config.char_hidden;
        let all = Tensor::empty(rec.ctx(), "word features", &[cb.unique + 1, f2], DType::F32)?;
        rec.clear(&all, cb.unique * f2, f2)?;
        let mut states = Vec::new();
        for bk in &cb.buckets {
            let x = emb.record_forward(rec, &bk.ids)?;
            let inp = ForwardInputs {
                lengths: Some(&bk.lengths),
                dropout_seed: train.unwrap_or(0),
                ..Default::default()
            };
            let (out, st) = rnn.record_forward(rec, &x, &inp, train.is_some())?;
            let f =
                ops::record_last_step(rec, &out.output, &bk.lengths_t, self.config.char_hidden)?;
            rec.copy(&f, 0, &all, bk.offset * f2, f.numel())?;
            states.extend(st);
        }
        let f = ops::record_gather_rows(rec, &all, &cb.rows)?;
        Ok((f.reshape(&[t, b, f2])?, states))
    }

    /// Records the logits `[T, B, K]` of a batch; with `train`, dropout and the saved states.
    fn record_logits(
        &self,
        rec: &mut Recorder,
        bt: &Batch,
        train: Option<u32>,
    ) -> Result<(Tensor, Option<Saved>)> {
        let s = bt.ids.shape().to_vec();
        let (t, b) = (s[0], s[1]);
        let w = self.embedding.record_forward(rec, &bt.ids)?;
        let (x, char_states) = match &bt.chars {
            Some(cb) => {
                let (f, st) = self.record_char_features(rec, cb, t, b, train)?;
                (ops::record_concat(rec, &[&w, &f])?, st)
            }
            None => (w, Vec::new()),
        };
        let inp = ForwardInputs {
            lengths: Some(&bt.lengths),
            dropout_seed: train.unwrap_or(0),
            ..Default::default()
        };
        let (out, state) = self.rnn.record_forward(rec, &x, &inp, train.is_some())?;
        let y = match train {
            Some(seed) => self.dropout.record_forward(rec, &out.output, seed, true)?,
            None => out.output,
        };
        let logits = self.tagger.record_forward(rec, &y)?;
        let saved = match (train, state) {
            (Some(_), Some(state)) => Some(Saved {
                state,
                char_states,
                y,
            }),
            _ => None,
        };
        Ok((logits, saved))
    }

    /// The tag ids of every word of `sentences`, in order, computed in batches of similar
    /// length on the device.
    pub fn predict(&self, ctx: &Context, sentences: &[Vec<Word>]) -> Result<Vec<Vec<u32>>> {
        let enc: Vec<Encoded> = sentences.iter().map(|s| self.encode(s)).collect();
        let lens: Vec<usize> = enc.iter().map(|e| e.words.len()).collect();
        let mut order: Vec<usize> = (0..enc.len()).filter(|&i| lens[i] > 0).collect();
        order.sort_by_key(|&i| (lens[i], i));
        let k = self.tags.len();
        let mut out = vec![Vec::new(); enc.len()];
        for chunk in order.chunks(PREDICT_BATCH) {
            let refs: Vec<&Encoded> = chunk.iter().map(|&i| &enc[i]).collect();
            let bt = self.batch(ctx, &refs)?;
            let mut rec = Recorder::new(ctx);
            let (logits, _) = self.record_logits(&mut rec, &bt, None)?;
            let best = ops::record_argmax(&mut rec, &logits)?;
            rec.submit()?;
            let ids = best.to_vec_u32(ctx)?;
            let b = chunk.len();
            for (j, &i) in chunk.iter().enumerate() {
                out[i] = (0..lens[i])
                    .map(|t| ids[t * b + j].min(k as u32 - 1))
                    .collect();
            }
        }
        Ok(out)
    }

    fn named(&self) -> Result<Vec<(&'static str, &Tensor)>> {
        let bias = self
            .tagger
            .bias
            .as_ref()
            .ok_or_else(|| Error::Device("internal: tagger without bias".into()))?;
        let mut v = vec![
            ("embedding.weight", &self.embedding.weight),
            ("tagger.weight", &self.tagger.weight),
            ("tagger.bias", bias),
        ];
        if let Some(e) = &self.char_embedding {
            v.push(("char_embedding.weight", &e.weight));
        }
        Ok(v)
    }

    /// Loads a checkpoint folder (or a training output's `best/`); returns the tagger and its
    /// `config.json`.
    pub fn load(ctx: &Context, dir: &Path) -> Result<(Tagger, Value)> {
        let dir = checkpoint::resolve(dir)?;
        let path = dir.join("config.json");
        let conf = read_config(&dir, "tagger")?;
        let config: TaggerConfig = field(&conf, &path, "model")?;
        let words = Vocab::new(field(&conf, &path, "words")?)?;
        let chars = Vocab::new(field(&conf, &path, "chars")?)?;
        let tags = Vocab::new(field(&conf, &path, "tags")?)?;
        let m = Tagger::new(ctx, words, chars, tags, &config)?;
        checkpoint::load_rnn(ctx, &m.rnn, &dir.join("rnn.safetensors"))?;
        if let Some(r) = &m.char_rnn {
            checkpoint::load_rnn(ctx, r, &dir.join("char_rnn.safetensors"))?;
        }
        checkpoint::load_named(ctx, &dir.join("model.safetensors"), &m.named()?)?;
        Ok((m, conf))
    }
}

/// Token accuracy of a tagger on a document, on words unseen in training, and of the
/// most-frequent-tag baseline.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Scores {
    /// Fraction of word lines tagged right.
    pub accuracy: f64,
    /// Word lines scored.
    pub n: usize,
    /// The same over words whose form never occurs in the training file.
    pub accuracy_oov: f64,
    /// Such words.
    pub n_oov: usize,
    /// Each training form's most frequent tag, the overall most frequent for unseen forms.
    pub baseline_accuracy: f64,
}

/// Scores `tagger` on `doc`, with the training document for the unseen words and the baseline.
pub fn score(ctx: &Context, tagger: &Tagger, doc: &Document, train: &Document) -> Result<Scores> {
    let mut counts: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    let mut overall: HashMap<&str, usize> = HashMap::new();
    for w in train.sentences.iter().flatten() {
        *counts
            .entry(&w.form)
            .or_default()
            .entry(&w.upos)
            .or_default() += 1;
        *overall.entry(&w.upos).or_default() += 1;
    }
    // Most frequent; ties to the tag first in code-point order (deterministic).
    let top = |m: &HashMap<&str, usize>| -> String {
        let mut v: Vec<(&&str, &usize)> = m.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.first().map_or(String::new(), |(t, _)| t.to_string())
    };
    let top_overall = top(&overall);
    let pred = tagger.predict(ctx, &doc.sentences)?;
    let (mut right, mut n, mut oov_right, mut oov, mut base) = (0, 0, 0, 0, 0);
    for (s, p) in doc.sentences.iter().zip(&pred) {
        for (w, &t) in s.iter().zip(p) {
            let ok = tagger.tags.tokens()[t as usize] == w.upos;
            n += 1;
            right += usize::from(ok);
            let b = match counts.get(w.form.as_str()) {
                Some(m) => top(m),
                None => {
                    oov += 1;
                    oov_right += usize::from(ok);
                    top_overall.clone()
                }
            };
            base += usize::from(b == w.upos);
        }
    }
    let frac = |a: usize, b: usize| a as f64 / b.max(1) as f64;
    Ok(Scores {
        accuracy: frac(right, n),
        n,
        accuracy_oov: frac(oov_right, oov),
        n_oov: oov,
        baseline_accuracy: frac(base, n),
    })
}

/// Training: the tagger with its gradients and optimiser, the data as ids and the position in
/// the batch order.
pub struct TaggerTrainer {
    /// The model being trained.
    pub model: Tagger,
    demb: Tensor,
    dchar_emb: Option<Tensor>,
    dchar_rnn: Option<Vec<LayerParams>>,
    drnn: Vec<LayerParams>,
    dtag: LinearGrads,
    store: ParamStore,
    opt: Optimizer,
    train: Vec<Encoded>,
    /// The dev document the run evaluates on.
    pub dev: Vec<Vec<Word>>,
    /// Files recorded in checkpoints.
    pub files: Value,
    /// Optimiser steps taken.
    pub step: u64,
    /// Completed epochs.
    pub epoch: u64,
    /// Batches of the epoch in progress already taken.
    pub batch_in_epoch: usize,
}

impl TaggerTrainer {
    /// A trainer of `model` on `train` sentences.
    pub fn new(ctx: &Context, model: Tagger, train: &[Vec<Word>]) -> Result<TaggerTrainer> {
        let demb = model.embedding.zero_grad(ctx)?;
        let drnn = model.rnn.zero_grads(ctx)?;
        let dtag = model.tagger.zero_grads(ctx)?;
        let mut store = ParamStore::new();
        model.embedding.register(&mut store, "embedding", &demb)?;
        let (mut dchar_emb, mut dchar_rnn) = (None, None);
        if let (Some(e), Some(r)) = (&model.char_embedding, &model.char_rnn) {
            let de = e.zero_grad(ctx)?;
            let dr = r.zero_grads(ctx)?;
            e.register(&mut store, "char_embedding", &de)?;
            store.add_rnn("char_rnn", r, &dr)?;
            dchar_emb = Some(de);
            dchar_rnn = Some(dr);
        }
        store.add_rnn("rnn", &model.rnn, &drnn)?;
        model.tagger.register(&mut store, "tagger", &dtag)?;
        let opt = Optimizer::adam(ctx, &store, AdamConfig::adam(model.config.lr))?;
        let train = train
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| model.encode(s))
            .collect();
        Ok(TaggerTrainer {
            model,
            demb,
            dchar_emb,
            dchar_rnn,
            drnn,
            dtag,
            store,
            opt,
            train,
            dev: Vec::new(),
            files: Value::Null,
            step: 0,
            epoch: 0,
            batch_in_epoch: 0,
        })
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.model.config.batch)
    }

    /// Records forward and backward of `sents` (gradients into the store's slots) and, with
    /// `update`, clipping and Adam.
    fn record(&mut self, rec: &mut Recorder, sents: &[Encoded], update: bool) -> Result<CeOutput> {
        let ctx = rec.ctx();
        let m = &self.model;
        let seed = m.config.mask_seed(self.step);
        let refs: Vec<&Encoded> = sents.iter().collect();
        let bt = m.batch(ctx, &refs)?;
        self.store.record_zero_grads(rec)?;
        let (logits, saved) = m.record_logits(rec, &bt, Some(seed))?;
        let saved = saved.ok_or_else(|| Error::Device("internal: no saved state".into()))?;
        let ce = record_softmax_cross_entropy(rec, &logits, &bt.targets, Some(IGNORE), true)?;
        let dlogits = ce.grad()?;
        let dy = m
            .tagger
            .record_backward(rec, &saved.y, dlogits, &self.dtag, true)?;
        let dy = m.dropout.record_backward(rec, &dy, seed)?;
        let up = Upstream {
            output: Some(&dy),
            ..Default::default()
        };
        let g = m
            .rnn
            .record_backward(rec, &saved.state, &up, Some(&self.drnn))?;
        let ew = m.config.embed;
        let dword = if let Some(cb) = &bt.chars {
            let hc = m.config.char_hidden;
            let parts = ops::split(&g.input, &[ew, 2 * hc])?;
            let dfeat = ops::record_copy(rec, &parts[1])?;
            let s = bt.ids.shape();
            let dall = Tensor::zeros(ctx, "grad word features", &[cb.unique + 1, 2 * hc])?;
            let dfeat = dfeat.reshape(&[s[0] * s[1], 2 * hc])?;
            ops::record_gather_rows_backward(rec, &cb.rows, &dfeat, &dall)?;
            let (crnn, cemb) = match (&m.char_rnn, &m.char_embedding) {
                (Some(r), Some(e)) => (r, e),
                _ => return Err(Error::Device("internal: no character model".into())),
            };
            for (bk, cstate) in cb.buckets.iter().zip(&saved.char_states) {
                let n = bk.lengths.len();
                let tc = bk.ids.shape()[0];
                let df = Tensor::empty(ctx, "grad bucket features", &[n, 2 * hc], DType::F32)?;
                rec.copy(&dall, bk.offset * 2 * hc, &df, 0, n * 2 * hc)?;
                let dcout = Tensor::zeros(ctx, "grad char rnn output", &[tc, n, 2 * hc])?;
                ops::record_pool_backward(
                    rec,
                    ops::PoolKind::Last { split: hc },
                    &df,
                    &bk.lengths_t,
                    None,
                    &dcout,
                )?;
                let cup = Upstream {
                    output: Some(&dcout),
                    ..Default::default()
                };
                let cg = crnn.record_backward(rec, cstate, &cup, self.dchar_rnn.as_deref())?;
                if let Some(de) = &self.dchar_emb {
                    cemb.record_backward(rec, &bk.ids, &cg.input, de, true)?;
                }
            }
            ops::record_copy(rec, &parts[0])?
        } else {
            g.input
        };
        m.embedding
            .record_backward(rec, &bt.ids, &dword, &self.demb, true)?;
        if update {
            if m.config.clip > 0.0 {
                self.store.record_clip_grad_norm(rec, m.config.clip)?;
            }
            self.opt.record_step(rec, &self.store)?;
        }
        Ok(ce)
    }

    /// One training step on the next batch (one submission); the batch's mean loss.
    pub fn train_step(&mut self, ctx: &Context) -> Result<f32> {
        if self.batch_in_epoch >= self.batches_per_epoch() {
            self.epoch += 1;
            self.batch_in_epoch = 0;
        }
        let c = &self.model.config;
        let lens: Vec<usize> = self.train.iter().map(|s| s.words.len()).collect();
        let items = buckets(&lens, c.batch, c.seed, self.epoch)[self.batch_in_epoch].clone();
        let mut rng =
            ChaCha8Rng::seed_from_u64(c.seed ^ self.step.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let wd = c.word_dropout;
        let sents: Vec<Encoded> = items
            .iter()
            .map(|&i| {
                let mut e = self.train[i].clone();
                for w in &mut e.words {
                    if wd > 0.0 && rng.random::<f32>() < wd {
                        *w = UNK;
                    }
                }
                e
            })
            .collect();
        let mut rec = Recorder::new(ctx);
        let ce = self.record(&mut rec, &sents, true)?;
        rec.submit()?;
        self.step += 1;
        self.batch_in_epoch += 1;
        ce.loss(ctx)
    }

    /// The mean loss of `sentences` and every parameter's gradient by name, nothing updated
    /// (gradient checks; dropout as at step `self.step`).
    pub fn gradients(
        &mut self,
        ctx: &Context,
        sentences: &[Vec<Word>],
    ) -> Result<(f32, Vec<(String, HostTensor)>)> {
        let enc: Vec<Encoded> = sentences.iter().map(|s| self.model.encode(s)).collect();
        let mut rec = Recorder::new(ctx);
        let ce = self.record(&mut rec, &enc, false)?;
        rec.submit()?;
        let grads = self
            .store
            .params()
            .iter()
            .map(|p| Ok((p.name.clone(), self.store.grad_to_host(ctx, &p.name)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((ce.loss(ctx)?, grads))
    }

    /// Writes the checkpoint folder `dir` atomically.
    pub fn save(&self, ctx: &Context, dir: &Path, extra: Value) -> Result<()> {
        let m = &self.model;
        let mut conf = json!({
            "kind": "tagger",
            "format_version": FORMAT_VERSION,
            "model": m.config,
            "words": m.words.tokens(),
            "chars": m.chars.tokens(),
            "tags": m.tags.tokens(),
            "char_keep": CHAR_KEEP,
            "files": self.files,
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
        let mut rnns = vec![("rnn.safetensors", &m.rnn)];
        if let Some(r) = &m.char_rnn {
            rnns.push(("char_rnn.safetensors", r));
        }
        let folder = checkpoint::Folder {
            rnns: &rnns,
            model: &m.named()?,
            optimizer: Some((&self.opt, &self.store)),
            extra: &[],
            config: &conf,
        };
        checkpoint::write_folder(ctx, dir, &folder)
    }

    /// Restores the optimiser and the position in the batch order.
    pub fn restore(&mut self, ctx: &Context, dir: &Path, conf: &Value) -> Result<()> {
        (self.step, self.epoch, self.batch_in_epoch) =
            epochs::restore_position(ctx, &mut self.opt, &self.store, dir, conf)?;
        Ok(())
    }
}

impl epochs::EpochTrainer for TaggerTrainer {
    fn train_step(&mut self, ctx: &Context) -> Result<f32> {
        TaggerTrainer::train_step(self, ctx)
    }
    fn step(&self) -> u64 {
        self.step
    }
    fn position(&self) -> (u64, usize) {
        (self.epoch, self.batch_in_epoch)
    }
    fn batches_per_epoch(&self) -> usize {
        TaggerTrainer::batches_per_epoch(self)
    }
    fn batch_size(&self) -> usize {
        self.model.config.batch
    }
    fn rnn_shape(&self) -> Option<(usize, usize)> {
        Some((self.model.config.hidden, self.model.config.batch))
    }
    fn evaluate(&self, ctx: &Context) -> Result<f64> {
        let pred = self.model.predict(ctx, &self.dev)?;
        let (mut right, mut n) = (0usize, 0usize);
        for (s, p) in self.dev.iter().zip(&pred) {
            for (w, &t) in s.iter().zip(p) {
                n += 1;
                right += usize::from(self.model.tags.tokens()[t as usize] == w.upos);
            }
        }
        Ok(right as f64 / n.max(1) as f64)
    }
    fn save(&self, ctx: &Context, dir: &Path, extra: Value) -> Result<()> {
        TaggerTrainer::save(self, ctx, dir, extra)
    }
}

/// [`train`]'s inputs.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Training file (CoNLL-U, plain or gzip).
    pub train: std::path::PathBuf,
    /// Development file (selects `best/`).
    pub dev: std::path::PathBuf,
    /// Output folder.
    pub out: std::path::PathBuf,
    /// Hyperparameters (on resume the checkpoint's hold).
    pub config: TaggerConfig,
    /// When to stop.
    pub budget: Budget,
    /// Continue the run in `out`.
    pub resume: bool,
}

/// Trains a tagger as `train-tagger` does ([`epochs::run`]: dev accuracy and checkpoints at
/// every epoch end and at the end). `on_started` gets the adapter, the step it starts from, the
/// parameter count and the batches per epoch.
pub fn train(
    opts: &TrainOptions,
    stop: &AtomicBool,
    on_started: &mut dyn FnMut(&str, u64, usize, usize),
    on_event: &mut dyn FnMut(&epochs::Event),
) -> Result<epochs::Summary> {
    let start = epochs::start(&opts.out, opts.resume, "tagger")?;
    let (resume_from, ctx) = (&start.from, &start.ctx);
    let train_doc = conllu::read(&opts.train)?;
    let dev_doc = conllu::read(&opts.dev)?;
    let (model, conf) = match &resume_from {
        Some(dir) => {
            let (m, c) = Tagger::load(ctx, dir)?;
            (m, Some(c))
        }
        None => {
            let c = &opts.config;
            c.validate()?;
            let all = || train_doc.sentences.iter().flatten();
            let words = Vocab::from_counts(
                all().map(|w| w.form.as_str()),
                c.min_count,
                &["<pad>", "<unk>"],
            )?;
            let chars_s: Vec<String> = all()
                .flat_map(|w| w.form.chars().map(String::from))
                .collect();
            let chars =
                Vocab::from_counts(chars_s.iter().map(String::as_str), 1, &["<pad>", "<unk>"])?;
            let mut tags: Vec<String> = all().map(|w| w.upos.clone()).collect();
            tags.sort();
            tags.dedup();
            let tags = Vocab::new(tags)?;
            (Tagger::new(ctx, words, chars, tags, c)?, None)
        }
    };
    let mut tr = TaggerTrainer::new(ctx, model, &train_doc.sentences)?;
    tr.dev = dev_doc.sentences;
    tr.files = json!({"train": train_doc.path, "dev": dev_doc.path});
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
        title: "wgrnn POS tagger: training loss and dev accuracy",
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

/// The tag strings of `tagger` for every word line of `doc`, in file order.
pub fn tag_document(ctx: &Context, tagger: &Tagger, doc: &Document) -> Result<String> {
    let pred = tagger.predict(ctx, &doc.sentences)?;
    let names = tagger.tags.tokens();
    let tags: Vec<&str> = pred
        .iter()
        .flatten()
        .map(|&t| names[t as usize].as_str())
        .collect();
    conllu::retag(doc, &tags)
}
