//! The language-model commands: `train-lm`, `eval-lm`, `sample` and `ngram`. Flags and JSON
//! keys are contracts (issue 14, `../shared/notes/model-commands.md`); the work is
//! `wgrnn::models::{lm, ngram}`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use wgrnn::models::corpus::Corpus;
use wgrnn::models::lm::{
    self, Budget, DEFAULT_DATA, Event, LanguageModel, LmConfig, SampleOptions, Score, Stop,
    TrainOptions,
};
use wgrnn::models::ngram::KneserNey;
use wgrnn::{Context, Error};

/// `train-lm`'s flags.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training text (UTF-8; split 95% / 5%). Default: the shipped Tiny Shakespeare (on
    /// --resume: the file the run started with).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output folder: last/, best/, metrics.csv, loss.png. Must not exist or be empty, unless
    /// --resume.
    #[arg(long)]
    out: PathBuf,
    /// Cell: lstm, gru, rnn_tanh, rnn_relu.
    #[arg(long, default_value_t = LmConfig::default().mode)]
    mode: String,
    /// Stacked layers.
    #[arg(long, default_value_t = LmConfig::default().layers)]
    layers: usize,
    /// Hidden units.
    #[arg(long, default_value_t = LmConfig::default().hidden)]
    hidden: usize,
    /// Embedding size.
    #[arg(long, default_value_t = LmConfig::default().embed)]
    embed: usize,
    /// Truncated-BPTT length.
    #[arg(long, default_value_t = LmConfig::default().seq_len)]
    seq_len: usize,
    /// Parallel streams (batch).
    #[arg(long, default_value_t = LmConfig::default().batch)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = LmConfig::default().lr)]
    lr: f32,
    /// Dropout between layers and before the decoder.
    #[arg(long, default_value_t = LmConfig::default().dropout)]
    dropout: f32,
    /// Gradient-norm clip (0: none).
    #[arg(long, default_value_t = LmConfig::default().clip)]
    clip: f32,
    /// Stop after this many optimiser steps in total.
    #[arg(long, conflicts_with = "minutes")]
    steps: Option<u64>,
    /// Stop so that the whole command takes this many minutes (default 8).
    #[arg(long)]
    minutes: Option<f64>,
    /// Seed of the initialisation and the dropout masks.
    #[arg(long, default_value_t = LmConfig::default().seed)]
    seed: u64,
    /// Continue the run in --out from last/ (the checkpoint's hyperparameters hold).
    #[arg(long)]
    resume: bool,
    /// Validate and checkpoint every N steps (default: every 60 s).
    #[arg(long)]
    eval_every: Option<u64>,
    /// Validation characters scored at the intermediate validations (all at the end).
    #[arg(long, default_value_t = 20_000)]
    eval_prefix: usize,
}

/// Ctrl-C: the first stops training after the current step (a validation and a checkpoint
/// follow); a second ends the process at once (the atomic writes keep the last checkpoint).
pub fn stop_flag() -> &'static AtomicBool {
    static STOP: AtomicBool = AtomicBool::new(false);
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    &STOP
}

fn score_line(what: &str, s: &Score) -> String {
    format!(
        "{what}: {:.4} nats/char ({:.4} bits/char), perplexity {:.3} over {} characters",
        s.loss_nats,
        s.bits(),
        s.perplexity(),
        s.tokens
    )
}

fn score_json(s: &Score) -> serde_json::Value {
    serde_json::json!({
        "loss_nats": s.loss_nats,
        "bits_per_char": s.bits(),
        "perplexity": s.perplexity(),
        "tokens": s.tokens,
    })
}

