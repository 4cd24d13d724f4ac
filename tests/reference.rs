//! Finite-difference checks of the CPU reference backward (f64 central differences), for every
//! mode, including a bidirectional 2-layer stack with ragged lengths, initial states and dropout.
//! Needs no GPU.

#[path = "common/mod.rs"]
mod common;

use common::{f64s, uniform};
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_backward, rnn_forward};
use wgrnn::{Mode, RnnConfig, RnnParams};

/// Central differences with EPS = 1e-6 in f64 are exact to about 1e-9 relative (truncation
/// ~EPS^2, rounding ~1e-16/EPS); 1e-6 catches any wrong term while never flagging rounding.
const EPS: f64 = 1e-6;
const FD_TOL: f64 = 1e-6;

struct Problem {
    p: RefParams,
    inp: RefInputs,
    dy: Vec<f64>,
    dhn: Vec<f64>,
    dcn: Vec<f64>,
}

/// The scalar whose gradient the backward computes: <output, dy> + <h_n, dhn> + <c_n, dcn>.
fn loss(pr: &Problem, p: &RefParams, inp: &RefInputs) -> f64 {
    let f = rnn_forward(p, inp);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    dot(&f.output, &pr.dy) + dot(&f.h_n, &pr.dhn) + f.c_n.as_ref().map_or(0.0, |c| dot(c, &pr.dcn))
}

fn check(name: &str, analytic: &[f64], mut perturb: impl FnMut(usize, f64) -> f64) {
    let mut num = 0.0;
    let mut den = 0.0;
    let mut worst: (usize, f64, f64) = (0, 0.0, 0.0);
    for (i, &a) in analytic.iter().enumerate() {
        let n = (perturb(i, EPS) - perturb(i, -EPS)) / (2.0 * EPS);
        num += (n - a) * (n - a);
        den += n * n;
        if (n - a).abs() > (worst.1 - worst.2).abs() {
            worst = (i, a, n);
        }
    }
    let rel = (num / den.max(1e-300)).sqrt();
    assert!(
        rel <= FD_TOL || num.sqrt() <= 1e-9,
        "{name}: relative error {rel:.3e} vs finite differences; worst [{}]: analytic {:.9e} numeric {:.9e}",
        worst.0,
        worst.1,
        worst.2
    );
}

fn gradcheck(
    mode: Mode,
    layers: usize,
    bidir: bool,
    ragged: bool,
    init: bool,
    dropout: f32,
    seed0: u64,
) {
    let (t, b, i, h) = (4, 3, 3, 4);
    let cfg = RnnConfig::new(mode, i, h)
        .layers(layers)
        .bidirectional(bidir)
        .dropout(dropout);
    let nd = cfg.dirs();
    let sn = layers * nd * b * h;
    // Pick the first seed whose forward keeps every pre-activation 1e-4 away from ReLU's kink,
    // so no perturbation of 1e-6 crosses it.
    let mut seed = seed0;
    let pr = loop {
        let p = RefParams::from_params(&RnnParams::init(&cfg, seed).unwrap());
        let inp = RefInputs {
            x: f64s(&uniform(seed + 1, t * b * i, -1.0, 1.0)),
            seq: t,
            batch: b,
            h0: init.then(|| f64s(&uniform(seed + 2, sn, -1.0, 1.0))),
            c0: (init && mode == Mode::Lstm).then(|| f64s(&uniform(seed + 3, sn, -1.0, 1.0))),
            lengths: ragged.then(|| vec![t, 1, 3]),
            train: true,
            dropout_seed: 7,
        };
        if rnn_forward(&p, &inp).preactivation_margin() > 1e-4 {
            break Problem {
                p,
                inp,
                dy: f64s(&uniform(seed + 4, t * b * nd * h, -1.0, 1.0)),
                dhn: f64s(&uniform(seed + 5, sn, -1.0, 1.0)),
                dcn: f64s(&uniform(seed + 6, sn, -1.0, 1.0)),
            };
        }
        seed += 100;
    };
    let f = rnn_forward(&pr.p, &pr.inp);
    let lstm = mode == Mode::Lstm;
    let g = rnn_backward(
        &pr.p,
        &f,
        Some(&pr.dy),
        Some(&pr.dhn),
        lstm.then_some(&pr.dcn[..]),
    );
    let tag = format!(
        "{mode:?} L={layers} bidir={bidir} ragged={ragged} init={init} p={dropout} seed={seed}"
    );

    check(&format!("{tag} grad_input"), &g.input, |k, e| {
        let mut inp = pr.inp.clone();
        inp.x[k] += e;
        loss(&pr, &pr.p, &inp)
    });
    if init {
        check(&format!("{tag} grad_h0"), &g.h0, |k, e| {
            let mut inp = pr.inp.clone();
            inp.h0.as_mut().unwrap()[k] += e;
            loss(&pr, &pr.p, &inp)
        });
        if lstm {
            check(&format!("{tag} grad_c0"), g.c0.as_ref().unwrap(), |k, e| {
                let mut inp = pr.inp.clone();
                inp.c0.as_mut().unwrap()[k] += e;
                loss(&pr, &pr.p, &inp)
            });
        }
    }
    for (pi, (name, ga)) in g.params.iter().enumerate() {
        check(&format!("{tag} grad.{name}"), ga, |k, e| {
            let mut p = pr.p.clone();
            p.named_mut()[pi].1[k] += e;
            loss(&pr, &p, &pr.inp)
        });
    }
}

