//! The RNN: configuration, parameters, and the scheduler that turns one forward or backward call
//! into GEMMs and per-timestep fused dispatches over layers and directions, recorded into one
//! command buffer.
//!
//! Forward, per layer l (bottom to top):
//!   0. (simple kernels only) transposed copies of W_ih and W_hh for coalesced reads;
//!   1. `xproj[d] = x_l W_ih[d]^T + b_ih[d]` for all T*B rows and both directions: one GEMM;
//!   2. for s in 0..T: one `step_forward` dispatch (both directions; time s and T-1-s);
//!   3. copies of the final states into `h_n` / `c_n`; dropout into the next layer's input.
//!
//! Backward, per layer l (top to bottom):
//!   1. for k in 0..=T: one `step_backward` dispatch (k = T writes dh0 / dc0);
//!   2. `dW_ih[d] (+)= dgx[d]^T x_l`, `dW_hh[d] (+)= dgh[d]^T h_prev[d]`: one GEMM each;
//!      bias gradients: column sums;
//!   3. `dx_l = sum_d dgx[d] W_ih[d]`: one GEMM summing both directions; dropout mask.

mod config;
mod params;
mod wave;

pub use config::{Mode, RnnConfig, parse_param_name};
pub use params::{HostTensor, LayerParams, ParamView, RnnParams, is_param_name};
pub(crate) use params::{check_host, uniform};

use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result, check_shape};
use crate::kernels::dropout::{MaskKey, dropout};
use crate::kernels::gemm::{Dims, View, gemm};
use crate::kernels::reduce::colsum;
use crate::kernels::step::{
    BackwardBindings, F_BIAS, F_DY, F_LENGTHS, F_TRAIN, ForwardBindings, StepDims, step_backward,
    step_forward,
};
use crate::kernels::transpose::{stage_weights, transpose};
use crate::tensor::{DType, Tensor};

/// How the recurrent kernels of an inference forward read the weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightStorage {
    /// As the parameters are (f32).
    #[default]
    F32,
    /// Rounded to f16 (packed two per word, converted on the device each call) with f32
    /// arithmetic: half the weight traffic of every step. Applies to the recurrent weights of
    /// inference forwards (W_hh, and W_ih of layers above the first on the wavefront); the
    /// input-projection GEMM, training forwards and backwards stay f32. Error bounds in
    /// docs/NUMERICS.md. Weights must lie in f16's range (|w| <= 65504): beyond it WGSL leaves
    /// the converted value undefined.
    F16,
}

/// How a forward call is scheduled over layers and timesteps (see ARCHITECTURE.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Layer by layer: one input GEMM and T step dispatches per layer (bidirectional stacks,
    /// training with inter-layer dropout, stacks too large for the wavefront's buffers, and
    /// otherwise single layers and short calls unless the single workgroup takes them).
    PerLayer,
    /// Unidirectional stacks on a wavefront over layers: T + L - 1 step dispatches.
    Wavefront,
    /// Unidirectional inference as one single-workgroup dispatch.
    SingleWorkgroup,
}

impl Schedule {
    /// `per-layer`, `wavefront` or `single-workgroup`.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::PerLayer => "per-layer",
            Schedule::Wavefront => "wavefront",
            Schedule::SingleWorkgroup => "single-workgroup",
        }
    }
}

/// A stack of recurrent layers with its parameters on the device. A clone shares the device
/// tensors (two models can share one encoder).
#[derive(Clone, Debug)]
pub struct Rnn {
    cfg: RnnConfig,
    layers: Vec<LayerParams>,
    weights: WeightStorage,
}

/// Optional inputs of a forward call.
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardInputs<'a> {
    /// Initial hidden state `[L*D, B, H]`; zeros when absent.
    pub h0: Option<&'a Tensor>,
    /// Initial cell state `[L*D, B, H]` (LSTM only); zeros when absent.
    pub c0: Option<&'a Tensor>,
    /// Per-sequence lengths `[B]`, each in `1..=T` (PyTorch's packed-sequence semantics);
    /// all T when absent.
    pub lengths: Option<&'a [usize]>,
    /// Seed of the inter-layer dropout masks (training forward with `dropout > 0` only).
    pub dropout_seed: u32,
    /// The time index of this call's first step in the masks' hash (0 for a whole sequence): a
    /// step-by-step loop passes step t, so its masks are those of one call over the sequence.
    pub time_offset: usize,
}

/// Results of a forward call.
#[derive(Clone, Debug)]
pub struct RnnOutput {
    /// `[T, B, D*H]`: the top layer's outputs, directions concatenated; zero at `t >= len_b`.
    pub output: Tensor,
    /// `[L*D, B, H]`: final hidden state of every layer and direction.
    pub h_n: Tensor,
    /// `[L*D, B, H]`: final cell state (LSTM only).
    pub c_n: Option<Tensor>,
}

struct LayerState {
    x: Tensor,
    hs: Tensor,
    cs: Tensor,
    saved: Tensor,
}

/// What a training-mode forward keeps on the device for the backward. Opaque: its layout may
/// change without notice.
pub struct ForwardState {
    cfg: RnnConfig,
    seq: usize,
    batch: usize,
    lengths: Option<Tensor>,
    layers: Vec<LayerState>,
    dropout_seed: u32,
    time_offset: usize,
}

