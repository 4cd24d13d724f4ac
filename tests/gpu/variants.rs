//! Both kernel variants on this adapter, whichever the context would pick by itself: the tiled
//! kernels (workgroup-memory tiles, chosen on GPUs) and the simple ones (chosen on CPU drivers),
//! over the matrix, the edge sizes and batches that select every tile height (RM = 1, 2, 4);
//! and every schedule of an inference forward: wavefront over layers (the default), one
//! dispatch per layer and step, one single-workgroup dispatch.

use std::sync::OnceLock;

use crate::backward::run_backward_case_on;
use crate::common::gpu;
use crate::forward::{
    Case, Fixture, MODES, compare_forward, edge_cases, matrix, run_forward_case_on,
};
use wgrnn::reference::matmul::round_f16;
use wgrnn::{Context, ForwardInputs, KernelVariant, Mode, Persistent, Recorder, Rnn, RnnConfig};
use wgrnn::{RnnOutput, RnnParams, Schedule, Tensor, WeightStorage, rnn::parse_param_name};

/// Same bounds as the default-variant tests (docs/NUMERICS.md).
const TOL: f64 = 1e-4;

fn ctx_for(v: KernelVariant) -> Option<&'static Context> {
    static TILED: OnceLock<Context> = OnceLock::new();
    static SIMPLE: OnceLock<Context> = OnceLock::new();
    let cell = if v == KernelVariant::Tiled {
        &TILED
    } else {
        &SIMPLE
    };
    // The wavefront whatever the adapter's default (per_layer_schedule_* tests the other).
    schedule_ctx(cell, v, |c| {
        c.set_wavefront(true);
        c.set_persistent(Persistent::Never)
    })
}

/// Batches 20, 40 and 70 select 2, 3 and 4 rows per invocation in the tiled kernels; the last case is
/// large enough for the 128x128 GEMM tiles, with edges that are no multiple of anything.
fn tile_cases() -> Vec<Case> {
    let large = Case {
        mode: wgrnn::Mode::Lstm,
        layers: 2,
        bidir: true,
        ragged: true,
        init: true,
        seq: 7,
        batch: 41,
        input: 131,
        hidden: 133,
        bias: true,
    };
    MODES
        .iter()
        .enumerate()
        .flat_map(|(i, &mode)| {
            [20usize, 40, 70].map(|batch| Case {
                mode,
                layers: 2,
                bidir: i % 2 == 0,
                ragged: true,
                init: true,
                seq: 4,
                batch,
                input: 19,
                hidden: 37,
                bias: true,
            })
        })
        .chain([large])
        .collect()
}

/// The matrix, the edge sizes and the tile cases.
fn all_cases() -> Vec<Case> {
    matrix()
        .into_iter()
        .chain(edge_cases())
        .chain(tile_cases())
        .collect()
}

fn run_all(v: KernelVariant) {
    let Some(ctx) = ctx_for(v) else { return };
    assert_eq!(ctx.variant(), v);
    for (i, c) in all_cases().iter().enumerate() {
        run_forward_case_on(ctx, c, 2000 + i as u64, TOL);
        run_backward_case_on(ctx, c, 3000 + i as u64, 0.0, TOL);
    }
}

#[test]
fn tiled_kernels_match_reference() {
    run_all(KernelVariant::Tiled);
}

#[test]
fn simple_kernels_match_reference() {
    run_all(KernelVariant::Simple);
}

/// Shapes that select the register-blocked CPU kernels (hidden sizes that are multiples of 4,
/// with and without a full second vec4 of units in the backward's 8-unit blocks; batches below,
/// at and past the 4- and 8-row blocks; inputs aligned for vec4 GEMM loads and not); from
/// B = 16 on, the subgroup blocks where the adapter has them (16 rows; units past H in the
/// 32- and 64-unit workgroups; a partial last row block).
fn cpu_block_cases() -> Vec<Case> {
    let shapes = [
        (1, 8, 4),
        (5, 12, 12),
        (9, 7, 20),
        (11, 16, 36),
        (8, 64, 64),
        (16, 8, 36),
        (23, 20, 68),
        (33, 4, 128),
    ];
    MODES
        .iter()
        .enumerate()
        .flat_map(|(i, &mode)| {
            shapes.map(|(batch, input, hidden)| Case {
                mode,
                layers: 2,
                bidir: (i + batch) % 2 == 0,
                ragged: batch > 1,
                init: true,
                seq: 5,
                batch,
                input,
                hidden,
                bias: batch != 9,
            })
        })
        .collect()
}

