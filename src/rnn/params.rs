//! Parameters in PyTorch's names, shapes and gate order, on the host ([`RnnParams`]) and on the
//! device ([`LayerParams`], both directions of a layer in one tensor).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::{RnnConfig, parse_param_name};
use crate::context::Context;
use crate::error::{Error, Result, check_shape};
use crate::tensor::{Tensor, numel};

/// A host tensor: shape and row-major f32 data.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// The shape.
    pub shape: Vec<usize>,
    /// `numel(shape)` values, row-major.
    pub data: Vec<f32>,
}

impl HostTensor {
    /// A tensor of `shape` holding `data` (lengths must agree).
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        if numel(&shape) != data.len() {
            return Err(Error::shape(
                "host tensor",
                format!("{} values for shape {shape:?}", data.len()),
            ));
        }
        Ok(HostTensor { shape, data })
    }
}

/// Fails, naming the tensor, unless `host` has `shape` and exactly `numel(shape)` values.
pub(crate) fn check_host(name: &str, host: &HostTensor, shape: &[usize]) -> Result<()> {
    check_shape(name, &host.shape, shape)?;
    if host.data.len() != numel(shape) {
        return Err(Error::shape(
            name,
            format!(
                "{} values for shape {shape:?} ({} elements)",
                host.data.len(),
                numel(shape)
            ),
        ));
    }
    Ok(())
}

/// All parameters of a stack, named and shaped as PyTorch's `state_dict()` of the module.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnParams {
    config: RnnConfig,
    tensors: Vec<(String, HostTensor)>,
}

/// A uniform f32 in [lo, hi) from the top 24 bits of one ChaCha8 word: a conversion of our own,
/// so the values depend only on the ChaCha8 stream, not on `rand`'s sampling code.
pub(crate) fn uniform(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    let u = (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32);
    lo + (hi - lo) * u
}

impl RnnParams {
    /// PyTorch's default initialisation, U(-1/sqrt(H), 1/sqrt(H)) for every tensor, from ChaCha8
    /// seeded with `seed` (stable across versions), in PyTorch's parameter order.
    pub fn init(config: &RnnConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let k = 1.0 / (config.hidden_size as f32).sqrt();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let tensors = config
            .param_names()
            .into_iter()
            .map(|name| {
                let shape = config.param_shape(&name).unwrap_or_default();
                let data = (0..numel(&shape))
                    .map(|_| uniform(&mut rng, -k, k))
                    .collect();
                (name, HostTensor { shape, data })
            })
            .collect();
        Ok(RnnParams {
            config: config.clone(),
            tensors,
        })
    }

