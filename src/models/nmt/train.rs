//! Training a translation model on a parallel corpus folder (`train-nmt`), translating
//! (`translate`) and scoring on the validation split: teacher-forced perplexity and greedy
//! BLEU. The epoch loop, checkpoints and metrics are [`super::super::epochs`]'s.
//!
//! Checkpoint folder: `encoder.safetensors`, `decoder.safetensors` (interop format, `wgrnn
//! run` loads them), `model.safetensors` (embeddings, bridge, attention, combine, output under
//! [`Seq2Seq::named`]'s names), `optimizer.safetensors`, `config.json` (`"kind": "nmt"`, the
//! hyperparameters, `src_vocab`, `tgt_vocab`, the position in the batch order, the data files,
//! `val_perplexity`, `dev_score` = validation BLEU / 100).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::{Seq2Seq, Seq2SeqConfig, Seq2SeqTrainer};
use super::text::{self, Parallel};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::models::bleu::{self, Bleu};
use crate::models::checkpoint::{self, FORMAT_VERSION, field, read_config};
use crate::models::corpus::{Vocab, buckets};
use crate::models::epochs::{self, Budget};

/// Sentences per batch when translating or scoring.
pub const EVAL_BATCH: usize = 64;

/// Hyperparameters of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NmtConfig {
    /// The model.
    pub model: Seq2SeqConfig,
    /// Training tokens seen fewer times become `<unk>`.
    pub min_count: usize,
    /// Sentence pairs per batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Global gradient-norm clip (0: none).
    pub clip: f32,
}

impl Default for NmtConfig {
    /// The defaults of `train-nmt` (docs/RESULTS.md has what they reach).
    fn default() -> Self {
        NmtConfig {
            model: Seq2SeqConfig {
                mode: "lstm".into(),
                layers: 1,
                hidden: 64,
                embed: 64,
                attention: "additive".into(),
                attention_rank: 32,
                dropout: 0.2,
                seed: 1,
                input_feeding: false,
                frozen_src_embedding: false,
            },
            min_count: 3,
            batch: 64,
            lr: 1e-2,
            clip: 5.0,
        }
    }
}

impl NmtConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        let m = &self.model;
        if m.hidden == 0 || m.embed == 0 || m.layers == 0 || self.batch == 0 {
            return Err(Error::config(
                "--hidden, --embed, --layers and --batch must be at least 1",
            ));
        }
        let ok = self.lr > 0.0 && self.lr.is_finite() && self.clip >= 0.0 && self.clip.is_finite();
        if !ok {
            return Err(Error::config("--lr must be > 0 and --clip >= 0"));
        }
        m.score()?;
        Ok(())
    }
}

/// The longest translation of a source of `len` tokens: 1.2 len + 10 (fairseq's
/// `--max-len-a 1.2 --max-len-b 10`; 2 of the 29,000 Multi30k training pairs are longer),
/// at most 200. Decoding runs every step up to it (no readback inside the loop), so it
/// bounds the cost of greedy and beam search alike.
pub fn max_len(len: usize) -> usize {
    (len * 6 / 5 + 10).min(200)
}

/// A trained model with its vocabularies.
pub struct Translator {
    /// Hyperparameters.
    pub config: NmtConfig,
    /// Source vocabulary.
    pub src_vocab: Vocab,
    /// Target vocabulary.
    pub tgt_vocab: Vocab,
    /// The network.
    pub model: Seq2Seq,
}

/// How [`translate_lines`] decodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decoding {
    /// Beams per sentence; 1 is greedy decoding.
    pub beam: usize,
    /// Beam search's length normalisation: `sum log p / len^alpha` (fairseq's `--lenpen`).
    pub length_penalty: f32,
    /// Keep each translation's attention weights (for heat maps).
    pub attention: bool,
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding {
            beam: 1,
            length_penalty: 1.0,
            attention: false,
        }
    }
}

/// One translated line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Translation {
    /// The detokenised translation (empty for an empty line).
    pub text: String,
    /// The source tokens as the model saw them (`<unk>` for unknown ones), then `</s>`.
    pub source: Vec<String>,
    /// The generated tokens, then `</s>` when it ended with one.
    pub target: Vec<String>,
    /// With [`Decoding::attention`] and a model with attention: `[target, source]` weights.
    pub attention: Option<Vec<Vec<f32>>>,
}

/// Translations of raw `lines` (an empty translation for an empty or all-space line), in
/// input order; batched by length, greedy or beam search as `dec` says.
pub fn translate_lines(
    ctx: &Context,
    model: &Seq2Seq,
    src_vocab: &Vocab,
    tgt_vocab: &Vocab,
    lines: &[String],
    dec: &Decoding,
) -> Result<Vec<Translation>> {
    let ids: Vec<Vec<u32>> = lines
        .iter()
        .map(|l| text::encode(src_vocab, &text::tokenize(l)))
        .collect();
    translate_ids(ctx, model, src_vocab.tokens(), tgt_vocab, &ids, dec)
}