/// The register-blocked CPU kernels (step blocks, 8x8 GEMM blocks with and without vec4
/// loads) against the reference, and the plain simple kernels they replace on the same shapes.
#[test]
fn cpu_block_kernels_match_reference() {
    static ON: OnceLock<Context> = OnceLock::new();
    static OFF: OnceLock<Context> = OnceLock::new();
    for (cell, on) in [(&ON, true), (&OFF, false)] {
        let Some(ctx) = schedule_ctx(cell, KernelVariant::Simple, |c| {
            c.set_cpu_blocks(on);
            c.set_wavefront(false);
        }) else {
            return;
        };
        for (i, c) in cpu_block_cases().iter().enumerate() {
            run_forward_case_on(ctx, c, 7000 + i as u64, TOL);
            run_backward_case_on(ctx, c, 8000 + i as u64, 0.0, TOL);
        }
    }
}

/// The subgroup step blocks and GEMM (CPU drivers with 8-lane subgroups) give the blocks'
/// results bit for bit (the same sums in the same order): inference forward, training forward
/// and backward with every gradient, on shapes that select them (B >= 16, a partial row block,
/// units past H).
#[test]
fn subgroup_blocks_match_the_blocks_bit_for_bit() {
    static CTX: OnceLock<Context> = OnceLock::new();
    let Some(ctx) = schedule_ctx(&CTX, KernelVariant::Simple, |c| {
        c.set_cpu_blocks(true);
        c.set_wavefront(false);
    }) else {
        return;
    };
    if !ctx.cpu_subgroups() {
        // WGRNN_CPU_SUBGROUPS=0, as in scripts/test.sh's checked-module pass: llvmpipe runs
        // these modules checked 30x slower.
        eprintln!("WGRNN_CPU_SUBGROUPS=0: subgroup blocks not tested");
        return;
    }
    if !ctx.has_cpu_subgroups() {
        // lavapipe (CI's adapter) has them at its default width: there the kernels must be
        // tested.
        assert!(
            !ctx.adapter_name().contains("llvmpipe")
                || std::env::var_os("LP_NATIVE_VECTOR_WIDTH").is_some(),
            "llvmpipe without 8-lane subgroups"
        );
        return;
    }
    for (i, mode) in MODES.into_iter().enumerate() {
        let c = Case {
            mode,
            layers: 2,
            bidir: i % 2 == 0,
            ragged: true,
            init: true,
            seq: 4,
            batch: 33,
            input: 20,
            hidden: 68,
            bias: true,
        };
        let seed = 9100 + i as u64;
        let f = Fixture::new(ctx, &c, seed, 0.0);
        let (t, b, nd, h) = (c.seq, c.batch, f.cfg.dirs(), c.hidden);
        let dy = crate::common::uniform(seed + 4, t * b * nd * h, -1.0, 1.0);
        let dyt = Tensor::from_f32(ctx, "dy", &[t, b, nd * h], &dy).unwrap();
        let run = |on: bool| -> Vec<(String, Vec<f32>)> {
            ctx.set_cpu_subgroups(on);
            let out = f.rnn.forward(ctx, &f.xt, &f.inputs(0)).unwrap();
            let (_, st) = f.rnn.forward_train(ctx, &f.xt, &f.inputs(0)).unwrap();
            let up = wgrnn::Upstream {
                output: Some(&dyt),
                h_n: None,
                c_n: None,
            };
            let g = f.rnn.backward(ctx, &st, &up, None).unwrap();
            let mut v = vec![
                ("output".to_string(), out.output.to_vec(ctx).unwrap()),
                ("grad_input".to_string(), g.input.to_vec(ctx).unwrap()),
                ("grad_h0".to_string(), g.h0.to_vec(ctx).unwrap()),
            ];
            for p in g.param_views(&f.cfg) {
                let data = p.to_host(ctx).unwrap().data;
                v.push((format!("grad.{}", p.name), data));
            }
            v
        };
        let (with, without) = (run(true), run(false));
        for ((name, a), (_, b)) in with.iter().zip(&without) {
            let first = a
                .iter()
                .zip(b)
                .position(|(x, y)| x.to_bits() != y.to_bits());
            assert!(
                first.is_none(),
                "{} seed {seed}: {name} differs at {first:?} with and without subgroups",
                c.label(ctx)
            );
        }
    }
    ctx.set_cpu_subgroups(true);
}

