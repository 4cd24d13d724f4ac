//! PyTorch interop through safetensors files: weights named like a `state_dict()` of
//! nn.LSTM / nn.GRU / nn.RNN, input and output files of the `wgrnn run` command.
//!
//! Files are written by [`crate::files`] (a temporary name, synced, then renamed), so a failure
//! never leaves a partial file.

use std::collections::HashMap;
use std::path::Path;

use crate::context::Context;
use crate::error::{Error, Result, check_shape};
pub use crate::files::{FileData, FileTensor, TensorFile, read_safetensors, write_safetensors};
use crate::reference::rnn::{RefInputs, RefParams, rnn_backward, rnn_forward};
use crate::rnn::{
    ForwardInputs, HostTensor, Mode, Rnn, RnnConfig, RnnParams, Upstream, parse_param_name,
};
use crate::tensor::{Tensor, numel};

/// Infers the configuration from parameter names and shapes (and the optional `mode`).
///
/// Layers, directions, input and hidden size come from the names and shapes; a gate multiple
/// of 4H means LSTM and 3H GRU; 1H is ambiguous (tanh or relu) and needs `mode`. No biases at
/// all means a bias-free model; some but not all biases is an error. LSTM projections
/// (`weight_hr_l*`) are refused.
pub fn infer_config(named: &[(String, Vec<usize>)], mode: Option<Mode>) -> Result<RnnConfig> {
    for (n, _) in named {
        if n.starts_with("weight_hr_l") {
            return Err(Error::shape(
                n,
                "LSTM projections (proj_size > 0) are not supported",
            ));
        }
        if parse_param_name(n).is_none() {
            return Err(Error::shape(n, "not an RNN parameter name"));
        }
    }
    let shape_of = |name: &str| {
        named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
    };
    let w_hh0 = shape_of("weight_hh_l0").ok_or_else(|| Error::shape("weight_hh_l0", "missing"))?;
    let w_ih0 = shape_of("weight_ih_l0").ok_or_else(|| Error::shape("weight_ih_l0", "missing"))?;
    if w_hh0.len() != 2 || w_hh0[1] == 0 || w_hh0[0] % w_hh0[1] != 0 {
        return Err(Error::shape(
            "weight_hh_l0",
            format!("expected [G*H, H], got {w_hh0:?}"),
        ));
    }
    if w_ih0.len() != 2 {
        return Err(Error::shape(
            "weight_ih_l0",
            format!("expected [G*H, I], got {w_ih0:?}"),
        ));
    }
    let hidden = w_hh0[1];
    let gates = w_hh0[0] / hidden;
    let mode = match (mode, gates) {
        (Some(m), g) if m.gates() == g => m,
        (Some(m), g) => {
            return Err(Error::shape(
                "weight_hh_l0",
                format!(
                    "mode {} needs {}H rows, got {g}H",
                    m.torch_name(),
                    m.gates()
                ),
            ));
        }
        (None, 4) => Mode::Lstm,
        (None, 3) => Mode::Gru,
        (None, 1) => {
            return Err(Error::config(
                "weights with 1H gate rows are RNN_TANH or RNN_RELU: set the file's metadata key \
                 `mode`",
            ));
        }
        (None, g) => {
            return Err(Error::shape(
                "weight_hh_l0",
                format!("{g}H gate rows match no RNN mode"),
            ));
        }
    };
    let mut layers = 0;
    let mut bidir = false;
    let mut n_bias = 0;
    for (n, _) in named {
        let (kind, l, d) = parse_param_name(n).unwrap_or_default();
        layers = layers.max(l + 1);
        bidir |= d == 1;
        n_bias += (kind >= 2) as usize;
    }
    let cfg = RnnConfig::new(mode, w_ih0[1], hidden)
        .layers(layers)
        .bidirectional(bidir)
        .bias(n_bias > 0);
    let n_weights = cfg.num_layers * cfg.dirs() * 2;
    if n_bias > 0 && n_bias != n_weights {
        return Err(Error::shape(
            "bias",
            format!("some but not all biases are present ({n_bias} of {n_weights})"),
        ));
    }
    cfg.validate()?;
    for name in cfg.param_names() {
        let got = shape_of(&name).ok_or_else(|| Error::shape(&name, "missing parameter"))?;
        check_shape(&name, &got, &cfg.param_shape(&name).unwrap_or_default())?;
    }
    Ok(cfg)
}

