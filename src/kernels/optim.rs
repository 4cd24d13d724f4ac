//! Launchers for `optim.wgsl`: SGD (momentum, Nesterov, weight decay) and Adam / AdamW updates
//! of one parameter tensor in place.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::Result;
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const SGD: KernelSpec = KernelSpec {
    shader: Shader::Optim,
    entry: "sgd_update",
    bindings: &[R, RW, RW],
};
const ADAM: KernelSpec = KernelSpec {
    shader: Shader::Optim,
    entry: "adam_update",
    bindings: &[R, RW, RW, RW],
};

pub(crate) const F_FIRST: u32 = 1;
pub(crate) const F_NESTEROV: u32 = 2;
pub(crate) const F_DECOUPLED: u32 = 4;
pub(crate) const F_MOMENTUM: u32 = 8;

/// The uniform `Optim` struct's values after `len`, in declaration order.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OptimParams {
    pub flags: u32,
    pub lr: f32,
    pub weight_decay: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub step_size: f32,
    pub bc2_sqrt: f32,
}

impl OptimParams {
    fn words(&self, len: usize) -> [u32; 11] {
        [
            len as u32,
            self.flags,
            self.lr.to_bits(),
            self.weight_decay.to_bits(),
            self.momentum.to_bits(),
            self.dampening.to_bits(),
            self.beta1.to_bits(),
            self.beta2.to_bits(),
            self.eps.to_bits(),
            self.step_size.to_bits(),
            self.bc2_sqrt.to_bits(),
        ]
    }
}

fn check(what: &str, t: &Tensor, len: usize) -> Result<()> {
    check_extent(what, t, len - 1)
}

/// SGD step on `param` with `grad`; `buf` is the momentum buffer (any distinct tensor when the
/// momentum flag is clear).
pub(crate) fn sgd_update(
    rec: &mut Recorder,
    p: &OptimParams,
    grad: &Tensor,
    param: &Tensor,
    buf: &Tensor,
) -> Result<()> {
    let len = param.numel();
    if len == 0 {
        return Ok(());
    }
    check("sgd grad", grad, len)?;
    if p.flags & F_MOMENTUM != 0 {
        check("sgd momentum buffer", buf, len)?;
    }
    rec.dispatch(
        SGD,
        &[],
        &p.words(len),
        &[grad, param, buf],
        grid_1d(len, 256),
    )
}

/// Adam / AdamW step on `param` with `grad` and the moments `exp_avg`, `exp_avg_sq`.
pub(crate) fn adam_update(
    rec: &mut Recorder,
    p: &OptimParams,
    grad: &Tensor,
    param: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
) -> Result<()> {
    let len = param.numel();
    if len == 0 {
        return Ok(());
    }
    check("adam grad", grad, len)?;
    check("adam exp_avg", exp_avg, len)?;
    check("adam exp_avg_sq", exp_avg_sq, len)?;
    rec.dispatch(
        ADAM,
        &[],
        &p.words(len),
        &[grad, param, exp_avg, exp_avg_sq],
        grid_1d(len, 256),
    )
}