/// Split-K GEMMs: the weight gradients of a small layer over many timesteps (C is a few tiles,
/// K = T*B is long), on a context that wants 64 workgroups, so the tiled GEMM splits K and
/// matmul_reduce sums the partials.
#[test]
fn split_k_weight_gradients_match_reference() {
    static SPLIT: OnceLock<Context> = OnceLock::new();
    if gpu().is_none() {
        return;
    }
    let ctx = SPLIT.get_or_init(|| {
        let c = Context::with_variant(KernelVariant::Tiled).expect("context");
        c.set_target_workgroups(64);
        c
    });
    for (i, mode) in MODES.into_iter().enumerate() {
        let c = Case {
            mode,
            layers: 2,
            bidir: i % 2 == 1,
            ragged: true,
            init: true,
            seq: 40,
            batch: 30,
            input: 7,
            hidden: 13,
            bias: true,
        };
        run_backward_case_on(ctx, &c, 4000 + i as u64, 0.0, TOL);
    }
}

/// The split step (`step_split` > 1): each step's recurrent product (forward `h W_hh^T`,
/// backward `dgates W_hh`) as a split-K GEMM into partials, then `step_cell_split` /
/// `step_backward_cell_split` sum them in order and apply the cell. Per-layer schedule,
/// matrix-vector kernels off so every batch takes it; inference and training forwards and the
/// backward, both directions, ragged lengths.
#[test]
fn split_step_matches_reference() {
    static CTX: OnceLock<Context> = OnceLock::new();
    let Some(ctx) = schedule_ctx(&CTX, KernelVariant::Tiled, |c| {
        c.set_wavefront(false);
        c.set_persistent(Persistent::Never);
        c.set_narrow_batch(0);
        c.set_step_split(4);
    }) else {
        return;
    };
    let wide = Case {
        mode: Mode::Gru,
        layers: 2,
        bidir: true,
        ragged: true,
        init: true,
        seq: 5,
        batch: 3,
        input: 11,
        hidden: 67,
        bias: true,
    };
    for (i, c) in all_cases().iter().chain([&wide]).enumerate() {
        run_forward_case_on(ctx, c, 7000 + i as u64, TOL);
        run_backward_case_on(ctx, c, 7500 + i as u64, 0.0, TOL);
    }
}

/// A context of its own on variant `v` with schedule settings `set` (the shared default one
/// keeps the adapter's defaults). Applies the no-adapter policy first. Tile heights follow the
/// batch alone (target of one workgroup), so every RM is exercised at small sizes.
fn schedule_ctx(
    cell: &'static OnceLock<Context>,
    v: KernelVariant,
    set: impl FnOnce(&Context),
) -> Option<&'static Context> {
    gpu()?;
    Some(cell.get_or_init(|| {
        let c = Context::with_variant(v).expect("second context on the same adapter");
        c.set_target_workgroups(1);
        set(&c);
        c
    }))
}

fn forward_all(ctx: &Context, seed: u64) {
    for (i, c) in all_cases().iter().enumerate() {
        run_forward_case_on(ctx, c, seed + i as u64, TOL);
    }
}

/// With the wavefront off, unidirectional stacks run one dispatch per layer and step.
#[test]
fn per_layer_schedule_matches_reference() {
    static TILED: OnceLock<Context> = OnceLock::new();
    static SIMPLE: OnceLock<Context> = OnceLock::new();
    for (cell, v) in [
        (&TILED, KernelVariant::Tiled),
        (&SIMPLE, KernelVariant::Simple),
    ] {
        let Some(ctx) = schedule_ctx(cell, v, |c| {
            c.set_wavefront(false);
            c.set_persistent(Persistent::Never)
        }) else {
            return;
        };
        forward_all(ctx, 5000);
    }
}

