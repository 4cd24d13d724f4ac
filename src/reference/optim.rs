//! Reference of `optim.wgsl`: one SGD or Adam/AdamW step on f64 slices, torch.optim's formulas
//! in the same order (see the shader's header).

use crate::nn::{AdamConfig, SgdConfig};

/// One SGD step. `buf` is the momentum buffer (used when `momentum != 0`); `first` marks the
/// optimiser's first step, where PyTorch sets the buffer to the gradient.
pub fn sgd_update(cfg: &SgdConfig, param: &mut [f64], grad: &[f64], buf: &mut [f64], first: bool) {
    let (lr, mom, damp, wd) = (
        cfg.lr as f64,
        cfg.momentum as f64,
        cfg.dampening as f64,
        cfg.weight_decay as f64,
    );
    for i in 0..param.len() {
        let mut g = grad[i] + wd * param[i];
        if mom != 0.0 {
            buf[i] = if first {
                g
            } else {
                mom * buf[i] + (1.0 - damp) * g
            };
            g = if cfg.nesterov {
                g + mom * buf[i]
            } else {
                buf[i]
            };
        }
        param[i] -= lr * g;
    }
}

/// One Adam / AdamW step; `step` counts from 1 (this step included).
pub fn adam_update(
    cfg: &AdamConfig,
    param: &mut [f64],
    grad: &[f64],
    exp_avg: &mut [f64],
    exp_avg_sq: &mut [f64],
    step: u64,
) {
    let (lr, b1, b2, eps, wd) = (
        cfg.lr as f64,
        cfg.beta1 as f64,
        cfg.beta2 as f64,
        cfg.eps as f64,
        cfg.weight_decay as f64,
    );
    let bc1 = 1.0 - b1.powi(step as i32);
    let bc2 = 1.0 - b2.powi(step as i32);
    for i in 0..param.len() {
        let mut g = grad[i];
        if cfg.decoupled {
            param[i] *= 1.0 - lr * wd;
        } else {
            g += wd * param[i];
        }
        exp_avg[i] = b1 * exp_avg[i] + (1.0 - b1) * g;
        exp_avg_sq[i] = b2 * exp_avg_sq[i] + (1.0 - b2) * g * g;
        let denom = exp_avg_sq[i].sqrt() / bc2.sqrt() + eps;
        param[i] -= lr / bc1 * exp_avg[i] / denom;
    }
}
