//! Forward conformance: GPU forward vs the f64 CPU reference over the matrix of modes, layers,
//! directions, lengths and initial states, on awkward sizes.

use crate::common::{assert_close, f64s, gpu, uniform};
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_forward};
use wgrnn::{ForwardInputs, Mode, Rnn, RnnConfig, RnnParams, Tensor};

/// Relative error bound per output tensor. Measured worst over 20 seeds of the matrix and the
/// edge sizes on lavapipe: 7.9e-6 (docs/NUMERICS.md, `measure_forward_error`); 1e-4 leaves a
/// 12x margin while a wrong index or gate gives errors of order 1e-3 and above.
const FWD_TOL: f64 = 1e-4;

pub struct Case {
    pub mode: Mode,
    pub layers: usize,
    pub bidir: bool,
    pub ragged: bool,
    pub init: bool,
    pub seq: usize,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    pub bias: bool,
}

pub fn lengths_for(seed: u64, seq: usize, batch: usize) -> Vec<usize> {
    // Always include a full-length and (if possible) a length-1 sequence.
    let r = uniform(seed ^ 0x1e, batch, 0.0, 1.0);
    (0..batch)
        .map(|b| match b {
            0 => seq,
            1 => 1,
            _ => 1 + ((r[b] as f64) * seq as f64) as usize % seq,
        })
        .collect()
}

/// A case's parameters, inputs and their device copies, seeded: shared by the forward and
/// backward conformance runs.
pub struct Fixture {
    pub cfg: RnnConfig,
    pub params: RnnParams,
    pub rnn: Rnn,
    pub x: Vec<f32>,
    pub h0: Option<Vec<f32>>,
    pub c0: Option<Vec<f32>>,
    pub lengths: Option<Vec<usize>>,
    pub xt: Tensor,
    pub h0t: Option<Tensor>,
    pub c0t: Option<Tensor>,
    /// `[L*D, B, H]`
    pub state_shape: [usize; 3],
}

impl Fixture {
    pub fn new(ctx: &wgrnn::Context, c: &Case, seed: u64, dropout: f32) -> Fixture {
        let cfg = RnnConfig::new(c.mode, c.input, c.hidden)
            .layers(c.layers)
            .bidirectional(c.bidir)
            .bias(c.bias)
            .dropout(dropout);
        let params = RnnParams::init(&cfg, seed).unwrap();
        let rnn = Rnn::new(ctx, &params).unwrap();
        let (t, b) = (c.seq, c.batch);
        let state_shape = [c.layers * cfg.dirs(), b, c.hidden];
        let sn = state_shape.iter().product();
        let x = uniform(seed + 1, t * b * c.input, -1.0, 1.0);
        let h0 = c.init.then(|| uniform(seed + 2, sn, -1.0, 1.0));
        let c0 = (c.init && c.mode == Mode::Lstm).then(|| uniform(seed + 3, sn, -1.0, 1.0));
        let lengths = c.ragged.then(|| lengths_for(seed, t, b));
        let xt = Tensor::from_f32(ctx, "input", &[t, b, c.input], &x).unwrap();
        let up = |n: &str, v: &Option<Vec<f32>>| {
            v.as_ref()
                .map(|v| Tensor::from_f32(ctx, n, &state_shape, v).unwrap())
        };
        let (h0t, c0t) = (up("h0", &h0), up("c0", &c0));
        Fixture {
            cfg,
            params,
            rnn,
            x,
            h0,
            c0,
            lengths,
            xt,
            h0t,
            c0t,
            state_shape,
        }
    }

    /// The device inputs of a forward call.
    pub fn inputs(&self, dropout_seed: u32) -> ForwardInputs<'_> {
        ForwardInputs {
            h0: self.h0t.as_ref(),
            c0: self.c0t.as_ref(),
            lengths: self.lengths.as_deref(),
            dropout_seed,
            time_offset: 0,
        }
    }

    /// The same inputs for the reference.
    pub fn reference(&self, c: &Case, train: bool, dropout_seed: u32) -> RefInputs {
        RefInputs {
            x: f64s(&self.x),
            seq: c.seq,
            batch: c.batch,
            h0: self.h0.as_deref().map(f64s),
            c0: self.c0.as_deref().map(f64s),
            lengths: self.lengths.clone(),
            train,
            dropout_seed,
        }
    }
}