/// Every unidirectional inference forward as one single-workgroup `seq_forward` dispatch,
/// including batch x hidden far above the workgroup's 256 invocations.
#[test]
fn single_workgroup_schedule_matches_reference() {
    static CTX: OnceLock<Context> = OnceLock::new();
    let Some(ctx) = schedule_ctx(&CTX, KernelVariant::Tiled, |c| {
        c.set_persistent(Persistent::Always)
    }) else {
        return;
    };
    forward_all(ctx, 6000);
}

/// Records a forward (inference, or training with `train`) of `cfg` over T x B and returns its
/// dispatch count.
fn dispatches(ctx: &Context, cfg: &RnnConfig, t: usize, b: usize, train: bool) -> usize {
    let rnn = Rnn::random(ctx, cfg, 1).unwrap();
    let x = Tensor::zeros(ctx, "input", &[t, b, cfg.input_size]).unwrap();
    let mut rec = Recorder::new(ctx);
    let _: (RnnOutput, _) = rnn
        .record_forward(&mut rec, &x, &ForwardInputs::default(), train)
        .unwrap();
    rec.dispatch_count()
}

/// The dispatch budget of the performance issue: a 2-layer unidirectional LSTM over T = 100
/// in at most T + 2L + 4 dispatches per inference call (and per training forward), on either
/// kernel variant; a single dispatch for the recurrence when the single-workgroup kernel is
/// chosen.
#[test]
fn wavefront_meets_the_dispatch_budget() {
    static ONE: OnceLock<Context> = OnceLock::new();
    let (t, l) = (100, 2);
    let cfg = RnnConfig::new(Mode::Lstm, 24, 16).layers(l);
    for v in [KernelVariant::Tiled, KernelVariant::Simple] {
        let Some(ctx) = ctx_for(v) else { return };
        for train in [false, true] {
            let n = dispatches(ctx, &cfg, t, 3, train);
            assert!(n <= t + 2 * l + 4, "{v:?} train={train}: {n} dispatches");
        }
    }
    let Some(ctx) = schedule_ctx(&ONE, KernelVariant::Tiled, |c| {
        c.set_persistent(Persistent::Always)
    }) else {
        return;
    };
    // GEMM (layer 0), W_hh and W_ih transposes into the pack (3), seq_forward.
    assert_eq!(dispatches(ctx, &cfg, t, 3, false), 5);
}

/// f16 weights against the reference run with the same weights rounded to f16 (to nearest,
/// ties to even): the kernels' arithmetic stays f32, so only the rounding direction may differ.
/// WGSL lets pack2x16float round either way; one f16 ulp (2^-11 relative) per weight then moves
/// outputs by up to ~5e-4 at these sizes, hence 1e-3. Measured on lavapipe (rounding to
/// nearest): see docs/NUMERICS.md.
const F16_TOL: f64 = 1e-3;

/// The parameters an f16 inference forward reads in f16, rounded: every W_hh, and W_ih of the
/// layers above the first when the forward runs on the wavefront (whose steps compute those
/// input products); the other parameters unchanged.
fn rounded(params: &RnnParams, wave: bool) -> RnnParams {
    let mut p = params.clone();
    for name in params.config().param_names() {
        let Some((kind, layer, _)) = parse_param_name(&name) else {
            continue;
        };
        if kind == 1 || (kind == 0 && layer > 0 && wave) {
            for v in p.get_mut(&name).unwrap().data.iter_mut() {
                *v = round_f16(*v as f64) as f32;
            }
        }
    }
    p
}

