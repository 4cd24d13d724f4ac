//! Reference stack forward and backward: plain loops over layers, directions, batch elements and
//! timesteps, f64 throughout. Same semantics as the GPU path (and PyTorch): gate order, GRU
//! reset-after, packed-sequence lengths, inter-layer dropout from the shared hash.

use super::cells::{CellFwd, cell_backward, cell_forward};
use super::dropout::dropout;
use crate::rnn::{Mode, RnnConfig, RnnParams};

/// One direction of one layer, PyTorch's layout, in f64. Biases are zeros when absent.
#[derive(Clone, Debug)]
pub struct DirParams {
    /// `[G*H, I_l]`
    pub w_ih: Vec<f64>,
    /// `[G*H, H]`
    pub w_hh: Vec<f64>,
    /// `[G*H]`
    pub b_ih: Vec<f64>,
    /// `[G*H]`
    pub b_hh: Vec<f64>,
}

/// All parameters in f64, `layers[l][d]`.
#[derive(Clone, Debug)]
pub struct RefParams {
    /// The configuration.
    pub config: RnnConfig,
    /// `layers[l][d]`
    pub layers: Vec<Vec<DirParams>>,
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

impl RefParams {
    /// Converts f32 parameters.
    pub fn from_params(p: &RnnParams) -> Self {
        let cfg = p.config().clone();
        let gh = cfg.gate_rows();
        let get = |n: String| p.get(&n).map(|t| f64s(&t.data));
        let layers = (0..cfg.num_layers)
            .map(|l| {
                (0..cfg.dirs())
                    .map(|d| {
                        let suf = if d == 1 { "_reverse" } else { "" };
                        DirParams {
                            w_ih: get(format!("weight_ih_l{l}{suf}")).unwrap_or_default(),
                            w_hh: get(format!("weight_hh_l{l}{suf}")).unwrap_or_default(),
                            b_ih: get(format!("bias_ih_l{l}{suf}")).unwrap_or(vec![0.0; gh]),
                            b_hh: get(format!("bias_hh_l{l}{suf}")).unwrap_or(vec![0.0; gh]),
                        }
                    })
                    .collect()
            })
            .collect();
        RefParams {
            config: cfg,
            layers,
        }
    }

