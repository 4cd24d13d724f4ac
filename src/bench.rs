//! Benchmark shapes, suites, the FLOP convention and the timing loop behind `wgrnn bench` and the
//! criterion benches.
//!
//! FLOP convention: the forward counts `2 * G * H * (I_l + H) * B * T` per layer l and direction
//! (I_l = I for layer 0, D*H above); a backward counts twice the forward; train (forward +
//! backward) three times.

use std::time::Instant;

use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::reference::rnn::{RefInputs, RefParams, rnn_backward, rnn_forward};
use crate::rnn::{
    ForwardInputs, Mode, Rnn, RnnConfig, RnnParams, Schedule, Upstream, WeightStorage,
};
use crate::tensor::Tensor;

/// What is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Inference forward.
    Inference,
    /// Training-mode forward (keeps what the backward needs).
    Forward,
    /// Backward alone, after one untimed training forward.
    Backward,
    /// Training forward + backward in one submission.
    Train,
}

impl Pass {
    /// Parses `inference`, `forward`, `backward`, `train`.
    pub fn parse(s: &str) -> Result<Pass> {
        match s {
            "inference" => Ok(Pass::Inference),
            "forward" => Ok(Pass::Forward),
            "backward" => Ok(Pass::Backward),
            "train" => Ok(Pass::Train),
            _ => Err(Error::config(format!(
                "unknown pass {s:?} (expected inference, forward, backward or train)"
            ))),
        }
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Inference => "inference",
            Pass::Forward => "forward",
            Pass::Backward => "backward",
            Pass::Train => "train",
        }
    }

    /// Multiple of the forward's FLOPs this pass counts.
    pub fn flop_factor(self) -> f64 {
        match self {
            Pass::Inference | Pass::Forward => 1.0,
            Pass::Backward => 2.0,
            Pass::Train => 3.0,
        }
    }
}

/// One benchmark shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// A label (`S3`, `deepbench-train-17`, ...).
    pub label: String,
    /// The cell.
    pub mode: Mode,
    /// I
    pub input: usize,
    /// H
    pub hidden: usize,
    /// B
    pub batch: usize,
    /// T
    pub seq: usize,
    /// L
    pub layers: usize,
    /// D = 2 when true.
    pub bidirectional: bool,
}

impl Shape {
    /// The stack's configuration.
    pub fn config(&self) -> RnnConfig {
        RnnConfig::new(self.mode, self.input, self.hidden)
            .layers(self.layers)
            .bidirectional(self.bidirectional)
    }

    /// Forward FLOPs by the convention above.
    pub fn forward_flops(&self) -> f64 {
        let cfg = self.config();
        (0..cfg.num_layers)
            .map(|l| {
                2.0 * (cfg.gate_rows() * (cfg.layer_input(l) + cfg.hidden_size)) as f64
                    * (self.batch * self.seq * cfg.dirs()) as f64
            })
            .sum()
    }

    /// The CLI's mode name (`lstm`, `gru`, `rnn_tanh`, `rnn_relu`).
    pub fn mode_name(&self) -> String {
        self.mode.torch_name().to_lowercase()
    }
}

fn shape(
    label: &str,
    mode: Mode,
    io: (usize, usize),
    b: usize,
    t: usize,
    l: usize,
    bi: bool,
) -> Shape {
    Shape {
        label: label.to_string(),
        mode,
        input: io.0,
        hidden: io.1,
        batch: b,
        seq: t,
        layers: l,
        bidirectional: bi,
    }
}

