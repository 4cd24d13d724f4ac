//! Translation commands (issue 18): `train-nmt`, `translate`, `bleu`. The work is
//! `wgrnn::models::nmt` and `wgrnn::models::bleu`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use wgrnn::models::nmt::heatmap;
use wgrnn::models::nmt::model::Seq2SeqConfig;
use wgrnn::models::nmt::train::{self, Decoding, NmtConfig, TrainOptions, Translator};
use wgrnn::models::{bleu, checkpoint};
use wgrnn::{Context, Error};

use crate::lm::stop_flag;
use crate::progress::{self, EpochUi, Score};

/// `bleu`'s flags.
#[derive(Args, Debug)]
pub struct BleuArgs {
    /// Reference translations, one raw (detokenized) sentence per line; plain or gzip.
    #[arg(long = "ref")]
    reference: PathBuf,
    /// Hypotheses, line for line with the references; plain or gzip.
    #[arg(long)]
    hyp: PathBuf,
    /// Case-insensitive BLEU (both sides lowercased).
    #[arg(long)]
    lowercase: bool,
}

/// `wgrnn bleu`: `BLEU = 41.69` on the first line, then the n-gram precisions, the brevity
/// penalty and the lengths, as `sacrebleu.corpus_bleu(hyps, [refs])` reports them.
pub fn cmd_bleu(a: BleuArgs) -> Result<ExitCode, Error> {
    let b = bleu::bleu_files(&a.reference, &a.hyp, a.lowercase)?;
    println!("{b}");
    Ok(ExitCode::SUCCESS)
}

/// `train-nmt`'s flags.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Folder with train.{SRC,TGT}[.gz] and val.{SRC,TGT}[.gz], one raw sentence per line.
    #[arg(long)]
    data_dir: PathBuf,
    /// Source language suffix.
    #[arg(long, default_value = "de")]
    src: String,
    /// Target language suffix.
    #[arg(long, default_value = "en")]
    tgt: String,
    /// Output folder (new or empty, unless --resume).
    #[arg(long)]
    out: PathBuf,
    /// Cell of the encoder and decoder: lstm or gru.
    #[arg(long, default_value_t = NmtConfig::default().model.mode)]
    mode: String,
    /// Attention: dot, multiplicative, low-rank, additive or none.
    #[arg(long, default_value_t = NmtConfig::default().model.attention)]
    attention: String,
    /// Rank of low-rank attention, attention size of additive.
    #[arg(long, default_value_t = NmtConfig::default().model.attention_rank)]
    attention_rank: usize,
    /// Feed each step's attentional vector into the next step's decoder input (Luong et
    /// al.); the decoder then trains step by step.
    #[arg(long)]
    input_feeding: bool,
    /// Layers of the encoder and of the decoder.
    #[arg(long, default_value_t = NmtConfig::default().model.layers)]
    layers: usize,
    /// Hidden size (each encoder direction and the decoder).
    #[arg(long, default_value_t = NmtConfig::default().model.hidden)]
    hidden: usize,
    /// Embedding size of both languages.
    #[arg(long, default_value_t = NmtConfig::default().model.embed)]
    embed: usize,
    /// Dropout between layers and before the output layer.
    #[arg(long, default_value_t = NmtConfig::default().model.dropout)]
    dropout: f32,
    /// Training tokens seen fewer times become <unk>.
    #[arg(long, default_value_t = NmtConfig::default().min_count)]
    min_count: usize,
    /// Sentence pairs per batch.
    #[arg(long, default_value_t = NmtConfig::default().batch)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = NmtConfig::default().lr)]
    lr: f32,
    /// Gradient-norm clip (0: none).
    #[arg(long, default_value_t = NmtConfig::default().clip)]
    clip: f32,
    /// Stop after this many epochs in total.
    #[arg(long, conflicts_with = "minutes")]
    epochs: Option<u64>,
    /// Stop so that the whole command takes this many minutes (default 6).
    #[arg(long)]
    minutes: Option<f64>,
    /// Seed of the initialisation, batch order and dropout.
    #[arg(long, default_value_t = NmtConfig::default().model.seed)]
    seed: u64,
    /// Continue the run in --out from last/.
    #[arg(long)]
    resume: bool,
}

/// Validation BLEU, from the loop's score (BLEU / 100).
const BLEU: Score = Score {
    label: "validation BLEU",
    format: |s| format!("{:.2}", 100.0 * s),
};

/// `wgrnn train-nmt`.
pub fn cmd_train(a: TrainArgs) -> Result<ExitCode, Error> {
    let config = NmtConfig {
        model: Seq2SeqConfig {
            mode: a.mode,
            layers: a.layers,
            hidden: a.hidden,
            embed: a.embed,
            attention: a.attention,
            attention_rank: a.attention_rank,
            dropout: a.dropout,
            seed: a.seed,
            input_feeding: a.input_feeding,
            frozen_src_embedding: false,
        },
        min_count: a.min_count,
        batch: a.batch,
        lr: a.lr,
        clip: a.clip,
    };
    config.validate()?;
    let budget = progress::budget(a.epochs, a.minutes, 6.0)?;
    let opts = TrainOptions {
        data_dir: a.data_dir,
        src: a.src,
        tgt: a.tgt,
        out: a.out,
        config,
        budget,
        resume: a.resume,
    };
    let ui = EpochUi::new("train-nmt", budget, BLEU);
    let s = train::train(
        &opts,
        stop_flag(),
        &mut |a, step, params, batches| ui.started(a, step, params, batches),
        &mut |e| ui.event(e),
    )?;
    ui.finish(&s, "sentence pairs", &opts.out);
    Ok(ExitCode::SUCCESS)
}