    /// Named parameter tensors in PyTorch's order (biases only when configured), mutable: for
    /// finite differences.
    pub fn named_mut(&mut self) -> Vec<(String, &mut Vec<f64>)> {
        let bias = self.config.bias;
        let mut out = Vec::new();
        for (l, dirs) in self.layers.iter_mut().enumerate() {
            for (d, p) in dirs.iter_mut().enumerate() {
                let suf = if d == 1 { "_reverse" } else { "" };
                out.push((format!("weight_ih_l{l}{suf}"), &mut p.w_ih));
                out.push((format!("weight_hh_l{l}{suf}"), &mut p.w_hh));
                if bias {
                    out.push((format!("bias_ih_l{l}{suf}"), &mut p.b_ih));
                    out.push((format!("bias_hh_l{l}{suf}"), &mut p.b_hh));
                }
            }
        }
        out
    }
}

/// Inputs of a reference call.
#[derive(Clone, Debug, Default)]
pub struct RefInputs {
    /// `[T, B, I]`
    pub x: Vec<f64>,
    /// T
    pub seq: usize,
    /// B
    pub batch: usize,
    /// `[L*D, B, H]`
    pub h0: Option<Vec<f64>>,
    /// `[L*D, B, H]` (LSTM)
    pub c0: Option<Vec<f64>>,
    /// `[B]`, each in `1..=T`
    pub lengths: Option<Vec<usize>>,
    /// Training mode: apply inter-layer dropout.
    pub train: bool,
    /// Dropout mask seed.
    pub dropout_seed: u32,
}

struct StepCache {
    h_prev: Vec<f64>,
    c_prev: Vec<f64>,
    cells: Vec<CellFwd>,
}

struct LayerCache {
    x: Vec<f64>,
    steps: Vec<Option<StepCache>>, // [D, T, B]
}

/// Results of a reference forward (and what its backward needs).
pub struct RefForward {
    /// `[T, B, D*H]`
    pub output: Vec<f64>,
    /// `[L*D, B, H]`
    pub h_n: Vec<f64>,
    /// `[L*D, B, H]` (LSTM)
    pub c_n: Option<Vec<f64>>,
    cache: Vec<LayerCache>,
    inputs: RefInputs,
    inputs_mode: Mode,
}

/// Gradients from a reference backward.
#[derive(Clone, Debug)]
pub struct RefGrads {
    /// `[T, B, I]`
    pub input: Vec<f64>,
    /// `[L*D, B, H]`
    pub h0: Vec<f64>,
    /// `[L*D, B, H]` (LSTM)
    pub c0: Option<Vec<f64>>,
    /// `(name, gradient)` for every parameter, PyTorch's order.
    pub params: Vec<(String, Vec<f64>)>,
}

fn time_order(d: usize, t_len: usize) -> Vec<usize> {
    if d == 0 {
        (0..t_len).collect()
    } else {
        (0..t_len).rev().collect()
    }
}

/// `W [rows, cols] v [cols] + bias`.
fn affine(w: &[f64], v: &[f64], bias: &[f64]) -> Vec<f64> {
    let cols = v.len();
    bias.iter()
        .enumerate()
        .map(|(r, b)| b + (0..cols).map(|k| w[r * cols + k] * v[k]).sum::<f64>())
        .collect()
}

/// Runs the stack. Shapes as in [`RefInputs`]; `p` must match the configuration.
pub fn rnn_forward(p: &RefParams, inp: &RefInputs) -> RefForward {
    let cfg = &p.config;
    let (t_len, batch, hid) = (inp.seq, inp.batch, cfg.hidden_size);
    let (nl, nd, ng) = (cfg.num_layers, cfg.dirs(), cfg.mode.gates());
    let lstm = cfg.mode == Mode::Lstm;
    let len_of = |b: usize| inp.lengths.as_ref().map_or(t_len, |l| l[b]);
    let mut h_n = vec![0.0; nl * nd * batch * hid];
    let mut c_n = vec![0.0; nl * nd * batch * hid];
    let mut x = inp.x.clone();
    let mut cache = Vec::new();
    let mut y = Vec::new();
    for l in 0..nl {
        let ik = cfg.layer_input(l);
        y = vec![0.0; t_len * batch * nd * hid];
        let mut steps: Vec<Option<StepCache>> = (0..nd * t_len * batch).map(|_| None).collect();
        for d in 0..nd {
            let w = &p.layers[l][d];
            for b in 0..batch {
                let s0 = ((l * nd + d) * batch + b) * hid;
                let mut h = inp
                    .h0
                    .as_ref()
                    .map_or(vec![0.0; hid], |v| v[s0..s0 + hid].to_vec());
                let mut c = inp
                    .c0
                    .as_ref()
                    .map_or(vec![0.0; hid], |v| v[s0..s0 + hid].to_vec());
                for t in time_order(d, t_len) {
                    if t >= len_of(b) {
                        continue; // output stays zero, state carries
                    }
                    let xt = &x[(t * batch + b) * ik..(t * batch + b + 1) * ik];
                    let xg = affine(&w.w_ih, xt, &w.b_ih);
                    let hg = affine(&w.w_hh, &h, &w.b_hh);
                    let cells: Vec<CellFwd> = (0..hid)
                        .map(|j| {
                            let xs: Vec<f64> = (0..ng).map(|g| xg[g * hid + j]).collect();
                            let hs: Vec<f64> = (0..ng).map(|g| hg[g * hid + j]).collect();
                            cell_forward(cfg.mode, &xs, &hs, h[j], c[j])
                        })
                        .collect();
                    let h_new: Vec<f64> = cells.iter().map(|o| o.h).collect();
                    let c_new: Vec<f64> = cells.iter().map(|o| o.c).collect();
                    for j in 0..hid {
                        y[(t * batch + b) * nd * hid + d * hid + j] = h_new[j];
                    }
                    steps[(d * t_len + t) * batch + b] = Some(StepCache {
                        h_prev: std::mem::replace(&mut h, h_new),
                        c_prev: std::mem::replace(&mut c, c_new),
                        cells,
                    });
                }
                h_n[s0..s0 + hid].copy_from_slice(&h);
                c_n[s0..s0 + hid].copy_from_slice(&c);
            }
        }
        cache.push(LayerCache {
            x: x.clone(),
            steps,
        });
        x = if inp.train && cfg.dropout > 0.0 && l + 1 < nl {
            dropout(&y, batch, nd * hid, inp.dropout_seed, l as u32, cfg.dropout)
        } else {
            y.clone()
        };
    }
    RefForward {
        output: y,
        h_n,
        c_n: lstm.then_some(c_n),
        cache,
        inputs: inp.clone(),
        inputs_mode: cfg.mode,
    }
}

impl RefForward {
    /// The smallest |pre-activation| of any Elman unit at any valid step: how far the forward
    /// stays from ReLU's kink (finite differences need a margin). Infinite for other cells.
    pub fn preactivation_margin(&self) -> f64 {
        if !matches!(self.inputs_mode, Mode::RnnRelu | Mode::RnnTanh) {
            return f64::INFINITY;
        }
        self.cache
            .iter()
            .flat_map(|l| l.steps.iter().flatten())
            .flat_map(|s| s.cells.iter())
            .map(|c| c.save[0].abs())
            .fold(f64::INFINITY, f64::min)
    }
}

/// Backpropagates through the stack. `dy [T, B, D*H]`, `dh_n`, `dc_n` `[L*D, B, H]`; `None` means
/// zeros.
pub fn rnn_backward(
    p: &RefParams,
    fwd: &RefForward,
    dy: Option<&[f64]>,
    dh_n: Option<&[f64]>,
    dc_n: Option<&[f64]>,
) -> RefGrads {
    let cfg = &p.config;
    let inp = &fwd.inputs;
    let (t_len, batch, hid) = (inp.seq, inp.batch, cfg.hidden_size);
    let (nl, nd, ng) = (cfg.num_layers, cfg.dirs(), cfg.mode.gates());
    let gh = ng * hid;
    let len_of = |b: usize| inp.lengths.as_ref().map_or(t_len, |l| l[b]);
    let mut dh0 = vec![0.0; nl * nd * batch * hid];
    let mut dc0 = vec![0.0; nl * nd * batch * hid];
    let mut grads: Vec<Vec<DirParams>> = Vec::new();
    let mut dout: Vec<f64> = dy.map_or(vec![0.0; t_len * batch * nd * hid], |v| v.to_vec());
    let mut dinput = Vec::new();
    for l in (0..nl).rev() {
        let ik = cfg.layer_input(l);
        let lc = &fwd.cache[l];
        let mut dx = vec![0.0; t_len * batch * ik];
        let mut layer_grads = Vec::new();
        for d in 0..nd {
            let w = &p.layers[l][d];
            let mut g = DirParams {
                w_ih: vec![0.0; gh * ik],
                w_hh: vec![0.0; gh * hid],
                b_ih: vec![0.0; gh],
                b_hh: vec![0.0; gh],
            };
            for b in 0..batch {
                let s0 = ((l * nd + d) * batch + b) * hid;
                let mut dh = dh_n.map_or(vec![0.0; hid], |v| v[s0..s0 + hid].to_vec());
                let mut dc = dc_n.map_or(vec![0.0; hid], |v| v[s0..s0 + hid].to_vec());
                for t in time_order(d, t_len).into_iter().rev() {
                    if t >= len_of(b) {
                        continue; // padded step: gradients pass through unchanged
                    }
                    let sc = lc.steps[(d * t_len + t) * batch + b]
                        .as_ref()
                        .expect("valid step has a cache");
                    for j in 0..hid {
                        dh[j] += dout[(t * batch + b) * nd * hid + d * hid + j];
                    }
                    let xt = &lc.x[(t * batch + b) * ik..(t * batch + b + 1) * ik];
                    let mut dgx = vec![0.0; gh];
                    let mut dgh = vec![0.0; gh];
                    let mut dh_direct = vec![0.0; hid];
                    for j in 0..hid {
                        let cb = cell_backward(
                            cfg.mode,
                            dh[j],
                            dc[j],
                            &sc.cells[j],
                            sc.h_prev[j],
                            sc.c_prev[j],
                        );
                        for q in 0..ng {
                            dgx[q * hid + j] = cb.dgx[q];
                            dgh[q * hid + j] = cb.dgh[q];
                        }
                        dh_direct[j] = cb.dh_prev;
                        dc[j] = cb.dc_prev;
                    }
                    for r in 0..gh {
                        g.b_ih[r] += dgx[r];
                        g.b_hh[r] += dgh[r];
                        for k in 0..ik {
                            g.w_ih[r * ik + k] += dgx[r] * xt[k];
                            dx[(t * batch + b) * ik + k] += dgx[r] * w.w_ih[r * ik + k];
                        }
                        for k in 0..hid {
                            g.w_hh[r * hid + k] += dgh[r] * sc.h_prev[k];
                            dh_direct[k] += dgh[r] * w.w_hh[r * hid + k];
                        }
                    }
                    dh = dh_direct;
                }
                dh0[s0..s0 + hid].copy_from_slice(&dh);
                dc0[s0..s0 + hid].copy_from_slice(&dc);
            }
            layer_grads.push(g);
        }
        grads.push(layer_grads);
        if l > 0 {
            dout = if inp.train && cfg.dropout > 0.0 {
                dropout(
                    &dx,
                    batch,
                    ik,
                    inp.dropout_seed,
                    (l - 1) as u32,
                    cfg.dropout,
                )
            } else {
                dx
            };
        } else {
            dinput = dx;
        }
    }
    grads.reverse();
    let mut gp = RefParams {
        config: cfg.clone(),
        layers: grads,
    };
    let params = gp
        .named_mut()
        .into_iter()
        .map(|(n, v)| (n, v.clone()))
        .collect();
    RefGrads {
        input: dinput,
        h0: dh0,
        c0: (cfg.mode == Mode::Lstm).then_some(dc0),
        params,
    }
}
