//! The `wgrnn` command line.
//!
//! - `wgrnn forward`: runs a forward pass of a configurable stack on the GPU, prints its
//!   throughput and its agreement with the CPU reference.
//! - `wgrnn bench`: timing of shapes and named suites, human table or JSON lines.
//! - `wgrnn run`: PyTorch-compatible weights and inputs in safetensors files -> outputs (and
//!   gradients) in a safetensors file.
//! - `wgrnn train-lm`, `eval-lm`, `sample`, `ngram`: the character language model and its
//!   Kneser-Ney baseline (`lm.rs`).
//! - `wgrnn train-classify`, `classify`, `eval-classify`: sentence classification
//!   (`classify.rs`).
//! - `wgrnn train-tagger`, `tag`, `eval-tagger`: part-of-speech tagging (`tagger.rs`).
//! - `wgrnn train-nmt`, `translate`, `bleu`: translation with attention and its score
//!   (`nmt.rs`).
//!
//! Exit status: 0 success, 1 runtime failure (no adapter, device error), 2 bad input or usage.

mod classify;
mod engine;
mod lm;
mod nmt;
mod progress;
mod stdio;
mod tagger;
mod unmt;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use wgrnn::interop::{Backend, run_files};
use wgrnn::{Error, Mode, RnnConfig, WeightStorage};

#[derive(Parser)]
#[command(
    name = "wgrnn",
    version,
    about = "Fused LSTM/GRU/RNN kernels on any GPU (wgpu + WGSL)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Shape of a stack; shared by several subcommands.
#[derive(clap::Args, Clone, Debug)]
struct ShapeArgs {
    /// Cell: lstm, gru, rnn_tanh, rnn_relu.
    #[arg(long, default_value = "lstm")]
    mode: String,
    /// Input features (I).
    #[arg(long, default_value_t = 256)]
    input: usize,
    /// Hidden units per direction (H).
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    /// Batch size (B).
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Sequence length (T).
    #[arg(long, default_value_t = 100)]
    seq: usize,
    /// Stacked layers (L).
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Two directions.
    #[arg(long)]
    bidirectional: bool,
}

