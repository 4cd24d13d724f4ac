//! `train-unmt`: unsupervised training on the two monolingual halves of a parallel folder
//! ([`super::data::halves`]), validation BLEU in both directions on the parallel validation
//! split (their mean selects `best/`), the loop, checkpoints and metrics of
//! [`crate::models::epochs`].
//!
//! Checkpoint folder: `encoder.safetensors`, `decoder_{lang}.safetensors` (interop format),
//! `model.safetensors` ([`Unmt::named`]), `optimizer.safetensors`, `config.json`
//! (`"kind": "unmt"`, `config`, `langs`, `vocabs`, the position, `val_bleu` per direction,
//! `dev_score` = their mean / 100).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde_json::{Value, json};

use super::data;
use super::mapping::Mapped;
use super::model::{Unmt, UnmtConfig, UnmtTrainer};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::models::bleu;
use crate::models::checkpoint::{self, FORMAT_VERSION, field, read_config};
use crate::models::corpus::{Vocab, buckets};
use crate::models::epochs::{self, Budget};
use crate::models::nmt::text::{self, Parallel};
use crate::models::nmt::train::Decoding;
use crate::tensor::Tensor;

/// Loads a `train-unmt` checkpoint folder (or a training output's `best/`) and its config.
pub fn load(ctx: &Context, dir: &Path) -> Result<(Unmt, Value)> {
    let dir = checkpoint::resolve(dir)?;
    let path = dir.join("config.json");
    let conf = read_config(&dir, "unmt")?;
    let config: UnmtConfig = field(&conf, &path, "config")?;
    let langs: [String; 2] = field(&conf, &path, "langs")?;
    let vocabs: [Vec<String>; 2] = field(&conf, &path, "vocabs")?;
    let [v0, v1] = vocabs;
    let m = Unmt::build(
        ctx,
        &config,
        [&langs[0], &langs[1]],
        [Vocab::new(v0)?, Vocab::new(v1)?],
    )?;
    m.load_files(ctx, &dir)?;
    Ok((m, conf))
}

/// `train-unmt`'s inputs.
#[derive(Clone, Debug)]
pub struct UnmtOptions {
    /// The parallel folder: `train.*` (cut into halves), `val.*`.
    pub data_dir: PathBuf,
    /// The languages: `langs[0]` keeps the first half of the training lines.
    pub langs: [String; 2],
    /// The cross-lingual vectors (`map-embeddings`' output); ignored on resume.
    pub embeddings: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Hyperparameters (on resume the checkpoint's hold).
    pub config: UnmtConfig,
    /// When to stop.
    pub budget: Budget,
    /// Continue the run in `out`.
    pub resume: bool,
}

/// A run in progress.
pub struct UnmtRun {
    tr: UnmtTrainer,
    mono: [Vec<Vec<u32>>; 2],
    val: Parallel,
    epoch: u64,
    batch_in_epoch: usize,
    data: Value,
    val_bleu: Cell<[f64; 2]>,
    tokens: u64,
    /// Each language's batches of the epoch in progress (computed once an epoch).
    order: [Option<(u64, Vec<Vec<usize>>)>; 2],
}

impl UnmtRun {
    fn batches(&self, l: usize, e: u64) -> Vec<Vec<usize>> {
        let lens: Vec<usize> = self.mono[l].iter().map(Vec::len).collect();
        let c = &self.tr.model.config;
        buckets(&lens, c.batch, c.model.seed.wrapping_add(l as u64), e)
    }

