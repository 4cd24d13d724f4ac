//! The tagging commands: `train-tagger`, `tag` and `eval-tagger` (issue 17). The work is
//! `wgrnn::models::tagger`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use wgrnn::models::conllu;
use wgrnn::models::tagger::{self, Tagger, TaggerConfig, TrainOptions};
use wgrnn::{Context, Error};

use crate::lm::stop_flag;
use crate::progress::{self, EpochUi};

/// `train-tagger`'s flags.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training file, CoNLL-U (plain or .gz); learns column 4 (UPOS).
    #[arg(long)]
    train: PathBuf,
    /// Development file (selects best/).
    #[arg(long)]
    dev: PathBuf,
    /// Output folder: last/, best/, metrics.csv, curves.png.
    #[arg(long)]
    out: PathBuf,
    /// Character-level word features (a character BiRNN per word): true or false.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    char_features: bool,
    /// Cell of both RNNs: lstm, gru, rnn_tanh, rnn_relu.
    #[arg(long, default_value_t = TaggerConfig::default().mode)]
    mode: String,
    /// Layers of the word RNN.
    #[arg(long, default_value_t = TaggerConfig::default().layers)]
    layers: usize,
    /// Hidden units per direction of the word RNN.
    #[arg(long, default_value_t = TaggerConfig::default().hidden)]
    hidden: usize,
    /// Word embedding size.
    #[arg(long, default_value_t = TaggerConfig::default().embed)]
    embed: usize,
    /// Character embedding size.
    #[arg(long, default_value_t = TaggerConfig::default().char_embed)]
    char_embed: usize,
    /// Hidden units per direction of the character RNN.
    #[arg(long, default_value_t = TaggerConfig::default().char_hidden)]
    char_hidden: usize,
    /// Dropout between layers and before the output layer.
    #[arg(long, default_value_t = TaggerConfig::default().dropout)]
    dropout: f32,
    /// Probability of replacing a training word by <unk> (its characters stay).
    #[arg(long, default_value_t = TaggerConfig::default().word_dropout)]
    word_dropout: f32,
    /// Training forms seen fewer times become <unk>.
    #[arg(long, default_value_t = TaggerConfig::default().min_count)]
    min_count: usize,
    /// Sentences per batch.
    #[arg(long, default_value_t = TaggerConfig::default().batch)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = TaggerConfig::default().lr)]
    lr: f32,
    /// Gradient-norm clip (0: none).
    #[arg(long, default_value_t = TaggerConfig::default().clip)]
    clip: f32,
    /// Stop after this many epochs in total.
    #[arg(long, conflicts_with = "minutes")]
    epochs: Option<u64>,
    /// Stop so that the whole command takes this many minutes (default 8).
    #[arg(long)]
    minutes: Option<f64>,
    /// Seed of the initialisation, batch order and dropout.
    #[arg(long, default_value_t = TaggerConfig::default().seed)]
    seed: u64,
    /// Continue the run in --out from last/.
    #[arg(long)]
    resume: bool,
}

/// `wgrnn train-tagger`.
pub fn cmd_train(a: TrainArgs) -> Result<ExitCode, Error> {
    let config = TaggerConfig {
        mode: a.mode,
        layers: a.layers,
        hidden: a.hidden,
        embed: a.embed,
        char_features: a.char_features,
        char_embed: a.char_embed,
        char_hidden: a.char_hidden,
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
    let ui = EpochUi::new("train-tagger", budget, progress::ACCURACY);
    let s = tagger::train(
        &opts,
        stop_flag(),
        &mut |ad, step, params, batches| ui.started(ad, step, params, batches),
        &mut |e| ui.event(e),
    )?;
    ui.finish(&s, "sentences", &opts.out);
    Ok(ExitCode::SUCCESS)
}

/// `tag`'s flags.
#[derive(Args, Debug)]
pub struct TagArgs {
    /// A training output (its best/ is used) or a checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
}

/// `wgrnn tag < in.conllu > out.conllu`: column 4 filled on word lines, every other byte kept.
pub fn cmd_tag(a: TagArgs) -> Result<ExitCode, Error> {
    let doc = conllu::parse("stdin", crate::stdio::read_stdin_text()?)?;
    let ctx = Context::new()?;
    let (model, _) = Tagger::load(&ctx, &a.checkpoint)?;
    let out = tagger::tag_document(&ctx, &model, &doc)?;
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// `eval-tagger`'s flags.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A training output (its best/ is used) or a checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// CoNLL-U file with gold UPOS tags.
    #[arg(long)]
    data: PathBuf,
    /// One JSON line: accuracy, n, accuracy_oov, n_oov, baseline_accuracy.
    #[arg(long)]
    json: bool,
}

/// `wgrnn eval-tagger`: token accuracy, on unseen words, and the most-frequent-tag baseline
/// (from the training file recorded in the checkpoint).
pub fn cmd_eval(a: EvalArgs) -> Result<ExitCode, Error> {
    let ctx = Context::new()?;
    let (model, conf) = Tagger::load(&ctx, &a.checkpoint)?;
    let doc = conllu::read(&a.data)?;
    let train_path = conf
        .get("files")
        .and_then(|f| f.get("train"))
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::config("the checkpoint records no training file"))?;
    let train = conllu::read(std::path::Path::new(train_path))?;
    let s = tagger::score(&ctx, &model, &doc, &train)?;
    if a.json {
        println!("{}", serde_json::to_string(&s).unwrap_or_default());
    } else {
        println!(
            "accuracy {:.2}% over {} words; unseen words {:.2}% over {}; most-frequent-tag baseline {:.2}%",
            100.0 * s.accuracy,
            s.n,
            100.0 * s.accuracy_oov,
            s.n_oov,
            100.0 * s.baseline_accuracy
        );
    }
    Ok(ExitCode::SUCCESS)
}