impl std::fmt::Debug for ForwardState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ForwardState(T={}, B={})", self.seq, self.batch)
    }
}

/// Upstream gradients of a backward call; absent ones are zeros.
#[derive(Clone, Copy, Debug, Default)]
pub struct Upstream<'a> {
    /// `[T, B, D*H]`: gradient of the loss w.r.t. `output`.
    pub output: Option<&'a Tensor>,
    /// `[L*D, B, H]`: gradient w.r.t. `h_n`.
    pub h_n: Option<&'a Tensor>,
    /// `[L*D, B, H]`: gradient w.r.t. `c_n` (LSTM only).
    pub c_n: Option<&'a Tensor>,
}

/// Gradients of a backward call.
#[derive(Clone, Debug)]
pub struct RnnGrads {
    /// `[T, B, I]`: gradient w.r.t. the input.
    pub input: Tensor,
    /// `[L*D, B, H]`: gradient w.r.t. `h0` (zeros' gradient when h0 was absent).
    pub h0: Tensor,
    /// `[L*D, B, H]`: gradient w.r.t. `c0` (LSTM only).
    pub c0: Option<Tensor>,
    /// Parameter gradients, laid out like the parameters (`dw_ih`, `dw_hh`, `db_ih`, `db_hh`).
    pub params: Vec<LayerParams>,
}

/// What one training timestep ([`Rnn::record_step_train`]) keeps for its backward: the
/// step's gate activations and states, as the whole-sequence forward keeps per step. Opaque.
pub struct StepSaved {
    state: ForwardState,
}

impl std::fmt::Debug for StepSaved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StepSaved(B={})", self.state.batch)
    }
}

/// A device-held state for stepping a unidirectional stack one timestep at a time.
#[derive(Clone, Debug)]
pub struct RnnState {
    /// `[L, B, H]`
    pub h: Tensor,
    /// `[L, B, H]` (LSTM only)
    pub c: Option<Tensor>,
}

/// A distinct tiny tensor for bindings a kernel declares but this call does not use.
fn placeholder(ctx: &Context) -> Result<Tensor> {
    Tensor::empty(ctx, "unused", &[4], DType::F32)
}

fn empty(ctx: &Context, name: &str, shape: &[usize]) -> Result<Tensor> {
    Tensor::empty(ctx, name, shape, DType::F32)
}

impl Rnn {
    /// Uploads `params` (which carry their configuration).
    pub fn new(ctx: &Context, params: &RnnParams) -> Result<Rnn> {
        let cfg = params.config().clone();
        cfg.validate()?;
        Self::check_limits(ctx, &cfg)?;
        Ok(Rnn {
            layers: params::upload(ctx, params)?,
            cfg,
            weights: WeightStorage::F32,
        })
    }

    /// Sets how inference forwards read the recurrent weights (see [`WeightStorage`]).
    pub fn set_weight_storage(&mut self, w: WeightStorage) {
        self.weights = w;
    }

    /// How inference forwards read the recurrent weights.
    pub fn weight_storage(&self) -> WeightStorage {
        self.weights
    }

    /// Bytes of the wavefront's weight pack: W_hh of every layer and W_ih of the layers above
    /// the first (what each wavefront step reads), and layer 0's unused W_ih block; f32, or f16
    /// for inference with [`WeightStorage::F16`].
    fn wave_weight_bytes(&self, train: bool) -> usize {
        let cfg = &self.cfg;
        let block = cfg.gate_rows() * cfg.hidden_size;
        let per = (block + block % 2) * 2 * cfg.num_layers;
        match self.weights {
            WeightStorage::F16 if !train => 2 * per,
            _ => 4 * per,
        }
    }

    /// The schedule a forward over `seq` steps of `batch` rows takes on `ctx` (`train`: a
    /// training forward).
    ///
    /// The wavefront binds every layer's weights as one buffer, copied each call, and in
    /// training every layer's states and saved values as one buffer each (copied afterwards into
    /// the per-layer layout of the backward: twice their memory at the peak). It runs only when
    /// those buffers fit the adapter's largest storage binding and the dispatches it saves,
    /// (L-1)(T-1), outweigh the weight copy (one dispatch, ~2.4 us on an H100, counted as ~1 MiB
    /// copied), so `step()` and other short calls run layer by layer. Training with inter-layer
    /// dropout runs layer by layer; the single workgroup (see [`Context::use_persistent`]) is
    /// for inference only.
    pub fn schedule(&self, ctx: &Context, seq: usize, batch: usize, train: bool) -> Schedule {
        let cfg = &self.cfg;
        let (nl, hid) = (cfg.num_layers, cfg.hidden_size);
        let bytes = self.wave_weight_bytes(train) as u64;
        let limit = ctx
            .limits()
            .max_storage_buffer_binding_size
            .min(ctx.limits().max_buffer_size);
        // The largest whole-stack buffer besides the weights (training: the saved values, or
        // the states where nothing is saved).
        let per_step = (batch * hid * nl) as u64 * 4;
        let state_bytes = match train {
            true => per_step * (seq as u64 + 1) * cfg.mode.saved_per_unit().max(1) as u64,
            false => per_step * 2,
        };
        let saved_dispatches = ((nl - 1) * seq.saturating_sub(1)) as u64;
        if cfg.bidirectional || (train && cfg.dropout > 0.0) || bytes.max(state_bytes) > limit {
            Schedule::PerLayer
        } else if !train && ctx.use_persistent(seq, batch, hid, bytes as usize) {
            Schedule::SingleWorkgroup
        } else if nl >= 2 && ctx.wavefront() && saved_dispatches << 20 >= bytes {
            Schedule::Wavefront
        } else {
            Schedule::PerLayer
        }
    }