/// Baidu DeepBench's RNN problems (code/kernels/rnn_problems.h): (hidden, batch, timesteps,
/// cell), training set. DeepBench uses I = H and "vanilla" = ReLU RNN.
const DEEPBENCH_TRAIN: &[(usize, usize, usize, &str)] = &[
    (1760, 16, 50, "vanilla"),
    (1760, 32, 50, "vanilla"),
    (1760, 64, 50, "vanilla"),
    (1760, 128, 50, "vanilla"),
    (2048, 16, 50, "vanilla"),
    (2048, 32, 50, "vanilla"),
    (2048, 64, 50, "vanilla"),
    (2048, 128, 50, "vanilla"),
    (2560, 16, 50, "vanilla"),
    (2560, 32, 50, "vanilla"),
    (2560, 64, 50, "vanilla"),
    (2560, 128, 50, "vanilla"),
    (512, 16, 25, "lstm"),
    (512, 32, 25, "lstm"),
    (512, 64, 25, "lstm"),
    (512, 128, 25, "lstm"),
    (1024, 16, 25, "lstm"),
    (1024, 32, 25, "lstm"),
    (1024, 64, 25, "lstm"),
    (1024, 128, 25, "lstm"),
    (2048, 16, 25, "lstm"),
    (2048, 32, 25, "lstm"),
    (2048, 64, 25, "lstm"),
    (2048, 128, 25, "lstm"),
    (4096, 16, 25, "lstm"),
    (4096, 32, 25, "lstm"),
    (4096, 64, 25, "lstm"),
    (4096, 128, 25, "lstm"),
    (1536, 8, 50, "lstm"),
    (1536, 16, 50, "lstm"),
    (1536, 32, 50, "lstm"),
    (256, 16, 150, "lstm"),
    (256, 32, 150, "lstm"),
    (256, 64, 150, "lstm"),
    (2816, 32, 750, "gru"),
    (2816, 32, 375, "gru"),
    (2816, 32, 187, "gru"),
    (2048, 32, 1500, "gru"),
    (2048, 32, 750, "gru"),
    (2048, 32, 375, "gru"),
    (2048, 32, 187, "gru"),
    (1536, 32, 1500, "gru"),
    (1536, 32, 750, "gru"),
    (1536, 32, 375, "gru"),
    (1536, 32, 187, "gru"),
    (2560, 32, 1500, "gru"),
    (2560, 32, 750, "gru"),
    (2560, 32, 375, "gru"),
    (2560, 32, 187, "gru"),
    (512, 32, 1, "gru"),
    (1024, 32, 1500, "gru"),
    (1024, 64, 1500, "gru"),
];

/// DeepBench's server inference set.
const DEEPBENCH_INFER: &[(usize, usize, usize, &str)] = &[
    (512, 1, 25, "lstm"),
    (512, 2, 25, "lstm"),
    (512, 4, 25, "lstm"),
    (1024, 1, 25, "lstm"),
    (1024, 2, 25, "lstm"),
    (1024, 4, 25, "lstm"),
    (2048, 1, 25, "lstm"),
    (2048, 2, 25, "lstm"),
    (2048, 4, 25, "lstm"),
    (1536, 1, 50, "lstm"),
    (1536, 2, 50, "lstm"),
    (1536, 4, 50, "lstm"),
    (256, 1, 150, "lstm"),
    (256, 2, 150, "lstm"),
    (256, 4, 150, "lstm"),
    (2816, 1, 1500, "gru"),
    (2816, 1, 750, "gru"),
    (2816, 1, 375, "gru"),
    (2816, 1, 187, "gru"),
    (2816, 2, 1500, "gru"),
    (2816, 2, 750, "gru"),
    (2816, 2, 375, "gru"),
    (2816, 2, 187, "gru"),
    (2816, 4, 1500, "gru"),
    (2816, 4, 750, "gru"),
    (2816, 4, 375, "gru"),
    (2816, 4, 187, "gru"),
    (2048, 1, 1500, "gru"),
    (2048, 1, 750, "gru"),
    (2048, 1, 375, "gru"),
    (2048, 1, 187, "gru"),
    (2048, 2, 1500, "gru"),
    (2048, 2, 750, "gru"),
    (2048, 2, 375, "gru"),
    (2048, 2, 187, "gru"),
    (2048, 4, 1500, "gru"),
    (2048, 4, 750, "gru"),
    (2048, 4, 375, "gru"),
    (2048, 4, 187, "gru"),
    (1536, 1, 1500, "gru"),
    (1536, 1, 750, "gru"),
    (1536, 1, 375, "gru"),
    (1536, 1, 187, "gru"),
    (1536, 2, 1500, "gru"),
    (1536, 2, 750, "gru"),
    (1536, 2, 375, "gru"),
    (1536, 2, 187, "gru"),
    (1536, 4, 1500, "gru"),
    (1536, 4, 750, "gru"),
    (1536, 4, 375, "gru"),
    (1536, 4, 187, "gru"),
    (2560, 1, 1500, "gru"),
    (2560, 1, 750, "gru"),
    (2560, 1, 375, "gru"),
    (2560, 1, 187, "gru"),
    (2560, 2, 1500, "gru"),
    (2560, 2, 750, "gru"),
    (2560, 2, 375, "gru"),
    (2560, 2, 187, "gru"),
    (2560, 4, 1500, "gru"),
    (2560, 4, 750, "gru"),
    (2560, 4, 375, "gru"),
    (2560, 4, 187, "gru"),
    (512, 1, 1, "gru"),
    (512, 2, 1, "gru"),
    (512, 4, 1, "gru"),
    (1024, 1, 1500, "gru"),
    (1024, 2, 1500, "gru"),
    (1024, 4, 1500, "gru"),
];