/// Loads weights from a safetensors file in PyTorch's `state_dict()` naming (metadata key
/// `mode`: `LSTM`, `GRU`, `RNN_TANH` or `RNN_RELU`; optional when unambiguous).
pub fn load_weights(path: impl AsRef<Path>) -> Result<RnnParams> {
    let f = read_safetensors(path)?;
    let mode = f.metadata.get("mode").map(|m| Mode::parse(m)).transpose()?;
    let shapes: Vec<(String, Vec<usize>)> = f
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shape.clone()))
        .collect();
    let cfg = infer_config(&shapes, mode)?;
    let named = f
        .tensors
        .into_iter()
        .map(|(n, t)| match t.data {
            FileData::Float(v) => Ok((
                n,
                HostTensor {
                    shape: t.shape,
                    data: v,
                },
            )),
            _ => Err(Error::shape(&n, "weights must be f32, f16 or bf16")),
        })
        .collect::<Result<Vec<_>>>()?;
    RnnParams::from_named(&cfg, named)
}

/// Saves weights with PyTorch's names and the metadata key `mode`.
pub fn save_weights(path: impl AsRef<Path>, params: &RnnParams) -> Result<()> {
    let tensors: Vec<(String, HostTensor)> = params
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    let meta = HashMap::from([(
        "mode".to_string(),
        params.config().mode.torch_name().to_string(),
    )]);
    write_safetensors(path, &tensors, Some(meta))
}

/// Where `wgrnn run` computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The WGSL kernels.
    Gpu,
    /// The f64 CPU reference.
    Cpu,
}

/// The contents of a `wgrnn run` input file, time-major.
struct RunInputs {
    seq: usize,
    batch: usize,
    input: Vec<f32>,
    h0: Option<Vec<f32>>,
    c0: Option<Vec<f32>>,
    lengths: Option<Vec<usize>>,
    grad_output: Option<Vec<f32>>,
    grad_h_n: Option<Vec<f32>>,
    grad_c_n: Option<Vec<f32>>,
}

impl RunInputs {
    fn wants_backward(&self) -> bool {
        self.grad_output.is_some() || self.grad_h_n.is_some() || self.grad_c_n.is_some()
    }
}

/// Swaps the first two axes of `[A, B, X]` -> `[B, A, X]` (batch-first files).
fn swap01(v: &[f32], a: usize, b: usize) -> Vec<f32> {
    let x = v.len().checked_div(a * b).unwrap_or(0);
    let mut out = vec![0.0; v.len()];
    for i in 0..a {
        for j in 0..b {
            out[(j * a + i) * x..(j * a + i + 1) * x]
                .copy_from_slice(&v[(i * b + j) * x..(i * b + j + 1) * x]);
        }
    }
    out
}