    /// A stack with PyTorch's default initialisation from `seed` (see [`RnnParams::init`]).
    ///
    /// Errors: [`Error::Limit`] when a parameter tensor exceeds the adapter's limits, before
    /// anything is allocated on the host or the device.
    pub fn random(ctx: &Context, cfg: &RnnConfig, seed: u64) -> Result<Rnn> {
        cfg.validate()?;
        Self::check_limits(ctx, cfg)?;
        Self::new(ctx, &RnnParams::init(cfg, seed)?)
    }

    /// Fails with [`Error::Limit`] when one of `cfg`'s parameter tensors (a layer's weights of
    /// both directions, `[D, G*H, I_l]` and `[D, G*H, H]`) cannot be bound on `ctx`.
    pub fn check_limits(ctx: &Context, cfg: &RnnConfig) -> Result<()> {
        let (d, g, h) = (cfg.dirs(), cfg.mode.gates(), cfg.hidden_size);
        for l in 0..cfg.num_layers {
            ctx.check_tensor(&format!("weight_ih_l{l}"), &[d, g, h, cfg.layer_input(l)])?;
            ctx.check_tensor(&format!("weight_hh_l{l}"), &[d, g, h, h])?;
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &RnnConfig {
        &self.cfg
    }

    /// Per-layer device parameters (optimisers update them in place).
    pub fn layers(&self) -> &[LayerParams] {
        &self.layers
    }

    /// Named views of every parameter in PyTorch's order.
    pub fn param_views(&self) -> Vec<ParamView> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(l, lp)| lp.views(&self.cfg, l))
            .collect()
    }

    /// Reads the parameters back to the host.
    pub fn params(&self, ctx: &Context) -> Result<RnnParams> {
        params::download(ctx, &self.cfg, &self.layers)
    }

    /// Overwrites the parameters from the host (same configuration).
    pub fn set_params(&self, ctx: &Context, params: &RnnParams) -> Result<()> {
        if params.config() != &self.cfg {
            return Err(Error::config("parameters are for another configuration"));
        }
        for v in self.param_views() {
            let host = params
                .get(&v.name)
                .ok_or_else(|| Error::shape(&v.name, "missing parameter"))?;
            v.write(ctx, host)?;
        }
        Ok(())
    }

    /// Checks a call's inputs; returns (T, B).
    fn check_inputs(&self, input: &Tensor, inp: &ForwardInputs) -> Result<(usize, usize)> {
        let cfg = &self.cfg;
        let s = input.shape();
        if s.len() != 3 {
            return Err(Error::shape(
                "input",
                format!("expected [T, B, I], got {s:?}"),
            ));
        }
        let (t, b) = (s[0], s[1]);
        if t == 0 || b == 0 {
            return Err(Error::shape(
                "input",
                format!("T and B must be at least 1, got {s:?}"),
            ));
        }
        if s[2] != cfg.input_size {
            return Err(Error::shape(
                "input",
                format!(
                    "expected I = input_size = {}, got shape {s:?}",
                    cfg.input_size
                ),
            ));
        }
        if input.dtype() != DType::F32 {
            return Err(Error::shape("input", "must be f32"));
        }
        let state = [cfg.num_layers * cfg.dirs(), b, cfg.hidden_size];
        if let Some(h0) = inp.h0 {
            check_shape("h0", h0.shape(), &state)?;
        }
        if let Some(c0) = inp.c0 {
            if !cfg.mode.has_cell_state() {
                return Err(Error::shape(
                    "c0",
                    format!("{} has no cell state", cfg.mode.torch_name()),
                ));
            }
            check_shape("c0", c0.shape(), &state)?;
        }
        if let Some(len) = inp.lengths {
            if len.len() != b {
                return Err(Error::shape(
                    "lengths",
                    format!(
                        "expected {b} lengths (one per batch element), got {}",
                        len.len()
                    ),
                ));
            }
            if let Some((i, l)) = len.iter().enumerate().find(|(_, l)| **l < 1 || **l > t) {
                return Err(Error::shape(
                    "lengths",
                    format!("lengths[{i}] = {l} is outside 1..={t}"),
                ));
            }
        }
        Ok((t, b))
    }

    /// Inference forward: `input [T, B, I]` -> output `[T, B, D*H]`, `h_n`, `c_n`. One submit.
    pub fn forward(&self, ctx: &Context, input: &Tensor, inp: &ForwardInputs) -> Result<RnnOutput> {
        let mut rec = Recorder::new(ctx);
        let (out, _) = self.record_forward(&mut rec, input, inp, false)?;
        rec.submit()?;
        Ok(out)
    }

