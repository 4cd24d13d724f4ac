//! The engine's own commands: `forward` (the old main job: speed and agreement with the CPU
//! reference), `bench` (shapes and suites, human table or JSON lines) and `info` (the adapter).

use std::process::ExitCode;

use wgrnn::bench::{
    BenchOptions, CheckReport, Pass, Shape, check_shape, run_bench, suite as suite_shapes,
    weights_name,
};
use wgrnn::{Context, Error, WeightStorage};

use crate::ShapeArgs;

/// Relative error tolerated by `bench --check` and `forward` (the conformance tests' bound;
/// docs/NUMERICS.md).
const CHECK_TOL: f64 = 1e-4;
/// The same with f16 weights, against the f32 reference: f16 rounding (2^-11 relative per
/// weight) measured at up to 4.8e-4 on the conformance cases (docs/NUMERICS.md).
const CHECK_TOL_F16: f64 = 2e-3;
/// With `WGRNN_PRECISION=f16` (GEMM inputs rounded to f16, f32 sums): 2^-11 relative per
/// operand, growing like sqrt(K) over sums of ~1000 random-signed terms to ~1e-3; the bound
/// leaves a margin of 10 (the measured figure belongs in docs/NUMERICS.md).
const CHECK_TOL_PRECISION_F16: f64 = 1e-2;
/// Reference FLOPs `bench --check` may spend per shape: it shortens T to stay under this.
const CHECK_BUDGET_FLOPS: f64 = 4e9;

fn shape_of(label: &str, shape: &ShapeArgs) -> Result<Shape, Error> {
    let cfg = shape.config()?;
    Ok(Shape {
        label: label.into(),
        mode: cfg.mode,
        input: shape.input,
        hidden: shape.hidden,
        batch: shape.batch,
        seq: shape.seq,
        layers: shape.layers,
        bidirectional: shape.bidirectional,
    })
}

/// `--only`: keeps the suite's shapes with these comma-separated labels; an unknown label is an
/// error naming it.
fn keep_only(shapes: &mut Vec<Shape>, only: &str) -> Result<(), Error> {
    let want: Vec<&str> = only.split(',').collect();
    if let Some(w) = want.iter().find(|w| !shapes.iter().any(|s| s.label == **w)) {
        return Err(Error::config(format!(
            "--only: no shape labelled {w:?} in the suite"
        )));
    }
    shapes.retain(|s| want.contains(&s.label.as_str()));
    Ok(())
}

