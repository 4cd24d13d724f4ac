//! Reference of [`crate::nn::Attention`] (composed on the GPU from `matmul.wgsl`,
//! `softmax.wgsl`, `elementwise.wgsl` and the linear layer): the four scores, masked by
//! source length, forward and backward, in f64 and batch-major.

use super::linear::{linear_backward, linear_forward};
use super::ops::{bmm, bmm_backward, masked_softmax_backward, masked_softmax_forward};
use crate::nn::Score;

/// The weights, row-major as in the layer: `key`, `value` `[H, D]`; `query` `[H, H]`
/// (multiplicative) or `[r, H]`; `key_proj` `[r, H]`; `energy` `[1, r]`.
#[derive(Clone, Debug)]
pub struct AttentionRef {
    /// The score.
    pub score: Score,
    /// Encoder size D.
    pub enc: usize,
    /// Decoder size H.
    pub hidden: usize,
    /// `W_k`.
    pub key: Vec<f64>,
    /// `W_v`.
    pub value: Vec<f64>,
    /// `W_q`, `U` or `W_2`.
    pub query: Option<Vec<f64>>,
    /// `V` or `W_1`.
    pub key_proj: Option<Vec<f64>>,
    /// `w`.
    pub energy: Option<Vec<f64>>,
}

/// Gradients of [`AttentionRef::backward`]: the inputs' and every weight's (absent weights get
/// empty vectors).
#[derive(Clone, Debug, Default)]
pub struct AttentionGradsRef {
    /// `[B, S, D]`.
    pub denc: Vec<f64>,
    /// `[B, T, H]`.
    pub dstates: Vec<f64>,
    /// Like `key`.
    pub dkey: Vec<f64>,
    /// Like `value`.
    pub dvalue: Vec<f64>,
    /// Like `query`.
    pub dquery: Vec<f64>,
    /// Like `key_proj`.
    pub dkey_proj: Vec<f64>,
    /// Like `energy`.
    pub denergy: Vec<f64>,
}

/// The intermediate values of a forward.
struct Forward {
    keys: Vec<f64>,
    values: Vec<f64>,
    kp: Vec<f64>,
    qp: Vec<f64>,
    z: Vec<f64>,
    weights: Vec<f64>,
    ctx: Vec<f64>,
}

impl AttentionRef {
    /// The width of the projected query and keys (H for dot and multiplicative, else r).
    fn width(&self) -> usize {
        match self.score {
            Score::Dot | Score::Multiplicative => self.hidden,
            Score::LowRank(r) | Score::Additive(r) => r,
        }
    }

    fn run(&self, enc: &[f64], lens: &[usize], states: &[f64], t: usize) -> Forward {
        let (d, h, w) = (self.enc, self.hidden, self.width());
        let b = lens.len();
        let s = enc.len() / (b * d);
        let keys = linear_forward(enc, &self.key, None, b * s, d, h);
        let values = linear_forward(enc, &self.value, None, b * s, d, h);
        let kp = match &self.key_proj {
            Some(p) => linear_forward(&keys, p, None, b * s, h, w),
            None => Vec::new(),
        };
        let qp = match &self.query {
            Some(q) => linear_forward(states, q, None, b * t, h, w),
            None => Vec::new(),
        };
        let mut z = Vec::new();
        let scores = match self.score {
            Score::Dot => bmm(states, &keys, b, t, h, s, false, true),
            Score::Multiplicative => bmm(&qp, &keys, b, t, h, s, false, true),
            Score::LowRank(_) => bmm(&qp, &kp, b, t, w, s, false, true),
            Score::Additive(_) => {
                let e = self.energy.as_ref().expect("energy");
                let mut sc = vec![0.0; b * t * s];
                z = vec![0.0; b * t * s * w];
                for bb in 0..b {
                    for tt in 0..t {
                        for i in 0..s {
                            let row = (bb * t + tt) * s + i;
                            for a in 0..w {
                                let v =
                                    (kp[(bb * s + i) * w + a] + qp[(bb * t + tt) * w + a]).tanh();
                                z[row * w + a] = v;
                                sc[row] += e[a] * v;
                            }
                        }
                    }
                }
                sc
            }
        };
        let weights = masked_softmax_forward(&scores, s, Some(lens), t);
        let ctx = bmm(&weights, &values, b, t, s, h, false, false);
        Forward {
            keys,
            values,
            kp,
            qp,
            z,
            weights,
            ctx,
        }
    }