    /// Greedy validation BLEU of both directions (`langs[0]` -> `langs[1]`, then back) on
    /// the first `n` validation pairs.
    fn validate_first(&self, ctx: &Context, n: usize) -> Result<[f64; 2]> {
        let m = &self.tr.model;
        let refs = [&self.val.src[..n], &self.val.tgt[..n]];
        let mut out = [0.0; 2];
        for (from, o) in out.iter_mut().enumerate() {
            let hyps: Vec<String> = m
                .translate(ctx, from, 1 - from, refs[from], &Decoding::default())?
                .into_iter()
                .map(|t| t.text)
                .collect();
            *o = bleu::corpus_bleu(&hyps, refs[1 - from], false)?.score;
        }
        Ok(out)
    }
}

impl epochs::EpochTrainer for UnmtRun {
    fn train_step(&mut self, ctx: &Context) -> Result<f32> {
        if self.batch_in_epoch >= self.batches_per_epoch() {
            self.epoch += 1;
            self.batch_in_epoch = 0;
        }
        for l in 0..2 {
            if self.order[l].as_ref().map(|o| o.0) != Some(self.epoch) {
                self.order[l] = Some((self.epoch, self.batches(l, self.epoch)));
            }
        }
        let pick = |l: usize| -> Vec<Vec<u32>> {
            let b = self.order[l].as_ref().map(|o| &o.1).expect("set above");
            b[self.batch_in_epoch % b.len()]
                .iter()
                .map(|&i| self.mono[l][i].clone())
                .collect()
        };
        let (b0, b1) = (pick(0), pick(1));
        let losses = self.tr.train_step(ctx, [&b0, &b1])?;
        self.tokens += b0
            .iter()
            .chain(&b1)
            .map(|s| s.len() as u64 + 1)
            .sum::<u64>();
        self.batch_in_epoch += 1;
        Ok(losses.total())
    }
    fn step(&self) -> u64 {
        self.tr.step
    }
    fn position(&self) -> (u64, usize) {
        (self.epoch, self.batch_in_epoch)
    }
    fn batches_per_epoch(&self) -> usize {
        let b = self.tr.model.config.batch;
        self.mono[0].len().max(self.mono[1].len()).div_ceil(b)
    }
    fn batch_size(&self) -> usize {
        2 * self.tr.model.config.batch
    }
    fn rnn_shape(&self) -> Option<(usize, usize)> {
        let c = &self.tr.model.config;
        Some((c.model.hidden, c.batch))
    }
    fn evaluate(&self, ctx: &Context) -> Result<f64> {
        let b = self.validate_first(ctx, self.val.src.len())?;
        self.val_bleu.set(b);
        Ok((b[0] + b[1]) / 200.0)
    }
    /// Times both directions on 32 validation sentences (after an untimed pass that compiles
    /// the pipelines) and scales to the split, with a quarter for margin and two seconds for
    /// the checkpoints.
    fn estimate_eval_secs(&self, ctx: &Context) -> Result<f64> {
        let n = self.val.src.len().min(32);
        self.validate_first(ctx, n.min(4))?;
        let t0 = std::time::Instant::now();
        self.validate_first(ctx, n)?;
        let secs = t0.elapsed().as_secs_f64();
        Ok(1.25 * secs * self.val.src.len() as f64 / n.max(1) as f64 + 2.0)
    }
    fn detail_value(&self) -> Option<f64> {
        Some(self.val_bleu.get()[1])
    }
    fn detail(&self) -> Option<String> {
        let [a, b] = self.val_bleu.get();
        let l = &self.tr.model.langs;
        Some(format!(
            "validation BLEU {}-{} {a:.2}, {}-{} {b:.2}",
            l[0], l[1], l[1], l[0]
        ))
    }
    fn save(&self, ctx: &Context, dir: &Path, extra: Value) -> Result<()> {
        let m = &self.tr.model;
        let [a, b] = self.val_bleu.get();
        let mut conf = json!({
            "kind": "unmt",
            "format_version": FORMAT_VERSION,
            "config": m.config,
            "langs": m.langs,
            "vocabs": [m.vocabs[0].tokens(), m.vocabs[1].tokens()],
            "data": self.data,
            "step": self.tr.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "val_bleu": {format!("{}-{}", m.langs[0], m.langs[1]): a,
                         format!("{}-{}", m.langs[1], m.langs[0]): b},
            "rng": {"seed": m.config.model.seed, "next_step": self.tr.step,
                    "note": "batch order from (seed, language, epoch); noise and dropout from (seed, step)"},
            "kernels": checkpoint::kernel_config(ctx),
        });
        if let (Some(o), Value::Object(e)) = (conf.as_object_mut(), extra) {
            o.extend(e);
        }
        let named = m.named();
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let stacks = m.stacks();
        let rnns: Vec<(&str, &crate::rnn::Rnn)> =
            stacks.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        let folder = checkpoint::Folder {
            rnns: &rnns,
            model: &refs,
            optimizer: Some((self.tr.optimizer(), self.tr.store())),
            extra: &[],
            config: &conf,
        };
        checkpoint::write_folder(ctx, dir, &folder)
    }
    fn tokens_trained(&self) -> Option<u64> {
        Some(self.tokens)
    }
}

/// Language `l`'s ids of the non-empty tokenized `lines`.
fn encode_lines(m: &Unmt, l: usize, lines: &[String]) -> Vec<Vec<u32>> {
    lines
        .iter()
        .map(|s| m.encode(l, &text::tokenize(s)))
        .filter(|ids| !ids.is_empty())
        .collect()
}

/// Trains as `train-unmt` does. `on_started` gets the adapter, the step it starts from, the
/// parameter count and the batches per epoch.
pub fn train(
    opts: &UnmtOptions,
    stop: &AtomicBool,
    on_started: &mut dyn FnMut(&str, u64, usize, usize),
    on_event: &mut dyn FnMut(&epochs::Event),
) -> Result<epochs::Summary> {
    let start = epochs::start(&opts.out, opts.resume, "unmt")?;
    let ctx = &start.ctx;
    let (model, conf) = match &start.from {
        Some(dir) => {
            let (m, c) = load(ctx, dir)?;
            (m, Some(c))
        }
        None => {
            let mapped = Mapped::load(&opts.embeddings)?;
            let langs = [opts.langs[0].as_str(), opts.langs[1].as_str()];
            (Unmt::new(ctx, &mapped, langs, &opts.config)?, None)
        }
    };
    if [&model.langs[0], &model.langs[1]] != [&opts.langs[0], &opts.langs[1]] {
        return Err(Error::config(format!(
            "--src {} --tgt {}: the checkpoint's languages are {} and {}",
            opts.langs[0], opts.langs[1], model.langs[0], model.langs[1]
        )));
    }
    let halves = data::halves(&opts.data_dir, &opts.langs[0], &opts.langs[1])?;
    let val = text::read_parallel(&opts.data_dir, "val", &opts.langs[0], &opts.langs[1])?;
    let mono = [
        encode_lines(&model, 0, &halves.a),
        encode_lines(&model, 1, &halves.b),
    ];
    if mono.iter().any(Vec::is_empty) {
        return Err(Error::config(
            "a monolingual half has no non-empty sentence",
        ));
    }
    let data = json!({
        "dir": opts.data_dir.display().to_string(),
        "embeddings": opts.embeddings.display().to_string(),
        "protocol": format!("{} from training lines 1..={}, {} from lines {}..={}",
            opts.langs[0], halves.split, opts.langs[1], halves.split + 1, halves.split + halves.b.len()),
    });
    let mut run = UnmtRun {
        tr: UnmtTrainer::new(ctx, model)?,
        mono,
        val,
        epoch: 0,
        batch_in_epoch: 0,
        data,
        val_bleu: Cell::new([f64::NAN; 2]),
        tokens: 0,
        order: [None, None],
    };
    if let (Some(dir), Some(c)) = (&start.from, &conf) {
        (run.tr.step, run.epoch, run.batch_in_epoch) = run.tr.restore(ctx, dir, c)?;
    }
    on_started(
        ctx.adapter_name(),
        run.tr.step,
        run.tr.store().params().iter().map(|p| p.len()).sum(),
        epochs::EpochTrainer::batches_per_epoch(&run),
    );
    let l = &opts.langs;
    let curves = epochs::Curves {
        header: &format!(
            "step,train_loss,val_bleu_mean,sentences_per_s,val_bleu_{}_{}",
            l[1], l[0]
        ),
        png: "curves.png",
        title: "wgrnn unsupervised translation: summed training losses (BLEU in metrics.csv)",
        unit: "nats per target token, summed over the step's losses",
        score: "validation BLEU (mean of both directions) / 10",
        second: |r| r.val_loss.map(|s| 10.0 * s),
    };
    epochs::run(
        ctx,
        &mut run,
        &opts.out,
        opts.budget,
        start.best(),
        &curves,
        stop,
        on_event,
    )
}