fn read_run_inputs(path: &Path, cfg: &RnnConfig, batch_first: bool) -> Result<RunInputs> {
    let f = read_safetensors(path)?;
    let known = [
        "input",
        "h0",
        "c0",
        "lengths",
        "grad_output",
        "grad_h_n",
        "grad_c_n",
    ];
    if let Some((n, _)) = f.tensors.iter().find(|(n, _)| !known.contains(&n.as_str())) {
        return Err(Error::shape(
            n,
            format!("unknown tensor in the input file (expected some of {known:?})"),
        ));
    }
    let get = |n: &str| f.tensors.iter().find(|(k, _)| k == n).map(|(_, t)| t);
    let float = |n: &str| -> Result<Option<(Vec<usize>, Vec<f32>)>> {
        match get(n) {
            None => Ok(None),
            Some(FileTensor {
                shape,
                data: FileData::Float(v),
            }) => Ok(Some((shape.clone(), v.clone()))),
            Some(_) => Err(Error::shape(n, "must be floating point (f32, f16 or bf16)")),
        }
    };
    let (xs, mut x) =
        float("input")?.ok_or_else(|| Error::shape("input", "missing from the input file"))?;
    if xs.len() != 3 {
        return Err(Error::shape(
            "input",
            format!("expected 3 dimensions, got {xs:?}"),
        ));
    }
    let (seq, batch) = if batch_first {
        (xs[1], xs[0])
    } else {
        (xs[0], xs[1])
    };
    if batch_first {
        x = swap01(&x, xs[0], xs[1]);
    }
    let want_x = [seq, batch, cfg.input_size];
    let want_x_file = if batch_first {
        [batch, seq, cfg.input_size]
    } else {
        want_x
    };
    check_shape("input", &xs, &want_x_file)?;
    let sn = [cfg.num_layers * cfg.dirs(), batch, cfg.hidden_size];
    let state = |n: &str| -> Result<Option<Vec<f32>>> {
        float(n)?
            .map(|(s, v)| check_shape(n, &s, &sn).map(|_| v))
            .transpose()
    };
    let h0 = state("h0")?;
    let c0 = state("c0")?;
    let grad_h_n = state("grad_h_n")?;
    let grad_c_n = state("grad_c_n")?;
    if !cfg.mode.has_cell_state() {
        for (n, v) in [("c0", &c0), ("grad_c_n", &grad_c_n)] {
            if v.is_some() {
                return Err(Error::shape(
                    n,
                    format!("{} has no cell state", cfg.mode.torch_name()),
                ));
            }
        }
    }
    let out_w = cfg.dirs() * cfg.hidden_size;
    let grad_output = match float("grad_output")? {
        None => None,
        Some((s, v)) => {
            let want = if batch_first {
                [batch, seq, out_w]
            } else {
                [seq, batch, out_w]
            };
            check_shape("grad_output", &s, &want)?;
            Some(if batch_first {
                swap01(&v, batch, seq)
            } else {
                v
            })
        }
    };
    let lengths = match get("lengths") {
        None => None,
        Some(FileTensor {
            shape,
            data: FileData::Int(v),
        }) => {
            check_shape("lengths", shape, &[batch])?;
            if let Some((i, l)) = v
                .iter()
                .enumerate()
                .find(|(_, l)| **l < 1 || **l > seq as i64)
            {
                return Err(Error::shape(
                    "lengths",
                    format!("lengths[{i}] = {l} is outside 1..={seq}"),
                ));
            }
            Some(v.iter().map(|&l| l as usize).collect())
        }
        Some(_) => return Err(Error::shape("lengths", "must be i32 or i64")),
    };
    Ok(RunInputs {
        seq,
        batch,
        input: x,
        h0,
        c0,
        lengths,
        grad_output,
        grad_h_n,
        grad_c_n,
    })
}