    /// Contexts `[B, T, H]` and weights `[B, T, S]` of `states [B, T, H]` over
    /// `enc [B, S, D]` with source lengths `lens [B]`.
    pub fn forward(
        &self,
        enc: &[f64],
        lens: &[usize],
        states: &[f64],
        t: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let f = self.run(enc, lens, states, t);
        (f.ctx, f.weights)
    }

    /// Every gradient from `dctx [B, T, H]`.
    pub fn backward(
        &self,
        enc: &[f64],
        lens: &[usize],
        states: &[f64],
        t: usize,
        dctx: &[f64],
    ) -> AttentionGradsRef {
        let (d, h, w) = (self.enc, self.hidden, self.width());
        let b = lens.len();
        let s = enc.len() / (b * d);
        let f = self.run(enc, lens, states, t);
        let (dweights, dvalues) =
            bmm_backward(&f.weights, &f.values, dctx, b, t, s, h, false, false);
        let dscores = masked_softmax_backward(&f.weights, &dweights, s, Some(lens), t);
        let mut g = AttentionGradsRef::default();
        let mut dkeys = vec![0.0; b * s * h];
        let mut dqp = Vec::new();
        let mut dkp = Vec::new();
        match self.score {
            Score::Dot => {
                let (ds, dk) = bmm_backward(states, &f.keys, &dscores, b, t, h, s, false, true);
                g.dstates = ds;
                dkeys = dk;
            }
            Score::Multiplicative => {
                let (dq, dk) = bmm_backward(&f.qp, &f.keys, &dscores, b, t, h, s, false, true);
                dqp = dq;
                dkeys = dk;
            }
            Score::LowRank(_) => {
                let (dq, dk) = bmm_backward(&f.qp, &f.kp, &dscores, b, t, w, s, false, true);
                dqp = dq;
                dkp = dk;
            }
            Score::Additive(_) => {
                let e = self.energy.as_ref().expect("energy");
                dqp = vec![0.0; b * t * w];
                dkp = vec![0.0; b * s * w];
                g.denergy = vec![0.0; w];
                for bb in 0..b {
                    for tt in 0..t {
                        for i in 0..s {
                            let row = (bb * t + tt) * s + i;
                            let ds = dscores[row];
                            for a in 0..w {
                                let z = f.z[row * w + a];
                                g.denergy[a] += ds * z;
                                let dpre = ds * e[a] * (1.0 - z * z);
                                dkp[(bb * s + i) * w + a] += dpre;
                                dqp[(bb * t + tt) * w + a] += dpre;
                            }
                        }
                    }
                }
            }
        }
        if let Some(q) = &self.query {
            let lg = linear_backward(states, q, &dqp, b * t, h, w);
            g.dstates = lg.dx;
            g.dquery = lg.dw;
        }
        if let Some(p) = &self.key_proj {
            let lg = linear_backward(&f.keys, p, &dkp, b * s, h, w);
            for (a, v) in dkeys.iter_mut().zip(&lg.dx) {
                *a += v;
            }
            g.dkey_proj = lg.dw;
        }
        let lk = linear_backward(enc, &self.key, &dkeys, b * s, d, h);
        let lv = linear_backward(enc, &self.value, &dvalues, b * s, d, h);
        g.denc = lk.dx.iter().zip(&lv.dx).map(|(a, c)| a + c).collect();
        g.dkey = lk.dw;
        g.dvalue = lv.dw;
        g
    }
}
