//! Unsupervised translation commands (issue 22): `split-monolingual`, `train-embeddings`,
//! `neighbours`, `map-embeddings`, `word-by-word`, `train-unmt`. The work is
//! `wgrnn::models::unmt`; `translate --direction` is in `nmt.rs`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use wgrnn::models::nmt::model::Seq2SeqConfig;
use wgrnn::models::unmt::data::{self, Noise};
use wgrnn::models::unmt::mapping::{self, MapConfig, Mapped};
use wgrnn::models::unmt::model::UnmtConfig;
use wgrnn::models::unmt::train::{self, UnmtOptions};
use wgrnn::models::unmt::vectors::{self, Progress, SkipGramConfig, WordVectors};
use wgrnn::{Context, Error};

use crate::lm::stop_flag;
use crate::progress::{self, EpochUi, Score};
use crate::stdio::read_stdin_lines;

fn io_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// `split-monolingual`'s flags.
#[derive(Args, Debug)]
pub struct SplitArgs {
    /// Folder with train.{SRC,TGT}[.gz].
    #[arg(long)]
    data_dir: PathBuf,
    /// The language that keeps the first half of the lines.
    #[arg(long, default_value = "de")]
    src: String,
    /// The language that keeps the second half.
    #[arg(long, default_value = "en")]
    tgt: String,
    /// Output folder: OUT/train.SRC and OUT/train.TGT (plain text).
    #[arg(long)]
    out: PathBuf,
}