fn ht(shape: &[usize], data: Vec<f32>) -> HostTensor {
    HostTensor {
        shape: shape.to_vec(),
        data,
    }
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// The `wgrnn run` command: reads weights and inputs, runs the forward (and the backward when
/// the input file holds upstream gradients) on `backend`, writes the results. Output tensors:
/// `output`, `h_n`, `c_n` (LSTM); after a backward also `grad_input`, `grad_h0`, `grad_c0`
/// (LSTM) and `grad.<parameter name>` for every parameter. All f32.
pub fn run_files(
    weights: &Path,
    input: &Path,
    output: &Path,
    backend: Backend,
    batch_first: bool,
) -> Result<()> {
    let params = load_weights(weights)?;
    let cfg = params.config().clone();
    let inp = read_run_inputs(input, &cfg, batch_first)?;
    let (t, b) = (inp.seq, inp.batch);
    let out_w = cfg.dirs() * cfg.hidden_size;
    let sn = [cfg.num_layers * cfg.dirs(), b, cfg.hidden_size];
    let lstm = cfg.mode.has_cell_state();
    let mut results: Vec<(String, HostTensor)> = Vec::new();
    match backend {
        Backend::Cpu => {
            let rp = RefParams::from_params(&params);
            let fwd = rnn_forward(
                &rp,
                &RefInputs {
                    x: to_f64(&inp.input),
                    seq: t,
                    batch: b,
                    h0: inp.h0.as_deref().map(to_f64),
                    c0: inp.c0.as_deref().map(to_f64),
                    lengths: inp.lengths.clone(),
                    train: false,
                    dropout_seed: 0,
                },
            );
            results.push(("output".into(), ht(&[t, b, out_w], to_f32(&fwd.output))));
            results.push(("h_n".into(), ht(&sn, to_f32(&fwd.h_n))));
            if let Some(c) = &fwd.c_n {
                results.push(("c_n".into(), ht(&sn, to_f32(c))));
            }
            if inp.wants_backward() {
                let g = rnn_backward(
                    &rp,
                    &fwd,
                    inp.grad_output.as_deref().map(to_f64).as_deref(),
                    inp.grad_h_n.as_deref().map(to_f64).as_deref(),
                    inp.grad_c_n.as_deref().map(to_f64).as_deref(),
                );
                results.push((
                    "grad_input".into(),
                    ht(&[t, b, cfg.input_size], to_f32(&g.input)),
                ));
                results.push(("grad_h0".into(), ht(&sn, to_f32(&g.h0))));
                if let Some(c) = &g.c0 {
                    results.push(("grad_c0".into(), ht(&sn, to_f32(c))));
                }
                for (n, v) in &g.params {
                    let shape = cfg.param_shape(n).unwrap_or_default();
                    results.push((format!("grad.{n}"), ht(&shape, to_f32(v))));
                }
            }
        }
        Backend::Gpu => {
            let ctx = Context::new()?;
            let rnn = Rnn::new(&ctx, &params)?;
            let up = |n: &str, s: &[usize], v: &Option<Vec<f32>>| -> Result<Option<Tensor>> {
                v.as_ref()
                    .map(|v| Tensor::from_f32(&ctx, n, s, v))
                    .transpose()
            };
            let x = Tensor::from_f32(&ctx, "input", &[t, b, cfg.input_size], &inp.input)?;
            let h0 = up("h0", &sn, &inp.h0)?;
            let c0 = up("c0", &sn, &inp.c0)?;
            let fi = ForwardInputs {
                h0: h0.as_ref(),
                c0: c0.as_ref(),
                lengths: inp.lengths.as_deref(),
                ..Default::default()
            };
            let (out, state) = if inp.wants_backward() {
                let (o, s) = rnn.forward_train(&ctx, &x, &fi)?;
                (o, Some(s))
            } else {
                (rnn.forward(&ctx, &x, &fi)?, None)
            };
            results.push((
                "output".into(),
                ht(&[t, b, out_w], out.output.to_vec(&ctx)?),
            ));
            results.push(("h_n".into(), ht(&sn, out.h_n.to_vec(&ctx)?)));
            if let Some(c) = &out.c_n {
                results.push(("c_n".into(), ht(&sn, c.to_vec(&ctx)?)));
            }
            if let Some(state) = state {
                let dy = up("grad_output", &[t, b, out_w], &inp.grad_output)?;
                let dh = up("grad_h_n", &sn, &inp.grad_h_n)?;
                let dc = up("grad_c_n", &sn, &inp.grad_c_n)?;
                let upst = Upstream {
                    output: dy.as_ref(),
                    h_n: dh.as_ref(),
                    c_n: dc.as_ref(),
                };
                let g = rnn.backward(&ctx, &state, &upst, None)?;
                results.push((
                    "grad_input".into(),
                    ht(&[t, b, cfg.input_size], g.input.to_vec(&ctx)?),
                ));
                results.push(("grad_h0".into(), ht(&sn, g.h0.to_vec(&ctx)?)));
                if let Some(c) = &g.c0 {
                    results.push(("grad_c0".into(), ht(&sn, c.to_vec(&ctx)?)));
                }
                for v in g.param_views(&cfg) {
                    results.push((format!("grad.{}", v.name), v.to_host(&ctx)?));
                }
            }
        }
    }
    debug_assert!(!lstm || results.iter().any(|(n, _)| n == "c_n"));
    if batch_first {
        for (n, t_) in results.iter_mut() {
            if n == "output" || n == "grad_input" {
                let x = t_.shape[2];
                t_.data = swap01(&t_.data, t, b);
                t_.shape = vec![b, t, x];
            }
        }
    }
    debug_assert!(results.iter().all(|(_, t)| numel(&t.shape) == t.data.len()));
    write_safetensors(output, &results, None)
}
