//! The sentence-classification commands: `train-classify`, `classify` and `eval-classify`
//! (issue 16). The work is `wgrnn::models::classify`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use wgrnn::models::classify::{
    self, Classifier, ClassifyConfig, Pool, TrainOptions, argmax, read_labelled, read_sentences,
};
use wgrnn::{Context, Error};

use crate::lm::stop_flag;
use crate::progress::{self, EpochUi};

/// `train-classify`'s flags.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training file: lines `LABEL tokenized sentence`, labels 0..K-1.
    #[arg(long)]
    train: PathBuf,
    /// Development file (selects best/).
    #[arg(long)]
    dev: PathBuf,
    /// Output folder: last/, best/, metrics.csv, curves.png.
    #[arg(long)]
    out: PathBuf,
    /// Cell: lstm, gru, rnn_tanh, rnn_relu.
    #[arg(long, default_value_t = ClassifyConfig::default().mode)]
    mode: String,
    /// Stacked layers.
    #[arg(long, default_value_t = ClassifyConfig::default().layers)]
    layers: usize,
    /// Hidden units per direction.
    #[arg(long, default_value_t = ClassifyConfig::default().hidden)]
    hidden: usize,
    /// Embedding size.
    #[arg(long, default_value_t = ClassifyConfig::default().embed)]
    embed: usize,
    /// One direction instead of two.
    #[arg(long)]
    unidirectional: bool,
    /// Pooling over the valid steps: last, mean, max.
    #[arg(long, default_value = "max")]
    pool: String,
    /// Dropout between layers and before the classifier.
    #[arg(long, default_value_t = ClassifyConfig::default().dropout)]
    dropout: f32,
    /// Probability of replacing a training word by <unk>.
    #[arg(long, default_value_t = ClassifyConfig::default().word_dropout)]
    word_dropout: f32,
    /// Training words seen fewer times become <unk>.
    #[arg(long, default_value_t = ClassifyConfig::default().min_count)]
    min_count: usize,
    /// Sentences per batch.
    #[arg(long, default_value_t = ClassifyConfig::default().batch)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = ClassifyConfig::default().lr)]
    lr: f32,
    /// Gradient-norm clip (0: none).
    #[arg(long, default_value_t = ClassifyConfig::default().clip)]
    clip: f32,
    /// Stop after this many epochs in total.
    #[arg(long, conflicts_with = "minutes")]
    epochs: Option<u64>,
    /// Stop so that the whole command takes this many minutes (default 8).
    #[arg(long)]
    minutes: Option<f64>,
    /// Seed of the initialisation, batch order and dropout.
    #[arg(long, default_value_t = ClassifyConfig::default().seed)]
    seed: u64,
    /// Continue the run in --out from last/.
    #[arg(long)]
    resume: bool,
}

/// `wgrnn train-classify`.
pub fn cmd_train(a: TrainArgs) -> Result<ExitCode, Error> {
    let config = ClassifyConfig {
        mode: a.mode,
        layers: a.layers,
        hidden: a.hidden,
        embed: a.embed,
        bidirectional: !a.unidirectional,
        pool: Pool::parse(&a.pool)?,
        dropout: a.dropout,
        word_dropout: a.word_dropout,
        min_count: a.min_count,
        batch: a.batch,
        lr: a.lr,
        clip: a.clip,
        seed: a.seed,
    };
    config.validate()?;
    let budget = progress::budget(a.epochs, a.minutes, 8.0)?;
    let opts = TrainOptions {
        train: a.train,
        dev: a.dev,
        out: a.out,
        config,
        budget,
        resume: a.resume,
    };
    let ui = EpochUi::new("train-classify", budget, progress::ACCURACY);
    let s = classify::train(
        &opts,
        stop_flag(),
        &mut |a, step, params, batches| ui.started(a, step, params, batches),
        &mut |e| ui.event(e),
    )?;
    ui.finish(&s, "sentences", &opts.out);
    Ok(ExitCode::SUCCESS)
}

/// `classify`'s flags.
#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// A training output (its best/ is used) or a checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
}

/// `wgrnn classify < sentences.txt`: `LABEL<TAB>PROBABILITY` per input line, in input order.
pub fn cmd_classify(a: ClassifyArgs) -> Result<ExitCode, Error> {
    let sents = read_sentences(std::io::stdin().lock(), "stdin")?;
    let ctx = Context::new()?;
    let (model, _) = Classifier::load(&ctx, &a.checkpoint)?;
    let ids: Vec<Vec<u32>> = sents.iter().map(|s| model.encode(s)).collect();
    let probs = model.predict(&ctx, &ids)?;
    let mut out = std::io::stdout().lock();
    for p in probs {
        let k = argmax(&p);
        let _ = writeln!(out, "{k}\t{:.6}", p[k]);
    }
    Ok(ExitCode::SUCCESS)
}

/// `eval-classify`'s flags.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A training output (its best/ is used) or a checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Labelled file (`LABEL sentence` lines).
    #[arg(long)]
    data: PathBuf,
    /// One JSON line: accuracy (fraction), n.
    #[arg(long)]
    json: bool,
}

/// `wgrnn eval-classify`.
pub fn cmd_eval(a: EvalArgs) -> Result<ExitCode, Error> {
    let ctx = Context::new()?;
    let (model, _) = Classifier::load(&ctx, &a.checkpoint)?;
    let examples = read_labelled(&a.data, Some(model.classes()))?;
    let (acc, n) = model.accuracy(&ctx, &examples)?;
    if a.json {
        println!("{}", serde_json::json!({"accuracy": acc, "n": n}));
    } else {
        println!("accuracy {:.2}% over {n} sentences", 100.0 * acc);
    }
    Ok(ExitCode::SUCCESS)
}