/// [`translate_lines`] of sources already encoded (`src_tokens` names the model's source
/// ids); an empty source gives an empty translation.
pub fn translate_ids(
    ctx: &Context,
    model: &Seq2Seq,
    src_tokens: &[String],
    tgt_vocab: &Vocab,
    ids: &[Vec<u32>],
    dec: &Decoding,
) -> Result<Vec<Translation>> {
    let mut order: Vec<usize> = (0..ids.len()).filter(|&i| !ids[i].is_empty()).collect();
    order.sort_by_key(|&i| (ids[i].len(), i));
    let mut out = vec![Translation::default(); ids.len()];
    let names = |v: &[String], ids: &[u32], eos: bool| -> Vec<String> {
        let mut t: Vec<String> = ids
            .iter()
            .map(|&i| v.get(i as usize).cloned().unwrap_or_default())
            .collect();
        if eos {
            t.push(text::EOS.to_string());
        }
        t
    };
    for chunk in order.chunks(EVAL_BATCH) {
        let srcs: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
        let longest = srcs.iter().map(|s| s.len()).max().unwrap_or(1);
        let hyps = if dec.beam <= 1 {
            model.decode_greedy(ctx, &srcs, max_len(longest), dec.attention)?
        } else {
            model
                .beam_search(
                    ctx,
                    &srcs,
                    dec.beam,
                    dec.length_penalty,
                    max_len(longest),
                    dec.attention,
                )?
                .into_iter()
                .map(|h| {
                    h.into_iter().next().ok_or_else(|| {
                        Error::Device("internal: a sentence finished no hypothesis".into())
                    })
                })
                .collect::<Result<Vec<_>>>()?
        };
        for (&i, h) in chunk.iter().zip(hyps) {
            out[i] = Translation {
                text: text::decode(tgt_vocab, &h.ids),
                source: names(src_tokens, &ids[i], true),
                target: names(tgt_vocab.tokens(), &h.ids, h.ended),
                attention: h.attention,
            };
        }
    }
    Ok(out)
}

/// Token-weighted mean cross-entropy (nats per target token, `</s>` included) of `pairs`.
fn mean_loss(ctx: &Context, tr: &Seq2SeqTrainer, pairs: &[(Vec<u32>, Vec<u32>)]) -> Result<f64> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&i| (pairs[i].0.len(), i));
    let (mut sum, mut n) = (0.0f64, 0usize);
    for chunk in order.chunks(EVAL_BATCH) {
        let refs: Vec<(&[u32], &[u32])> = chunk
            .iter()
            .map(|&i| (pairs[i].0.as_slice(), pairs[i].1.as_slice()))
            .collect();
        let tokens: usize = refs.iter().map(|(_, y)| y.len() + 1).sum();
        sum += tr.loss(ctx, &refs)? as f64 * tokens as f64;
        n += tokens;
    }
    Ok(sum / n.max(1) as f64)
}

impl Translator {
    /// Loads a checkpoint folder (or a training output's `best/`) and its `config.json`.
    pub fn load(ctx: &Context, dir: &Path) -> Result<(Translator, Value)> {
        let dir = checkpoint::resolve(dir)?;
        let path = dir.join("config.json");
        let conf = read_config(&dir, "nmt")?;
        let config: NmtConfig = field(&conf, &path, "config")?;
        let src_vocab = Vocab::new(field(&conf, &path, "src_vocab")?)?;
        let tgt_vocab = Vocab::new(field(&conf, &path, "tgt_vocab")?)?;
        let model = Seq2Seq::new(ctx, src_vocab.len(), tgt_vocab.len(), &config.model)?;
        model.load_files(ctx, &dir)?;
        Ok((
            Translator {
                config,
                src_vocab,
                tgt_vocab,
                model,
            },
            conf,
        ))
    }

    /// See [`translate_lines`].
    pub fn translate(
        &self,
        ctx: &Context,
        lines: &[String],
        dec: &Decoding,
    ) -> Result<Vec<Translation>> {
        translate_lines(
            ctx,
            &self.model,
            &self.src_vocab,
            &self.tgt_vocab,
            lines,
            dec,
        )
    }
}

/// The files a run reads.
#[derive(Clone, Debug, Serialize)]
struct DataFiles {
    dir: String,
    src: String,
    tgt: String,
}