impl Case {
    /// A label for failure messages.
    pub fn label(&self, ctx: &wgrnn::Context) -> String {
        format!(
            "{:?} L={} bidir={} ragged={} init={} T={} B={} I={} H={} [{:?}]",
            self.mode,
            self.layers,
            self.bidir,
            self.ragged,
            self.init,
            self.seq,
            self.batch,
            self.input,
            self.hidden,
            ctx.variant()
        )
    }
}

/// Runs one case on the shared context and returns the worst relative error over its outputs.
pub fn run_forward_case(c: &Case, seed: u64, tol: f64) -> f64 {
    match gpu() {
        Some(ctx) => run_forward_case_on(ctx, c, seed, tol),
        None => 0.0,
    }
}

/// Runs one case on `ctx` and returns the worst relative error over its output tensors.
pub fn run_forward_case_on(ctx: &wgrnn::Context, c: &Case, seed: u64, tol: f64) -> f64 {
    let f = Fixture::new(ctx, c, seed, 0.0);
    compare_forward(ctx, c, &f, &f.params, seed, tol)
}

/// The GPU inference forward of `f` against the reference forward with `params` (the fixture's
/// own, or a variant of them); returns the worst relative error over the output tensors.
pub fn compare_forward(
    ctx: &wgrnn::Context,
    c: &Case,
    f: &Fixture,
    params: &RnnParams,
    seed: u64,
    tol: f64,
) -> f64 {
    let out = f.rnn.forward(ctx, &f.xt, &f.inputs(0)).unwrap();
    let rf = rnn_forward(&RefParams::from_params(params), &f.reference(c, false, 0));
    let what = c.label(ctx);
    let mut worst = assert_close(
        &format!("{what} output"),
        seed,
        &out.output.to_vec(ctx).unwrap(),
        &rf.output,
        tol,
    );
    worst = worst.max(assert_close(
        &format!("{what} h_n"),
        seed,
        &out.h_n.to_vec(ctx).unwrap(),
        &rf.h_n,
        tol,
    ));
    if let (Some(g), Some(w)) = (&out.c_n, &rf.c_n) {
        worst = worst.max(assert_close(
            &format!("{what} c_n"),
            seed,
            &g.to_vec(ctx).unwrap(),
            w,
            tol,
        ));
    }
    worst
}

pub const MODES: [Mode; 4] = [Mode::Lstm, Mode::Gru, Mode::RnnTanh, Mode::RnnRelu];

/// Every combination of mode x layers {1,2,3} x {uni, bi} x {full, ragged} x {zero, given
/// state} at awkward small sizes (T=5, B=3, I=7, H=13: primes, not multiples of 4).
pub fn matrix() -> Vec<Case> {
    let mut v = Vec::new();
    for mode in MODES {
        for layers in 1..=3 {
            for bidir in [false, true] {
                for ragged in [false, true] {
                    for init in [false, true] {
                        v.push(Case {
                            mode,
                            layers,
                            bidir,
                            ragged,
                            init,
                            seq: 5,
                            batch: 3,
                            input: 7,
                            hidden: 13,
                            bias: true,
                        });
                    }
                }
            }
        }
    }
    v
}

/// Sizes at the edges: T=1, B=1, I=1, H=1, H above one 64-wide workgroup, B not a multiple of
/// the 4-row batch block, no bias.
pub fn edge_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for mode in MODES {
        let c = |layers, bidir, seq, batch, input, hidden, bias| Case {
            mode,
            layers,
            bidir,
            ragged: batch > 1,
            init: true,
            seq,
            batch,
            input,
            hidden,
            bias,
        };
        v.push(c(1, false, 1, 1, 1, 1, true));
        v.push(c(2, true, 1, 5, 3, 67, true));
        v.push(c(1, true, 9, 1, 17, 70, false));
        v.push(c(2, false, 3, 7, 64, 129, true));
    }
    v
}

#[test]
fn forward_matrix() {
    for (i, c) in matrix().iter().enumerate() {
        run_forward_case(c, 100 + i as u64, FWD_TOL);
    }
}

#[test]
fn forward_edge_sizes() {
    for (i, c) in edge_cases().iter().enumerate() {
        run_forward_case(c, 300 + i as u64, FWD_TOL);
    }
}

/// A realistic size: I=128, H=256, B=16, T=64, two layers, ragged, for every mode.
#[test]
fn forward_realistic() {
    for (i, mode) in MODES.into_iter().enumerate() {
        let c = Case {
            mode,
            layers: 2,
            bidir: i % 2 == 1,
            ragged: true,
            init: true,
            seq: 64,
            batch: 16,
            input: 128,
            hidden: 256,
            bias: true,
        };
        run_forward_case(&c, 400 + i as u64, FWD_TOL);
    }
}