/// `wgrnn train-lm`.
pub fn cmd_train(a: TrainArgs) -> Result<ExitCode, Error> {
    let config = LmConfig {
        mode: a.mode,
        layers: a.layers,
        hidden: a.hidden,
        embed: a.embed,
        dropout: a.dropout,
        seq_len: a.seq_len,
        batch: a.batch,
        lr: a.lr,
        clip: a.clip,
        seed: a.seed,
    };
    config.validate()?;
    let budget = match (a.steps, a.minutes) {
        (Some(n), _) => Budget::Steps(n),
        (None, Some(m)) if m.is_finite() && m > 0.0 => Budget::Minutes(m),
        (None, Some(m)) => return Err(Error::config(format!("--minutes {m} must be > 0"))),
        (None, None) => Budget::Minutes(8.0),
    };
    let opts = TrainOptions {
        data: a.data,
        out: a.out,
        config,
        budget,
        resume: a.resume,
        eval_every: a.eval_every,
        eval_prefix: a.eval_prefix.max(1),
    };
    let pb = ProgressBar::new(match budget {
        Budget::Steps(n) => n,
        Budget::Minutes(m) => (m * 60.0).ceil() as u64,
    });
    pb.set_style(
        ProgressStyle::with_template("{bar:30} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Without a terminal the bar is hidden: its lines go to stderr as plain lines instead, and
    // a step line every 50 steps stands in for the bar.
    let say = |msg: String| {
        if pb.is_hidden() {
            eprintln!("{msg}");
        } else {
            pb.println(msg);
        }
    };
    let mut tokens_per_step = 0;
    let summary = lm::train(&opts, stop_flag(), &mut |e| match e {
        Event::Started {
            adapter,
            step,
            params,
            tokens_per_step: tps,
        } => {
            tokens_per_step = *tps;
            say(format!(
                "train-lm: {adapter}; {params} parameters, {tps} characters per step; {}",
                if *step > 0 {
                    format!("resuming at step {step}")
                } else {
                    "from scratch".into()
                }
            ));
        }
        Event::Step {
            step,
            loss,
            tokens_per_s,
            elapsed,
        } => {
            let (pos, eta) = match budget {
                Budget::Steps(n) => {
                    let left = n.saturating_sub(*step) as f64;
                    (
                        *step,
                        left * tokens_per_step as f64 / tokens_per_s.max(1e-9),
                    )
                }
                Budget::Minutes(m) => (*elapsed as u64, (m * 60.0 - elapsed).max(0.0)),
            };
            pb.set_position(pos);
            let msg = format!(
                "step {step} loss {loss:.4} {tokens_per_s:.0} chars/s ETA {}",
                hms(eta)
            );
            if pb.is_hidden() && step % 50 == 0 {
                eprintln!("{msg}");
            }
            pb.set_message(msg);
        }
        Event::Validated {
            step,
            loss,
            whole,
            best,
        } => say(format!(
            "step {step}: validation loss {loss:.4} nats/char on {}{}",
            if *whole {
                "the whole split".to_string()
            } else {
                format!("the first {} characters", opts.eval_prefix)
            },
            if *best { " (a new best/)" } else { "" }
        )),
    });
    pb.finish_and_clear();
    let s = summary?;
    println!(
        "stopped at step {} ({}); {:.0} characters/s",
        s.steps,
        match s.stop {
            Stop::Steps => "step budget",
            Stop::Minutes => "time budget",
            Stop::Interrupted => "interrupted",
        },
        s.tokens_per_s
    );
    println!("{}", score_line("validation", &s.final_score));
    println!(
        "checkpoints: {}/last, {}/best (best validation {:.4} on the first {} characters)",
        opts.out.display(),
        opts.out.display(),
        s.best_loss,
        opts.eval_prefix
    );
    Ok(ExitCode::SUCCESS)
}

fn hms(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `eval-lm`'s flags.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A training output (its best/ is used) or a checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Text whose validation split is scored (default: the checkpoint's training file).
    #[arg(long)]
    data: Option<PathBuf>,
    /// One JSON line: loss_nats, bits_per_char, perplexity, tokens.
    #[arg(long)]
    json: bool,
}

/// `wgrnn eval-lm`.
pub fn cmd_eval(a: EvalArgs) -> Result<ExitCode, Error> {
    let ctx = Context::new()?;
    let (model, info) = LanguageModel::load(&ctx, &a.checkpoint)?;
    let data = a.data.unwrap_or_else(|| PathBuf::from(&info.data));
    let corpus = Corpus::read_chars(&data)?;
    if corpus.vocab != info.vocab {
        return Err(Error::Format {
            path: data.display().to_string(),
            problem: format!(
                "its vocabulary ({} characters) differs from the checkpoint's ({})",
                corpus.vocab.len(),
                info.vocab.len()
            ),
        });
    }
    let s = model.evaluate(&ctx, &corpus.valid, None)?;
    if a.json {
        println!("{}", score_json(&s));
    } else {
        println!(
            "{}",
            score_line(&format!("{} step {}", info.dir.display(), info.step), &s)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `sample`'s flags.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// A training output (its best/ is used) or a checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Text to start from (default: a newline).
    #[arg(long)]
    prime: Option<String>,
    /// Characters to generate.
    #[arg(long, default_value_t = 500)]
    length: usize,
    /// Softmax temperature; 0 is greedy (arg-max).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Sample only among the K most likely characters (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u32,
}

/// `wgrnn sample`.
pub fn cmd_sample(a: SampleArgs) -> Result<ExitCode, Error> {
    let ctx = Context::new()?;
    let (model, info) = LanguageModel::load(&ctx, &a.checkpoint)?;
    let prime = a.prime.unwrap_or_else(|| "\n".into());
    if prime.is_empty() {
        return Err(Error::config("--prime: give at least one character"));
    }
    let ids = info.vocab.encode_chars("--prime", &prime)?;
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{prime}");
    let _ = out.flush();
    let opts = SampleOptions {
        length: a.length,
        temperature: a.temperature,
        top_k: a.top_k,
        seed: a.seed,
    };
    model.sample(&ctx, &ids, &opts, &mut |chunk| {
        let _ = write!(out, "{}", info.vocab.decode(chunk));
        let _ = out.flush();
    })?;
    let _ = writeln!(out);
    Ok(ExitCode::SUCCESS)
}

/// `ngram`'s flags.
#[derive(Args, Debug)]
pub struct NgramArgs {
    /// Text (default: the shipped Tiny Shakespeare), split as train-lm splits it.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Order n (1 = unigram).
    #[arg(long)]
    order: usize,
    /// The absolute discount at every order, in (0, 1].
    #[arg(long, default_value_t = 0.75)]
    discount: f64,
    /// One JSON line: loss_nats, bits_per_char, perplexity, tokens.
    #[arg(long)]
    json: bool,
}

/// `wgrnn ngram`.
pub fn cmd_ngram(a: NgramArgs) -> Result<ExitCode, Error> {
    let data = a.data.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    let corpus = Corpus::read_chars(&data)?;
    let kn = KneserNey::train(&corpus.train, corpus.vocab.len(), a.order, a.discount)?;
    let (nats, tokens) = kn.score(&corpus.valid);
    let s = Score {
        loss_nats: nats / tokens.max(1) as f64,
        tokens,
    };
    if a.json {
        println!("{}", score_json(&s));
    } else {
        println!(
            "{}",
            score_line(
                &format!("Kneser-Ney {}-gram (D = {})", a.order, a.discount),
                &s
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}
