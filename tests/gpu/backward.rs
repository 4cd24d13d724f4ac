//! Backward conformance: GPU backward vs the f64 CPU reference backward, every gradient tensor,
//! over the forward matrix; determinism (bit-identical runs); accumulation.

use crate::common::{assert_close, f64s, gpu, uniform};
use crate::forward::{Case, Fixture, MODES, edge_cases, matrix, measure_worst};
use wgrnn::reference::rnn::{RefParams, rnn_backward, rnn_forward};
use wgrnn::{ForwardInputs, Mode, Rnn, RnnConfig, RnnGrads, Tensor, Upstream};

/// Relative error bound per gradient tensor, up to H=256 and T=64. Measured worst over 20 seeds
/// of the matrix and the edge sizes on lavapipe: 3.8e-6 (docs/NUMERICS.md,
/// `measure_backward_error`); 1e-4 keeps a 25x margin, well under the 1e-3 ceiling.
const BWD_TOL: f64 = 1e-4;

/// Runs forward_train + backward on the GPU and the reference, compares every gradient; returns
/// the worst relative error.
pub fn run_backward_case(c: &Case, seed: u64, dropout: f32, tol: f64) -> f64 {
    match gpu() {
        Some(ctx) => run_backward_case_on(ctx, c, seed, dropout, tol),
        None => 0.0,
    }
}

/// [`run_backward_case`] on `ctx`.
pub fn run_backward_case_on(
    ctx: &wgrnn::Context,
    c: &Case,
    seed: u64,
    dropout: f32,
    tol: f64,
) -> f64 {
    let f = Fixture::new(ctx, c, seed, dropout);
    let (cfg, rnn) = (&f.cfg, &f.rnn);
    let (t, b, nd, h) = (c.seq, c.batch, cfg.dirs(), c.hidden);
    let sn = c.layers * nd * b * h;
    let dy = uniform(seed + 4, t * b * nd * h, -1.0, 1.0);
    let dhn = uniform(seed + 5, sn, -1.0, 1.0);
    let dcn = uniform(seed + 6, sn, -1.0, 1.0);
    let lstm = c.mode == Mode::Lstm;
    let dyt = Tensor::from_f32(ctx, "dy", &[t, b, nd * h], &dy).unwrap();
    let dhnt = Tensor::from_f32(ctx, "dh_n", &f.state_shape, &dhn).unwrap();
    let dcnt = Tensor::from_f32(ctx, "dc_n", &f.state_shape, &dcn).unwrap();
    let seed32 = seed as u32 ^ 0xabc;
    let (_, st) = rnn.forward_train(ctx, &f.xt, &f.inputs(seed32)).unwrap();
    let up = Upstream {
        output: Some(&dyt),
        h_n: Some(&dhnt),
        c_n: lstm.then_some(&dcnt),
    };
    let g = rnn.backward(ctx, &st, &up, None).unwrap();

    let rp = RefParams::from_params(&f.params);
    let rf = rnn_forward(&rp, &f.reference(c, true, seed32));
    let rg = rnn_backward(
        &rp,
        &rf,
        Some(&f64s(&dy)),
        Some(&f64s(&dhn)),
        lstm.then(|| f64s(&dcn)).as_deref(),
    );
    let what = format!("{} p={dropout}", c.label(ctx));
    let mut worst = assert_close(
        &format!("{what} grad_input"),
        seed,
        &g.input.to_vec(ctx).unwrap(),
        &rg.input,
        tol,
    );
    worst = worst.max(assert_close(
        &format!("{what} grad_h0"),
        seed,
        &g.h0.to_vec(ctx).unwrap(),
        &rg.h0,
        tol,
    ));
    if let (Some(gc), Some(rc)) = (&g.c0, &rg.c0) {
        worst = worst.max(assert_close(
            &format!("{what} grad_c0"),
            seed,
            &gc.to_vec(ctx).unwrap(),
            rc,
            tol,
        ));
    }
    let views = g.param_views(cfg);
    assert_eq!(views.len(), rg.params.len());
    for (v, (name, want)) in views.iter().zip(&rg.params) {
        assert_eq!(&v.name, name);
        let got = v.to_host(ctx).unwrap().data;
        worst = worst.max(assert_close(
            &format!("{what} grad.{name}"),
            seed,
            &got,
            want,
            tol,
        ));
    }
    worst
}

#[test]
fn backward_matrix() {
    for (i, c) in matrix().iter().enumerate() {
        run_backward_case(c, 500 + i as u64, 0.0, BWD_TOL);
    }
}

#[test]
fn backward_edge_sizes() {
    for (i, c) in edge_cases().iter().enumerate() {
        run_backward_case(c, 700 + i as u64, 0.0, BWD_TOL);
    }
}