/// Contexts for every schedule an f16 inference forward can take: wavefront (tiled and simple
/// variants), single workgroup, per layer.
fn f16_contexts() -> Vec<&'static Context> {
    static PERSIST: OnceLock<Context> = OnceLock::new();
    static PER_LAYER: OnceLock<Context> = OnceLock::new();
    let one = schedule_ctx(&PERSIST, KernelVariant::Tiled, |c| {
        c.set_persistent(Persistent::Always)
    });
    let per_layer = schedule_ctx(&PER_LAYER, KernelVariant::Simple, |c| {
        c.set_wavefront(false);
        c.set_persistent(Persistent::Never)
    });
    [
        ctx_for(KernelVariant::Tiled),
        ctx_for(KernelVariant::Simple),
        one,
        per_layer,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Runs `c` with f16 weights on `ctx`; returns the worst relative errors against the reference
/// on the rounded weights (checked against `tol`) and on the unrounded ones (not checked).
fn f16_case(ctx: &Context, c: &Case, seed: u64, tol: f64) -> (f64, f64) {
    let mut f = Fixture::new(ctx, c, seed, 0.0);
    f.rnn.set_weight_storage(WeightStorage::F16);
    let wave = f.rnn.schedule(ctx, c.seq, c.batch, false) != Schedule::PerLayer;
    let e = compare_forward(ctx, c, &f, &rounded(&f.params, wave), seed, tol);
    (
        e,
        compare_forward(ctx, c, &f, &f.params, seed, f64::INFINITY),
    )
}

fn f16_cases() -> Vec<Case> {
    matrix()
        .into_iter()
        .filter(|c| c.ragged == c.init)
        .chain(tile_cases())
        .collect()
}

/// Inference with f16 weights on every schedule.
#[test]
fn f16_weights_match_reference_on_rounded_weights() {
    for ctx in f16_contexts() {
        for (i, c) in f16_cases().iter().enumerate() {
            f16_case(ctx, c, 7000 + i as u64, F16_TOL);
        }
    }
}

/// Prints the worst relative errors of f16 inference over 5 seeds (run with --ignored
/// --nocapture): against the rounded weights (the bound F16_TOL checks) and against the f32
/// weights (what a user of WeightStorage::F16 gives up), for docs/NUMERICS.md.
#[test]
#[ignore]
fn measure_f16_error() {
    let (mut rounded_worst, mut f32_worst) = (0.0f64, 0.0f64);
    for ctx in f16_contexts() {
        for seed in 0..5u64 {
            for (i, c) in f16_cases().iter().enumerate() {
                let (a, b) = f16_case(ctx, c, seed * 1000 + i as u64, f64::INFINITY);
                rounded_worst = rounded_worst.max(a);
                f32_worst = f32_worst.max(b);
            }
        }
    }
    println!(
        "f16 weights: worst relative error {rounded_worst:.3e} against the reference on f16-rounded weights, {f32_worst:.3e} against the f32 weights"
    );
}

/// A stack whose weights (or, in training, saved values) exceed the largest storage binding as
/// one buffer runs layer by layer (each layer's still fit), not on the wavefront.
#[test]
fn wavefront_needs_the_weights_in_one_binding() {
    let Some(ctx) = ctx_for(KernelVariant::Tiled) else {
        return;
    };
    let limit = ctx.limits().max_storage_buffer_binding_size as usize;
    let small = Rnn::random(ctx, &RnnConfig::new(Mode::Lstm, 1, 8).layers(2), 1).unwrap();
    assert_eq!(small.schedule(ctx, 10, 1, false), Schedule::Wavefront);
    // One step saves no dispatch: layer by layer, no weight copy.
    assert_eq!(small.schedule(ctx, 1, 1, false), Schedule::PerLayer);
    // Training keeps every layer's saved values in one buffer: a long sequence whose values
    // fit per layer but not for the stack runs layer by layer.
    let per_layer_saved = |t: usize| t * 64 * 4 * 32 * 4;
    let t = limit / per_layer_saved(1) * 2 / 3;
    let deep = Rnn::random(ctx, &RnnConfig::new(Mode::Lstm, 1, 32).layers(3), 1).unwrap();
    assert!(per_layer_saved(t) <= limit && 3 * per_layer_saved(t) > limit);
    assert_eq!(
        deep.schedule(ctx, t, 64, true),
        Schedule::PerLayer,
        "T = {t}"
    );
    assert_eq!(deep.schedule(ctx, 100, 64, true), Schedule::Wavefront);
    // W_hh of one LSTM layer is 16 H^2 bytes: pick H so that one layer's fits and the pack
    // of two layers (4 blocks) does not.
    let h = ((limit / 16) as f64).sqrt() as usize * 3 / 4;
    if h > 4096 {
        return; // a binding this large would take minutes to fill on a CPU driver
    }
    let cfg = RnnConfig::new(Mode::Lstm, 1, h).layers(2);
    let rnn = Rnn::random(ctx, &cfg, 1).unwrap();
    assert_eq!(
        rnn.schedule(ctx, 1000, 1, false),
        Schedule::PerLayer,
        "H = {h}"
    );
}