    /// Training forward: like [`forward`](Self::forward), and keeps on the device what
    /// [`backward`](Self::backward) needs. Applies inter-layer dropout when configured.
    pub fn forward_train(
        &self,
        ctx: &Context,
        input: &Tensor,
        inp: &ForwardInputs,
    ) -> Result<(RnnOutput, ForwardState)> {
        let mut rec = Recorder::new(ctx);
        let (out, st) = self.record_forward(&mut rec, input, inp, true)?;
        rec.submit()?;
        let st = st.ok_or_else(|| Error::Device("internal: no saved state".into()))?;
        Ok((out, st))
    }

    /// Advances a unidirectional stack by one timestep: `x [B, I]` from `state` (zeros when
    /// absent) -> top-layer output `[B, H]` and the new state (`[L, B, H]`). Same kernels as the
    /// sequence forward; one submit.
    pub fn step(
        &self,
        ctx: &Context,
        x: &Tensor,
        state: Option<&RnnState>,
    ) -> Result<(Tensor, RnnState)> {
        if self.cfg.bidirectional {
            return Err(Error::config("step() needs a unidirectional stack"));
        }
        let s = x.shape();
        if s.len() != 2 {
            return Err(Error::shape("x", format!("expected [B, I], got {s:?}")));
        }
        let x3 = x.reshape(&[1, s[0], s[1]])?;
        let inp = ForwardInputs {
            h0: state.map(|st| &st.h),
            c0: state.and_then(|st| st.c.as_ref()),
            ..Default::default()
        };
        let out = self.forward(ctx, &x3, &inp)?;
        let y = out.output.reshape(&[s[0], self.cfg.hidden_size])?;
        Ok((
            y,
            RnnState {
                h: out.h_n,
                c: out.c_n,
            },
        ))
    }

    /// Records one training timestep of a unidirectional stack (PyTorch's `nn.LSTMCell` loop,
    /// stacked): `x [B, I]` from `state` (`[L, B, H]`, zeros when `None`) -> the top layer's
    /// output `[B, H]`, the new state and what the backward needs. `t` is the step's time index
    /// and `dropout_seed` the loop's seed: inter-layer dropout uses the masks one
    /// `record_forward` over the whole sequence with that seed would use at time t. The same
    /// kernels as the sequence forward; the buffers come from the context's pool.
    ///
    /// Errors: a bidirectional stack, `x` or `state` of the wrong shape.
    pub fn record_step_train(
        &self,
        rec: &mut Recorder,
        x: &Tensor,
        state: Option<&RnnState>,
        t: usize,
        dropout_seed: u32,
    ) -> Result<(Tensor, RnnState, StepSaved)> {
        let (x3, b) = self.step_input(x, state)?;
        let inp = ForwardInputs {
            h0: state.map(|st| &st.h),
            c0: state.and_then(|st| st.c.as_ref()),
            lengths: None,
            dropout_seed,
            time_offset: t,
        };
        let (out, saved) = self.record_forward(rec, &x3, &inp, true)?;
        let saved = saved.ok_or_else(|| Error::Device("internal: no saved state".into()))?;
        let y = out.output.reshape(&[b, self.cfg.hidden_size])?;
        let next = RnnState {
            h: out.h_n,
            c: out.c_n,
        };
        Ok((y, next, StepSaved { state: saved }))
    }

    /// The backward of one [`record_step_train`](Self::record_step_train): from `dy [B, H]`
    /// (the upstream gradient of the step's output) and `dstate` (of its new state, `[L, B,
    /// H]`), both zeros when `None`, accumulates the parameter gradients into `grads` (from
    /// [`zero_grads`](Self::zero_grads)) and returns `dx [B, I]` and the gradient of the
    /// previous state. Chained from the last step to the first, passing the state gradient
    /// along, this is the loop's BPTT.
    ///
    /// Errors: a saved step of another stack, gradients of the wrong shape.
    pub fn record_step_backward(
        &self,
        rec: &mut Recorder,
        saved: &StepSaved,
        dy: Option<&Tensor>,
        dstate: Option<&RnnState>,
        grads: &[LayerParams],
    ) -> Result<(Tensor, RnnState)> {
        let (b, h) = (saved.state.batch, self.cfg.hidden_size);
        let dy3 = match dy {
            Some(d) => {
                check_shape("grad_output", d.shape(), &[b, h])?;
                Some(d.reshape(&[1, b, h])?)
            }
            None => None,
        };
        let up = Upstream {
            output: dy3.as_ref(),
            h_n: dstate.map(|s| &s.h),
            c_n: dstate.and_then(|s| s.c.as_ref()),
        };
        let g = self.record_backward(rec, &saved.state, &up, Some(grads))?;
        let dx = g.input.reshape(&[b, self.cfg.input_size])?;
        Ok((dx, RnnState { h: g.h0, c: g.c0 }))
    }

