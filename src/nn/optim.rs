//! Optimisers on the device: SGD (momentum, dampening, Nesterov, weight decay) and Adam / AdamW,
//! updating every slot of a [`ParamStore`] in place, as torch.optim defines them. With `g` the
//! gradient, `p` the parameter and `t` the step count (from 1):
//!
//! SGD (torch.optim.SGD): `g += weight_decay * p`; with momentum `mu`:
//! `b = g` on the first step, else `b = mu * b + (1 - dampening) * g`; then `g = g + mu * b`
//! (Nesterov) or `g = b`; finally `p -= lr * g`.
//!
//! Adam (torch.optim.Adam): `g += weight_decay * p` (L2 penalty in the gradient);
//! AdamW (torch.optim.AdamW): `p *= 1 - lr * weight_decay` (decoupled), gradient unchanged; both:
//! `m = beta1 * m + (1 - beta1) * g`, `v = beta2 * v + (1 - beta2) * g^2`,
//! `p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)`.
//!
//! The state (PyTorch's `momentum_buffer`, `exp_avg`, `exp_avg_sq` and the step count) lives on
//! the device, one tensor per slot, and saves to / loads from safetensors under the parameter
//! names (`rnn.weight_ih_l0.exp_avg`). AMSGrad and `maximize` are not implemented.

use std::collections::HashMap;
use std::path::Path;

use super::store::{ParamStore, match_names};
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::kernels::optim::{
    F_DECOUPLED, F_FIRST, F_MOMENTUM, F_NESTEROV, OptimParams, adam_update, sgd_update,
};
use crate::rnn::HostTensor;
use crate::tensor::{DType, Tensor};

