//! The training loop of the epoch-based families (classifier, tagger): steps over a batch order
//! that is a function of (seed, epoch), an evaluation on the dev set and checkpoints (`last/`,
//! and `best/` on a new best score) at every epoch end and at the end of the run, the budget
//! (`--epochs` or `--minutes`, the final evaluation and checkpoint included), Ctrl-C, and
//! `metrics.csv` with a PNG of the curves. A family implements [`EpochTrainer`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::checkpoint::{self, field, read_config};
use super::metrics::{Metrics, Row};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::nn::{Optimizer, ParamStore};

/// Where a run starts: the checkpoint folder it resumes from and its `config.json` (none for
/// a fresh run), and the context, made with the kernel configuration that checkpoint
/// recorded.
pub struct Start {
    /// `out/last/` (or `last.old/`) on `--resume`.
    pub from: Option<PathBuf>,
    /// Its `config.json`.
    pub config: Option<Value>,
    /// The device context.
    pub ctx: Context,
}

/// Checks `out` for a fresh run or a `--resume` (`checkpoint::prepare_out`), reads the
/// checkpoint's config of family `kind` and makes the context.
pub fn start(out: &Path, resume: bool, kind: &str) -> Result<Start> {
    let from = checkpoint::prepare_out(out, resume)?;
    let config = match &from {
        Some(dir) => Some(read_config(dir, kind)?),
        None => None,
    };
    let ctx = checkpoint::context_for(config.as_ref())?;
    Ok(Start { from, config, ctx })
}

impl Start {
    /// The best dev score of the resumed run so far ([`run`] records it as
    /// `best_dev_score`), minus infinity for a fresh run.
    pub fn best(&self) -> f64 {
        self.config
            .as_ref()
            .and_then(|c| c.get("best_dev_score"))
            .and_then(Value::as_f64)
            .unwrap_or(f64::NEG_INFINITY)
    }
}

/// Loads the optimiser state of checkpoint `dir` and returns the position its `conf` records,
/// `(step, epoch, batch_in_epoch)`; the optimiser's own step count must agree.
pub fn restore_position(
    ctx: &Context,
    opt: &mut Optimizer,
    store: &ParamStore,
    dir: &Path,
    conf: &Value,
) -> Result<(u64, u64, usize)> {
    let path = dir.join("config.json");
    let opt_path = dir.join("optimizer.safetensors");
    opt.load(ctx, store, &opt_path)?;
    let step: u64 = field(conf, &path, "step")?;
    if opt.steps() != step {
        return Err(Error::Format {
            path: opt_path.display().to_string(),
            problem: format!("{} optimiser steps, config.json says {step}", opt.steps()),
        });
    }
    Ok((
        step,
        field(conf, &path, "epoch")?,
        field(conf, &path, "batch_in_epoch")?,
    ))
}

/// How long a run lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// Until this many epochs in total (a resumed run counts the epochs it had).
    Epochs(u64),
    /// This many minutes of wall time for the whole command, final evaluation and checkpoint
    /// included.
    Minutes(f64),
}

/// What a family's trainer provides to [`run`].
pub trait EpochTrainer {
    /// One optimiser step on the next batch (one submission); its mean loss.
    fn train_step(&mut self, ctx: &Context) -> Result<f32>;
    /// Steps taken.
    fn step(&self) -> u64;
    /// Completed epochs, and batches taken in the epoch in progress.
    fn position(&self) -> (u64, usize);
    /// Batches per epoch.
    fn batches_per_epoch(&self) -> usize;
    /// Items (sentences) per batch, for the speed column.
    fn batch_size(&self) -> usize;
    /// The dev score, higher is better (accuracy).
    fn evaluate(&self, ctx: &Context) -> Result<f64>;
    /// Seconds an evaluation and its checkpoints are expected to take, before one has been
    /// timed (a `--minutes` budget reserves them from the start).
    fn estimate_eval_secs(&self, _ctx: &Context) -> Result<f64> {
        Ok(1.0)
    }
    /// More about the last evaluation, for the progress line (e.g. a perplexity).
    fn detail(&self) -> Option<String> {
        None
    }
    /// A number from the last evaluation for `metrics.csv`'s fifth column (when the
    /// family's header names one).
    fn detail_value(&self) -> Option<f64> {
        None
    }
    /// Writes a checkpoint folder with `extra` merged into its config.json.
    fn save(&self, ctx: &Context, dir: &Path, extra: Value) -> Result<()>;
    /// Target tokens trained on so far in this process, where a family counts them (the
    /// summary's tokens per second).
    fn tokens_trained(&self) -> Option<u64> {
        None
    }
    /// `(hidden, batch)` of the family's main recurrent stack: a fresh run puts the tuned
    /// configuration of that shape class in force before its first step.
    fn rnn_shape(&self) -> Option<(usize, usize)> {
        None
    }
}

