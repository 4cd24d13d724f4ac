//! The parameter store: every parameter of a model under one name (`embedding.weight`,
//! `rnn.weight_ih_l0`, `decoder.weight`, ...) with its gradient, so checkpoints, optimisers,
//! gradient zeroing and clipping all iterate over one list.
//!
//! A named parameter is a view (element offset + shape) into an underlying device tensor, whole
//! or part: the RNN keeps both directions of a layer in one tensor. Underlying tensors are
//! *slots*, each held once with its gradient tensor (same element count, same layout), however
//! many names point into it; optimisers and clipping work on slots, elementwise.

use std::collections::HashMap;
use std::path::Path;

use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result, check_shape};
use crate::rnn::{HostTensor, LayerParams, ParamView, Rnn};
use crate::tensor::{DType, Tensor, numel};

/// One underlying parameter tensor and its gradient tensor (same element count and layout).
#[derive(Clone, Debug)]
pub struct Slot {
    /// The parameter tensor, updated in place by optimisers.
    pub param: Tensor,
    /// Its gradient (backward passes write or accumulate into it).
    pub grad: Tensor,
}

/// A named parameter: `shape` elements from element `offset` of slot `slot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedParam {
    /// The full name (`rnn.weight_hh_l1_reverse`).
    pub name: String,
    /// Index into [`ParamStore::slots`].
    pub slot: usize,
    /// First element inside the slot's tensors.
    pub offset: usize,
    /// The parameter's shape.
    pub shape: Vec<usize>,
}