/// torch.optim.SGD's hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0: plain SGD, no buffer).
    pub momentum: f32,
    /// Dampening of the momentum's gradient term.
    pub dampening: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`, as in PyTorch).
    pub nesterov: bool,
}

impl SgdConfig {
    /// Plain SGD with learning rate `lr` (PyTorch's defaults otherwise).
    pub fn new(lr: f32) -> Self {
        SgdConfig {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
    /// With momentum `m`.
    pub fn momentum(mut self, m: f32) -> Self {
        self.momentum = m;
        self
    }
    /// With dampening `d`.
    pub fn dampening(mut self, d: f32) -> Self {
        self.dampening = d;
        self
    }
    /// With L2 weight decay `wd`.
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }
    /// With Nesterov momentum.
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }
}

/// torch.optim.Adam's / AdamW's hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// Weight decay: an L2 penalty in the gradient (Adam) or decoupled (AdamW).
    pub weight_decay: f32,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
}

impl AdamConfig {
    /// torch.optim.Adam's defaults with learning rate `lr`: betas (0.9, 0.999), eps 1e-8, no
    /// weight decay.
    pub fn adam(lr: f32) -> Self {
        AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }
    /// torch.optim.AdamW's defaults with learning rate `lr`: as Adam, weight decay 0.01,
    /// decoupled.
    pub fn adamw(lr: f32) -> Self {
        AdamConfig {
            weight_decay: 0.01,
            decoupled: true,
            ..Self::adam(lr)
        }
    }
    /// With betas `(b1, b2)`.
    pub fn betas(mut self, b1: f32, b2: f32) -> Self {
        self.beta1 = b1;
        self.beta2 = b2;
        self
    }
    /// With `eps`.
    pub fn eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }
    /// With weight decay `wd` (L2 for Adam, decoupled for AdamW).
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }
}

/// Which optimiser, with its hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimConfig {
    /// torch.optim.SGD
    Sgd(SgdConfig),
    /// torch.optim.Adam / AdamW
    Adam(AdamConfig),
}

impl OptimConfig {
    fn kind(&self) -> &'static str {
        match self {
            OptimConfig::Sgd(_) => "sgd",
            OptimConfig::Adam(c) if c.decoupled => "adamw",
            OptimConfig::Adam(_) => "adam",
        }
    }

    /// PyTorch's names of the per-parameter state tensors.
    fn state_names(&self) -> &'static [&'static str] {
        match self {
            OptimConfig::Sgd(c) if c.momentum != 0.0 => &["momentum_buffer"],
            OptimConfig::Sgd(_) => &[],
            OptimConfig::Adam(_) => &["exp_avg", "exp_avg_sq"],
        }
    }

    /// Rejects what torch.optim rejects (NaN included).
    fn validate(&self) -> Result<()> {
        fn within(what: &str, v: f32, r: impl std::ops::RangeBounds<f32>) -> Result<()> {
            if r.contains(&v) {
                Ok(())
            } else {
                Err(Error::config(format!("invalid {what}: {v}")))
            }
        }
        let nonneg = 0.0..=f32::INFINITY;
        match *self {
            OptimConfig::Sgd(c) => {
                within("learning rate", c.lr, nonneg.clone())?;
                within("momentum", c.momentum, nonneg.clone())?;
                within("dampening", c.dampening, ..=f32::INFINITY)?;
                within("weight_decay", c.weight_decay, nonneg)?;
                if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
                    return Err(Error::config(
                        "Nesterov momentum requires a momentum and zero dampening",
                    ));
                }
            }
            OptimConfig::Adam(c) => {
                within("learning rate", c.lr, nonneg.clone())?;
                within("epsilon", c.eps, nonneg.clone())?;
                within("beta1", c.beta1, 0.0..1.0)?;
                within("beta2", c.beta2, 0.0..1.0)?;
                within("weight_decay", c.weight_decay, nonneg)?;
            }
        }
        Ok(())
    }
}

/// An optimiser over the slots of one [`ParamStore`], its state on the device.
#[derive(Debug)]
pub struct Optimizer {
    config: OptimConfig,
    step: u64,
    /// Per slot, the state tensors named by `config.state_names()`.
    state: Vec<Vec<Tensor>>,
    unused: Tensor,
}

impl Optimizer {
    /// An optimiser for every parameter of `store`, its state zero. Fails when some element of
    /// a slot belongs to no named parameter ([`ParamStore::check_covered`]).
    pub fn new(ctx: &Context, store: &ParamStore, config: OptimConfig) -> Result<Self> {
        config.validate()?;
        store.check_covered()?;
        let names = config.state_names();
        let state = store
            .slots()
            .iter()
            .map(|s| {
                names
                    .iter()
                    .map(|n| Tensor::zeros(ctx, n, s.param.shape()))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Optimizer {
            config,
            step: 0,
            state,
            unused: Tensor::empty(ctx, "unused", &[4], DType::F32)?,
        })
    }

    /// torch.optim.SGD over `store`.
    pub fn sgd(ctx: &Context, store: &ParamStore, config: SgdConfig) -> Result<Self> {
        Self::new(ctx, store, OptimConfig::Sgd(config))
    }

    /// torch.optim.Adam or AdamW (per `config.decoupled`) over `store`.
    pub fn adam(ctx: &Context, store: &ParamStore, config: AdamConfig) -> Result<Self> {
        Self::new(ctx, store, OptimConfig::Adam(config))
    }

    /// The hyperparameters.
    pub fn config(&self) -> &OptimConfig {
        &self.config
    }

    /// Sets the learning rate (for schedules); takes effect at the next step.
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        let mut config = self.config;
        match &mut config {
            OptimConfig::Sgd(c) => c.lr = lr,
            OptimConfig::Adam(c) => c.lr = lr,
        }
        // Validate the new configuration before it takes effect: a refused value must not stay.
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    fn check_store(&self, store: &ParamStore) -> Result<()> {
        let ok = store.slots().len() == self.state.len()
            && store
                .slots()
                .iter()
                .zip(&self.state)
                .all(|(s, st)| st.iter().all(|t| t.numel() == s.param.numel()));
        if ok {
            Ok(())
        } else {
            Err(Error::config(
                "the optimiser was made for another parameter store",
            ))
        }
    }

    /// Records one update of every slot of `store` from its gradient (one dispatch per slot).
    pub fn record_step(&mut self, rec: &mut Recorder, store: &ParamStore) -> Result<()> {
        self.check_store(store)?;
        let t = self.step + 1;
        let p = match self.config {
            OptimConfig::Sgd(c) => {
                let mut flags = 0;
                if t == 1 {
                    flags |= F_FIRST;
                }
                if c.nesterov {
                    flags |= F_NESTEROV;
                }
                if c.momentum != 0.0 {
                    flags |= F_MOMENTUM;
                }
                OptimParams {
                    flags,
                    lr: c.lr,
                    weight_decay: c.weight_decay,
                    momentum: c.momentum,
                    dampening: c.dampening,
                    ..Default::default()
                }
            }
            OptimConfig::Adam(c) => {
                // Bias corrections in f64 on the host, as PyTorch computes them from a Python
                // float step.
                let bc1 = 1.0 - (c.beta1 as f64).powf(t as f64);
                let bc2 = 1.0 - (c.beta2 as f64).powf(t as f64);
                OptimParams {
                    flags: if c.decoupled { F_DECOUPLED } else { 0 },
                    lr: c.lr,
                    weight_decay: c.weight_decay,
                    beta1: c.beta1,
                    beta2: c.beta2,
                    eps: c.eps,
                    step_size: (c.lr as f64 / bc1) as f32,
                    bc2_sqrt: bc2.sqrt() as f32,
                    ..Default::default()
                }
            }
        };
        for (s, st) in store.slots().iter().zip(&self.state) {
            match self.config {
                OptimConfig::Sgd(_) => sgd_update(
                    rec,
                    &p,
                    &s.grad,
                    &s.param,
                    st.first().unwrap_or(&self.unused),
                )?,
                OptimConfig::Adam(_) => adam_update(rec, &p, &s.grad, &s.param, &st[0], &st[1])?,
            }
        }
        self.step = t;
        Ok(())
    }

    /// One update of every parameter of `store` (one submit).
    pub fn step(&mut self, ctx: &Context, store: &ParamStore) -> Result<()> {
        let mut rec = Recorder::new(ctx);
        self.record_step(&mut rec, store)?;
        rec.submit()?;
        Ok(())
    }

    /// Saves the state to a safetensors file: per named parameter of `store` and state tensor,
    /// `<name>.<state>` (`decoder.weight.exp_avg`), with the optimiser's kind, step count and
    /// hyperparameters in the metadata. Written through a temporary file renamed over `path`.
    pub fn save(&self, ctx: &Context, store: &ParamStore, path: impl AsRef<Path>) -> Result<()> {
        self.check_store(store)?;
        let mut tensors = Vec::new();
        for p in store.params() {
            for (sn, t) in self.config.state_names().iter().zip(&self.state[p.slot]) {
                let data = t.read_range(ctx, p.offset, p.len())?;
                tensors.push((
                    format!("{}.{sn}", p.name),
                    HostTensor::new(p.shape.clone(), data)?,
                ));
            }
        }
        let mut meta = HashMap::from([
            ("format".to_string(), "wgrnn-optimizer".to_string()),
            ("optimizer".to_string(), self.config.kind().to_string()),
            ("step".to_string(), self.step.to_string()),
        ]);
        meta.insert("config".to_string(), format!("{:?}", self.config));
        crate::files::write_safetensors(path.as_ref(), &tensors, Some(meta))
    }

    /// Loads the state saved by [`save`](Self::save) for the same parameter names: the kind
    /// (SGD with or without momentum, Adam, AdamW) must match, every state tensor must be
    /// present with its shape and nothing else. The hyperparameters stay this optimiser's own.
    pub fn load(
        &mut self,
        ctx: &Context,
        store: &ParamStore,
        path: impl AsRef<Path>,
    ) -> Result<()> {
        let path = path.as_ref();
        self.check_store(store)?;
        let (tensors, meta) = crate::files::read_f32_tensors(path)?;
        let err = |problem: String| Error::Format {
            path: path.display().to_string(),
            problem,
        };
        let kind = meta.get("optimizer").map(String::as_str).unwrap_or("");
        if kind != self.config.kind() {
            return Err(err(format!(
                "optimizer state of kind {kind:?}, expected {:?}",
                self.config.kind()
            )));
        }
        let step: u64 = meta
            .get("step")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| err("metadata: missing or malformed step".into()))?;
        let names = self.config.state_names();
        let want: Vec<(String, Vec<usize>)> = store
            .params()
            .iter()
            .flat_map(|p| {
                names
                    .iter()
                    .map(|sn| (format!("{}.{sn}", p.name), p.shape.clone()))
            })
            .collect();
        let found = match_names(path, want.iter().map(|(n, s)| (n, s)), tensors)?;
        let mut it = found.into_iter();
        for p in store.params() {
            for t in &self.state[p.slot] {
                let host = it
                    .next()
                    .ok_or_else(|| err("internal: state count".into()))?;
                t.write_range(ctx, p.offset, &host.data)?;
            }
        }
        self.step = step;
        Ok(())
    }
}