/// Tanh and sigmoid at +-50 and a long sequence stay finite and agree with the reference.
#[test]
fn forward_saturated_inputs_stay_finite() {
    for (i, mode) in MODES.into_iter().enumerate() {
        let Some(ctx) = gpu() else { return };
        let cfg = RnnConfig::new(mode, 3, 5);
        let mut params = RnnParams::init(&cfg, 1).unwrap();
        // Large weights drive every gate far into saturation.
        for name in cfg.param_names() {
            for v in params.get_mut(&name).unwrap().data.iter_mut() {
                *v *= if mode == Mode::RnnRelu { 1.0 } else { 100.0 };
            }
        }
        let rnn = Rnn::new(ctx, &params).unwrap();
        let t = 300;
        let x = uniform(7 + i as u64, t * 2 * 3, -50.0, 50.0);
        let xt = Tensor::from_f32(ctx, "input", &[t, 2, 3], &x).unwrap();
        let out = rnn.forward(ctx, &xt, &ForwardInputs::default()).unwrap();
        let y = out.output.to_vec(ctx).unwrap();
        assert!(
            y.iter().all(|v| v.is_finite()),
            "{mode:?}: non-finite output"
        );
        let rf = rnn_forward(
            &RefParams::from_params(&params),
            &RefInputs {
                x: f64s(&x),
                seq: t,
                batch: 2,
                ..Default::default()
            },
        );
        if mode != Mode::RnnRelu {
            assert_close(&format!("{mode:?} saturated"), 7, &y, &rf.output, FWD_TOL);
        }
    }
}

/// Prints the worst relative error over 20 seeds of the matrix (run with --ignored --nocapture):
/// the measurement behind FWD_TOL.
#[test]
#[ignore]
fn measure_forward_error() {
    measure_worst("forward", true, |ctx, c, seed| {
        run_forward_case_on(ctx, c, seed, f64::INFINITY)
    });
}

/// Runs `run` (returning a case's worst relative error) over 20 seeds of the matrix and the edge
/// sizes on both kernel variants (and, with `schedules`, on each inference schedule: per layer,
/// wavefront, single workgroup), and prints the worst case with its configuration and seed.
pub fn measure_worst(
    what: &str,
    schedules: bool,
    run: impl Fn(&wgrnn::Context, &Case, u64) -> f64,
) {
    use wgrnn::{KernelVariant, Persistent};
    if gpu().is_none() {
        return;
    }
    let mut setups = vec![];
    for v in [KernelVariant::Simple, KernelVariant::Tiled] {
        setups.push((v, false, Persistent::Never, "per-layer"));
        if schedules {
            setups.push((v, true, Persistent::Never, "wavefront"));
        }
    }
    if schedules {
        setups.push((
            KernelVariant::Tiled,
            false,
            Persistent::Always,
            "single-workgroup",
        ));
    }
    for (v, wavefront, persistent, name) in setups {
        let ctx = wgrnn::Context::with_variant(v).unwrap();
        ctx.set_wavefront(wavefront);
        ctx.set_persistent(persistent);
        let mut worst = (0.0f64, String::new());
        for seed in 0..20u64 {
            for (i, c) in matrix().iter().chain(edge_cases().iter()).enumerate() {
                let case_seed = seed * 1000 + i as u64;
                let e = run(&ctx, c, case_seed);
                if e > worst.0 {
                    worst = (e, format!("{} seed={case_seed}", c.label(&ctx)));
                }
            }
        }
        println!(
            "{what} [{v:?}, {name}]: worst relative error over 20 seeds of the matrix and edge sizes: {:.3e} ({})",
            worst.0, worst.1
        );
    }
}