    /// Checks a one-step input `x [B, I]` of a unidirectional stack; returns it as
    /// `[1, B, I]` and B.
    fn step_input(&self, x: &Tensor, state: Option<&RnnState>) -> Result<(Tensor, usize)> {
        if self.cfg.bidirectional {
            return Err(Error::config(
                "stepping needs a unidirectional stack (the reverse direction needs the future)",
            ));
        }
        let s = x.shape();
        if s.len() != 2 {
            return Err(Error::shape("x", format!("expected [B, I], got {s:?}")));
        }
        if let Some(st) = state {
            let want = [self.cfg.num_layers, s[0], self.cfg.hidden_size];
            check_shape("state.h", st.h.shape(), &want)?;
            match (&st.c, self.cfg.mode.has_cell_state()) {
                (Some(c), true) => check_shape("state.c", c.shape(), &want)?,
                (None, true) => return Err(Error::shape("state.c", "an LSTM state needs c")),
                (Some(_), false) => {
                    return Err(Error::shape(
                        "state.c",
                        format!("{} has no cell state", self.cfg.mode.torch_name()),
                    ));
                }
                (None, false) => {}
            }
        }
        Ok((x.reshape(&[1, s[0], s[1]])?, s[0]))
    }

    /// Records a forward into `rec` (no submit). With `train`, also returns the saved state.
    pub fn record_forward(
        &self,
        rec: &mut Recorder,
        input: &Tensor,
        inp: &ForwardInputs,
        train: bool,
    ) -> Result<(RnnOutput, Option<ForwardState>)> {
        let ctx = rec.ctx();
        let cfg = &self.cfg;
        let (t_len, batch) = self.check_inputs(input, inp)?;
        let (nl, nd, hid) = (cfg.num_layers, cfg.dirs(), cfg.hidden_size);
        let gh = cfg.gate_rows();
        let bh = batch * hid;
        let lstm = cfg.mode.has_cell_state();
        let nsave = cfg.mode.saved_per_unit();
        let simple = ctx.variant() == crate::context::KernelVariant::Simple;

        let lengths = match inp.lengths {
            Some(l) => {
                let v: Vec<u32> = l.iter().map(|&x| x as u32).collect();
                Some(Tensor::from_u32(ctx, "lengths", &[batch], &v)?)
            }
            None => None,
        };
        let mut flags = 0;
        if train {
            flags |= F_TRAIN;
        }
        if cfg.bias {
            flags |= F_BIAS;
        }
        if lengths.is_some() {
            flags |= F_LENGTHS;
        }
        let dims = StepDims {
            mode: cfg.mode,
            seq: t_len,
            batch,
            hidden: hid,
            dirs: nd,
            flags,
            f16: !train && self.weights == WeightStorage::F16,
        };

        // Unidirectional stacks: the wavefront schedule (or one single-workgroup dispatch).
        let schedule = self.schedule(ctx, t_len, batch, train);
        if schedule != Schedule::PerLayer {
            let persistent = schedule == Schedule::SingleWorkgroup;
            let init = (inp.h0, inp.c0);
            return self.record_wavefront(rec, input, init, &dims, lengths.as_ref(), persistent);
        }

        let output = empty(ctx, "output", &[t_len, batch, nd * hid])?;
        let h_n = empty(ctx, "h_n", &[nl * nd, batch, hid])?;
        let c_n = if lstm {
            Some(empty(ctx, "c_n", &[nl * nd, batch, hid])?)
        } else {
            None
        };
        let ph = placeholder(ctx)?;
        let len_t = lengths.clone().unwrap_or_else(|| ph.clone());
        let b_ph = placeholder(ctx)?;
        let c_ph = placeholder(ctx)?;
        let s_ph = placeholder(ctx)?;
        // Inference keeps one projection buffer, one state pair and two layer outputs for the
        // whole stack; training keeps every layer's.
        let state_shape = if train {
            vec![nd, t_len + 1, batch, hid]
        } else {
            vec![2, nd, batch, hid]
        };
        let mut xproj = empty(ctx, "xproj", &[nd, t_len, batch, gh])?;
        let mut hs = empty(ctx, "h states", &state_shape)?;
        let mut cs = if lstm {
            empty(ctx, "c states", &state_shape)?
        } else {
            c_ph.clone()
        };
        let mut spare: Option<Tensor> = None;

        let mut x = input.clone();
        let mut layers = Vec::new();
        for l in 0..nl {
            let lp = &self.layers[l];
            // The simple kernels read W_hh transposed so that neighbouring invocations read
            // neighbouring words (refreshed every call: optimisers update the parameters in
            // place); the tiled ones stage the weights through workgroup memory instead.
            let w_hh_step = if dims.f16 || simple {
                let n = nd * gh * hid;
                let words = if dims.f16 { n.div_ceil(2) } else { n };
                let w = empty(ctx, "weight_hh staged", &[words])?;
                stage_weights(rec, &lp.w_hh, &w, 0, simple, dims.f16, nd, gh, hid)?;
                w
            } else {
                lp.w_hh.clone()
            };
            if train && l > 0 {
                xproj = empty(ctx, "xproj", &[nd, t_len, batch, gh])?;
                hs = empty(ctx, "h states", &state_shape)?;
                if lstm {
                    cs = empty(ctx, "c states", &state_shape)?;
                }
            }
            // 1. Input projection of every timestep and direction.
            self.project_input(rec, l, &x, &xproj, t_len * batch)?;
            // Initial states.
            for d in 0..nd {
                let slot = if train {
                    (d * (t_len + 1) + if d == 0 { 0 } else { t_len }) * bh
                } else {
                    d * bh
                };
                let src = (l * nd + d) * bh;
                match inp.h0 {
                    Some(h0) => rec.copy(h0, src, &hs, slot, bh)?,
                    None => rec.clear(&hs, slot, bh)?,
                }
                if lstm {
                    match inp.c0 {
                        Some(c0) => rec.copy(c0, src, &cs, slot, bh)?,
                        None => rec.clear(&cs, slot, bh)?,
                    }
                }
            }
            let y = if l + 1 == nl {
                output.clone()
            } else if train {
                empty(ctx, "layer output", &[t_len, batch, nd * hid])?
            } else {
                match spare.take() {
                    Some(t) if !t.same_buffer(&x) => t,
                    _ => empty(ctx, "layer output", &[t_len, batch, nd * hid])?,
                }
            };
            let saved = if train && nsave > 0 {
                empty(ctx, "saved gates", &[nd, t_len, batch, nsave * hid])?
            } else {
                s_ph.clone()
            };
            // 2. One fused dispatch per timestep, both directions (two with a split step:
            // the split-K product, then the cell).
            let splits = dims.split(ctx);
            let parts = if splits > 1 {
                Some(empty(ctx, "split-K partials", &[splits, nd, batch, gh])?)
            } else {
                None
            };
            let bind = ForwardBindings {
                w_hh: &w_hh_step,
                b_hh: lp.b_hh.as_ref().unwrap_or(&b_ph),
                xproj: &xproj,
                lengths: &len_t,
                hs: &hs,
                cs: &cs,
                y: &y,
                saved: &saved,
                split: parts.as_ref(),
            };
            for s in 0..t_len {
                step_forward(rec, &dims, s, &bind)?;
            }
            // 3. Final states.
            for d in 0..nd {
                let slot = if train {
                    (d * (t_len + 1) + if d == 0 { t_len } else { 0 }) * bh
                } else {
                    ((t_len % 2) * nd + d) * bh
                };
                let dst = (l * nd + d) * bh;
                rec.copy(&hs, slot, &h_n, dst, bh)?;
                if let Some(c_n) = &c_n {
                    rec.copy(&cs, slot, c_n, dst, bh)?;
                }
            }
            let next = if train && cfg.dropout > 0.0 && l + 1 < nl {
                let dropped = empty(ctx, "dropped output", &[t_len, batch, nd * hid])?;
                let key = MaskKey {
                    seed: inp.dropout_seed,
                    stream: l as u32,
                    p: cfg.dropout,
                    t0: inp.time_offset as u32,
                };
                dropout(rec, false, key, batch, nd * hid, &y, &dropped)?;
                dropped
            } else {
                y.clone()
            };
            if train {
                layers.push(LayerState {
                    x: x.clone(),
                    hs: hs.clone(),
                    cs: cs.clone(),
                    saved,
                });
            } else if l > 0 {
                spare = Some(x.clone());
            }
            x = next;
        }
        let out = RnnOutput { output, h_n, c_n };
        let st = train.then(|| ForwardState {
            cfg: cfg.clone(),
            seq: t_len,
            batch,
            lengths,
            layers,
            dropout_seed: inp.dropout_seed,
            time_offset: inp.time_offset,
        });
        Ok((out, st))
    }