/// Names accepted by [`suite`].
pub const SUITES: [&str; 4] = ["core", "deepbench-train", "deepbench-infer", "smoke"];

fn deepbench(prefix: &str, rows: &[(usize, usize, usize, &str)]) -> Vec<Shape> {
    rows.iter()
        .enumerate()
        .map(|(i, &(h, b, t, cell))| {
            let mode = match cell {
                "lstm" => Mode::Lstm,
                "gru" => Mode::Gru,
                _ => Mode::RnnRelu,
            };
            shape(&format!("{prefix}-{}", i + 1), mode, (h, h), b, t, 1, false)
        })
        .collect()
}

/// The shapes of a named suite: `core` (S1..S8), `deepbench-train`, `deepbench-infer`, `smoke`.
pub fn suite(name: &str) -> Result<Vec<Shape>> {
    use Mode::*;
    Ok(match name {
        "core" => vec![
            shape("S1", Lstm, (256, 256), 1, 128, 1, false),
            shape("S2", Lstm, (512, 512), 64, 100, 4, false),
            shape("S3", Lstm, (1024, 1024), 64, 100, 1, false),
            shape("S4", Lstm, (768, 768), 16, 1024, 1, false),
            shape("S5-lstm", Lstm, (128, 128), 32, 512, 1, false),
            shape("S5-gru", Gru, (128, 128), 32, 512, 1, false),
            shape("S6-lstm", Lstm, (80, 512), 32, 500, 3, true),
            shape("S6-gru", Gru, (80, 512), 32, 500, 3, true),
            shape("S7", Lstm, (1024, 1024), 256, 64, 1, false),
            shape("S8", Gru, (1024, 1024), 32, 1500, 1, false),
        ],
        "deepbench-train" => deepbench("deepbench-train", DEEPBENCH_TRAIN),
        "deepbench-infer" => deepbench("deepbench-infer", DEEPBENCH_INFER),
        "smoke" => vec![
            shape("smoke-lstm", Lstm, (16, 24), 3, 7, 2, false),
            shape("smoke-gru", Gru, (9, 13), 2, 5, 1, true),
        ],
        _ => {
            return Err(Error::config(format!(
                "unknown suite {name:?} (expected one of {SUITES:?})"
            )));
        }
    })
}

/// Timing options.
#[derive(Clone, Copy, Debug)]
pub struct BenchOptions {
    /// Untimed runs first.
    pub warmup: usize,
    /// Timed runs.
    pub reps: usize,
    /// How inference forwards read the recurrent weights.
    pub weights: WeightStorage,
    /// Seed of the parameters (the inputs use the next seeds).
    pub seed: u64,
}

impl BenchOptions {
    /// `reps` timed runs after `warmup`, f32 weights, seed 1.
    pub fn new(warmup: usize, reps: usize) -> Self {
        BenchOptions {
            warmup,
            reps,
            weights: WeightStorage::F32,
            seed: 1,
        }
    }
}

/// Median and spread of one quantity, milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Fastest run.
    pub min: f64,
    /// Slowest run.
    pub max: f64,
}