/// The step API (one timestep from a device-held state) reproduces the sequence forward, for
/// every cell and a 2-layer stack.
#[test]
fn step_api_matches_sequence_forward() {
    let Some(ctx) = gpu() else { return };
    for (i, mode) in MODES.into_iter().enumerate() {
        let cfg = RnnConfig::new(mode, 5, 9).layers(2);
        let rnn = Rnn::random(ctx, &cfg, 10 + i as u64).unwrap();
        let (t, b) = (6, 3);
        let x = uniform(20 + i as u64, t * b * 5, -1.0, 1.0);
        let xt = Tensor::from_f32(ctx, "input", &[t, b, 5], &x).unwrap();
        let full = rnn.forward(ctx, &xt, &ForwardInputs::default()).unwrap();
        let want = full.output.to_vec(ctx).unwrap();
        let mut state = None;
        for s in 0..t {
            let xs = Tensor::from_f32(ctx, "x", &[b, 5], &x[s * b * 5..(s + 1) * b * 5]).unwrap();
            let (y, st) = rnn.step(ctx, &xs, state.as_ref()).unwrap();
            let got = y.to_vec(ctx).unwrap();
            let w: Vec<f64> = want[s * b * 9..(s + 1) * b * 9]
                .iter()
                .map(|&v| v as f64)
                .collect();
            assert_close(&format!("{mode:?} step {s}"), 0, &got, &w, 1e-6);
            state = Some(st);
        }
        let st = state.unwrap();
        let hn: Vec<f64> = full
            .h_n
            .to_vec(ctx)
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect();
        assert_close(
            &format!("{mode:?} final state"),
            0,
            &st.h.to_vec(ctx).unwrap(),
            &hn,
            1e-6,
        );
    }
    // Bidirectional stacks cannot be stepped.
    let bi = Rnn::random(ctx, &RnnConfig::new(Mode::Gru, 2, 3).bidirectional(true), 1).unwrap();
    let xs = Tensor::from_f32(ctx, "x", &[1, 2], &[0.1, 0.2]).unwrap();
    assert!(matches!(
        bi.step(ctx, &xs, None),
        Err(wgrnn::Error::Config(_))
    ));
}

/// A tensor larger than the adapter's largest storage binding is refused with an error naming
/// the limit (nothing is allocated).
#[test]
fn oversized_tensor_is_refused_by_name() {
    let Some(ctx) = gpu() else { return };
    let limit = ctx
        .limits()
        .max_storage_buffer_binding_size
        .min(ctx.limits().max_buffer_size);
    let n = (limit / 4 + 1) as usize;
    let e = Tensor::empty(ctx, "huge", &[n], wgrnn::DType::F32).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("huge") && msg.contains("max_storage_buffer_binding_size"),
        "{msg}"
    );
    // And through the RNN: a layer's saved gates above the limit fail the call, naming them.
    let rnn = Rnn::random(ctx, &RnnConfig::new(Mode::Lstm, 1, 1), 1).unwrap();
    let t = (limit / 16 + 1) as usize; // [T, 1, 4] gates exceed the limit
    let x = Tensor::empty(ctx, "input", &[t, 1, 1], wgrnn::DType::F32);
    if let Ok(x) = x {
        let err = rnn
            .forward_train(ctx, &x, &ForwardInputs::default())
            .unwrap_err();
        assert!(
            err.to_string().contains("max_storage_buffer_binding_size"),
            "{err}"
        );
    }
}

/// Bad inputs are errors naming the problem, never panics.
#[test]
fn forward_input_errors_name_the_tensor() {
    let Some(ctx) = gpu() else { return };
    let rnn = Rnn::random(ctx, &RnnConfig::new(Mode::Lstm, 3, 4).layers(2), 1).unwrap();
    let x = Tensor::zeros(ctx, "input", &[5, 2, 3]).unwrap();
    let bad_x = Tensor::zeros(ctx, "input", &[5, 2, 4]).unwrap();
    let h0 = Tensor::zeros(ctx, "h0", &[1, 2, 4]).unwrap();
    let cases: Vec<(ForwardInputs, &Tensor, &str)> = vec![
        (ForwardInputs::default(), &bad_x, "input"),
        (
            ForwardInputs {
                h0: Some(&h0),
                ..Default::default()
            },
            &x,
            "h0",
        ),
        (
            ForwardInputs {
                c0: Some(&h0),
                ..Default::default()
            },
            &x,
            "c0",
        ),
        (
            ForwardInputs {
                lengths: Some(&[5, 6]),
                ..Default::default()
            },
            &x,
            "lengths",
        ),
        (
            ForwardInputs {
                lengths: Some(&[0, 1]),
                ..Default::default()
            },
            &x,
            "lengths",
        ),
        (
            ForwardInputs {
                lengths: Some(&[5]),
                ..Default::default()
            },
            &x,
            "lengths",
        ),
    ];
    for (inp, x, name) in cases {
        let e = rnn.forward(ctx, x, &inp).unwrap_err();
        assert!(e.to_string().starts_with(name), "{e}");
    }
    for bad in [
        RnnConfig::new(Mode::Lstm, 0, 4),
        RnnConfig::new(Mode::Gru, 3, 0),
        RnnConfig::new(Mode::Lstm, 3, 4).layers(0),
    ] {
        assert!(matches!(
            Rnn::random(ctx, &bad, 1),
            Err(wgrnn::Error::Config(_))
        ));
    }
}
