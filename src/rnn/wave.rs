//! The wavefront schedule of a unidirectional forward: wavefront step w runs layer l at its
//! timestep w - l, so an L-layer stack over T steps takes one input-projection GEMM (layer 0)
//! and T + L - 1 step dispatches (`wave_forward`), or, for inference, a single dispatch
//! (`seq_forward`, one workgroup looping over the wavefront) when the batch x hidden work is too
//! small to fill a GPU. A training forward keeps every state and the saved values, then copies
//! them into the per-layer layout the backward reads.
//! Layers above the first compute their input product inside the step; see "Wavefront" in
//! `shaders/recurrent.wgsl` for the layouts.

use super::{ForwardState, LayerState, Rnn, RnnOutput, empty, placeholder};
use crate::context::KernelVariant;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::kernels::step::{F_TRAIN, ForwardBindings, StepDims, seq_forward, wave_forward};
use crate::kernels::transpose::stage_weights;
use crate::tensor::Tensor;

impl Rnn {
    /// Records the forward of a unidirectional stack on the wavefront schedule:
    /// `input [T, B, I]` -> output `[T, B, H]`, `h_n` / `c_n` `[L, B, H]`, and with F_TRAIN in
    /// `dims.flags` (no inter-layer dropout) the state for the backward. `dims` carries T, B, H,
    /// D = 1 and the flags; `persistent` picks the single-workgroup kernel (inference only).
    pub(super) fn record_wavefront(
        &self,
        rec: &mut Recorder,
        input: &Tensor,
        init: (Option<&Tensor>, Option<&Tensor>),
        dims: &StepDims,
        lengths: Option<&Tensor>,
        persistent: bool,
    ) -> Result<(RnnOutput, Option<ForwardState>)> {
        let ctx = rec.ctx();
        let cfg = &self.cfg;
        let (nl, hid, gh) = (cfg.num_layers, cfg.hidden_size, cfg.gate_rows());
        let (t_len, batch) = (dims.seq, dims.batch);
        let (bh, ghh) = (batch * hid, gh * hid);
        let lstm = cfg.mode.has_cell_state();
        let train = dims.flags & F_TRAIN != 0;
        if train && (persistent || cfg.dropout > 0.0) {
            return Err(Error::Device(
                "internal: the training wavefront runs per-step kernels without dropout".into(),
            ));
        }
        // State slots per layer: every state (training) or a ping-pong pair.
        let ns = if train { t_len + 1 } else { 2 };

        // Every layer's weights in one buffer (copied each call: optimisers update the
        // parameters in place), transposed for the kernels that read them per invocation.
        let transposed = persistent || ctx.variant() == KernelVariant::Simple;
        // Blocks of an even number of values, so that f16 pairs never straddle two.
        let block = ghh + ghh % 2;
        let pack = if dims.f16 {
            empty(ctx, "wavefront weights f16", &[nl, 2, block / 2])?
        } else {
            empty(ctx, "wavefront weights", &[nl, 2, block])?
        };
        let bias = if cfg.bias {
            empty(ctx, "wavefront biases", &[nl, 2, gh])?
        } else {
            placeholder(ctx)?
        };
        for (l, lp) in self.layers.iter().enumerate() {
            let mut blocks = vec![(&lp.w_hh, lp.b_hh.as_ref(), 2 * l + 1)];
            if l > 0 {
                blocks.push((&lp.w_ih, lp.b_ih.as_ref(), 2 * l));
            }
            // W_hh goes to block 2l, W_ih to 2l + 1; b_ih to 2l, b_hh to 2l + 1.
            for (i, (w, b, bslot)) in blocks.into_iter().enumerate() {
                let off = (2 * l + i) * block;
                stage_weights(rec, w, &pack, off, transposed, dims.f16, 1, gh, hid)?;
                if let Some(b) = b {
                    rec.copy(b, 0, &bias, bslot * gh, gh)?;
                }
            }
        }

        let xproj = empty(ctx, "xproj", &[1, t_len, batch, gh])?;
        self.project_input(rec, 0, input, &xproj, t_len * batch)?;

        let hs = empty(ctx, "h states", &[nl, ns, batch, hid])?;
        let cs = if lstm {
            empty(ctx, "c states", &[nl, ns, batch, hid])?
        } else {
            placeholder(ctx)?
        };
        let (h0, c0) = init;
        for l in 0..nl {
            match h0 {
                Some(h0) => rec.copy(h0, l * bh, &hs, l * ns * bh, bh)?,
                None => rec.clear(&hs, l * ns * bh, bh)?,
            }
            if lstm {
                match c0 {
                    Some(c0) => rec.copy(c0, l * bh, &cs, l * ns * bh, bh)?,
                    None => rec.clear(&cs, l * ns * bh, bh)?,
                }
            }
        }

        let output = empty(ctx, "output", &[t_len, batch, hid])?;
        let len_ph = placeholder(ctx)?;
        let nsave = cfg.mode.saved_per_unit();
        let saved_len = t_len * batch * nsave * hid;
        let unused = if train && nsave > 0 {
            empty(ctx, "saved gates", &[nl, t_len, batch, nsave * hid])?
        } else {
            placeholder(ctx)?
        };
        let bind = ForwardBindings {
            w_hh: &pack,
            b_hh: &bias,
            xproj: &xproj,
            lengths: lengths.unwrap_or(&len_ph),
            hs: &hs,
            cs: &cs,
            y: &output,
            saved: &unused,
            split: None,
        };
        if persistent {
            seq_forward(rec, dims, nl, &bind)?;
        } else {
            for w in 0..t_len + nl - 1 {
                wave_forward(rec, dims, nl, w, &bind)?;
            }
        }

        // Final states: slot T (training) or T % 2 of every layer.
        let h_n = empty(ctx, "h_n", &[nl, batch, hid])?;
        let c_n = if lstm {
            Some(empty(ctx, "c_n", &[nl, batch, hid])?)
        } else {
            None
        };
        let last = if train { t_len } else { t_len % 2 };
        for l in 0..nl {
            let slot = (l * ns + last) * bh;
            rec.copy(&hs, slot, &h_n, l * bh, bh)?;
            if let Some(c_n) = &c_n {
                rec.copy(&cs, slot, c_n, l * bh, bh)?;
            }
        }
        let out = RnnOutput { output, h_n, c_n };
        if !train {
            return Ok((out, None));
        }

        // The backward's per-layer layout: states [1, T+1, B, H] and saved values per layer,
        // and layer l's input = layer l-1's states after each time (its output rows; at padded
        // times they hold the carried state instead of zeros, which the backward multiplies
        // only by zero gate gradients).
        let mut layers = Vec::with_capacity(nl);
        for l in 0..nl {
            let mut part =
                |name: &str, src: &Tensor, off: usize, shape: &[usize]| -> Result<Tensor> {
                    let t = empty(ctx, name, shape)?;
                    rec.copy(src, off, &t, 0, t.numel())?;
                    Ok(t)
                };
            let x = match l {
                0 => input.clone(),
                _ => part(
                    "layer input",
                    &hs,
                    ((l - 1) * ns + 1) * bh,
                    &[t_len, batch, hid],
                )?,
            };
            let states = [1, ns, batch, hid];
            layers.push(LayerState {
                x,
                hs: part("h states", &hs, l * ns * bh, &states)?,
                cs: match lstm {
                    true => part("c states", &cs, l * ns * bh, &states)?,
                    false => placeholder(ctx)?,
                },
                saved: match nsave {
                    0 => placeholder(ctx)?,
                    _ => part(
                        "saved gates",
                        &unused,
                        l * saved_len,
                        &[1, t_len, batch, nsave * hid],
                    )?,
                },
            });
        }
        let st = ForwardState {
            cfg: cfg.clone(),
            seq: t_len,
            batch,
            lengths: lengths.cloned(),
            layers,
            dropout_seed: 0,
            time_offset: 0,
        };
        Ok((out, Some(st)))
    }
}