/// `translate`'s flags.
#[derive(Args, Debug)]
pub struct TranslateArgs {
    /// A training output (its best/ is used) or a checkpoint folder.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Beams per sentence (1: greedy decoding).
    #[arg(long, default_value_t = 1)]
    beam: usize,
    /// Beam search ranks finished hypotheses by sum log p / len^A (len counts </s>).
    #[arg(long, default_value_t = 1.0)]
    length_penalty: f32,
    /// Write an attention heat map per input line: DIR/000001.png for line 1, ...
    #[arg(long, value_name = "DIR")]
    attention_png: Option<PathBuf>,
    /// SRC-TGT (e.g. de-en): required for a `train-unmt` model, checked for a `train-nmt` one.
    #[arg(long)]
    direction: Option<String>,
}

/// What `translate` loaded.
enum Loaded {
    Nmt(Box<Translator>),
    /// The model and the direction's language indices.
    Unmt(Box<wgrnn::models::unmt::model::Unmt>, usize, usize),
}

/// `wgrnn translate`: raw sentences on stdin, one translation per line on stdout, in order
/// (an empty line for an empty line); greedy or beam search batched on the GPU; with
/// `--attention-png`, a heat map per non-empty line.
pub fn cmd_translate(a: TranslateArgs) -> Result<ExitCode, Error> {
    if a.beam == 0 || a.beam > wgrnn::ops::MAX_BEAM {
        return Err(Error::config(format!(
            "--beam {} must lie in 1..={}",
            a.beam,
            wgrnn::ops::MAX_BEAM
        )));
    }
    if !(a.length_penalty.is_finite() && a.length_penalty >= 0.0) {
        return Err(Error::config(format!(
            "--length-penalty {} must be finite and >= 0",
            a.length_penalty
        )));
    }
    let ctx = Context::new()?;
    let dir = checkpoint::resolve(&a.checkpoint)?;
    let kind = checkpoint::read_json(&dir.join("config.json"))?
        .get("kind")
        .and_then(|k| k.as_str().map(String::from));
    let model = if kind.as_deref() == Some("unmt") {
        let Some(d) = &a.direction else {
            return Err(Error::config(
                "--direction SRC-TGT is required: this is an unsupervised model of two languages",
            ));
        };
        let (m, _) = wgrnn::models::unmt::train::load(&ctx, &dir)?;
        let (from, to) = d.split_once('-').ok_or_else(|| {
            Error::config(format!("--direction {d}: expected SRC-TGT, e.g. de-en"))
        })?;
        let (from, to) = (m.lang(from)?, m.lang(to)?);
        if from == to {
            return Err(Error::config(format!(
                "--direction {d}: the languages must differ"
            )));
        }
        Loaded::Unmt(Box::new(m), from, to)
    } else {
        let (t, conf) = Translator::load(&ctx, &dir)?;
        if let Some(d) = &a.direction {
            let src = conf
                .pointer("/data/src")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let tgt = conf
                .pointer("/data/tgt")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            if *d != format!("{src}-{tgt}") {
                return Err(Error::config(format!(
                    "--direction {d}: this model translates {src}-{tgt} only"
                )));
            }
        }
        Loaded::Nmt(Box::new(t))
    };
    let has_attention = match &model {
        Loaded::Nmt(t) => t.model.attention.is_some(),
        Loaded::Unmt(m, _, to) => m.decoders[*to].attention.is_some(),
    };
    if a.attention_png.is_some() && !has_attention {
        return Err(Error::config(
            "--attention-png: this model has no attention (trained with --attention none)",
        ));
    }
    let lines = crate::stdio::read_stdin_lines()?;
    let dec = Decoding {
        beam: a.beam,
        length_penalty: a.length_penalty,
        attention: a.attention_png.is_some(),
    };
    let out = match &model {
        Loaded::Nmt(t) => t.translate(&ctx, &lines, &dec)?,
        Loaded::Unmt(m, from, to) => m.translate(&ctx, *from, *to, &lines, &dec)?,
    };
    if let Some(dir) = &a.attention_png {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        for (i, tr) in out.iter().enumerate() {
            if let Some(w) = &tr.attention {
                let path = dir.join(format!("{:06}.png", i + 1));
                heatmap::write(&path, &tr.source, &tr.target, w)?;
            }
        }
    }
    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
    for tr in out {
        let l = tr.text;
        writeln!(w, "{l}").map_err(|e| Error::Io {
            path: "stdout".into(),
            source: e,
        })?;
    }
    w.flush().map_err(|e| Error::Io {
        path: "stdout".into(),
        source: e,
    })?;
    Ok(ExitCode::SUCCESS)
}