/// A run in progress: the model, its optimiser, the data and the position in the batch order.
pub struct NmtTrainer {
    config: NmtConfig,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    tr: Seq2SeqTrainer,
    train: Vec<(Vec<u32>, Vec<u32>)>,
    val: Parallel,
    val_ids: Vec<(Vec<u32>, Vec<u32>)>,
    epoch: u64,
    batch_in_epoch: usize,
    files: DataFiles,
    val_ppl: Cell<f64>,
    /// Target tokens (`</s>` included) of the batches trained in this process.
    tokens: u64,
}

fn encode_pairs(p: &Parallel, sv: &Vocab, tv: &Vocab) -> Vec<(Vec<u32>, Vec<u32>)> {
    p.src_tokens
        .iter()
        .zip(&p.tgt_tokens)
        .map(|(s, t)| (text::encode(sv, s), text::encode(tv, t)))
        .collect()
}

impl NmtTrainer {
    /// The batches of epoch `e`, bucketed by source length.
    fn epoch_batches(&self, e: u64) -> Vec<Vec<usize>> {
        let lens: Vec<usize> = self.train.iter().map(|(s, _)| s.len()).collect();
        buckets(&lens, self.config.batch, self.config.model.seed, e)
    }

    /// The validation BLEU of greedy translations, and the perplexity (stored for
    /// `config.json`).
    pub fn validate(&self, ctx: &Context) -> Result<Bleu> {
        self.validate_first(ctx, self.val.src.len())
    }

    /// [`Self::validate`] on the first `n` validation pairs.
    fn validate_first(&self, ctx: &Context, n: usize) -> Result<Bleu> {
        let ppl = mean_loss(ctx, &self.tr, &self.val_ids[..n])?.exp();
        self.val_ppl.set(ppl);
        let hyps: Vec<String> = translate_lines(
            ctx,
            &self.tr.model,
            &self.src_vocab,
            &self.tgt_vocab,
            &self.val.src[..n],
            &Decoding::default(),
        )?
        .into_iter()
        .map(|t| t.text)
        .collect();
        bleu::corpus_bleu(&hyps, &self.val.tgt[..n], false)
    }
}

impl epochs::EpochTrainer for NmtTrainer {
    fn train_step(&mut self, ctx: &Context) -> Result<f32> {
        if self.batch_in_epoch >= self.batches_per_epoch() {
            self.epoch += 1;
            self.batch_in_epoch = 0;
        }
        let items = self.epoch_batches(self.epoch)[self.batch_in_epoch].clone();
        let refs: Vec<(&[u32], &[u32])> = items
            .iter()
            .map(|&i| (self.train[i].0.as_slice(), self.train[i].1.as_slice()))
            .collect();
        let loss = self.tr.train_step(ctx, &refs)?;
        self.tokens += refs.iter().map(|(_, y)| y.len() as u64 + 1).sum::<u64>();
        self.batch_in_epoch += 1;
        Ok(loss)
    }
    fn step(&self) -> u64 {
        self.tr.step
    }
    fn position(&self) -> (u64, usize) {
        (self.epoch, self.batch_in_epoch)
    }
    fn batches_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.config.batch)
    }
    fn batch_size(&self) -> usize {
        self.config.batch
    }
    fn rnn_shape(&self) -> Option<(usize, usize)> {
        Some((self.config.model.hidden, self.config.batch))
    }
    fn evaluate(&self, ctx: &Context) -> Result<f64> {
        Ok(self.validate(ctx)?.score / 100.0)
    }
    /// Times the validation of one batch of pairs (after an untimed one that compiles the
    /// pipelines) and scales it by the decoding steps the whole split takes (greedy decoding
    /// always runs to a batch's length limit, so a trained model costs what an untrained one
    /// does), with a quarter for margin and two seconds for the checkpoints.
    fn estimate_eval_secs(&self, ctx: &Context) -> Result<f64> {
        let n = self.val.src.len().min(EVAL_BATCH);
        self.validate_first(ctx, n.min(8))?;
        let t0 = std::time::Instant::now();
        self.validate_first(ctx, n)?;
        let secs = t0.elapsed().as_secs_f64();
        let lens = |ids: &[(Vec<u32>, Vec<u32>)]| -> Vec<usize> {
            let mut l: Vec<usize> = ids.iter().map(|(x, _)| x.len()).collect();
            l.sort_unstable();
            l
        };
        let steps = |l: &[usize]| -> usize {
            l.chunks(EVAL_BATCH)
                .map(|c| max_len(c.last().copied().unwrap_or(1)))
                .sum()
        };
        let sample = steps(&lens(&self.val_ids[..n])).max(1);
        let all = steps(&lens(&self.val_ids));
        Ok(1.25 * secs * all as f64 / sample as f64 + 2.0)
    }
    fn detail_value(&self) -> Option<f64> {
        Some(self.val_ppl.get())
    }
    fn detail(&self) -> Option<String> {
        Some(format!("validation perplexity {:.2}", self.val_ppl.get()))
    }
    fn save(&self, ctx: &Context, dir: &Path, extra: Value) -> Result<()> {
        let mut conf = json!({
            "kind": "nmt",
            "format_version": FORMAT_VERSION,
            "config": self.config,
            "src_vocab": self.src_vocab.tokens(),
            "tgt_vocab": self.tgt_vocab.tokens(),
            "data": self.files,
            "step": self.tr.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "val_perplexity": self.val_ppl.get(),
            "rng": {"seed": self.config.model.seed, "next_step": self.tr.step,
                    "note": "batch order from (seed, epoch); dropout masks from (seed, step)"},
            "kernels": checkpoint::kernel_config(ctx),
        });
        if let (Some(o), Value::Object(e)) = (conf.as_object_mut(), extra) {
            o.extend(e);
        }
        self.tr.save(ctx, dir, &conf)
    }
    fn tokens_trained(&self) -> Option<u64> {
        Some(self.tokens)
    }
}

