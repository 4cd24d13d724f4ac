//! Reference cells, twins of `cell_forward` / `cell_backward` in lstm.wgsl, gru.wgsl and
//! elman.wgsl. Pre-activations come in two parts: `x` (input side, incl. b_ih) and `hh`
//! (recurrent side, `W_hh h + b_hh`), because the GRU's n gate needs them apart.

use crate::rnn::Mode;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One cell update.
#[derive(Clone, Debug, Default)]
pub struct CellFwd {
    /// New hidden state h'.
    pub h: f64,
    /// New cell state c' (LSTM; 0 otherwise).
    pub c: f64,
    /// Values the backward needs: LSTM i, f, g, o; GRU r, z, n, h_n; Elman the pre-activation.
    pub save: [f64; 4],
}

/// Gradients of one cell update.
#[derive(Clone, Debug, Default)]
pub struct CellBwd {
    /// Gradient w.r.t. the input-side pre-activations (and b_ih).
    pub dgx: [f64; 4],
    /// Gradient w.r.t. the recurrent-side pre-activations `W_hh h + b_hh` (and b_hh).
    pub dgh: [f64; 4],
    /// Gradient reaching h directly, not through `W_hh` (GRU's `z h` term).
    pub dh_prev: f64,
    /// Gradient w.r.t. c.
    pub dc_prev: f64,
}

/// Forward of one unit: pre-activations `x[g]`, `hh[g]` for each gate g.
pub fn cell_forward(mode: Mode, x: &[f64], hh: &[f64], h_prev: f64, c_prev: f64) -> CellFwd {
    match mode {
        Mode::Lstm => {
            let i = sigmoid(x[0] + hh[0]);
            let f = sigmoid(x[1] + hh[1]);
            let g = (x[2] + hh[2]).tanh();
            let o = sigmoid(x[3] + hh[3]);
            let c = f * c_prev + i * g;
            CellFwd {
                h: o * c.tanh(),
                c,
                save: [i, f, g, o],
            }
        }
        Mode::Gru => {
            let r = sigmoid(x[0] + hh[0]);
            let z = sigmoid(x[1] + hh[1]);
            let n = (x[2] + r * hh[2]).tanh();
            CellFwd {
                h: (1.0 - z) * n + z * h_prev,
                c: 0.0,
                save: [r, z, n, hh[2]],
            }
        }
        // The pre-activation is kept in save[0] only so that gradient checks can stay away
        // from ReLU's kink; the backward does not need it.
        Mode::RnnTanh => CellFwd {
            h: (x[0] + hh[0]).tanh(),
            c: 0.0,
            save: [x[0] + hh[0], 0.0, 0.0, 0.0],
        },
        Mode::RnnRelu => CellFwd {
            h: (x[0] + hh[0]).max(0.0),
            c: 0.0,
            save: [x[0] + hh[0], 0.0, 0.0, 0.0],
        },
    }
}

/// Backward of one unit, given the gradients `dh`, `dc` w.r.t. h' and c' and the forward's
/// results `f`.
pub fn cell_backward(
    mode: Mode,
    dh: f64,
    dc: f64,
    f: &CellFwd,
    h_prev: f64,
    c_prev: f64,
) -> CellBwd {
    match mode {
        Mode::Lstm => {
            let [i, fg, g, o] = f.save;
            let tc = f.c.tanh();
            let dc = dc + dh * o * (1.0 - tc * tc);
            let dg = [
                dc * g * i * (1.0 - i),
                dc * c_prev * fg * (1.0 - fg),
                dc * i * (1.0 - g * g),
                dh * tc * o * (1.0 - o),
            ];
            CellBwd {
                dgx: dg,
                dgh: dg,
                dh_prev: 0.0,
                dc_prev: dc * fg,
            }
        }
        Mode::Gru => {
            let [r, z, n, hn] = f.save;
            let dn = dh * (1.0 - z) * (1.0 - n * n);
            let dz = dh * (h_prev - n) * z * (1.0 - z);
            let dr = dn * hn * r * (1.0 - r);
            CellBwd {
                dgx: [dr, dz, dn, 0.0],
                dgh: [dr, dz, dn * r, 0.0],
                dh_prev: dh * z,
                dc_prev: 0.0,
            }
        }
        Mode::RnnTanh => {
            let d = dh * (1.0 - f.h * f.h);
            CellBwd {
                dgx: [d, 0.0, 0.0, 0.0],
                dgh: [d, 0.0, 0.0, 0.0],
                ..Default::default()
            }
        }
        Mode::RnnRelu => {
            let d = if f.h > 0.0 { dh } else { 0.0 };
            CellBwd {
                dgx: [d, 0.0, 0.0, 0.0],
                dgh: [d, 0.0, 0.0, 0.0],
                ..Default::default()
            }
        }
    }
}
