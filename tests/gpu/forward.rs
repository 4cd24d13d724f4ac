//! Forward conformance: GPU forward vs the f64 CPU reference over the matrix of modes, layers,
//! directions, lengths and initial states, on awkward sizes.

use crate::common::{assert_close, f64s, gpu, uniform};
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_forward};
use wgrnn::{ForwardInputs, Mode, Rnn, RnnConfig, RnnParams, Tensor};

/// Relative error bound per output tensor. f32 against f64 lands near 1e-7..1e-6 for short
/// sequences (measured worst over 20 seeds of the matrix: see docs/NUMERICS.md); 1e-4 leaves room
/// for long sequences' error growth while any indexing or gate mistake gives errors of order 1.
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

pub fn run_forward_case(c: &Case, seed: u64) {
    let Some(ctx) = gpu() else { return };
    let cfg = RnnConfig::new(c.mode, c.input, c.hidden)
        .layers(c.layers)
        .bidirectional(c.bidir)
        .bias(c.bias);
    let params = RnnParams::init(&cfg, seed).unwrap();
    let rnn = Rnn::new(ctx, &params).unwrap();
    let (t, b, nd) = (c.seq, c.batch, cfg.dirs());
    let x = uniform(seed + 1, t * b * c.input, -1.0, 1.0);
    let state_n = c.layers * nd * b * c.hidden;
    let h0 = c.init.then(|| uniform(seed + 2, state_n, -1.0, 1.0));
    let c0 = (c.init && c.mode == Mode::Lstm).then(|| uniform(seed + 3, state_n, -1.0, 1.0));
    let lengths = c.ragged.then(|| lengths_for(seed, t, b));

    let xt = Tensor::from_f32(ctx, "input", &[t, b, c.input], &x).unwrap();
    let h0t = h0.as_ref().map(|v| Tensor::from_f32(ctx, "h0", &[c.layers * nd, b, c.hidden], v).unwrap());
    let c0t = c0.as_ref().map(|v| Tensor::from_f32(ctx, "c0", &[c.layers * nd, b, c.hidden], v).unwrap());
    let inp = ForwardInputs {
        h0: h0t.as_ref(),
        c0: c0t.as_ref(),
        lengths: lengths.as_deref(),
        dropout_seed: 0,
    };
    let out = rnn.forward(ctx, &xt, &inp).unwrap();

    let rp = RefParams::from_params(&params);
    let rf = rnn_forward(
        &rp,
        &RefInputs {
            x: f64s(&x),
            seq: t,
            batch: b,
            h0: h0.as_deref().map(f64s),
            c0: c0.as_deref().map(f64s),
            lengths: lengths.clone(),
            train: false,
            dropout_seed: 0,
        },
    );
    let what = format!(
        "{:?} L={} bidir={} ragged={} init={} T={t} B={b} I={} H={}",
        c.mode, c.layers, c.bidir, c.ragged, c.init, c.input, c.hidden
    );
    assert_close(&format!("{what} output"), seed, &out.output.to_vec(ctx).unwrap(), &rf.output, FWD_TOL);
    assert_close(&format!("{what} h_n"), seed, &out.h_n.to_vec(ctx).unwrap(), &rf.h_n, FWD_TOL);
    if let (Some(g), Some(w)) = (&out.c_n, &rf.c_n) {
        assert_close(&format!("{what} c_n"), seed, &g.to_vec(ctx).unwrap(), w, FWD_TOL);
    }
}

const MODES: [Mode; 4] = [Mode::Lstm, Mode::Gru, Mode::RnnTanh, Mode::RnnRelu];

/// The full matrix: mode x layers {1,2,3} x {uni, bi} x {full, ragged} x {zero, given state},
/// on awkward small sizes (T=5, B=3, I=7, H=13: primes, not multiples of 4).
#[test]
fn forward_matrix() {
    let mut seed = 100;
    for mode in MODES {
        for layers in 1..=3 {
            for bidir in [false, true] {
                for ragged in [false, true] {
                    for init in [false, true] {
                        seed += 1;
                        run_forward_case(
                            &Case { mode, layers, bidir, ragged, init, seq: 5, batch: 3, input: 7, hidden: 13, bias: true },
                            seed,
                        );
                    }
                }
            }
        }
    }
}