impl Stats {
    /// The statistics of `v` (sorted in place); `None` when empty.
    pub fn of(v: &mut [f64]) -> Option<Stats> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        };
        Some(Stats {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// One shape and pass, measured.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// The shape (with the T actually run).
    pub shape: Shape,
    /// The pass.
    pub pass: Pass,
    /// GPU time from timestamp queries (None without them).
    pub gpu: Option<Stats>,
    /// Wall time: recording, encoding, submission and the wait.
    pub wall: Stats,
    /// Compute dispatches per call, as submitted (the context's counters).
    pub dispatches: u64,
    /// Queue submissions of recorded work per call, counted where they happen (the most any
    /// timed or warm-up call made).
    pub submits: u64,
    /// Readback submissions per call (the most any call made; a call reads nothing back).
    pub readbacks: u64,
    /// Timed runs.
    pub reps: usize,
    /// The schedule the forward took.
    pub schedule: Schedule,
    /// How inference forwards read the recurrent weights.
    pub weights: WeightStorage,
}

impl BenchResult {
    /// The time `us_per_step` and `tflops` use: GPU time where it exists, else wall time.
    pub fn time_ms(&self) -> (f64, &'static str) {
        match self.gpu {
            Some(g) => (g.median, "gpu"),
            None => (self.wall.median, "wall"),
        }
    }

    /// The whole stack's time divided by T, microseconds.
    pub fn us_per_step(&self) -> f64 {
        self.time_ms().0 * 1e3 / self.shape.seq as f64
    }

    /// Achieved TFLOP/s by the convention in this module's docs.
    pub fn tflops(&self) -> f64 {
        self.shape.forward_flops() * self.pass.flop_factor() / (self.time_ms().0 * 1e-3) / 1e12
    }

    /// The JSON object of `wgrnn bench --json` (keys listed in `wgrnn bench --help`);
    /// `seq_requested` is the suite's T before `--quick` capped it.
    pub fn json(&self, ctx: &Context, seq_requested: usize, quick: bool) -> serde_json::Value {
        let s = &self.shape;
        serde_json::json!({
            "label": s.label,
            "mode": s.mode_name(),
            "input": s.input,
            "hidden": s.hidden,
            "batch": s.batch,
            "seq": s.seq,
            "seq_requested": seq_requested,
            "layers": s.layers,
            "bidirectional": s.bidirectional,
            "pass": self.pass.name(),
            "gpu_ms": self.gpu.map(|g| g.median),
            "gpu_ms_min": self.gpu.map(|g| g.min),
            "gpu_ms_max": self.gpu.map(|g| g.max),
            "wall_ms": self.wall.median,
            "wall_ms_min": self.wall.min,
            "wall_ms_max": self.wall.max,
            "us_per_step": self.us_per_step(),
            "tflops": self.tflops(),
            "time_source": self.time_ms().1,
            "dispatches": self.dispatches,
            "submits": self.submits,
            "readbacks": self.readbacks,
            "reps": self.reps,
            "quick": quick,
            "schedule": self.schedule.name(),
            "weights": weights_name(self.weights),
            "variant": format!("{:?}", ctx.variant()).to_lowercase(),
            "kernel_config": ctx.kernel_config(),
            "shader_checks": ctx.shader_checks(),
            "narrow_batch": ctx.narrow_batch(),
            "adapter": ctx.adapter_name(),
            "backend": ctx.backend(),
        })
    }
}

/// `f32` or `f16`.
pub fn weights_name(w: WeightStorage) -> &'static str {
    match w {
        WeightStorage::F32 => "f32",
        WeightStorage::F16 => "f16",
    }
}