    /// Builds from named tensors; every parameter of `config` must be present with PyTorch's
    /// shape and nothing else may be.
    pub fn from_named(config: &RnnConfig, named: Vec<(String, HostTensor)>) -> Result<Self> {
        config.validate()?;
        let mut named = named;
        let mut tensors = Vec::new();
        for name in config.param_names() {
            let pos = named
                .iter()
                .position(|(n, _)| *n == name)
                .ok_or_else(|| Error::shape(&name, "missing parameter"))?;
            let (n, t) = named.swap_remove(pos);
            let want = config.param_shape(&n).unwrap_or_default();
            check_shape(&n, &t.shape, &want)?;
            tensors.push((n, t));
        }
        if let Some((n, _)) = named.first() {
            return Err(Error::shape(n, "not a parameter of this configuration"));
        }
        Ok(RnnParams {
            config: config.clone(),
            tensors,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&HostTensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The tensor called `name`, mutable (its shape must not change).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut HostTensor> {
        self.tensors
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    }

    /// All tensors in PyTorch's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &HostTensor)> {
        self.tensors.iter().map(|(n, t)| (n.as_str(), t))
    }
}

/// One layer's parameters on the device, both directions stacked along the first axis:
/// `w_ih [D, G*H, I_l]`, `w_hh [D, G*H, H]`, `b_ih`/`b_hh` `[D, G*H]`. Gradients use the same
/// type and layout.
#[derive(Clone, Debug)]
pub struct LayerParams {
    /// Input weights.
    pub w_ih: Tensor,
    /// Recurrent weights.
    pub w_hh: Tensor,
    /// Input bias (absent when the configuration has no biases).
    pub b_ih: Option<Tensor>,
    /// Recurrent bias.
    pub b_hh: Option<Tensor>,
}

/// Where one named PyTorch parameter lives on the device: `len` elements of `tensor` from
/// element `offset`, with PyTorch's `shape`.
#[derive(Clone, Debug)]
pub struct ParamView {
    /// PyTorch's name (`weight_hh_l1_reverse`).
    pub name: String,
    /// The layer tensor holding it.
    pub tensor: Tensor,
    /// First element.
    pub offset: usize,
    /// PyTorch's shape.
    pub shape: Vec<usize>,
}

impl ParamView {
    /// Number of elements.
    pub fn len(&self) -> usize {
        numel(&self.shape)
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Overwrites the parameter from `host`, after checking its shape and that it holds exactly
    /// the view's element count (a longer buffer would overwrite the neighbouring parameter,
    /// e.g. the other direction's weights).
    pub fn write(&self, ctx: &Context, host: &HostTensor) -> Result<()> {
        check_host(&self.name, host, &self.shape)?;
        self.tensor.write_range(ctx, self.offset, &host.data)
    }

    /// Reads the parameter back.
    pub fn to_host(&self, ctx: &Context) -> Result<HostTensor> {
        Ok(HostTensor {
            shape: self.shape.clone(),
            data: self.tensor.read_range(ctx, self.offset, self.len())?,
        })
    }
}

impl LayerParams {
    /// Allocates one layer's tensors (content undefined) for `config`.
    pub(crate) fn empty(ctx: &Context, config: &RnnConfig, l: usize, what: &str) -> Result<Self> {
        let (d, gh, h, i) = (
            config.dirs(),
            config.gate_rows(),
            config.hidden_size,
            config.layer_input(l),
        );
        let bias = |n: &str| -> Result<Option<Tensor>> {
            if config.bias {
                Ok(Some(Tensor::empty(ctx, n, &[d, gh], crate::DType::F32)?))
            } else {
                Ok(None)
            }
        };
        Ok(LayerParams {
            w_ih: Tensor::empty(
                ctx,
                &format!("{what}weight_ih_l{l}"),
                &[d, gh, i],
                crate::DType::F32,
            )?,
            w_hh: Tensor::empty(
                ctx,
                &format!("{what}weight_hh_l{l}"),
                &[d, gh, h],
                crate::DType::F32,
            )?,
            b_ih: bias(&format!("{what}bias_ih_l{l}"))?,
            b_hh: bias(&format!("{what}bias_hh_l{l}"))?,
        })
    }

    /// The layer's tensors in PyTorch's order with the name kind (0..4).
    fn tensors(&self) -> Vec<(usize, &Tensor)> {
        let mut v = vec![(0, &self.w_ih), (1, &self.w_hh)];
        if let (Some(a), Some(b)) = (&self.b_ih, &self.b_hh) {
            v.push((2, a));
            v.push((3, b));
        }
        v
    }

    /// Named views of layer `l`'s parameters, PyTorch's order.
    pub fn views(&self, config: &RnnConfig, l: usize) -> Vec<ParamView> {
        let kinds = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"];
        let mut out = Vec::new();
        for d in 0..config.dirs() {
            for (kind, t) in self.tensors() {
                let suf = if d == 1 { "_reverse" } else { "" };
                let name = format!("{}_l{l}{suf}", kinds[kind]);
                let per = t.numel() / config.dirs();
                out.push(ParamView {
                    shape: config.param_shape(&name).unwrap_or_default(),
                    name,
                    tensor: t.clone(),
                    offset: d * per,
                });
            }
        }
        out
    }

    /// Every device tensor of the layer.
    pub fn all(&self) -> Vec<&Tensor> {
        self.tensors().into_iter().map(|(_, t)| t).collect()
    }
}

/// Uploads `params` into per-layer device tensors.
pub(crate) fn upload(ctx: &Context, params: &RnnParams) -> Result<Vec<LayerParams>> {
    let cfg = params.config();
    let mut layers = Vec::new();
    for l in 0..cfg.num_layers {
        let lp = LayerParams::empty(ctx, cfg, l, "")?;
        for v in lp.views(cfg, l) {
            let host = params
                .get(&v.name)
                .ok_or_else(|| Error::shape(&v.name, "missing parameter"))?;
            v.write(ctx, host)?;
        }
        layers.push(lp);
    }
    Ok(layers)
}

/// Reads per-layer device tensors back as named host tensors.
pub(crate) fn download(
    ctx: &Context,
    cfg: &RnnConfig,
    layers: &[LayerParams],
) -> Result<RnnParams> {
    let mut named = Vec::new();
    for (l, lp) in layers.iter().enumerate() {
        for v in lp.views(cfg, l) {
            named.push((v.name.clone(), v.to_host(ctx)?));
        }
    }
    RnnParams::from_named(cfg, named)
}

/// Checks that `name` is a well-formed PyTorch RNN parameter name.
pub fn is_param_name(name: &str) -> bool {
    parse_param_name(name).is_some()
}