#[test]
fn gradcheck_lstm() {
    gradcheck(Mode::Lstm, 1, false, false, false, 0.0, 1);
    gradcheck(Mode::Lstm, 2, true, true, true, 0.0, 2);
}

#[test]
fn gradcheck_gru() {
    gradcheck(Mode::Gru, 1, false, false, false, 0.0, 3);
    gradcheck(Mode::Gru, 2, true, true, true, 0.0, 4);
}

#[test]
fn gradcheck_rnn_tanh() {
    gradcheck(Mode::RnnTanh, 1, false, false, true, 0.0, 5);
    gradcheck(Mode::RnnTanh, 2, true, true, true, 0.0, 6);
}

#[test]
fn gradcheck_rnn_relu() {
    gradcheck(Mode::RnnRelu, 1, false, false, true, 0.0, 7);
    gradcheck(Mode::RnnRelu, 2, true, true, true, 0.0, 8);
}

#[test]
fn gradcheck_dropout_between_layers() {
    gradcheck(Mode::Lstm, 3, true, true, true, 0.3, 9);
    gradcheck(Mode::Gru, 2, false, true, false, 0.5, 10);
}

// ---------------------------------------------------------------------------------------------
// Layers: the CPU backward of each against central differences of its CPU forward.

use wgrnn::reference::{dropout, embedding, linear, loss};

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn gradcheck_linear() {
    let (m, fan_in, fan_out) = (5, 4, 3);
    let x = f64s(&uniform(1, m * fan_in, -1.0, 1.0));
    let w = f64s(&uniform(2, fan_out * fan_in, -1.0, 1.0));
    let b = f64s(&uniform(3, fan_out, -1.0, 1.0));
    let dy = f64s(&uniform(4, m * fan_out, -1.0, 1.0));
    let f = |x: &[f64], w: &[f64], b: &[f64]| {
        dot(
            &linear::linear_forward(x, w, Some(b), m, fan_in, fan_out),
            &dy,
        )
    };
    let g = linear::linear_backward(&x, &w, &dy, m, fan_in, fan_out);
    check("linear dx", &g.dx, |k, e| {
        let mut x2 = x.clone();
        x2[k] += e;
        f(&x2, &w, &b)
    });
    check("linear dweight", &g.dw, |k, e| {
        let mut w2 = w.clone();
        w2[k] += e;
        f(&x, &w2, &b)
    });
    check("linear dbias", &g.db, |k, e| {
        let mut b2 = b.clone();
        b2[k] += e;
        f(&x, &w, &b2)
    });
}

#[test]
fn gradcheck_embedding() {
    let (vocab, dim) = (5, 3);
    let ids = [2u32, 0, 2, 4, 2, 1, 0];
    let table = f64s(&uniform(1, vocab * dim, -1.0, 1.0));
    let dy = f64s(&uniform(2, ids.len() * dim, -1.0, 1.0));
    let g = embedding::embedding_backward(&ids, &dy, vocab, dim, None);
    check("embedding dweight", &g, |k, e| {
        let mut t = table.clone();
        t[k] += e;
        dot(&embedding::embedding_forward(&t, &ids, vocab, dim), &dy)
    });
    // With a padding id its row gets no gradient (PyTorch's rule) and the others are unchanged.
    let gp = embedding::embedding_backward(&ids, &dy, vocab, dim, Some(0));
    assert!(gp[..dim].iter().all(|&v| v == 0.0));
    assert_eq!(gp[dim..], g[dim..]);
}

#[test]
fn gradcheck_softmax_ce() {
    let (rows, vocab) = (6, 7);
    let logits = f64s(&uniform(1, rows * vocab, -3.0, 3.0));
    let targets = [3u32, 6, 9, 0, 9, 1];
    let r = loss::softmax_ce_forward(&logits, &targets, vocab, Some(9));
    assert_eq!(r.count, 4);
    check("softmax CE dlogits", &r.dlogits, |k, e| {
        let mut x = logits.clone();
        x[k] += e;
        loss::softmax_ce_forward(&x, &targets, vocab, Some(9)).loss
    });
    // log_softmax agrees with the loss: -logp[target] is the row loss.
    let lp = loss::log_softmax_forward(&logits, vocab);
    for (n, &t) in targets.iter().enumerate() {
        if t != 9 {
            assert!((-lp[n * vocab + t as usize] - r.row_loss[n]).abs() < 1e-12);
        }
    }
}

#[test]
fn gradcheck_dropout() {
    let (t, b, u) = (3, 2, 5);
    let x = f64s(&uniform(1, t * b * u, -1.0, 1.0));
    let dy = f64s(&uniform(2, t * b * u, -1.0, 1.0));
    let g = dropout::dropout(&dy, b, u, 7, 1000, 0.4);
    check("dropout dx", &g, |k, e| {
        let mut x2 = x.clone();
        x2[k] += e;
        dot(&dropout::dropout(&x2, b, u, 7, 1000, 0.4), &dy)
    });
}