/// Deterministic values in [-1, 1) (xorshift), so benchmarks never run on zeros.
pub fn bench_data(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A tensor `name` of `shape` filled with [`bench_data`]`(seed)`; the shape is checked against
/// the adapter's limits before the host data is made.
pub fn data_tensor(ctx: &Context, name: &str, shape: &[usize], seed: u64) -> Result<Tensor> {
    let n = ctx.check_tensor(name, shape)?;
    Tensor::from_f32(ctx, name, shape, &bench_data(seed, n))
}

/// Times `pass` of `shape` on `ctx`: warm-up, then `reps` runs, each one call recorded and
/// submitted; the context's counters say how many submissions, readbacks and dispatches each
/// call made.
pub fn run_bench(
    ctx: &Context,
    shape: &Shape,
    pass: Pass,
    opts: BenchOptions,
) -> Result<BenchResult> {
    if opts.reps == 0 {
        return Err(Error::config("--reps must be at least 1"));
    }
    let cfg = shape.config();
    let mut rnn = Rnn::random(ctx, &cfg, opts.seed)?;
    rnn.set_weight_storage(opts.weights);
    let (t, b) = (shape.seq, shape.batch);
    let out_w = cfg.dirs() * cfg.hidden_size;
    let x = data_tensor(ctx, "input", &[t, b, shape.input], opts.seed + 1)?;
    let dy = data_tensor(ctx, "grad_output", &[t, b, out_w], opts.seed + 2)?;
    let inp = ForwardInputs::default();
    let up = Upstream {
        output: Some(&dy),
        ..Default::default()
    };
    let saved = if pass == Pass::Backward {
        Some(rnn.forward_train(ctx, &x, &inp)?.1)
    } else {
        None
    };
    let mut gpu = Vec::new();
    let mut wall = Vec::new();
    let mut per_call = crate::context::Counts::default();
    for i in 0..opts.warmup + opts.reps {
        let start = Instant::now();
        let before = ctx.counts();
        let mut rec = Recorder::new(ctx).with_timestamps();
        match pass {
            Pass::Inference => {
                rnn.record_forward(&mut rec, &x, &inp, false)?;
            }
            Pass::Forward => {
                rnn.record_forward(&mut rec, &x, &inp, true)?;
            }
            Pass::Backward => {
                let st = saved
                    .as_ref()
                    .ok_or_else(|| Error::Device("internal: no state".into()))?;
                rnn.record_backward(&mut rec, st, &up, None)?;
            }
            Pass::Train => {
                let (_, st) = rnn.record_forward(&mut rec, &x, &inp, true)?;
                let st = st.ok_or_else(|| Error::Device("internal: no state".into()))?;
                rnn.record_backward(&mut rec, &st, &up, None)?;
            }
        }
        let sub = rec.submit()?;
        let c = ctx.counts().since(&before);
        per_call = crate::context::Counts {
            submits: per_call.submits.max(c.submits),
            readbacks: per_call.readbacks.max(c.readbacks),
            dispatches: c.dispatches,
        };
        sub.wait(ctx)?;
        let w = start.elapsed().as_secs_f64() * 1e3;
        let g = sub.gpu_ms(ctx)?;
        if i >= opts.warmup {
            wall.push(w);
            if let Some(g) = g {
                gpu.push(g);
            }
        }
    }
    Ok(BenchResult {
        shape: shape.clone(),
        pass,
        gpu: Stats::of(&mut gpu),
        wall: Stats::of(&mut wall).ok_or_else(|| Error::config("--reps must be at least 1"))?,
        dispatches: per_call.dispatches,
        submits: per_call.submits,
        readbacks: per_call.readbacks,
        reps: opts.reps,
        schedule: rnn.schedule(ctx, t, b, pass != Pass::Inference),
        weights: opts.weights,
    })
}

pub use crate::reference::compare::rel_err;

/// Wall time of `iters` runs of `pass` (each one submission, waited for) with `weights`, for
/// criterion's `iter_custom`: the median run times `iters`.
pub fn timed_runs(
    ctx: &Context,
    shape: &Shape,
    pass: Pass,
    weights: WeightStorage,
    iters: u64,
) -> Result<std::time::Duration> {
    let opts = BenchOptions {
        weights,
        ..BenchOptions::new(0, iters.max(1) as usize)
    };
    let r = run_bench(ctx, shape, pass, opts)?;
    Ok(std::time::Duration::from_secs_f64(
        r.wall.median * 1e-3 * iters as f64,
    ))
}

/// What [`check_shape`] measured: the relative error of every compared tensor against the
/// CPU reference, and the reference's time.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// `(tensor, relative error)`: `output`, `h_n`, `c_n` (LSTM), and for backward / train
    /// `grad_input` and every parameter gradient (`grad.weight_ih_l0`, ...).
    pub errors: Vec<(String, f64)>,
    /// Wall time of the reference forward (and backward), milliseconds.
    pub reference_ms: f64,
}

impl CheckReport {
    /// The worst relative error (NaN counts as worst).
    pub fn worst(&self) -> f64 {
        self.errors
            .iter()
            .map(|(_, e)| if e.is_nan() { f64::INFINITY } else { *e })
            .fold(0.0, f64::max)
    }
}