/// H=256, T=64: the largest size the backward's tolerance is specified for.
#[test]
fn backward_realistic() {
    for (i, mode) in MODES.into_iter().enumerate() {
        let c = Case {
            mode,
            layers: 2,
            bidir: i % 2 == 0,
            ragged: true,
            init: true,
            seq: 64,
            batch: 8,
            input: 128,
            hidden: 256,
            bias: true,
        };
        run_backward_case(&c, 800 + i as u64, 0.0, BWD_TOL);
    }
}

/// Inter-layer dropout: the GPU masks (forward and backward) equal the reference's bit for bit,
/// or the gradients would differ by whole elements.
#[test]
fn backward_with_dropout() {
    for (i, mode) in MODES.into_iter().enumerate() {
        let c = Case {
            mode,
            layers: 3,
            bidir: i % 2 == 1,
            ragged: true,
            init: true,
            seq: 6,
            batch: 5,
            input: 9,
            hidden: 11,
            bias: true,
        };
        run_backward_case(&c, 900 + i as u64, 0.35, BWD_TOL);
    }
}

fn bits(ctx: &wgrnn::Context, g: &RnnGrads, cfg: &RnnConfig) -> Vec<u32> {
    let mut v: Vec<u32> = Vec::new();
    for t in [&g.input, &g.h0] {
        v.extend(t.to_vec(ctx).unwrap().iter().map(|x| x.to_bits()));
    }
    for p in g.param_views(cfg) {
        v.extend(p.to_host(ctx).unwrap().data.iter().map(|x| x.to_bits()));
    }
    v
}

/// Two backward runs on the same inputs give identical bits (no atomics, fixed order).
#[test]
fn backward_is_deterministic() {
    let Some(ctx) = gpu() else { return };
    let cfg = RnnConfig::new(Mode::Gru, 19, 37)
        .layers(2)
        .bidirectional(true);
    let rnn = Rnn::random(ctx, &cfg, 3).unwrap();
    let (t, b) = (11, 6);
    let x = Tensor::from_f32(
        ctx,
        "input",
        &[t, b, 19],
        &uniform(1, t * b * 19, -1.0, 1.0),
    )
    .unwrap();
    let dy = Tensor::from_f32(ctx, "dy", &[t, b, 74], &uniform(2, t * b * 74, -1.0, 1.0)).unwrap();
    let lengths = [11, 3, 7, 1, 11, 5];
    let inp = ForwardInputs {
        lengths: Some(&lengths),
        ..Default::default()
    };
    let run = || {
        let (_, st) = rnn.forward_train(ctx, &x, &inp).unwrap();
        let g = rnn
            .backward(
                ctx,
                &st,
                &Upstream {
                    output: Some(&dy),
                    ..Default::default()
                },
                None,
            )
            .unwrap();
        bits(ctx, &g, &cfg)
    };
    let a = run();
    let b2 = run();
    assert!(a == b2, "two backward runs differ");
}

/// `accumulate` adds into existing gradients: two backward calls into one set equal twice one.
#[test]
fn backward_accumulates() {
    let Some(ctx) = gpu() else { return };
    let cfg = RnnConfig::new(Mode::Lstm, 5, 9).layers(2);
    let rnn = Rnn::random(ctx, &cfg, 4).unwrap();
    let (t, b) = (4, 3);
    let x = Tensor::from_f32(ctx, "input", &[t, b, 5], &uniform(5, t * b * 5, -1.0, 1.0)).unwrap();
    let dy = Tensor::from_f32(ctx, "dy", &[t, b, 9], &uniform(6, t * b * 9, -1.0, 1.0)).unwrap();
    let (_, st) = rnn
        .forward_train(ctx, &x, &ForwardInputs::default())
        .unwrap();
    let up = Upstream {
        output: Some(&dy),
        ..Default::default()
    };
    let once = rnn.backward(ctx, &st, &up, None).unwrap();
    let acc = rnn.zero_grads(ctx).unwrap();
    rnn.backward(ctx, &st, &up, Some(&acc)).unwrap();
    rnn.backward(ctx, &st, &up, Some(&acc)).unwrap();
    let acc = RnnGrads {
        params: acc,
        ..once.clone()
    };
    for (a, o) in acc.param_views(&cfg).iter().zip(once.param_views(&cfg)) {
        let a = a.to_host(ctx).unwrap().data;
        let o = o.to_host(ctx).unwrap().data;
        for (x, y) in a.iter().zip(&o) {
            assert!(
                (x - 2.0 * y).abs() <= 1e-6 * (1.0 + y.abs()),
                "{}: {x} != 2 * {y}",
                o.len()
            );
        }
    }
}

/// Prints the worst relative error over 20 seeds (run with --ignored --nocapture): the
/// measurement behind BWD_TOL.
#[test]
#[ignore]
fn measure_backward_error() {
    measure_worst("backward", false, |ctx, c, seed| {
        run_backward_case_on(ctx, c, seed, 0.0, f64::INFINITY)
    });
}