/// [`train`]'s inputs.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The folder of `train.{src,tgt}[.gz]` and `val.*`.
    pub data_dir: PathBuf,
    /// Source language suffix (`de`).
    pub src: String,
    /// Target language suffix (`en`).
    pub tgt: String,
    /// Output folder.
    pub out: PathBuf,
    /// Hyperparameters (on resume the checkpoint's hold).
    pub config: NmtConfig,
    /// When to stop.
    pub budget: Budget,
    /// Continue the run in `out`.
    pub resume: bool,
}

/// Trains as `train-nmt` does: validation BLEU (selects `best/`) and perplexity and
/// checkpoints at every epoch end and at the end. `on_started` gets the adapter, the step it
/// starts from, the parameter count and the batches per epoch.
pub fn train(
    opts: &TrainOptions,
    stop: &AtomicBool,
    on_started: &mut dyn FnMut(&str, u64, usize, usize),
    on_event: &mut dyn FnMut(&epochs::Event),
) -> Result<epochs::Summary> {
    let start = epochs::start(&opts.out, opts.resume, "nmt")?;
    let (resume_from, ctx) = (&start.from, &start.ctx);
    let train_p = text::read_parallel(&opts.data_dir, "train", &opts.src, &opts.tgt)?;
    let val = text::read_parallel(&opts.data_dir, "val", &opts.src, &opts.tgt)?;
    let (translator, conf) = match &resume_from {
        Some(dir) => {
            let (t, c) = Translator::load(ctx, dir)?;
            (t, Some(c))
        }
        None => {
            let c = &opts.config;
            c.validate()?;
            let sv = text::vocabulary(&train_p.src_tokens, c.min_count)?;
            let tv = text::vocabulary(&train_p.tgt_tokens, c.min_count)?;
            let model = Seq2Seq::new(ctx, sv.len(), tv.len(), &c.model)?;
            (
                Translator {
                    config: c.clone(),
                    src_vocab: sv,
                    tgt_vocab: tv,
                    model,
                },
                None,
            )
        }
    };
    let Translator {
        config,
        src_vocab,
        tgt_vocab,
        model,
    } = translator;
    let train_ids = encode_pairs(&train_p, &src_vocab, &tgt_vocab);
    let val_ids = encode_pairs(&val, &src_vocab, &tgt_vocab);
    let mut tr = NmtTrainer {
        tr: Seq2SeqTrainer::new(ctx, model, config.lr, config.clip)?,
        config,
        src_vocab,
        tgt_vocab,
        train: train_ids,
        val,
        val_ids,
        epoch: 0,
        batch_in_epoch: 0,
        files: DataFiles {
            dir: opts.data_dir.display().to_string(),
            src: opts.src.clone(),
            tgt: opts.tgt.clone(),
        },
        val_ppl: Cell::new(f64::NAN),
        tokens: 0,
    };
    if let (Some(dir), Some(c)) = (resume_from, &conf) {
        (tr.tr.step, tr.epoch, tr.batch_in_epoch) = tr.tr.restore(ctx, dir, c)?;
    }
    on_started(
        ctx.adapter_name(),
        tr.tr.step,
        tr.tr.store().params().iter().map(|p| p.len()).sum(),
        epochs::EpochTrainer::batches_per_epoch(&tr),
    );
    let curves = epochs::Curves {
        header: "step,train_loss,val_bleu,pairs_per_s,val_perplexity",
        png: "curves.png",
        title: "wgrnn translation: cross-entropy per target token (BLEU is in metrics.csv)",
        unit: "nats per target token",
        score: "validation loss (ln perplexity)",
        second: |r| r.extra.map(f64::ln),
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
