//! The language-model commands: `train-lm`, `eval-lm`, `sample`, `predict-next`, `ngram` and
//! `grad-flow`. Flags and JSON keys are contracts (issues 14 and 15,
//! `../shared/notes/model-commands.md`); the work is `wgrnn::models::{lm, ngram}`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use wgrnn::models::corpus::{Corpus, Unit};
use wgrnn::models::lm::{
    self, Budget, DEFAULT_CONTEXT, DEFAULT_DATA, Event, LanguageModel, LmConfig, SampleOptions,
    Score, Stop, TrainOptions,
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
    /// Tokens: char, or word (whitespace-split, punctuation apart, <eos> at line ends).
    #[arg(long, default_value = "char")]
    unit: String,
    /// rnn (the recurrent stack of --mode) or window (the fixed-window neural LM).
    #[arg(long, default_value = "rnn")]
    model: String,
    /// The window model's context: previous tokens it reads [default: 5].
    #[arg(long)]
    context: Option<usize>,
    /// Word level: training words seen fewer times become <unk>.
    #[arg(long, default_value_t = LmConfig::default().min_count)]
    min_count: usize,
    /// Cell: lstm, gru, rnn_tanh, rnn_relu.
    #[arg(long, default_value_t = LmConfig::default().mode)]
    mode: String,
    /// Stacked layers.
    #[arg(long, default_value_t = LmConfig::default().layers)]
    layers: usize,
    /// Hidden units.
    #[arg(long, default_value_t = LmConfig::default().hidden)]
    hidden: usize,
    /// Embedding size [default: 32 (char), 64 (word)].
    #[arg(long)]
    embed: Option<usize>,
    /// Truncated-BPTT length (window model: positions per stream and step).
    #[arg(long, default_value_t = LmConfig::default().seq_len)]
    seq_len: usize,
    /// Parallel streams (batch).
    #[arg(long, default_value_t = LmConfig::default().batch)]
    batch: usize,
    /// Adam's learning rate [default: 0.01 (char), 0.005 (word)].
    #[arg(long)]
    lr: Option<f32>,
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
    /// Validation tokens scored at the intermediate validations (all at the end).
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

fn score_line(what: &str, s: &Score, unit: Unit) -> String {
    let u = unit.name();
    format!(
        "{what}: {:.4} nats/{u} ({:.4} bits/{u}), perplexity {:.3} over {} {u}s",
        s.loss_nats,
        s.bits(),
        s.perplexity(),
        s.tokens
    )
}

/// The score keys of `eval-lm --json` and `ngram --json`: `loss_nats`, `bits_per_token`,
/// `perplexity`, `tokens` (character models also `bits_per_char`, issue 14's key).
fn score_json(s: &Score, unit: Unit) -> serde_json::Value {
    let mut v = serde_json::json!({
        "loss_nats": s.loss_nats,
        "bits_per_token": s.bits(),
        "perplexity": s.perplexity(),
        "tokens": s.tokens,
    });
    if unit == Unit::Char {
        v["bits_per_char"] = serde_json::json!(s.bits());
    }
    v
}

/// `wgrnn train-lm`.
pub fn cmd_train(a: TrainArgs) -> Result<ExitCode, Error> {
    let unit = Unit::parse(&a.unit)?;
    let d = LmConfig::for_unit(unit);
    let window = a.model == "window";
    if a.context.is_some() && !window {
        return Err(Error::config("--context is for --model window"));
    }
    let config = LmConfig {
        mode: a.mode,
        layers: a.layers,
        hidden: a.hidden,
        embed: a.embed.unwrap_or(d.embed),
        dropout: a.dropout,
        seq_len: a.seq_len,
        batch: a.batch,
        lr: a.lr.unwrap_or(d.lr),
        clip: a.clip,
        seed: a.seed,
        context: if window {
            a.context.unwrap_or(DEFAULT_CONTEXT)
        } else {
            0
        },
        model: a.model,
        unit,
        min_count: a.min_count,
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
    // On --resume the checkpoint's unit holds, whatever --unit says: the messages follow it.
    let mut run_unit_seen = unit;
    let summary = lm::train(&opts, stop_flag(), &mut |e| {
        let u = run_unit_seen.name();
        match e {
            Event::Started {
                adapter,
                step,
                params,
                tokens_per_step: tps,
                unit: run_unit,
            } => {
                tokens_per_step = *tps;
                run_unit_seen = *run_unit;
                let u = run_unit.name();
                say(format!(
                    "train-lm: {adapter}; {params} parameters, {tps} {u}s per step; {}",
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
                    "step {step} loss {loss:.4} {tokens_per_s:.0} {u}s/s ETA {}",
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
                "step {step}: validation loss {loss:.4} nats/{u} on {}{}",
                if *whole {
                    "the whole split".to_string()
                } else {
                    format!("the first {} {u}s", opts.eval_prefix)
                },
                if *best { " (a new best/)" } else { "" }
            )),
        }
    });
    let u = run_unit_seen.name();
    pb.finish_and_clear();
    let s = summary?;
    println!(
        "stopped at step {} ({}); {:.0} {u}s/s",
        s.steps,
        match s.stop {
            Stop::Steps => "step budget",
            Stop::Minutes => "time budget",
            Stop::Interrupted => "interrupted",
        },
        s.tokens_per_s
    );
    println!(
        "{}",
        score_line("validation", &s.final_score, run_unit_seen)
    );
    println!(
        "checkpoints: {}/last, {}/best (best validation {:.4} on the first {} {u}s)",
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
    /// The checkpoint's unit, checked (char or word; default: whatever it is).
    #[arg(long)]
    unit: Option<String>,
    /// One JSON line: loss_nats, bits_per_token, perplexity, tokens.
    #[arg(long)]
    json: bool,
}

/// Loads a language model, refusing one of another unit than `--unit` asks for.
fn load(
    ctx: &Context,
    dir: &std::path::Path,
    unit: Option<&str>,
) -> Result<(LanguageModel, lm::LmCheckpoint), Error> {
    let (model, info) = LanguageModel::load(ctx, dir)?;
    if let Some(u) = unit {
        let want = Unit::parse(u)?;
        if want != info.config.unit {
            return Err(Error::config(format!(
                "--unit {u}: {} is a {}-level model",
                info.dir.display(),
                info.config.unit.name()
            )));
        }
    }
    Ok((model, info))
}

/// `wgrnn eval-lm`.
pub fn cmd_eval(a: EvalArgs) -> Result<ExitCode, Error> {
    let ctx = Context::new()?;
    let (model, info) = load(&ctx, &a.checkpoint, a.unit.as_deref())?;
    let data = a.data.unwrap_or_else(|| PathBuf::from(&info.data));
    let unit = info.config.unit;
    let valid = lm::validation_ids(&info, &data)?;
    let s = model.evaluate(&ctx, &valid, None)?;
    if a.json {
        println!("{}", score_json(&s, unit));
    } else {
        println!(
            "{}",
            score_line(
                &format!("{} step {}", info.dir.display(), info.step),
                &s,
                unit
            )
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
    /// Text to start from (default: a line end; an empty prime also means a line start).
    #[arg(long)]
    prime: Option<String>,
    /// Tokens (characters or words) to generate.
    #[arg(long, default_value_t = 500)]
    length: usize,
    /// Softmax temperature; 0 is greedy (arg-max).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Sample only among the K most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// The checkpoint's unit, checked (char or word; default: whatever it is).
    #[arg(long)]
    unit: Option<String>,
}

/// `wgrnn sample`: the prime as given, then the generated tokens (words separated by spaces,
/// `<eos>` as a line end).
pub fn cmd_sample(a: SampleArgs) -> Result<ExitCode, Error> {
    let ctx = Context::new()?;
    let (model, info) = load(&ctx, &a.checkpoint, a.unit.as_deref())?;
    let unit = info.config.unit;
    let prime = a.prime.unwrap_or_else(|| "\n".into());
    let ids = unit.encode(&info.vocab, "--prime", &prime)?;
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{prime}");
    let _ = out.flush();
    let opts = SampleOptions {
        length: a.length,
        temperature: a.temperature,
        top_k: a.top_k,
        seed: a.seed,
    };
    let mut line_start = prime.is_empty() || prime.ends_with('\n');
    model.sample(&ctx, &ids, &opts, &mut |chunk| {
        let text = unit.render(&info.vocab, chunk, line_start);
        if !text.is_empty() {
            line_start = text.ends_with('\n');
        }
        let _ = write!(out, "{text}");
        let _ = out.flush();
    })?;
    let _ = writeln!(out);
    Ok(ExitCode::SUCCESS)
}

/// `predict-next`'s flags.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A training output (its best/ is used) or a checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The text so far ("the students opened their"); empty: the start of a line.
    #[arg(long, allow_hyphen_values = true)]
    prime: String,
    /// How many of the most likely next tokens to list.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// One JSON line: {"prime": ..., "next": [{"token": ..., "prob": ...}, ...]}.
    #[arg(long)]
    json: bool,
    /// The checkpoint's unit, checked (char or word; default: whatever it is).
    #[arg(long)]
    unit: Option<String>,
}

/// `wgrnn predict-next`: the K most likely next tokens, most likely first (ties: lower id).
pub fn cmd_predict(a: PredictArgs) -> Result<ExitCode, Error> {
    let ctx = Context::new()?;
    let (model, info) = load(&ctx, &a.checkpoint, a.unit.as_deref())?;
    let ids = info.config.unit.encode(&info.vocab, "--prime", &a.prime)?;
    let next = model.predict_next(&ctx, &ids, a.top_k)?;
    let token = |i: u32| info.vocab.tokens()[i as usize].clone();
    if a.json {
        let list: Vec<serde_json::Value> = next
            .iter()
            .map(|&(i, p)| serde_json::json!({"token": token(i), "prob": p}))
            .collect();
        println!("{}", serde_json::json!({"prime": a.prime, "next": list}));
    } else {
        for (i, p) in next {
            println!("{:>9.6}  {}", p, token(i).escape_debug());
        }
    }
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
    /// Tokens: char or word (as train-lm --unit).
    #[arg(long, default_value = "char")]
    unit: String,
    /// Word level: training words seen fewer times become <unk> (as train-lm).
    #[arg(long, default_value_t = LmConfig::default().min_count)]
    min_count: usize,
    /// One JSON line: loss_nats, bits_per_token, perplexity, tokens.
    #[arg(long)]
    json: bool,
}

/// `wgrnn ngram`.
pub fn cmd_ngram(a: NgramArgs) -> Result<ExitCode, Error> {
    let unit = Unit::parse(&a.unit)?;
    let data = a.data.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    let corpus = Corpus::read(&data, unit, a.min_count, None)?;
    let kn = KneserNey::train(&corpus.train, corpus.vocab.len(), a.order, a.discount)?;
    let (nats, tokens) = kn.score(&corpus.valid);
    let s = Score {
        loss_nats: nats / tokens.max(1) as f64,
        tokens,
    };
    if a.json {
        println!("{}", score_json(&s, unit));
    } else {
        println!(
            "{}",
            score_line(
                &format!("Kneser-Ney {}-gram (D = {})", a.order, a.discount),
                &s,
                unit
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `grad-flow`'s flags. Each `--checkpoint` is one model; each `--mode` starts a fresh stack
/// that the `--hidden` (required), `--input` (default: H) and `--layers` (default 1) after it
/// describe.
#[derive(Args, Debug)]
pub struct GradFlowArgs {
    /// A trained recurrent language model (a training output or a checkpoint folder).
    #[arg(long)]
    checkpoint: Vec<PathBuf>,
    /// A fresh stack's cell: lstm, gru, rnn_tanh, rnn_relu.
    #[arg(long)]
    mode: Vec<String>,
    /// The fresh stack's hidden units.
    #[arg(long)]
    hidden: Vec<usize>,
    /// The fresh stack's input size.
    #[arg(long)]
    input: Vec<usize>,
    /// The fresh stack's layers.
    #[arg(long)]
    layers: Vec<usize>,
    /// Steps T: the gradient of J (at step T) reaching each step t = 1..T.
    #[arg(long)]
    seq_len: usize,
    /// The PNG to write; the CSV (t,norm,model) goes beside it with extension .csv.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the fresh stacks' weights and inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// One model of a `grad-flow` command line.
enum FlowModel {
    Checkpoint(PathBuf),
    Fresh(String, Option<usize>, Option<usize>, Option<usize>),
}

/// The models of `a` in command-line order, from clap's argument indices.
fn flow_models(a: &GradFlowArgs, m: &clap::ArgMatches) -> Result<Vec<FlowModel>, Error> {
    let mut order: Vec<(usize, &str, usize)> = Vec::new();
    for id in ["checkpoint", "mode", "hidden", "input", "layers"] {
        if let Some(ix) = m.indices_of(id) {
            order.extend(ix.enumerate().map(|(k, i)| (i, id, k)));
        }
    }
    order.sort_by_key(|&(i, _, _)| i);
    let mut models = Vec::new();
    for (_, id, k) in order {
        let set = |slot: &mut Option<usize>, v: usize, flag: &str| {
            if slot.replace(v).is_some() {
                return Err(Error::config(format!(
                    "--{flag} given twice for one --mode"
                )));
            }
            Ok(())
        };
        match (id, models.last_mut()) {
            ("checkpoint", _) => models.push(FlowModel::Checkpoint(a.checkpoint[k].clone())),
            ("mode", _) => models.push(FlowModel::Fresh(a.mode[k].clone(), None, None, None)),
            (flag, Some(FlowModel::Fresh(_, h, i, l))) => match flag {
                "hidden" => set(h, a.hidden[k], flag)?,
                "input" => set(i, a.input[k], flag)?,
                _ => set(l, a.layers[k], flag)?,
            },
            (flag, _) => {
                return Err(Error::config(format!(
                    "--{flag} describes a fresh stack: give it after a --mode"
                )));
            }
        }
    }
    if models.is_empty() {
        return Err(Error::config(
            "grad-flow: give at least one --checkpoint DIR or --mode M --hidden H",
        ));
    }
    Ok(models)
}

/// `wgrnn grad-flow`.
pub fn cmd_grad_flow(a: GradFlowArgs, m: Option<&clap::ArgMatches>) -> Result<ExitCode, Error> {
    use wgrnn::models::lm::gradflow::{self, FreshStack};
    let m = m.ok_or_else(|| Error::Device("internal: grad-flow without its matches".into()))?;
    let models = flow_models(&a, m)?;
    let ctx = Context::new()?;
    let mut curves = Vec::new();
    for model in models {
        let curve = match model {
            FlowModel::Checkpoint(dir) => gradflow::trained(&ctx, &dir, None, a.seq_len)?,
            FlowModel::Fresh(mode, hidden, input, layers) => {
                let hidden = hidden
                    .ok_or_else(|| Error::config(format!("--mode {mode}: give its --hidden")))?;
                let s = FreshStack {
                    mode: wgrnn::Mode::parse(&mode)?,
                    input: input.unwrap_or(hidden),
                    hidden,
                    layers: layers.unwrap_or(1),
                };
                gradflow::fresh(&ctx, &s, a.seq_len, a.seed)?
            }
        };
        let (first, last) = (curve.norms[0], curve.norms[curve.norms.len() - 1]);
        println!(
            "{}: ||dJ/dx_1|| = {first:.3e}, ||dJ/dx_T|| = {last:.3e} (ratio {:.3e})",
            curve.label,
            first / last
        );
        curves.push(curve);
    }
    gradflow::write(&a.out, &curves)?;
    println!(
        "wrote {} and {}",
        a.out.display(),
        a.out.with_extension("csv").display()
    );
    Ok(ExitCode::SUCCESS)
}