fn print_errors(report: &CheckReport) -> String {
    report
        .errors
        .iter()
        .map(|(n, e)| format!("{n} {e:.2e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `wgrnn forward`: one inference shape timed by the bench loop, then checked against the CPU
/// reference over the whole sequence.
pub fn cmd_forward(
    shape: &ShapeArgs,
    reps: usize,
    check: bool,
    seed: u64,
) -> Result<ExitCode, Error> {
    if reps == 0 {
        return Err(Error::config("--reps must be at least 1"));
    }
    let s = shape_of("forward", shape)?;
    let cfg = s.config();
    let ctx = Context::new()?;
    ctx.load_tune_cache()?;
    ctx.use_tuned(s.hidden, s.batch);
    println!("adapter: {} ({})", ctx.adapter_name(), ctx.backend());
    println!(
        "stack:   {} I={} H={} L={} {} B={} T={}",
        cfg.mode.torch_name(),
        cfg.input_size,
        cfg.hidden_size,
        cfg.num_layers,
        if cfg.bidirectional {
            "bidirectional"
        } else {
            "unidirectional"
        },
        s.batch,
        s.seq
    );
    let opts = BenchOptions {
        seed,
        ..BenchOptions::new(1, reps)
    };
    let r = run_bench(&ctx, &s, Pass::Inference, opts)?;
    let (ms, _) = r.time_ms();
    println!(
        "gpu:     {} ms per forward (median of {reps}), wall {:.3} ms, {} dispatches, {} submit{} and {} readbacks per call",
        r.gpu.map_or("n/a".into(), |g| format!("{:.3}", g.median)),
        r.wall.median,
        r.dispatches,
        r.submits,
        if r.submits == 1 { "" } else { "s" },
        r.readbacks,
    );
    println!(
        "         {:.1} us per step, {:.2} GFLOP/s, {:.0} sequences/s",
        r.us_per_step(),
        s.forward_flops() / ms / 1e6,
        s.batch as f64 / ms * 1e3
    );
    if !check {
        return Ok(ExitCode::SUCCESS);
    }
    let report = check_shape(&ctx, &s, Pass::Inference, s.seq, WeightStorage::F32, seed)?;
    println!("cpu reference (f64): {:.1} ms", report.reference_ms);
    println!(
        "agreement: relative error {} (tolerance {CHECK_TOL:.0e})",
        print_errors(&report)
    );
    if report.worst() > CHECK_TOL {
        eprintln!("wgrnn: GPU and CPU reference disagree");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Which shapes `bench` runs, and how.
pub struct BenchSelect<'a> {
    pub suite: Option<&'a str>,
    pub only: Option<&'a str>,
    pub list: bool,
    pub weights: WeightStorage,
}

/// How `bench` times.
pub struct BenchRun<'a> {
    pub pass: Option<&'a str>,
    pub reps: usize,
    pub warmup: usize,
    pub json: bool,
    pub check: bool,
    pub quick: bool,
}

/// `wgrnn bench`.
pub fn cmd_bench(shape: &ShapeArgs, sel: BenchSelect, run: BenchRun) -> Result<ExitCode, Error> {
    let suite = sel.suite;
    let mut shapes: Vec<Shape> = match suite {
        Some(name) => suite_shapes(name)?,
        None => vec![shape_of("custom", shape)?],
    };
    if let Some(only) = sel.only {
        keep_only(&mut shapes, only)?;
    }
    if sel.list {
        for s in &shapes {
            let line = serde_json::json!({
                "label": s.label,
                "mode": s.mode_name(),
                "input": s.input,
                "hidden": s.hidden,
                "batch": s.batch,
                "seq": s.seq,
                "layers": s.layers,
                "bidirectional": s.bidirectional,
            });
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let passes: Vec<Pass> = match (run.pass, suite) {
        (Some(p), _) => vec![Pass::parse(p)?],
        (None, Some(_)) => vec![Pass::Inference, Pass::Train],
        (None, None) => vec![Pass::Inference],
    };
    if run.reps == 0 {
        return Err(Error::config("--reps must be at least 1"));
    }
    let (warmup, reps) = if run.quick {
        (1, 3)
    } else {
        (run.warmup, run.reps)
    };
    let opts = BenchOptions {
        weights: sel.weights,
        ..BenchOptions::new(warmup, reps)
    };
    let ctx = Context::new()?;
    let cache = ctx.load_tune_cache()?;
    if !run.json {
        println!(
            "tuning: {}",
            cache.map_or(
                "shipped defaults (no local cache for this adapter)".into(),
                |p| { format!("local cache {}", p.display()) }
            )
        );
        println!(
            "adapter: {} ({}); GPU timestamps: {}",
            ctx.adapter_name(),
            ctx.backend(),
            if ctx.has_timestamps() {
                "yes"
            } else {
                "no (wall time)"
            }
        );
        if run.quick {
            println!("quick: 1 warm-up, 3 runs, T capped at 64");
        }
        println!(
            "{:<18} {:<9} {:>5} {:>5} {:>4} {:>5} {:>2} {:>2} {:<9} {:>10} {:>10} {:>10} {:>8} {:>6} {:>4} schedule",
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
            "disp",
            "subm"
        );
    }
    for s in &shapes {
        let tuned = ctx.use_tuned(s.hidden, s.batch);
        let mut run_shape = s.clone();
        if run.quick {
            run_shape.seq = s.seq.min(64);
        }
        for &p in &passes {
            let mut checked = None;
            if run.check {
                let per_step = run_shape.forward_flops() / run_shape.seq as f64 * p.flop_factor();
                let max_seq = ((CHECK_BUDGET_FLOPS / per_step) as usize).clamp(1, 8);
                let report = check_shape(&ctx, &run_shape, p, max_seq, sel.weights, 5)?;
                let tol = match (ctx.precision(), sel.weights, p) {
                    (wgrnn::Precision::F16, ..) => CHECK_TOL_PRECISION_F16,
                    (_, WeightStorage::F16, Pass::Inference) => CHECK_TOL_F16,
                    _ => CHECK_TOL,
                };
                if report.worst() > tol {
                    eprintln!(
                        "wgrnn: check failed for {} {} pass {}: relative error {} > {tol:.0e} against the CPU reference",
                        s.label,
                        s.mode_name(),
                        p.name(),
                        print_errors(&report)
                    );
                    return Ok(ExitCode::from(1));
                }
                checked = Some(report.worst());
            }
            let r = match run_bench(&ctx, &run_shape, p, opts) {
                Ok(r) => r,
                // A shape this adapter cannot hold is reported and skipped; the rest still run.
                Err(e @ Error::Limit { .. }) if suite.is_some() => {
                    eprintln!("wgrnn: {} pass {} skipped: {e}", s.label, p.name());
                    if run.json {
                        let line = serde_json::json!({
                            "label": s.label,
                            "mode": s.mode_name(),
                            "pass": p.name(),
                            "error": e.to_string(),
                        });
                        println!("{line}");
                    } else {
                        println!("{:<18} {:<9} skipped: {e}", s.label, s.mode_name());
                    }
                    ctx.trim_pool();
                    continue;
                }
                Err(e) => return Err(e),
            };
            if run.json {
                let mut line = r.json(&ctx, s.seq, run.quick);
                line["tuned"] = tuned.name().into();
                if let Some(e) = checked {
                    line["check_rel_err"] = e.into();
                }
                println!("{line}");
            } else {
                println!(
                    "{:<18} {:<9} {:>5} {:>5} {:>4} {:>5} {:>2} {:>2} {:<9} {:>10} {:>10.3} {:>10.2} {:>8.3} {:>6} {:>4} {}{}",
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
                    r.submits,
                    r.schedule.name(),
                    if sel.weights == WeightStorage::F16 && p == Pass::Inference {
                        format!(", {} weights", weights_name(sel.weights))
                    } else {
                        String::new()
                    }
                );
            }
            ctx.trim_pool();
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `wgrnn info`.
pub fn cmd_info() -> Result<ExitCode, Error> {
    let ctx = Context::new()?;
    let i = ctx.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?}), driver {} {}",
        i.name, i.backend, i.device_type, i.driver, i.driver_info
    );
    ctx.load_tune_cache()?;
    println!("kernel variant: {:?}", ctx.variant());
    println!(
        "shader modules: {}",
        if ctx.shader_checks() {
            "checked (WGRNN_SHADER_CHECKS=1)"
        } else {
            "trusted (no runtime checks; WGRNN_SHADER_CHECKS=1 restores them)"
        }
    );
    println!(
        "kernel config: {}",
        serde_json::to_string(&ctx.kernel_config()).unwrap_or_default()
    );
    println!(
        "tuning cache: {}",
        wgrnn::tune::cache_path().map_or("off".into(), |p| p.display().to_string())
    );
    let l = ctx.limits();
    println!(
        "limits: storage binding {} B, buffer {} B, workgroup storage {} B, invocations {}, workgroups/dim {}",
        l.max_storage_buffer_binding_size,
        l.max_buffer_size,
        l.max_compute_workgroup_storage_size,
        l.max_compute_invocations_per_workgroup,
        l.max_compute_workgroups_per_dimension
    );
    println!(
        "uniform binding {} B (offset alignment {} B), storage offset alignment {} B",
        l.max_uniform_buffer_binding_size,
        l.min_uniform_buffer_offset_alignment,
        l.min_storage_buffer_offset_alignment
    );
    println!("timestamps: {}", ctx.has_timestamps());
    println!(
        "precision: {} (WGRNN_PRECISION=f16: tensor-core GEMMs with f16 inputs, where offered)",
        match ctx.precision() {
            wgrnn::Precision::F32 => "f32",
            wgrnn::Precision::F16 => "f16 inputs, f32 accumulation (matmul_coop)",
        }
    );
    let coop = ctx.cooperative_matrices();
    if !coop.is_empty() {
        println!("cooperative matrices: {}", coop.join(", "));
    }
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

/// What `wgrnn tune` measures.
pub struct TuneArgs<'a> {
    pub suite: &'a str,
    pub only: Option<&'a str>,
    pub passes: &'a str,
    pub reps: usize,
    pub max_seq: usize,
    pub cache: Option<std::path::PathBuf>,
    pub dry_run: bool,
    pub json_out: Option<std::path::PathBuf>,
}

/// `wgrnn tune`: times the candidate kernel configurations of every shape class in a suite on
/// this adapter and writes the fastest into the local cache (keyed by adapter, driver and
/// wgrnn version), which later `bench`, `forward` and training runs read.
pub fn cmd_tune(a: TuneArgs) -> Result<ExitCode, Error> {
    let mut shapes = suite_shapes(a.suite)?;
    if let Some(only) = a.only {
        keep_only(&mut shapes, only)?;
    }
    let passes = a
        .passes
        .split(',')
        .map(Pass::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if a.reps == 0 {
        return Err(Error::config("--reps must be at least 1"));
    }
    let path = match a.cache.clone().or_else(wgrnn::tune::cache_path) {
        Some(p) => p,
        None if a.dry_run => std::path::PathBuf::new(),
        None => {
            return Err(Error::config(
                "the tuning cache is off (WGRNN_TUNE_CACHE=off) and no --cache was given",
            ));
        }
    };
    // Refuse a malformed cache before spending the time.
    if !a.dry_run {
        wgrnn::tune::read_cache(&path)?;
    }
    let ctx = Context::new()?;
    println!(
        "adapter: {} ({}), driver {} {}",
        ctx.adapter_name(),
        ctx.backend(),
        ctx.adapter_info().driver,
        ctx.adapter_info().driver_info
    );
    let opts = wgrnn::tune::TuneOptions {
        reps: a.reps,
        passes,
        max_seq: a.max_seq,
    };
    let outcomes = wgrnn::tune::tune(&ctx, &shapes, &opts, &mut |line| eprintln!("tune: {line}"))?;
    println!(
        "{:<16} {:<28} {:>12} {:>12} {:>8}  choice",
        "class", "shapes", "start_ms", "tuned_ms", "speedup"
    );
    for o in &outcomes {
        let t = &o.tuned;
        let c = &t.config;
        println!(
            "{:<16} {:<28} {:>12.3} {:>12.3} {:>8.3}  gemm_micro={} step_split={} wavefront={} narrow_batch={} persistent={} cpu_blocks={} cpu_subgroups={} target_workgroups={}",
            o.class,
            t.shapes.join(","),
            t.baseline_ms,
            t.tuned_ms,
            t.baseline_ms / t.tuned_ms,
            c.gemm_micro,
            c.step_split,
            c.wavefront,
            c.narrow_batch,
            format!("{:?}", c.persistent).to_lowercase(),
            c.cpu_blocks,
            c.cpu_subgroups,
            c.target_workgroups
        );
    }
    if let Some(j) = &a.json_out {
        let v: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "class": o.class,
                    "tuned": o.tuned,
                    "trials": o.trials.iter().map(|t| serde_json::json!({
                        "change": t.change, "ms": t.ms, "kept": t.kept
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "key": wgrnn::tune::AdapterKey::of(ctx.adapter_info()),
            "classes": v,
        }))
        .map_err(|e| Error::config(format!("{}: {e}", j.display())))?;
        wgrnn::files::write_atomic(j, text.as_bytes())?;
    }
    if a.dry_run {
        println!("dry run: nothing written");
        return Ok(ExitCode::SUCCESS);
    }
    let entry = wgrnn::tune::CacheEntry {
        key: wgrnn::tune::AdapterKey::of(ctx.adapter_info()),
        classes: outcomes.into_iter().map(|o| (o.class, o.tuned)).collect(),
    };
    wgrnn::tune::write_cache(&path, entry)?;
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}