/// Compares the GPU with the CPU reference for `shape` at a reduced T (at most `max_seq`):
/// outputs and final states for inference/forward, also every gradient for backward/train,
/// with `weights` for inference; parameters from `seed`, inputs from the next seeds.
pub fn check_shape(
    ctx: &Context,
    shape: &Shape,
    pass: Pass,
    max_seq: usize,
    weights: WeightStorage,
    seed: u64,
) -> Result<CheckReport> {
    let cfg = shape.config();
    let t = shape.seq.min(max_seq).max(1);
    let b = shape.batch;
    let params = RnnParams::init(&cfg, seed)?;
    let mut rnn = Rnn::new(ctx, &params)?;
    rnn.set_weight_storage(weights);
    let out_w = cfg.dirs() * cfg.hidden_size;
    let x = data_tensor(ctx, "input", &[t, b, shape.input], seed + 1)?;
    let xv = bench_data(seed + 1, x.numel());
    let rp = RefParams::from_params(&params);
    let rin = RefInputs {
        x: xv.iter().map(|&v| v as f64).collect(),
        seq: t,
        batch: b,
        ..Default::default()
    };
    let start = Instant::now();
    let rf = rnn_forward(&rp, &rin);
    let mut reference_ms = start.elapsed().as_secs_f64() * 1e3;
    let inp = ForwardInputs::default();
    let train = !matches!(pass, Pass::Inference | Pass::Forward);
    let (out, st) = if train {
        let (o, s) = rnn.forward_train(ctx, &x, &inp)?;
        (o, Some(s))
    } else {
        (rnn.forward(ctx, &x, &inp)?, None)
    };
    let mut errors = vec![
        (
            "output".to_string(),
            rel_err(&out.output.to_vec(ctx)?, &rf.output),
        ),
        ("h_n".to_string(), rel_err(&out.h_n.to_vec(ctx)?, &rf.h_n)),
    ];
    if let (Some(c), Some(rc)) = (&out.c_n, &rf.c_n) {
        errors.push(("c_n".to_string(), rel_err(&c.to_vec(ctx)?, rc)));
    }
    if let Some(st) = st {
        let dy = data_tensor(ctx, "grad_output", &[t, b, out_w], seed + 2)?;
        let dyv = bench_data(seed + 2, dy.numel());
        let g = rnn.backward(
            ctx,
            &st,
            &Upstream {
                output: Some(&dy),
                ..Default::default()
            },
            None,
        )?;
        let start = Instant::now();
        let rg = rnn_backward(
            &rp,
            &rf,
            Some(&dyv.iter().map(|&v| v as f64).collect::<Vec<_>>()),
            None,
            None,
        );
        reference_ms += start.elapsed().as_secs_f64() * 1e3;
        errors.push((
            "grad_input".to_string(),
            rel_err(&g.input.to_vec(ctx)?, &rg.input),
        ));
        for (v, (name, want)) in g.param_views(&cfg).iter().zip(&rg.params) {
            errors.push((format!("grad.{name}"), rel_err(&v.to_host(ctx)?.data, want)));
        }
    }
    Ok(CheckReport {
        errors,
        reference_ms,
    })
}

