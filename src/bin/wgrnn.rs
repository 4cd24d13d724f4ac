//! The `wgrnn` command line.
//!
//! - `wgrnn forward`: runs a forward pass of a configurable stack on the GPU, prints its
//!   throughput and its agreement with the CPU reference.
//! - `wgrnn bench`: timing of shapes and named suites, human table or JSON lines.
//! - `wgrnn run`: PyTorch-compatible weights and inputs in safetensors files -> outputs (and
//!   gradients) in a safetensors file.
//!
//! Exit status: 0 success, 1 runtime failure (no adapter, device error), 2 bad input or usage.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use wgrnn::bench::rel_err;
use wgrnn::interop::{Backend, run_files};
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_forward};
use wgrnn::{
    Context, Error, ForwardInputs, Mode, Recorder, Rnn, RnnConfig, RnnParams, Tensor, WeightStorage,
};

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
else wall time including encoding and submission (time_source = wall).";

#[derive(Subcommand)]
enum Cmd {
    /// Print the adapter, its limits and features, and machine-level measurements (copy
    /// bandwidth, GEMM rate, cost of one dispatch).
    Info,
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
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            // clap's help and version are not failures; usage errors exit with status 2.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let res = match cli.cmd {
        Cmd::Info => cmd_info(),
        Cmd::Forward {
            shape,
            reps,
            no_check,
            seed,
        } => cmd_forward(&shape, reps, !no_check, seed),
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
            let sel = BenchSelect {
                suite: suite.as_deref(),
                only: only.as_deref(),
                list,
                weights: match weights {
                    WeightsArg::F32 => WeightStorage::F32,
                    WeightsArg::F16 => WeightStorage::F16,
                },
            };
            cmd_bench(
                &shape,
                sel,
                pass.as_deref(),
                reps,
                warmup,
                json,
                check,
                quick,
            )
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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn cmd_forward(shape: &ShapeArgs, reps: usize, check: bool, seed: u64) -> Result<ExitCode, Error> {
    let cfg = shape.config()?;
    let ctx = Context::new()?;
    let (t, b) = (shape.seq, shape.batch);
    println!("adapter: {} ({})", ctx.adapter_name(), ctx.backend());
    println!(
        "stack:   {} I={} H={} L={} {} B={b} T={t}",
        cfg.mode.torch_name(),
        cfg.input_size,
        cfg.hidden_size,
        cfg.num_layers,
        if cfg.bidirectional {
            "bidirectional"
        } else {
            "unidirectional"
        }
    );
    let params = RnnParams::init(&cfg, seed)?;
    let rnn = Rnn::new(&ctx, &params)?;
    let x = wgrnn::bench::bench_data(seed, t * b * cfg.input_size);
    let xt = Tensor::from_f32(&ctx, "input", &[t, b, cfg.input_size], &x)?;
    let inp = ForwardInputs::default();
    let mut gpu = Vec::new();
    let mut wall = Vec::new();
    let mut out = None;
    let mut dispatches = 0;
    for i in 0..=reps {
        let start = Instant::now();
        let mut rec = Recorder::new(&ctx).with_timestamps();
        let (o, _) = rnn.record_forward(&mut rec, &xt, &inp, false)?;
        let sub = rec.submit()?;
        sub.wait(&ctx)?;
        let w = start.elapsed().as_secs_f64() * 1e3;
        let g = sub.gpu_ms(&ctx)?;
        dispatches = sub.dispatches;
        if i > 0 {
            wall.push(w);
            if let Some(g) = g {
                gpu.push(g);
            }
        }
        out = Some(o);
    }
    let out = out.ok_or_else(|| Error::config("--reps must allow one run"))?;
    let flops: f64 = (0..cfg.num_layers)
        .map(|l| {
            2.0 * (cfg.gate_rows() * (cfg.layer_input(l) + cfg.hidden_size) * b * t * cfg.dirs())
                as f64
        })
        .sum();
    let wall_ms = median(&mut wall);
    let gpu_ms = (!gpu.is_empty()).then(|| median(&mut gpu));
    let ms = gpu_ms.unwrap_or(wall_ms);
    println!(
        "gpu:     {} ms per forward (median of {reps}), wall {wall_ms:.3} ms, {dispatches} dispatches, 1 submit",
        gpu_ms.map_or("n/a".into(), |g| format!("{g:.3}"))
    );
    println!(
        "         {:.1} us per step, {:.2} GFLOP/s, {:.0} sequences/s",
        ms * 1e3 / t as f64,
        flops / ms / 1e6,
        b as f64 / ms * 1e3
    );
    if !check {
        return Ok(ExitCode::SUCCESS);
    }
    let start = Instant::now();
    let rf = rnn_forward(
        &RefParams::from_params(&params),
        &RefInputs {
            x: x.iter().map(|&v| v as f64).collect(),
            seq: t,
            batch: b,
            ..Default::default()
        },
    );
    let ref_ms = start.elapsed().as_secs_f64() * 1e3;
    let e_out = rel_err(&out.output.to_vec(&ctx)?, &rf.output);
    let e_h = rel_err(&out.h_n.to_vec(&ctx)?, &rf.h_n);
    println!("cpu reference (f64): {ref_ms:.1} ms");
    println!("agreement: relative error output {e_out:.2e}, h_n {e_h:.2e} (tolerance 1e-4)");
    if e_out.max(e_h) > 1e-4 {
        eprintln!("wgrnn: GPU and CPU reference disagree");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Relative error tolerated by `bench --check` (the conformance tests' bound; docs/NUMERICS.md).
const CHECK_TOL: f64 = 1e-4;
/// The same with f16 weights, against the f32 reference: f16 rounding (2^-11 relative per
/// weight) measured at up to 4.8e-4 on the conformance cases (docs/NUMERICS.md).
const CHECK_TOL_F16: f64 = 2e-3;
/// Reference FLOPs `bench --check` may spend per shape: it shortens T to stay under this.
const CHECK_BUDGET_FLOPS: f64 = 4e9;

fn weights_name(w: WeightStorage) -> &'static str {
    match w {
        WeightStorage::F32 => "f32",
        WeightStorage::F16 => "f16",
    }
}

/// Which shapes `bench` runs, and how.
struct BenchSelect<'a> {
    suite: Option<&'a str>,
    only: Option<&'a str>,
    list: bool,
    weights: WeightStorage,
}

#[allow(clippy::too_many_arguments)]
fn cmd_bench(
    shape: &ShapeArgs,
    sel: BenchSelect,
    pass: Option<&str>,
    reps: usize,
    warmup: usize,
    json: bool,
    check: bool,
    quick: bool,
) -> Result<ExitCode, Error> {
    use wgrnn::bench::{BenchOptions, Pass, Shape, check_shape, run_bench, suite as suite_shapes};
    let suite = sel.suite;
    let mut shapes: Vec<Shape> = match suite {
        Some(name) => suite_shapes(name)?,
        None => {
            let cfg = shape.config()?;
            vec![Shape {
                label: "custom".into(),
                mode: cfg.mode,
                input: shape.input,
                hidden: shape.hidden,
                batch: shape.batch,
                seq: shape.seq,
                layers: shape.layers,
                bidirectional: shape.bidirectional,
            }]
        }
    };
    if let Some(only) = sel.only {
        let want: Vec<&str> = only.split(',').collect();
        if let Some(w) = want.iter().find(|w| !shapes.iter().any(|s| s.label == **w)) {
            return Err(Error::config(format!(
                "--only: no shape labelled {w:?} in the suite"
            )));
        }
        shapes.retain(|s| want.contains(&s.label.as_str()));
    }
    if sel.list {
        for s in &shapes {
            println!(
                "{{\"label\":\"{}\",\"mode\":\"{}\",\"input\":{},\"hidden\":{},\"batch\":{},\"seq\":{},\"layers\":{},\"bidirectional\":{}}}",
                s.label,
                s.mode_name(),
                s.input,
                s.hidden,
                s.batch,
                s.seq,
                s.layers,
                s.bidirectional
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let passes: Vec<Pass> = match (pass, suite) {
        (Some(p), _) => vec![Pass::parse(p)?],
        (None, Some(_)) => vec![Pass::Inference, Pass::Train],
        (None, None) => vec![Pass::Inference],
    };
    if reps == 0 {
        return Err(Error::config("--reps must be at least 1"));
    }
    let (warmup, reps) = if quick { (1, 3) } else { (warmup, reps) };
    let opts = BenchOptions {
        warmup,
        reps,
        weights: sel.weights,
    };
    let ctx = Context::new()?;
    let adapter = ctx.adapter_name().to_string();
    let backend = ctx.backend();
    if !json {
        println!(
            "adapter: {adapter} ({backend}); GPU timestamps: {}",
            if ctx.has_timestamps() {
                "yes"
            } else {
                "no (wall time)"
            }
        );
        if quick {
            println!("quick: 1 warm-up, 3 runs, T capped at 64");
        }
        println!(
            "{:<18} {:<9} {:>5} {:>5} {:>4} {:>5} {:>2} {:>2} {:<9} {:>10} {:>10} {:>10} {:>8} {:>6} schedule",
            "shape",
            "mode",
            "I",
            "H",
            "B",
            "T",
            "L",
            "D",
            "pass",
            "gpu_ms",
            "wall_ms",
            "us/step",
            "TFLOP/s",
            "disp"
        );
    }
    for s in &shapes {
        let mut run_shape = s.clone();
        if quick {
            run_shape.seq = s.seq.min(64);
        }
        for &p in &passes {
            if check {
                let per_step = run_shape.forward_flops() / run_shape.seq as f64 * p.flop_factor();
                let max_seq = ((CHECK_BUDGET_FLOPS / per_step) as usize).clamp(1, 8);
                let err = check_shape(&ctx, &run_shape, p, max_seq, sel.weights)?;
                let tol = match (sel.weights, p) {
                    (WeightStorage::F16, Pass::Inference) => CHECK_TOL_F16,
                    _ => CHECK_TOL,
                };
                if err.is_nan() || err > tol {
                    eprintln!(
                        "wgrnn: check failed for {} {} pass {}: relative error {err:.3e} > {tol:.0e} against the CPU reference",
                        s.label,
                        s.mode_name(),
                        p.name()
                    );
                    return Ok(ExitCode::from(1));
                }
            }
            let r = match run_bench(&ctx, &run_shape, p, opts) {
                Ok(r) => r,
                // A shape this adapter cannot hold is reported and skipped; the rest still run.
                Err(e @ Error::Limit { .. }) => {
                    eprintln!("wgrnn: {} pass {} skipped: {e}", s.label, p.name());
                    if json {
                        println!(
                            "{{\"label\":\"{}\",\"mode\":\"{}\",\"pass\":\"{}\",\"error\":\"{}\"}}",
                            s.label,
                            s.mode_name(),
                            p.name(),
                            e.to_string().replace('"', "'")
                        );
                    } else {
                        println!("{:<18} {:<9} skipped: {e}", s.label, s.mode_name());
                    }
                    ctx.trim_pool();
                    continue;
                }
                Err(e) => return Err(e),
            };
            let (_, src) = r.time_ms();
            if json {
                let num = |v: Option<f64>| v.map_or("null".to_string(), |x| format!("{x:.6}"));
                println!(
                    "{{\"label\":\"{}\",\"mode\":\"{}\",\"input\":{},\"hidden\":{},\"batch\":{},\"seq\":{},\"seq_requested\":{},\"layers\":{},\"bidirectional\":{},\"pass\":\"{}\",\"gpu_ms\":{},\"gpu_ms_min\":{},\"gpu_ms_max\":{},\"wall_ms\":{:.6},\"wall_ms_min\":{:.6},\"wall_ms_max\":{:.6},\"us_per_step\":{:.6},\"tflops\":{:.6},\"time_source\":\"{}\",\"dispatches\":{},\"submits\":{},\"reps\":{},\"quick\":{},\"schedule\":\"{}\",\"weights\":\"{}\",\"variant\":\"{}\",\"narrow_batch\":{},\"adapter\":\"{}\",\"backend\":\"{}\"}}",
                    r.shape.label,
                    r.shape.mode_name(),
                    r.shape.input,
                    r.shape.hidden,
                    r.shape.batch,
                    r.shape.seq,
                    s.seq,
                    r.shape.layers,
                    r.shape.bidirectional,
                    p.name(),
                    num(r.gpu.map(|g| g.median)),
                    num(r.gpu.map(|g| g.min)),
                    num(r.gpu.map(|g| g.max)),
                    r.wall.median,
                    r.wall.min,
                    r.wall.max,
                    r.us_per_step(),
                    r.tflops(),
                    src,
                    r.dispatches,
                    r.submits,
                    r.reps,
                    quick,
                    r.schedule.name(),
                    weights_name(sel.weights),
                    format!("{:?}", ctx.variant()).to_lowercase(),
                    ctx.narrow_batch(),
                    adapter.replace('"', "'"),
                    backend
                );
            } else {
                println!(
                    "{:<18} {:<9} {:>5} {:>5} {:>4} {:>5} {:>2} {:>2} {:<9} {:>10} {:>10.3} {:>10.2} {:>8.3} {:>6} {}{}",
                    r.shape.label,
                    r.shape.mode_name(),
                    r.shape.input,
                    r.shape.hidden,
                    r.shape.batch,
                    r.shape.seq,
                    r.shape.layers,
                    if r.shape.bidirectional { 2 } else { 1 },
                    p.name(),
                    r.gpu.map_or("n/a".into(), |g| format!("{:.3}", g.median)),
                    r.wall.median,
                    r.us_per_step(),
                    r.tflops(),
                    r.dispatches,
                    r.schedule.name(),
                    if sel.weights == WeightStorage::F16 && p == Pass::Inference {
                        ", f16 weights"
                    } else {
                        ""
                    }
                );
            }
            ctx.trim_pool();
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_info() -> Result<ExitCode, Error> {
    let ctx = Context::new()?;
    let i = ctx.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?}), driver {} {}",
        i.name, i.backend, i.device_type, i.driver, i.driver_info
    );
    println!("kernel variant: {:?}", ctx.variant());
    let l = ctx.limits();
    println!(
        "limits: storage binding {} B, buffer {} B, workgroup storage {} B, invocations {}, workgroups/dim {}",
        l.max_storage_buffer_binding_size,
        l.max_buffer_size,
        l.max_compute_workgroup_storage_size,
        l.max_compute_invocations_per_workgroup,
        l.max_compute_workgroups_per_dimension
    );
    println!("timestamps: {}", ctx.has_timestamps());
    let features: Vec<String> = ctx
        .compute_features()
        .into_iter()
        .map(|(n, on)| format!("{n} {}", if on { "yes" } else { "no" }))
        .collect();
    println!("features: {}", features.join(", "));
    println!(
        "schedule: wavefront {}, single-workgroup kernel {:?}",
        if ctx.wavefront() { "on" } else { "off" },
        ctx.persistent()
    );
    for (name, v, unit) in wgrnn::bench::diagnostics(&ctx)? {
        println!("{name:<40} {v:>10.2} {unit}");
    }
    Ok(ExitCode::SUCCESS)
}