impl NamedParam {
    /// Number of elements.
    pub fn len(&self) -> usize {
        numel(&self.shape)
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every parameter of a model, named, with its gradient. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct ParamStore {
    slots: Vec<Slot>,
    params: Vec<NamedParam>,
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a whole tensor `param` with its gradient `grad` (same shape) as `name`.
    pub fn add(&mut self, name: &str, param: &Tensor, grad: &Tensor) -> Result<()> {
        check_shape(&format!("{name} (gradient)"), grad.shape(), param.shape())?;
        self.add_view(name, param, grad, 0, param.shape())
    }

    /// Registers `shape` elements from element `offset` of `param` (gradient: the same range of
    /// `grad`, a tensor of `param`'s element count) as `name`. Registering another view of the
    /// same `param` tensor reuses its slot, which must then name the same `grad` tensor (tied
    /// weights share one gradient that both layers accumulate into).
    pub fn add_view(
        &mut self,
        name: &str,
        param: &Tensor,
        grad: &Tensor,
        offset: usize,
        shape: &[usize],
    ) -> Result<()> {
        if self.params.iter().any(|p| p.name == name) {
            return Err(Error::shape(name, "registered twice"));
        }
        if param.dtype() != DType::F32 || grad.dtype() != DType::F32 {
            return Err(Error::shape(name, "parameters and gradients must be f32"));
        }
        if param.same_buffer(grad) {
            return Err(Error::shape(
                name,
                "the gradient must be a tensor of its own, not the parameter",
            ));
        }
        if grad.numel() != param.numel() {
            return Err(Error::shape(
                name,
                format!(
                    "gradient tensor has {} elements, parameter tensor {}",
                    grad.numel(),
                    param.numel()
                ),
            ));
        }
        if offset + numel(shape) > param.numel() {
            return Err(Error::shape(
                name,
                format!(
                    "view {offset}..{} lies outside its {}-element tensor",
                    offset + numel(shape),
                    param.numel()
                ),
            ));
        }
        let slot = match self.slots.iter().position(|s| s.param.same_buffer(param)) {
            Some(i) => {
                if !self.slots[i].grad.same_buffer(grad) {
                    return Err(Error::shape(
                        name,
                        "its parameter tensor is already registered with another gradient tensor",
                    ));
                }
                i
            }
            None => {
                if self.slots.iter().any(|s| {
                    s.grad.same_buffer(grad)
                        || s.param.same_buffer(grad)
                        || s.grad.same_buffer(param)
                }) {
                    return Err(Error::shape(
                        name,
                        "its gradient tensor already belongs to another parameter",
                    ));
                }
                self.slots.push(Slot {
                    param: param.clone(),
                    grad: grad.clone(),
                });
                self.slots.len() - 1
            }
        };
        self.params.push(NamedParam {
            name: name.to_string(),
            slot,
            offset,
            shape: shape.to_vec(),
        });
        Ok(())
    }

    /// Registers named views (PyTorch's RNN layout, [`ParamView`]) under `prefix.`; `grads`
    /// must hold a view of the same name and shape for each of `params`.
    pub fn add_views(
        &mut self,
        prefix: &str,
        params: &[ParamView],
        grads: &[ParamView],
    ) -> Result<()> {
        for p in params {
            let name = format!("{prefix}.{}", p.name);
            let g = grads
                .iter()
                .find(|g| g.name == p.name)
                .ok_or_else(|| Error::shape(&name, "no gradient view of that name"))?;
            check_shape(&format!("{name} (gradient)"), &g.shape, &p.shape)?;
            if g.offset != p.offset {
                return Err(Error::shape(
                    &name,
                    "gradient view lies elsewhere in its tensor than the parameter",
                ));
            }
            self.add_view(&name, &p.tensor, &g.tensor, p.offset, &p.shape)?;
        }
        Ok(())
    }

    /// Registers every parameter of `rnn` under `prefix.` (`rnn.weight_ih_l0`, ...), with
    /// gradients `grads` as returned by [`Rnn::zero_grads`].
    pub fn add_rnn(&mut self, prefix: &str, rnn: &Rnn, grads: &[LayerParams]) -> Result<()> {
        let cfg = rnn.config();
        if grads.len() != cfg.num_layers {
            return Err(Error::config(format!(
                "{prefix}: {} gradient layers for a {}-layer stack",
                grads.len(),
                cfg.num_layers
            )));
        }
        let gv: Vec<ParamView> = grads
            .iter()
            .enumerate()
            .flat_map(|(l, lp)| lp.views(cfg, l))
            .collect();
        self.add_views(prefix, &rnn.param_views(), &gv)
    }

    /// The underlying tensors, each once, in registration order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The named parameters in registration order.
    pub fn params(&self) -> &[NamedParam] {
        &self.params
    }

    /// The parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&NamedParam> {
        self.params.iter().find(|p| p.name == name)
    }

    fn named(&self, name: &str) -> Result<&NamedParam> {
        self.get(name)
            .ok_or_else(|| Error::shape(name, "no parameter of that name in the store"))
    }

    /// Reads parameter `name` back to the host.
    pub fn param_to_host(&self, ctx: &Context, name: &str) -> Result<HostTensor> {
        let p = self.named(name)?;
        HostTensor::new(
            p.shape.clone(),
            self.slots[p.slot]
                .param
                .read_range(ctx, p.offset, p.len())?,
        )
    }

    /// Reads the gradient of parameter `name` back to the host.
    pub fn grad_to_host(&self, ctx: &Context, name: &str) -> Result<HostTensor> {
        let p = self.named(name)?;
        HostTensor::new(
            p.shape.clone(),
            self.slots[p.slot].grad.read_range(ctx, p.offset, p.len())?,
        )
    }

    /// Overwrites parameter `name` from the host (shape and element count must match).
    pub fn set_param(&self, ctx: &Context, name: &str, value: &HostTensor) -> Result<()> {
        let p = self.named(name)?;
        crate::rnn::check_host(name, value, &p.shape)?;
        self.slots[p.slot]
            .param
            .write_range(ctx, p.offset, &value.data)
    }

    /// Fails unless every element of every slot lies in some named view: optimisers update
    /// whole slots and checkpoints save named views, so an unnamed element would be updated
    /// from an undefined gradient and never saved.
    pub fn check_covered(&self) -> Result<()> {
        for (i, s) in self.slots.iter().enumerate() {
            let mut ranges: Vec<(usize, usize)> = self
                .params
                .iter()
                .filter(|p| p.slot == i)
                .map(|p| (p.offset, p.offset + p.len()))
                .collect();
            ranges.sort();
            let mut covered = 0;
            for (a, b) in ranges {
                if a > covered {
                    break;
                }
                covered = covered.max(b);
            }
            if covered < s.param.numel() {
                let first = self.params.iter().find(|p| p.slot == i);
                return Err(Error::shape(
                    first.map_or("(unnamed)", |p| p.name.as_str()),
                    format!(
                        "element {covered} of its {}-element tensor belongs to no named parameter",
                        s.param.numel()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Records zeroing every gradient (one clear per slot).
    pub fn record_zero_grads(&self, rec: &mut Recorder) -> Result<()> {
        for s in &self.slots {
            rec.clear(&s.grad, 0, s.grad.numel())?;
        }
        Ok(())
    }

    /// Zeroes every gradient (one submit).
    pub fn zero_grads(&self, ctx: &Context) -> Result<()> {
        let mut rec = Recorder::new(ctx);
        self.record_zero_grads(&mut rec)?;
        rec.submit()?;
        Ok(())
    }

    /// The gradient tensors, each once.
    pub fn grads(&self) -> Vec<&Tensor> {
        self.slots.iter().map(|s| &s.grad).collect()
    }

    /// Records global-norm clipping of every gradient ([`super::record_clip_grad_norm`]);
    /// returns the device tensor `[norm, scale]`.
    pub fn record_clip_grad_norm(&self, rec: &mut Recorder, max_norm: f32) -> Result<Tensor> {
        super::record_clip_grad_norm(rec, &self.grads(), max_norm)
    }

    /// Clips every gradient by their global norm ([`super::clip_grad_norm`]); returns the norm.
    pub fn clip_grad_norm(&self, ctx: &Context, max_norm: f32) -> Result<f32> {
        super::clip_grad_norm(ctx, &self.grads(), max_norm)
    }

    /// Every parameter read back to the host, in registration order.
    pub fn state_dict(&self, ctx: &Context) -> Result<Vec<(String, HostTensor)>> {
        self.params
            .iter()
            .map(|p| Ok((p.name.clone(), self.param_to_host(ctx, &p.name)?)))
            .collect()
    }

    /// Saves every parameter to a safetensors file at `path` (f32, names as registered),
    /// through a temporary file renamed over `path`.
    pub fn save(&self, ctx: &Context, path: impl AsRef<Path>) -> Result<()> {
        let meta = HashMap::from([("format".to_string(), "wgrnn-params".to_string())]);
        crate::files::write_safetensors(path.as_ref(), &self.state_dict(ctx)?, Some(meta))
    }

    /// Loads every parameter from a safetensors file: each registered name must be present with
    /// its shape, and the file may hold nothing else (PyTorch's `strict=True`). Nothing is
    /// written unless the whole file checks out.
    pub fn load(&self, ctx: &Context, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let (tensors, _) = crate::files::read_f32_tensors(path)?;
        let named = match_names(
            path,
            self.params.iter().map(|p| (&p.name, &p.shape)),
            tensors,
        )?;
        for (p, t) in self.params.iter().zip(named) {
            self.slots[p.slot]
                .param
                .write_range(ctx, p.offset, &t.data)?;
        }
        Ok(())
    }
}

/// Orders `tensors` from a file like `want` (name, shape), checking that each is present with
/// its shape and that the file holds nothing else; errors name the file and the tensor.
pub(crate) fn match_names<'a>(
    path: &Path,
    want: impl Iterator<Item = (&'a String, &'a Vec<usize>)>,
    tensors: Vec<(String, HostTensor)>,
) -> Result<Vec<HostTensor>> {
    let err = |problem: String| Error::Format {
        path: path.display().to_string(),
        problem,
    };
    let mut by_name: HashMap<String, HostTensor> = tensors.into_iter().collect();
    let mut out = Vec::new();
    for (name, shape) in want {
        let t = by_name
            .remove(name)
            .ok_or_else(|| err(format!("{name}: missing")))?;
        if &t.shape != shape {
            return Err(err(format!(
                "{name}: shape {:?} in the file, expected {shape:?}",
                t.shape
            )));
        }
        out.push(t);
    }
    if let Some(extra) = by_name.keys().min() {
        return Err(err(format!("{extra}: not a tensor of this model")));
    }
    Ok(out)
}