/// Machine-level measurements that explain kernel timings: copy bandwidth, GEMM rate of each
/// GEMM kernel at 4096^3 (2048^3 on CPU adapters), and the cost of one tiny dispatch in a long
/// chain. Each is timed with GPU timestamps when available (wall time otherwise), median of 5.
pub fn diagnostics(ctx: &Context) -> Result<Vec<(String, f64, &'static str)>> {
    use crate::kernels::gemm::{Dims, View, gemm};
    let timed = |f: &mut dyn FnMut(&mut Recorder) -> Result<()>| -> Result<f64> {
        let mut v = Vec::new();
        for i in 0..6 {
            let start = Instant::now();
            let mut rec = Recorder::new(ctx).with_timestamps();
            f(&mut rec)?;
            let sub = rec.submit()?;
            sub.wait(ctx)?;
            let w = start.elapsed().as_secs_f64() * 1e3;
            if i > 0 {
                v.push(sub.gpu_ms(ctx)?.unwrap_or(w));
            }
        }
        Ok(Stats::of(&mut v).map_or(f64::NAN, |s| s.median))
    };
    let mut out = Vec::new();
    let n = 32usize << 20; // 128 MiB
    let src = data_tensor(ctx, "copy src", &[n], 1)?;
    let dst = Tensor::empty(ctx, "copy dst", &[n], crate::DType::F32)?;
    let ms = timed(&mut |rec| {
        rec.copy(&src, 0, &dst, 0, n)?;
        Ok(())
    })?;
    out.push((
        "buffer copy, read + write".into(),
        2.0 * 4.0 * n as f64 / ms / 1e6,
        "GB/s",
    ));
    let s = if ctx.adapter_info().device_type == wgpu::DeviceType::Cpu {
        1024
    } else {
        4096
    };
    let a = data_tensor(ctx, "a", &[s, s], 2)?;
    let b = data_tensor(ctx, "b", &[s, s], 3)?;
    let c = Tensor::empty(ctx, "c", &[s, s], crate::DType::F32)?;
    let dims = Dims {
        m: s,
        n: s,
        k: s,
        z: 1,
        nsum: 1,
    };
    // The tiled variant measures each GEMM kernel the tuner chooses between (matmul_large and
    // matmul_micro); the simple one has one.
    let micro_choices: &[bool] = match ctx.variant() {
        crate::KernelVariant::Tiled => &[false, true],
        crate::KernelVariant::Simple => &[false],
    };
    let micro_was = ctx.gemm_micro();
    for (name, bt, micro) in [
        ("A B (B row-major)", false),
        ("A B^T (as the input projection)", true),
    ]
    .into_iter()
    .flat_map(|(n, bt)| micro_choices.iter().map(move |&m| (n, bt, m)))
    {
        ctx.set_gemm_micro(micro);
        let ms = timed(&mut |rec| {
            let bv = if bt {
                View::rows(&b, 0, s).t()
            } else {
                View::rows(&b, 0, s)
            };
            gemm(
                rec,
                dims,
                View::rows(&a, 0, s),
                bv,
                View::rows(&c, 0, s),
                None,
                false,
                1.0,
            )
        })?;
        let kernel = match (ctx.variant(), micro) {
            (crate::KernelVariant::Tiled, true) => ", matmul_micro",
            (crate::KernelVariant::Tiled, false) => ", matmul_large",
            _ => "",
        };
        out.push((
            format!("GEMM {s}^3 {name}{kernel}"),
            2.0 * (s as f64).powi(3) / ms / 1e6,
            "GFLOP/s",
        ));
    }
    ctx.set_gemm_micro(micro_was);
    let x = Tensor::from_f32(ctx, "x", &[256], &bench_data(4, 256))?;
    let f = Tensor::from_f32(ctx, "factor", &[2], &[1.0, 1.0])?;
    let chain = 1000;
    let ms = timed(&mut |rec| {
        for _ in 0..chain {
            crate::kernels::reduce::scale_apply(rec, &f, &x, 0, 256)?;
        }
        Ok(())
    })?;
    out.push((
        "tiny dispatch in a chain of 1000".into(),
        ms * 1e3 / chain as f64,
        "us",
    ));
    Ok(out)
}

/// One GEMM `C [m, n] = A [m, k] B [k, n]` on random data, for the criterion benches.
pub struct GemmBench {
    a: Tensor,
    b: Tensor,
    c: Tensor,
    m: usize,
    n: usize,
    k: usize,
}

impl GemmBench {
    /// Allocates and fills the operands.
    pub fn new(ctx: &Context, m: usize, n: usize, k: usize) -> Result<Self> {
        Ok(GemmBench {
            a: data_tensor(ctx, "a", &[m, k], 1)?,
            b: data_tensor(ctx, "b", &[k, n], 2)?,
            c: Tensor::empty(ctx, "c", &[m, n], crate::DType::F32)?,
            m,
            n,
            k,
        })
    }

    /// Records, submits and waits for one GEMM.
    pub fn run(&self, ctx: &Context) -> Result<()> {
        use crate::kernels::gemm::{Dims, View, gemm};
        let mut rec = Recorder::new(ctx);
        let dims = Dims {
            m: self.m,
            n: self.n,
            k: self.k,
            z: 1,
            nsum: 1,
        };
        gemm(
            &mut rec,
            dims,
            View::rows(&self.a, 0, self.k),
            View::rows(&self.b, 0, self.n),
            View::rows(&self.c, 0, self.n),
            None,
            false,
            1.0,
        )?;
        rec.submit()?.wait(ctx)
    }

    /// FLOPs of one run.
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k) as f64
    }
}