impl ShapeArgs {
    fn config(&self) -> Result<RnnConfig, Error> {
        let cfg = RnnConfig::new(Mode::parse(&self.mode)?, self.input, self.hidden)
            .layers(self.layers)
            .bidirectional(self.bidirectional);
        cfg.validate()?;
        if self.batch == 0 || self.seq == 0 {
            return Err(Error::config("--batch and --seq must be at least 1"));
        }
        Ok(cfg)
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum WeightsArg {
    /// The parameters as they are.
    F32,
    /// Recurrent weights of inference forwards rounded to f16 (f32 arithmetic).
    F16,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    /// The WGSL kernels on the GPU (fails when no adapter exists; never falls back).
    Gpu,
    /// The f64 CPU reference.
    Cpu,
}

const BENCH_HELP: &str = "FLOP convention: the forward counts 2*G*H*(I_l + H)*B*T per layer l and \
direction (I_l = I for layer 0, D*H above; G = 4 LSTM, 3 GRU, 1 RNN); backward counts twice the \
forward, train three times. us_per_step = the whole stack's time / T. Times are medians after \
warm-up; GPU time comes from timestamp queries where the adapter has them (time_source = gpu), \
else wall time including encoding and submission (time_source = wall). JSON lines also carry \
kernel_config (every kernel choice in force), shader_checks, tuned (cache, shipped or built-in: \
where the shape class's configuration came from) and, with --check, check_rel_err (the worst \
relative error against the CPU reference).";

#[derive(Subcommand)]
enum Cmd {
    /// Print the adapter, its limits and features, and machine-level measurements (copy
    /// bandwidth, GEMM rate, cost of one dispatch).
    Info,
    /// Time candidate kernel configurations (GEMM kernel, tile sizes, split step, schedules) for every
    /// shape class of a suite on this adapter; write the fastest to the local tuning cache
    /// (`WGRNN_TUNE_CACHE`, else $XDG_CACHE_HOME/wgrnn/tune.json), which bench, forward and
    /// the training commands then read.
    Tune {
        /// Suite whose shapes are timed: core, deepbench-train, deepbench-infer, smoke.
        #[arg(long, default_value = "core")]
        suite: String,
        /// Only these labels of the suite (comma-separated).
        #[arg(long)]
        only: Option<String>,
        /// Passes timed per shape, summed (comma-separated).
        #[arg(long, default_value = "inference,train")]
        passes: String,
        /// Timed runs per candidate and pass, after one warm-up.
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Cap on T while tuning (0: the suite's T).
        #[arg(long, default_value_t = 64)]
        max_seq: usize,
        /// Cache file to update instead of the default.
        #[arg(long)]
        cache: Option<std::path::PathBuf>,
        /// Measure and print; write no cache.
        #[arg(long)]
        dry_run: bool,
        /// Also write every trial as JSON here.
        #[arg(long)]
        json_out: Option<std::path::PathBuf>,
    },
    /// Time shapes or a named suite; a human table, or one JSON object per line with --json.
    #[command(after_help = BENCH_HELP)]
    Bench {
        #[command(flatten)]
        shape: ShapeArgs,
        /// Named suite instead of one shape: core, deepbench-train, deepbench-infer, smoke.
        #[arg(long, conflicts_with_all = ["mode", "input", "hidden", "batch", "seq", "layers", "bidirectional"])]
        suite: Option<String>,
        /// inference, forward (training-mode forward), backward (alone, after one forward),
        /// train (forward + backward). Default: inference; a suite runs inference and train.
        #[arg(long)]
        pass: Option<String>,
        /// Timed repetitions (after warm-up).
        #[arg(long, default_value_t = 10)]
        reps: usize,
        /// Untimed warm-up runs.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// One JSON object per shape and pass on its own line.
        #[arg(long)]
        json: bool,
        /// Compare with the CPU reference first (at a reduced T); on a mismatch print the
        /// error, report no time and exit with status 1.
        #[arg(long)]
        check: bool,
        /// For slow adapters: one warm-up, three runs, T capped at 64.
        #[arg(long)]
        quick: bool,
        /// Print the suite's shapes as JSON lines and exit (no GPU needed).
        #[arg(long, requires = "suite")]
        list: bool,
        /// Run only these labels of the suite (comma-separated, e.g. S1,S3).
        #[arg(long, requires = "suite")]
        only: Option<String>,
        /// Storage of the recurrent weights in inference passes (f16: WeightStorage::F16).
        #[arg(long, value_enum, default_value_t = WeightsArg::F32)]
        weights: WeightsArg,
    },
    /// Run PyTorch-compatible weights on an input file; write outputs (and gradients when the
    /// input file holds grad_output / grad_h_n / grad_c_n).
    ///
    /// Weights: safetensors named like nn.LSTM/GRU/RNN's state_dict (weight_ih_l0, ...,
    /// *_reverse), metadata `mode` = LSTM | GRU | RNN_TANH | RNN_RELU. Input: `input` [T, B, I],
    /// optional `h0`, `c0` [L*D, B, H], `lengths` [B] (i32/i64), `grad_output` [T, B, D*H],
    /// `grad_h_n`, `grad_c_n`. Output: `output`, `h_n`, `c_n`, and after a backward
    /// `grad_input`, `grad_h0`, `grad_c0`, `grad.<parameter>`. Exit status 0 ok, 2 bad input,
    /// 1 runtime failure.
    Run {
        /// Weights file (safetensors).
        #[arg(long)]
        weights: std::path::PathBuf,
        /// Input file (safetensors).
        #[arg(long)]
        input: std::path::PathBuf,
        /// Output file (safetensors); written to a temporary name and renamed.
        #[arg(long)]
        output: std::path::PathBuf,
        /// Where to compute.
        #[arg(long, value_enum, default_value = "gpu")]
        backend: BackendArg,
        /// `input`, `grad_output`, `output` and `grad_input` are [B, T, ...].
        #[arg(long)]
        batch_first: bool,
    },
    /// Train a character- or word-level language model, recurrent (truncated BPTT) or
    /// fixed-window, one submission per step; checkpoints in --out/last and --out/best,
    /// metrics.csv, loss.png.
    TrainLm(lm::TrainArgs),
    /// Score a language model on the validation split: nats and bits per token, perplexity.
    EvalLm(lm::EvalArgs),
    /// Generate text from a language model on the device.
    Sample(lm::SampleArgs),
    /// The most likely next tokens after a prime, with their probabilities.
    PredictNext(lm::PredictArgs),
    /// Interpolated Kneser-Ney n-gram baseline on the same split.
    Ngram(lm::NgramArgs),
    /// The gradient norm ||dJ_T / dx_t|| over t for fresh stacks and trained models: a PNG
    /// (log scale) and a CSV (t,norm,model).
    GradFlow(lm::GradFlowArgs),
    /// Train a sentence classifier (bidirectional RNN, pooled over each sentence's length);
    /// checkpoints in --out/last and --out/best, metrics.csv, curves.png.
    TrainClassify(classify::TrainArgs),
    /// Classify tokenized sentences from stdin: LABEL<TAB>PROBABILITY per line.
    Classify(classify::ClassifyArgs),
    /// Accuracy of a classifier on a labelled file.
    EvalClassify(classify::EvalArgs),
    /// Train a part-of-speech tagger on CoNLL-U (UPOS), with character-level word features;
    /// checkpoints in --out/last and --out/best, metrics.csv, curves.png.
    TrainTagger(tagger::TrainArgs),
    /// Tag CoNLL-U from stdin (plain or gzip): column 4 filled, every other byte kept.
    Tag(tagger::TagArgs),
    /// Accuracy of a tagger on a CoNLL-U file (also on unseen words, and the baseline).
    EvalTagger(tagger::EvalArgs),
    /// Train an attentional encoder-decoder translation model (Multi30k layout).
    TrainNmt(nmt::TrainArgs),
    /// Translate raw sentences from stdin with a checkpoint (greedy, on the GPU).
    Translate(nmt::TranslateArgs),
    /// Corpus BLEU of a hypothesis file against a reference file (sacreBLEU's defaults).
    Bleu(nmt::BleuArgs),
    /// Write the unsupervised protocol's halves of a parallel folder: the first half of the
    /// training lines in --src, the second in --tgt.
    SplitMonolingual(unmt::SplitArgs),
    /// Train skip-gram word vectors (negative sampling) on the GPU; a safetensors file.
    TrainEmbeddings(unmt::EmbedArgs),
    /// The nearest words of a word by cosine similarity.
    Neighbours(unmt::NeighboursArgs),
    /// Map two languages' vectors into one space without a dictionary (Procrustes from
    /// identical strings, self-learning with CSLS).
    MapEmbeddings(unmt::MapArgs),
    /// Word-by-word translation of stdin by CSLS nearest neighbours in the mapped space.
    WordByWord(unmt::WordArgs),
    /// Train unsupervised translation (shared encoder, a decoder per language, denoising and
    /// back-translation) on monolingual halves; checkpoints, metrics.csv, curves.png.
    TrainUnmt(unmt::TrainArgs),
    /// Run a forward pass on the GPU; print throughput and agreement with the CPU reference.
    Forward {
        #[command(flatten)]
        shape: ShapeArgs,
        /// Timed repetitions after one warm-up.
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Skip the CPU reference comparison.
        #[arg(long)]
        no_check: bool,
        /// Parameter and input seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    // Writing into a closed pipe (`wgrnn ... | head`) ends the process quietly, as for any Unix
    // tool, instead of a panic in println!.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // clap's help and version are not failures; usage errors exit with status 2.
    let clap_exit = |e: clap::Error| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    };
    // The matches are kept: grad-flow groups its repeated model flags by their order.
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return clap_exit(e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return clap_exit(e),
    };
    let res = match cli.cmd {
        Cmd::Info => engine::cmd_info(),
        Cmd::Tune {
            suite,
            only,
            passes,
            reps,
            max_seq,
            cache,
            dry_run,
            json_out,
        } => engine::cmd_tune(engine::TuneArgs {
            suite: &suite,
            only: only.as_deref(),
            passes: &passes,
            reps,
            max_seq,
            cache,
            dry_run,
            json_out,
        }),
        Cmd::TrainLm(a) => lm::cmd_train(a),
        Cmd::EvalLm(a) => lm::cmd_eval(a),
        Cmd::Sample(a) => lm::cmd_sample(a),
        Cmd::PredictNext(a) => lm::cmd_predict(a),
        Cmd::Ngram(a) => lm::cmd_ngram(a),
        Cmd::GradFlow(a) => lm::cmd_grad_flow(a, matches.subcommand_matches("grad-flow")),
        Cmd::TrainClassify(a) => classify::cmd_train(a),
        Cmd::Classify(a) => classify::cmd_classify(a),
        Cmd::EvalClassify(a) => classify::cmd_eval(a),
        Cmd::TrainTagger(a) => tagger::cmd_train(a),
        Cmd::Tag(a) => tagger::cmd_tag(a),
        Cmd::EvalTagger(a) => tagger::cmd_eval(a),
        Cmd::TrainNmt(a) => nmt::cmd_train(a),
        Cmd::Translate(a) => nmt::cmd_translate(a),
        Cmd::Bleu(a) => nmt::cmd_bleu(a),
        Cmd::SplitMonolingual(a) => unmt::cmd_split(a),
        Cmd::TrainEmbeddings(a) => unmt::cmd_embed(a),
        Cmd::Neighbours(a) => unmt::cmd_neighbours(a),
        Cmd::MapEmbeddings(a) => unmt::cmd_map(a),
        Cmd::WordByWord(a) => unmt::cmd_word_by_word(a),
        Cmd::TrainUnmt(a) => unmt::cmd_train(a),
        Cmd::Forward {
            shape,
            reps,
            no_check,
            seed,
        } => engine::cmd_forward(&shape, reps, !no_check, seed),
        Cmd::Bench {
            shape,
            suite,
            pass,
            reps,
            warmup,
            json,
            check,
            quick,
            list,
            only,
            weights,
        } => {
            let sel = engine::BenchSelect {
                suite: suite.as_deref(),
                only: only.as_deref(),
                list,
                weights: match weights {
                    WeightsArg::F32 => WeightStorage::F32,
                    WeightsArg::F16 => WeightStorage::F16,
                },
            };
            let run = engine::BenchRun {
                pass: pass.as_deref(),
                reps,
                warmup,
                json,
                check,
                quick,
            };
            engine::cmd_bench(&shape, sel, run)
        }
        Cmd::Run {
            weights,
            input,
            output,
            backend,
            batch_first,
        } => {
            let backend = match backend {
                BackendArg::Gpu => Backend::Gpu,
                BackendArg::Cpu => Backend::Cpu,
            };
            run_files(&weights, &input, &output, backend, batch_first).map(|_| ExitCode::SUCCESS)
        }
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wgrnn: {e}");
            if e.is_user_error() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