/// `wgrnn split-monolingual`: the protocol's two halves as plain files.
pub fn cmd_split(a: SplitArgs) -> Result<ExitCode, Error> {
    let h = data::halves(&a.data_dir, &a.src, &a.tgt)?;
    std::fs::create_dir_all(&a.out).map_err(io_err(&a.out))?;
    for (lang, lines) in [(&a.src, &h.a), (&a.tgt, &h.b)] {
        let path = a.out.join(format!("train.{lang}"));
        let mut body = lines.join("\n");
        body.push('\n');
        wgrnn::files::write_atomic(&path, body.as_bytes())?;
        eprintln!("{}: {} lines", path.display(), lines.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// `train-embeddings`' flags.
#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Text, one sentence per line (plain or gzip), tokenized as for translation.
    #[arg(long)]
    text: PathBuf,
    /// The vectors file to write (safetensors).
    #[arg(long)]
    out: PathBuf,
    /// The language's name (default: the file's last extension, `train.de` -> `de`).
    #[arg(long)]
    lang: Option<String>,
    /// Vector size.
    #[arg(long, default_value_t = SkipGramConfig::default().dim)]
    dim: usize,
    /// Largest window on each side (each center draws 1..=W).
    #[arg(long, default_value_t = SkipGramConfig::default().window)]
    window: usize,
    /// Negatives per pair.
    #[arg(long, default_value_t = SkipGramConfig::default().negatives)]
    negatives: usize,
    /// Passes over the text.
    #[arg(long, default_value_t = SkipGramConfig::default().epochs)]
    epochs: usize,
    /// Tokens seen fewer times are dropped.
    #[arg(long, default_value_t = SkipGramConfig::default().min_count)]
    min_count: usize,
    /// Subsampling threshold of frequent tokens (0: none).
    #[arg(long, default_value_t = SkipGramConfig::default().subsample)]
    subsample: f64,
    /// Pairs per batch.
    #[arg(long, default_value_t = SkipGramConfig::default().batch)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = SkipGramConfig::default().lr)]
    lr: f32,
    /// Seed.
    #[arg(long, default_value_t = SkipGramConfig::default().seed)]
    seed: u64,
}

/// `wgrnn train-embeddings`.
pub fn cmd_embed(a: EmbedArgs) -> Result<ExitCode, Error> {
    let c = SkipGramConfig {
        dim: a.dim,
        window: a.window,
        negatives: a.negatives,
        epochs: a.epochs,
        min_count: a.min_count,
        subsample: a.subsample,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
    };
    c.validate()?;
    let sentences = vectors::read_sentences(&a.text)?;
    let lang = a.lang.unwrap_or_else(|| vectors::lang_of(&a.text));
    let ctx = Context::new()?;
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} batches {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let say = |pb: &ProgressBar, m: String| {
        if pb.is_hidden() {
            eprintln!("{m}");
        } else {
            pb.println(m);
        }
    };
    let t0 = std::time::Instant::now();
    let v = vectors::train(&ctx, &sentences, &lang, &c, &mut |p| match p {
        Progress::Started {
            adapter,
            vocab,
            pairs,
            batches,
        } => {
            say(
                &pb,
                format!(
                    "train-embeddings on {adapter}: {} sentences, vocabulary {vocab}, {pairs} pairs \
                     in the first epoch, D = {}",
                    sentences.len(),
                    c.dim
                ),
            );
            pb.set_length(batches as u64);
        }
        Progress::Step => pb.inc(1),
        Progress::Epoch { epoch, loss } => {
            say(&pb, format!("epoch {epoch}: loss {loss:.4} nats per pair"));
        }
    })?;
    pb.finish_and_clear();
    let conf = serde_json::to_string(&c).map_err(|e| Error::config(e.to_string()))?;
    v.save(&a.out, &[("config", conf)])?;
    eprintln!(
        "wrote {} ({} words x {}) in {:.1} s",
        a.out.display(),
        v.len(),
        v.dim,
        t0.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `neighbours`' flags.
#[derive(Args, Debug)]
pub struct NeighboursArgs {
    /// A `train-embeddings` file.
    #[arg(long)]
    embeddings: PathBuf,
    /// The query word (repeatable).
    #[arg(long, required = true)]
    word: Vec<String>,
    /// Neighbours per word.
    #[arg(long, default_value_t = 10)]
    top_k: usize,
    /// One JSON line per word: {"word", "neighbours": [[word, cosine], ...]}.
    #[arg(long)]
    json: bool,
}

/// `wgrnn neighbours`: each word's nearest words by cosine similarity.
pub fn cmd_neighbours(a: NeighboursArgs) -> Result<ExitCode, Error> {
    if a.top_k == 0 {
        return Err(Error::config("--top-k must be at least 1"));
    }
    let v = WordVectors::load(&a.embeddings)?;
    let index = v.index();
    let rows = a
        .word
        .iter()
        .map(|w| {
            index.get(w.as_str()).copied().ok_or_else(|| {
                Error::config(format!(
                    "--word {w}: not in the vocabulary of {}",
                    a.embeddings.display()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = Context::new()?;
    let nn = vectors::neighbours(&ctx, &v, &rows, a.top_k)?;
    let mut out = std::io::stdout().lock();
    for (w, list) in a.word.iter().zip(nn) {
        let line = if a.json {
            let l: Vec<(String, f32)> =
                list.iter().map(|&(i, s)| (v.words[i].clone(), s)).collect();
            serde_json::json!({"word": w, "neighbours": l}).to_string()
        } else {
            let l: Vec<String> = list
                .iter()
                .map(|&(i, s)| format!("{} {s:.3}", v.words[i]))
                .collect();
            format!("{w}: {}", l.join(", "))
        };
        writeln!(out, "{line}").map_err(io_err(std::path::Path::new("stdout")))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `map-embeddings`' flags.
#[derive(Args, Debug)]
pub struct MapArgs {
    /// Source-language vectors (`train-embeddings`).
    #[arg(long)]
    src: PathBuf,
    /// Target-language vectors.
    #[arg(long)]
    tgt: PathBuf,
    /// The cross-lingual vectors file to write.
    #[arg(long)]
    out: PathBuf,
    /// Self-learning iterations at most.
    #[arg(long, default_value_t = MapConfig::default().iterations)]
    iterations: usize,
    /// Neighbours in CSLS's penalty.
    #[arg(long, default_value_t = MapConfig::default().csls_k)]
    csls_k: usize,
    /// The most frequent words of each side used to induce the dictionary.
    #[arg(long, default_value_t = MapConfig::default().max_vocab)]
    max_vocab: usize,
    /// The first keep probability of stochastic dictionary induction (1: deterministic).
    #[arg(long, default_value_t = MapConfig::default().keep)]
    keep: f32,
    /// Iterations without improvement before the keep probability doubles.
    #[arg(long, default_value_t = MapConfig::default().patience)]
    patience: usize,
}

/// `wgrnn map-embeddings`.
pub fn cmd_map(a: MapArgs) -> Result<ExitCode, Error> {
    let c = MapConfig {
        iterations: a.iterations,
        csls_k: a.csls_k,
        max_vocab: a.max_vocab,
        keep: a.keep,
        patience: a.patience,
    };
    let (src, tgt) = (WordVectors::load(&a.src)?, WordVectors::load(&a.tgt)?);
    if src.lang.is_empty() || tgt.lang.is_empty() || src.lang == tgt.lang {
        return Err(Error::config(format!(
            "the vectors' languages are `{}` and `{}`: they must be named and differ (train \
             them with --lang)",
            src.lang, tgt.lang
        )));
    }
    let ctx = Context::new()?;
    let t0 = std::time::Instant::now();
    let m = mapping::map(&ctx, &src, &tgt, &c, &mut |it, r| {
        eprintln!(
            "iteration {it}: fitted on {} dictionary pairs, mean CSLS of the matches {:.4} \
             (keep {})",
            r.dictionary, r.mean_csls, r.keep
        )
    })?;
    m.save(&a.out)?;
    eprintln!(
        "wrote {} ({} seed pairs of identical strings; {} x {} words) in {:.1} s",
        a.out.display(),
        m.seed_pairs,
        m.src.len(),
        m.tgt.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `word-by-word`'s flags.
#[derive(Args, Debug)]
pub struct WordArgs {
    /// A `map-embeddings` file.
    #[arg(long)]
    embeddings: PathBuf,
    /// SRC-TGT, e.g. de-en.
    #[arg(long)]
    direction: String,
}

/// `wgrnn word-by-word`: raw sentences on stdin, each word replaced by its CSLS nearest
/// neighbour in the other language (unknown words copied), one line per line on stdout.
pub fn cmd_word_by_word(a: WordArgs) -> Result<ExitCode, Error> {
    let m = Mapped::load(&a.embeddings)?;
    let (from, to) = a.direction.split_once('-').ok_or_else(|| {
        Error::config(format!(
            "--direction {}: expected SRC-TGT, e.g. de-en",
            a.direction
        ))
    })?;
    let (_, other, _) = m.side(from)?;
    if other.lang != to {
        return Err(Error::config(format!(
            "--direction {}: the file maps between {} and {}",
            a.direction, m.src.lang, m.tgt.lang
        )));
    }
    let lines = read_stdin_lines()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for l in m.translate_words(from, &lines)? {
        writeln!(out, "{l}").map_err(io_err(std::path::Path::new("stdout")))?;
    }
    out.flush()
        .map_err(io_err(std::path::Path::new("stdout")))?;
    Ok(ExitCode::SUCCESS)
}

/// `train-unmt`'s flags.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Folder with train.{SRC,TGT}[.gz] (cut into the protocol's halves) and val.*.
    #[arg(long)]
    data_dir: PathBuf,
    /// The cross-lingual vectors (`map-embeddings`); not needed with --resume.
    #[arg(long, required_unless_present = "resume")]
    embeddings: Option<PathBuf>,
    /// The language that keeps the first half of the training lines.
    #[arg(long, default_value = "de")]
    src: String,
    /// The language that keeps the second half.
    #[arg(long, default_value = "en")]
    tgt: String,
    /// Output folder (new or empty, unless --resume).
    #[arg(long)]
    out: PathBuf,
    /// Cell: lstm or gru.
    #[arg(long, default_value_t = UnmtConfig::default().model.mode)]
    mode: String,
    /// Attention: dot, multiplicative, low-rank, additive or none.
    #[arg(long, default_value_t = UnmtConfig::default().model.attention)]
    attention: String,
    /// Rank of low-rank attention, attention size of additive.
    #[arg(long, default_value_t = UnmtConfig::default().model.attention_rank)]
    attention_rank: usize,
    /// Layers of the encoder and of each decoder.
    #[arg(long, default_value_t = UnmtConfig::default().model.layers)]
    layers: usize,
    /// Hidden size.
    #[arg(long, default_value_t = UnmtConfig::default().model.hidden)]
    hidden: usize,
    /// Dropout between layers and before the output layers.
    #[arg(long, default_value_t = UnmtConfig::default().model.dropout)]
    dropout: f32,
    /// Sentences per language per batch.
    #[arg(long, default_value_t = UnmtConfig::default().batch)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = UnmtConfig::default().lr)]
    lr: f32,
    /// Gradient-norm clip (0: none).
    #[arg(long, default_value_t = UnmtConfig::default().clip)]
    clip: f32,
    /// Denoising: the probability of dropping each word.
    #[arg(long, default_value_t = Noise::default().drop)]
    word_dropout: f64,
    /// Denoising: the largest displacement of the local shuffle (0: none).
    #[arg(long, default_value_t = Noise::default().shuffle)]
    shuffle: usize,
    /// Denoising only (no back-translation).
    #[arg(long)]
    no_back_translation: bool,
    /// Denoising alone before this step, then back-translation too.
    #[arg(long, default_value_t = 0)]
    back_translation_start: u64,
    /// Stop after this many epochs in total.
    #[arg(long, conflicts_with = "minutes")]
    epochs: Option<u64>,
    /// Stop so that the whole command takes this many minutes (default 10).
    #[arg(long)]
    minutes: Option<f64>,
    /// Seed of the initialisation, batch order, noise and dropout.
    #[arg(long, default_value_t = UnmtConfig::default().model.seed)]
    seed: u64,
    /// Continue the run in --out from last/.
    #[arg(long)]
    resume: bool,
}

/// The mean validation BLEU of both directions (the loop's score, BLEU / 100).
const BLEU: Score = Score {
    label: "validation BLEU (mean of both directions)",
    format: |s| format!("{:.2}", 100.0 * s),
};

/// `wgrnn train-unmt`.
pub fn cmd_train(a: TrainArgs) -> Result<ExitCode, Error> {
    let d = UnmtConfig::default();
    let config = UnmtConfig {
        model: Seq2SeqConfig {
            mode: a.mode,
            layers: a.layers,
            hidden: a.hidden,
            attention: a.attention,
            attention_rank: a.attention_rank,
            dropout: a.dropout,
            seed: a.seed,
            ..d.model
        },
        batch: a.batch,
        lr: a.lr,
        clip: a.clip,
        noise: Noise {
            drop: a.word_dropout,
            shuffle: a.shuffle,
        },
        back_translation: !a.no_back_translation,
        back_translation_start: a.back_translation_start,
    };
    config.validate()?;
    let budget = progress::budget(a.epochs, a.minutes, 10.0)?;
    let opts = UnmtOptions {
        data_dir: a.data_dir,
        langs: [a.src, a.tgt],
        embeddings: a.embeddings.unwrap_or_default(),
        out: a.out,
        config,
        budget,
        resume: a.resume,
    };
    let ui = EpochUi::new("train-unmt", budget, BLEU);
    let s = train::train(
        &opts,
        stop_flag(),
        &mut |a, step, params, batches| ui.started(a, step, params, batches),
        &mut |e| ui.event(e),
    )?;
    ui.finish(&s, "sentences", &opts.out);
    Ok(ExitCode::SUCCESS)
}
