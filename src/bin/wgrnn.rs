//! The `wgrnn` command line.
//!
//! - `wgrnn forward`: runs a forward pass of a configurable stack on the GPU, prints its
//!   throughput and its agreement with the CPU reference.
//!
//! Exit status: 0 success, 1 runtime failure (no adapter, device error), 2 bad input or usage.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_forward};
use wgrnn::{Context, Error, ForwardInputs, Mode, Recorder, Rnn, RnnConfig, RnnParams, Tensor};

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

#[derive(Subcommand)]
enum Cmd {
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
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Forward {
            shape,
            reps,
            no_check,
            seed,
        } => cmd_forward(&shape, reps, !no_check, seed),
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

/// Relative error ||got - want|| / ||want||.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    let (mut n, mut d) = (0.0, 0.0);
    for (&g, &w) in got.iter().zip(want) {
        n += (g as f64 - w).powi(2);
        d += w * w;
    }
    if got.iter().any(|g| !g.is_finite()) {
        f64::INFINITY
    } else {
        (n / d.max(1e-300)).sqrt()
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
    let x: Vec<f32> = {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..t * b * cfg.input_size)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    };
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
