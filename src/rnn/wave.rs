//! The wavefront schedule of a unidirectional inference forward: wavefront step w runs layer l
//! at its timestep w - l, so an L-layer stack over T steps takes one input-projection GEMM (layer
//! 0) and T + L - 1 step dispatches (`wave_forward`), or a single dispatch (`seq_forward`, one
//! workgroup looping over the wavefront) when the batch x hidden work is too small to fill a GPU.
//! Layers above the first compute their input product inside the step; see "Wavefront" in
//! `shaders/recurrent.wgsl` for the layouts.

use super::{Rnn, RnnOutput, empty, placeholder};
use crate::context::KernelVariant;
use crate::encoder::Recorder;
use crate::error::Result;
use crate::kernels::step::{ForwardBindings, StepDims, seq_forward, wave_forward};
use crate::kernels::transpose::{pack_f16, transpose_into};
use crate::tensor::Tensor;

impl Rnn {
    /// Records the forward of a unidirectional stack (inference) on the wavefront schedule:
    /// `input [T, B, I]` -> output `[T, B, H]`, `h_n` / `c_n` `[L, B, H]`. `dims` carries T, B,
    /// H, D = 1 and the flags; `persistent` picks the single-workgroup kernel.
    pub(super) fn record_wavefront(
        &self,
        rec: &mut Recorder,
        input: &Tensor,
        init: (Option<&Tensor>, Option<&Tensor>),
        dims: &StepDims,
        lengths: Option<&Tensor>,
        persistent: bool,
    ) -> Result<RnnOutput> {
        let ctx = rec.ctx();
        let cfg = &self.cfg;
        let (nl, hid, gh) = (cfg.num_layers, cfg.hidden_size, cfg.gate_rows());
        let (t_len, batch) = (dims.seq, dims.batch);
        let (bh, ghh) = (batch * hid, gh * hid);
        let lstm = cfg.mode.has_cell_state();

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
                if dims.f16 {
                    pack_f16(rec, w, &pack, off, transposed, 1, gh, hid)?;
                } else if transposed {
                    transpose_into(rec, w, &pack, off, 1, gh, hid)?;
                } else {
                    rec.copy(w, 0, &pack, off, ghh);
                }
                if let Some(b) = b {
                    rec.copy(b, 0, &bias, bslot * gh, gh);
                }
            }
        }

        let xproj = empty(ctx, "xproj", &[1, t_len, batch, gh])?;
        self.project_input(rec, 0, input, &xproj, t_len * batch)?;

        let hs = empty(ctx, "h states", &[nl, 2, batch, hid])?;
        let cs = if lstm {
            empty(ctx, "c states", &[nl, 2, batch, hid])?
        } else {
            placeholder(ctx)?
        };
        let (h0, c0) = init;
        for l in 0..nl {
            match h0 {
                Some(h0) => rec.copy(h0, l * bh, &hs, 2 * l * bh, bh),
                None => rec.clear(&hs, 2 * l * bh, bh),
            }
            if lstm {
                match c0 {
                    Some(c0) => rec.copy(c0, l * bh, &cs, 2 * l * bh, bh),
                    None => rec.clear(&cs, 2 * l * bh, bh),
                }
            }
        }

        let output = empty(ctx, "output", &[t_len, batch, hid])?;
        let len_ph = placeholder(ctx)?;
        let unused = placeholder(ctx)?;
        let bind = ForwardBindings {
            w_hh: &pack,
            b_hh: &bias,
            xproj: &xproj,
            lengths: lengths.unwrap_or(&len_ph),
            hs: &hs,
            cs: &cs,
            y: &output,
            saved: &unused,
        };
        if persistent {
            seq_forward(rec, dims, nl, &bind)?;
        } else {
            for w in 0..t_len + nl - 1 {
                wave_forward(rec, dims, nl, w, &bind)?;
            }
        }

        // Final states: slot T % 2 of every layer.
        let h_n = empty(ctx, "h_n", &[nl, batch, hid])?;
        let c_n = if lstm {
            Some(empty(ctx, "c_n", &[nl, batch, hid])?)
        } else {
            None
        };
        for l in 0..nl {
            let slot = (2 * l + t_len % 2) * bh;
            rec.copy(&hs, slot, &h_n, l * bh, bh);
            if let Some(c_n) = &c_n {
                rec.copy(&cs, slot, c_n, l * bh, bh);
            }
        }
        Ok(RnnOutput { output, h_n, c_n })
    }
}