    /// `xproj [D, T, B, G*H] = x [T, B, I_l] W_ih[d]^T + b_ih[d]` for layer `l` over `rows` =
    /// T*B rows: one GEMM, directions as its batch. The simple kernels read a transposed copy of
    /// W_ih (neighbouring invocations, neighbouring words), made every call because optimisers
    /// update the weights in place.
    fn project_input(
        &self,
        rec: &mut Recorder,
        l: usize,
        x: &Tensor,
        xproj: &Tensor,
        rows: usize,
    ) -> Result<()> {
        let ctx = rec.ctx();
        let cfg = &self.cfg;
        let (nd, gh, ik) = (cfg.dirs(), cfg.gate_rows(), cfg.layer_input(l));
        let lp = &self.layers[l];
        let simple = ctx.variant() == crate::context::KernelVariant::Simple;
        let w_ih_t;
        // B(k, n) = W_ih[n, k]: read from the transposed copy or as the transpose view.
        let w_ih_view = if simple {
            w_ih_t = empty(ctx, "weight_ih transposed", &[nd, ik, gh])?;
            transpose(rec, &lp.w_ih, &w_ih_t, nd, gh, ik)?;
            View::rows(&w_ih_t, 0, gh)
        } else {
            View::rows(&lp.w_ih, 0, ik).t()
        };
        gemm(
            rec,
            Dims {
                m: rows,
                n: gh,
                k: ik,
                z: nd,
                nsum: 1,
            },
            View::rows(x, 0, ik),
            w_ih_view.z(gh * ik),
            View::rows(xproj, 0, gh).z(rows * gh),
            lp.b_ih.as_ref().map(|b| View::rows(b, 0, gh).z(gh)),
            false,
            1.0,
        )
    }