/// What [`run`] reports as it goes.
#[derive(Clone, Debug)]
pub enum Event {
    /// A step finished.
    Step {
        /// Steps taken.
        step: u64,
        /// Completed epochs.
        epoch: u64,
        /// Its loss.
        loss: f32,
        /// Seconds since the command started.
        elapsed: f64,
    },
    /// An evaluation (and checkpoint) finished.
    Evaluated {
        /// Steps taken.
        step: u64,
        /// Completed epochs.
        epoch: u64,
        /// The dev score.
        score: f64,
        /// Whether `best/` was written.
        best: bool,
        /// [`EpochTrainer::detail`] after it.
        detail: Option<String>,
    },
}

/// What [`run`] did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Steps taken in total.
    pub steps: u64,
    /// The dev score at the end.
    pub score: f64,
    /// The best dev score of the run (`best/`).
    pub best: f64,
    /// Training items per second.
    pub items_per_s: f64,
    /// Training target tokens per second, where the family counts them.
    pub tokens_per_s: Option<f64>,
    /// Whether Ctrl-C stopped it.
    pub interrupted: bool,
}

/// How [`run`] names things in `metrics.csv` and the PNG.
pub struct Curves<'a> {
    /// The CSV header (4 columns: step, train loss, the score, items per second; a fifth
    /// for [`EpochTrainer::detail_value`]).
    pub header: &'a str,
    /// The PNG's file name in the output folder.
    pub png: &'a str,
    /// Its title.
    pub title: &'a str,
    /// The PNG's vertical axis.
    pub unit: &'a str,
    /// The second curve's label.
    pub score: &'a str,
    /// The second curve's value of a row: the score (`|r| r.val_loss`) or something on the
    /// training loss's scale.
    pub second: fn(&Row) -> Option<f64>,
}