    /// Backward from a training forward's `state` and upstream gradients. When `accumulate` is
    /// given (per-layer gradient tensors, e.g. from [`zero_grads`](Self::zero_grads)), the
    /// parameter gradients are added into them and the returned `params` share their buffers;
    /// else fresh ones are allocated. Input and state gradients are always fresh. One submit.
    pub fn backward(
        &self,
        ctx: &Context,
        state: &ForwardState,
        up: &Upstream,
        accumulate: Option<&[LayerParams]>,
    ) -> Result<RnnGrads> {
        let mut rec = Recorder::new(ctx);
        let g = self.record_backward(&mut rec, state, up, accumulate)?;
        rec.submit()?;
        Ok(g)
    }

    /// Allocates parameter-gradient tensors for this stack, zero-filled.
    pub fn zero_grads(&self, ctx: &Context) -> Result<Vec<LayerParams>> {
        let mut out = Vec::new();
        for l in 0..self.cfg.num_layers {
            let lp = LayerParams::empty(ctx, &self.cfg, l, "grad.")?;
            for t in lp.all() {
                t.write_range(ctx, 0, &vec![0.0; t.numel()])?;
            }
            out.push(lp);
        }
        Ok(out)
    }

    /// Records a backward into `rec` (no submit); see [`backward`](Self::backward).
    pub fn record_backward(
        &self,
        rec: &mut Recorder,
        st: &ForwardState,
        up: &Upstream,
        accumulate: Option<&[LayerParams]>,
    ) -> Result<RnnGrads> {
        let ctx = rec.ctx();
        let cfg = &self.cfg;
        let (t_len, batch) = (st.seq, st.batch);
        let (nl, nd, hid) = (cfg.num_layers, cfg.dirs(), cfg.hidden_size);
        let gh = cfg.gate_rows();
        let bh = batch * hid;
        let rows = t_len * batch;
        let lstm = cfg.mode.has_cell_state();
        let state_shape = [nl * nd, batch, hid];
        if st.cfg != *cfg || st.layers.len() != nl {
            return Err(Error::config(format!(
                "saved state is from another stack ({:?}, this one is {cfg:?})",
                st.cfg
            )));
        }
        for (l, ls) in st.layers.iter().enumerate() {
            check_shape(
                &format!("saved state: input of layer {l}"),
                ls.x.shape(),
                &[t_len, batch, cfg.layer_input(l)],
            )?;
        }
        if let Some(dy) = up.output {
            check_shape("grad_output", dy.shape(), &[t_len, batch, nd * hid])?;
        }
        if let Some(g) = up.h_n {
            check_shape("grad_h_n", g.shape(), &state_shape)?;
        }
        if let Some(g) = up.c_n {
            if !lstm {
                return Err(Error::shape(
                    "grad_c_n",
                    format!("{} has no cell state", cfg.mode.torch_name()),
                ));
            }
            check_shape("grad_c_n", g.shape(), &state_shape)?;
        }
        let acc = accumulate.is_some();
        let params = match accumulate {
            Some(g) => {
                if g.len() != nl {
                    return Err(Error::config(
                        "gradients to accumulate into are for another stack",
                    ));
                }
                for (l, (gl, pl)) in g.iter().zip(&self.layers).enumerate() {
                    let name = |k: &str| format!("accumulate: {k}_l{l}");
                    check_shape(&name("dw_ih"), gl.w_ih.shape(), pl.w_ih.shape())?;
                    check_shape(&name("dw_hh"), gl.w_hh.shape(), pl.w_hh.shape())?;
                    if gl.b_ih.is_some() != pl.b_ih.is_some()
                        || gl.b_hh.is_some() != pl.b_hh.is_some()
                    {
                        return Err(Error::shape(
                            name("db"),
                            "bias gradients do not match the stack's biases",
                        ));
                    }
                }
                g.to_vec()
            }
            None => (0..nl)
                .map(|l| LayerParams::empty(ctx, cfg, l, "grad."))
                .collect::<Result<Vec<_>>>()?,
        };
        let input = empty(ctx, "grad_input", &[t_len, batch, cfg.input_size])?;
        let dh0 = empty(ctx, "grad_h0", &state_shape)?;
        let dc0 = if lstm {
            Some(empty(ctx, "grad_c0", &state_shape)?)
        } else {
            None
        };

        let ph = placeholder(ctx)?;
        let len_t = st.lengths.clone().unwrap_or_else(|| ph.clone());
        let dy_ph = placeholder(ctx)?;
        let dgh_ph = placeholder(ctx)?;
        let dcs_ph = placeholder(ctx)?;
        let dc0_ph = placeholder(ctx)?;
        let mut base_flags = 0;
        if st.lengths.is_some() {
            base_flags |= F_LENGTHS;
        }

        let mut dout: Option<Tensor> = up.output.cloned();
        for l in (0..nl).rev() {
            let ls = &st.layers[l];
            let lp = &self.layers[l];
            let gp = &params[l];
            let ik = cfg.layer_input(l);
            let dgx = empty(ctx, "dgates", &[nd, t_len, batch, gh])?;
            let dgh = if cfg.mode == Mode::Gru {
                empty(ctx, "dgates hidden", &[nd, t_len, batch, gh])?
            } else {
                dgh_ph.clone()
            };
            let dhs = empty(ctx, "dh carry", &[2, nd, batch, hid])?;
            let dcs = if lstm {
                empty(ctx, "dc carry", &[2, nd, batch, hid])?
            } else {
                dcs_ph.clone()
            };
            match up.h_n {
                Some(g) => rec.copy(g, l * nd * bh, &dhs, 0, nd * bh)?,
                None => rec.clear(&dhs, 0, nd * bh)?,
            }
            if lstm {
                match up.c_n {
                    Some(g) => rec.copy(g, l * nd * bh, &dcs, 0, nd * bh)?,
                    None => rec.clear(&dcs, 0, nd * bh)?,
                }
            }
            let mut flags = base_flags;
            if dout.is_some() {
                flags |= F_DY;
            }
            let dims = StepDims {
                mode: cfg.mode,
                seq: t_len,
                batch,
                hidden: hid,
                dirs: nd,
                flags,
                f16: false,
            };
            let splits = dims.split_backward(ctx);
            let parts = if splits > 1 {
                Some(empty(ctx, "split-K partials", &[splits, nd, batch, hid])?)
            } else {
                None
            };
            let bind = BackwardBindings {
                w_hh: &lp.w_hh,
                lengths: &len_t,
                saved: &ls.saved,
                hs: &ls.hs,
                cs: &ls.cs,
                dy: dout.as_ref().unwrap_or(&dy_ph),
                dgx: &dgx,
                dgh: &dgh,
                dhs: &dhs,
                dcs: &dcs,
                dh0: &dh0,
                dc0: dc0.as_ref().unwrap_or(&dc0_ph),
                split: parts.as_ref(),
            };
            // 1. Reverse walk over time, then the dh0 / dc0 dispatch.
            for k in 0..=t_len {
                step_backward(rec, &dims, k, l * nd * bh, &bind)?;
            }
            // 2. Weight and bias gradients over all timesteps at once.
            let dg_hidden = if cfg.mode == Mode::Gru { &dgh } else { &dgx };
            gemm(
                rec,
                Dims {
                    m: gh,
                    n: ik,
                    k: rows,
                    z: nd,
                    nsum: 1,
                },
                View::rows(&dgx, 0, gh).t().z(rows * gh),
                View::rows(&ls.x, 0, ik),
                View::rows(&gp.w_ih, 0, ik).z(gh * ik),
                None,
                acc,
                1.0,
            )?;
            // h_prev of time t is history slot t (forward) or t+1 (reverse).
            gemm(
                rec,
                Dims {
                    m: gh,
                    n: hid,
                    k: rows,
                    z: nd,
                    nsum: 1,
                },
                View::rows(dg_hidden, 0, gh).t().z(rows * gh),
                View::rows(&ls.hs, 0, hid).z((t_len + 2) * bh),
                View::rows(&gp.w_hh, 0, hid).z(gh * hid),
                None,
                acc,
                1.0,
            )?;
            if let (Some(db_ih), Some(db_hh)) = (&gp.b_ih, &gp.b_hh) {
                colsum(rec, &dgx, 0, gh, rows * gh, rows, gh, nd, db_ih, 0, acc)?;
                colsum(
                    rec,
                    dg_hidden,
                    0,
                    gh,
                    rows * gh,
                    rows,
                    gh,
                    nd,
                    db_hh,
                    0,
                    acc,
                )?;
            }
            // 3. Gradient w.r.t. this layer's input, both directions summed.
            let dx = if l == 0 {
                input.clone()
            } else {
                empty(ctx, "grad layer input", &[t_len, batch, ik])?
            };
            gemm(
                rec,
                Dims {
                    m: rows,
                    n: ik,
                    k: gh,
                    z: 1,
                    nsum: nd,
                },
                View::rows(&dgx, 0, gh).s(rows * gh),
                View::rows(&lp.w_ih, 0, ik).s(gh * ik),
                View::rows(&dx, 0, ik),
                None,
                false,
                1.0,
            )?;
            if l > 0 {
                dout = Some(if cfg.dropout > 0.0 {
                    let dropped = empty(ctx, "grad dropped", &[t_len, batch, ik])?;
                    let key = MaskKey {
                        seed: st.dropout_seed,
                        stream: (l - 1) as u32,
                        p: cfg.dropout,
                        t0: st.time_offset as u32,
                    };
                    dropout(rec, true, key, batch, ik, &dx, &dropped)?;
                    dropped
                } else {
                    dx
                });
            }
        }
        Ok(RnnGrads {
            input,
            h0: dh0,
            c0: dc0,
            params,
        })
    }
}

impl RnnGrads {
    /// Named views of the parameter gradients, PyTorch's names and order.
    pub fn param_views(&self, cfg: &RnnConfig) -> Vec<ParamView> {
        self.params
            .iter()
            .enumerate()
            .flat_map(|(l, lp)| lp.views(cfg, l))
            .collect()
    }
}