/// Trains `tr` in `out` until the budget or `stop`, evaluating and checkpointing at every epoch
/// end and at the end; `best` is the best score so far (from a resumed checkpoint).
#[allow(clippy::too_many_arguments)]
pub fn run(
    ctx: &Context,
    tr: &mut dyn EpochTrainer,
    out: &Path,
    budget: Budget,
    mut best: f64,
    curves: &Curves,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Summary> {
    let start = Instant::now();
    if tr.step() == 0
        && let Some((hidden, batch)) = tr.rnn_shape()
    {
        ctx.use_tuned(hidden, batch);
    }
    let metrics_path = out.join("metrics.csv");
    let mut metrics = Metrics::read_csv(&metrics_path, tr.step())?;
    let end = match budget {
        Budget::Minutes(m) => Some(start + Duration::from_secs_f64(m * 60.0)),
        Budget::Epochs(_) => None,
    };
    let first = tr.step();
    let first_tokens = tr.tokens_trained();
    let mut eval_secs = match budget {
        Budget::Minutes(_) => tr.estimate_eval_secs(ctx)?,
        Budget::Epochs(_) => 1.0,
    };
    let mut train_secs = 0.0f64;
    let mut window = (0.0f64, 0u64, 0.0f64);
    let mut log = Log {
        ctx,
        out,
        curves,
        metrics: &mut metrics,
        metrics_path: &metrics_path,
    };
    let mut interrupted = false;
    let mut last_eval_step = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let (epoch, batch) = tr.position();
        let done = epoch + u64::from(batch >= tr.batches_per_epoch());
        if let Budget::Epochs(n) = budget
            && done >= n
        {
            break;
        }
        if let Some(end) = end {
            let per = match tr.step() - first {
                0 => 0.0,
                n => train_secs / n as f64,
            };
            if Instant::now() + Duration::from_secs_f64(eval_secs + per + 1.0) >= end {
                break;
            }
        }
        let t0 = Instant::now();
        let loss = tr.train_step(ctx)?;
        let dt = t0.elapsed().as_secs_f64();
        if !loss.is_finite() {
            return Err(Error::Diverged(format!(
                "the training loss is {loss} at step {}; the last checkpoint is kept",
                tr.step()
            )));
        }
        train_secs += dt;
        window.0 += loss as f64;
        window.1 += 1;
        window.2 += dt;
        let (epoch, batch) = tr.position();
        on_event(&Event::Step {
            step: tr.step(),
            epoch,
            loss,
            elapsed: start.elapsed().as_secs_f64(),
        });
        if batch == tr.batches_per_epoch() {
            let (score, b, secs) = log.evaluate(&*tr, &mut best, &mut window)?;
            eval_secs = secs;
            last_eval_step = Some(tr.step());
            on_event(&Event::Evaluated {
                step: tr.step(),
                epoch: epoch + 1,
                score,
                best: b,
                detail: tr.detail(),
            });
        }
    }
    if tr.step() == 0 {
        return Err(Error::config(
            "training stopped before its first step (budget too small): nothing was saved",
        ));
    }
    let score = match (last_eval_step, metrics_last(log.metrics, tr.step())) {
        (Some(s), Some(v)) if s == tr.step() => v,
        _ => {
            let (score, b, _) = log.evaluate(&*tr, &mut best, &mut window)?;
            let (epoch, batch) = tr.position();
            on_event(&Event::Evaluated {
                step: tr.step(),
                epoch: epoch + u64::from(batch >= tr.batches_per_epoch()),
                score,
                best: b,
                detail: tr.detail(),
            });
            score
        }
    };
    Ok(Summary {
        steps: tr.step(),
        score,
        best,
        items_per_s: ((tr.step() - first) as usize * tr.batch_size()) as f64 / train_secs.max(1e-9),
        tokens_per_s: match (first_tokens, tr.tokens_trained()) {
            (Some(a), Some(b)) => Some((b - a) as f64 / train_secs.max(1e-9)),
            _ => None,
        },
        interrupted,
    })
}

/// Evaluation and its records: metrics, checkpoints, the PNG.
struct Log<'a> {
    ctx: &'a Context,
    out: &'a Path,
    curves: &'a Curves<'a>,
    metrics: &'a mut Metrics,
    metrics_path: &'a Path,
}

impl Log<'_> {
    /// Evaluates, adds the metrics row (the mean loss and speed since the previous row), writes
    /// `last/` (and `best/` on a new best), the CSV and the PNG; returns the score, whether it
    /// was a new best and the seconds it all took.
    fn evaluate(
        &mut self,
        tr: &dyn EpochTrainer,
        best: &mut f64,
        window: &mut (f64, u64, f64),
    ) -> Result<(f64, bool, f64)> {
        let t0 = Instant::now();
        let score = tr.evaluate(self.ctx)?;
        let is_best = score > *best;
        if is_best {
            *best = score;
        }
        let (sum, steps, secs) = std::mem::take(window);
        self.metrics.rows.retain(|r| r.step != tr.step());
        self.metrics.rows.push(Row {
            step: tr.step(),
            train_loss: if steps > 0 {
                sum / steps as f64
            } else {
                f64::NAN
            },
            val_loss: Some(score),
            tokens_per_s: if secs > 0.0 {
                (steps as usize * tr.batch_size()) as f64 / secs
            } else {
                0.0
            },
            extra: tr.detail_value(),
        });
        let extra = json!({"dev_score": score, "best_dev_score": *best});
        tr.save(self.ctx, &self.out.join("last"), extra.clone())?;
        if is_best {
            tr.save(self.ctx, &self.out.join("best"), extra)?;
        }
        self.metrics
            .write_csv(self.metrics_path, self.curves.header)?;
        self.metrics.plot(
            &self.out.join(self.curves.png),
            self.curves.title,
            self.curves.unit,
            self.curves.score,
            self.curves.second,
        )?;
        Ok((score, is_best, t0.elapsed().as_secs_f64()))
    }
}

fn metrics_last(m: &Metrics, step: u64) -> Option<f64> {
    m.rows
        .last()
        .filter(|r| r.step == step)
        .and_then(|r| r.val_loss)
}
