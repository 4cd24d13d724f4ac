//! Launcher for `beam.wgsl`: one beam-search step, one workgroup per sentence.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const STEP: KernelSpec = KernelSpec {
    shader: Shader::Beam,
    entry: "beam_step",
    bindings: &[R, RW, RW, RW, RW],
};

/// Lanes per sentence (the WGSL `WG`).
const WG: usize = 64;

/// The largest K (the WGSL `MAX_K`): the kernel's private arrays hold K beams and 2K
/// candidates.
const MAX_K: usize = 32;

/// Sizes of one step: B, K, V, L, the step t, whether it is the last, `</s>`, T, alpha.
pub(crate) struct BeamStep {
    pub batch: usize,
    pub k: usize,
    pub vocab: usize,
    pub layers: usize,
    pub t: usize,
    pub last: bool,
    pub eos: u32,
    pub steps: usize,
    pub alpha: f32,
}

/// One step of `beam_step` over `logp [B*K, V]`, updating `ints`, `floats`, `reorder [L*B*K]`
/// and `rows [B*K]` (layouts in `beam.wgsl`).
pub(crate) fn beam_step(
    rec: &mut Recorder,
    s: &BeamStep,
    logp: &Tensor,
    ints: &Tensor,
    floats: &Tensor,
    reorder: &Tensor,
    rows: &Tensor,
) -> Result<()> {
    // The kernel's private arrays hold at most MAX_K beams (2 * MAX_K candidates), it writes
    // history row t (of `steps`) and divides candidate indices by V; the sizes below also keep
    // the extent arithmetic from underflowing.
    if !(1..=MAX_K).contains(&s.k) {
        return Err(Error::config(format!(
            "beam size {} must lie in 1..={MAX_K}",
            s.k
        )));
    }
    if s.t >= s.steps {
        return Err(Error::config(format!(
            "beam step {} is past the length limit {}",
            s.t, s.steps
        )));
    }
    if s.vocab == 0 || s.batch == 0 || s.layers == 0 {
        return Err(Error::config(format!(
            "a beam step needs a vocabulary, sentences and layers (V {}, B {}, L {})",
            s.vocab, s.batch, s.layers
        )));
    }
    let bk = s.batch * s.k;
    check_extent("beam log-probabilities", logp, bk * s.vocab - 1)?;
    check_extent(
        "beam history",
        ints,
        2 * s.steps * bk + 2 * bk + s.batch - 1,
    )?;
    check_extent("beam scores", floats, 2 * bk - 1)?;
    check_extent("beam state rows", reorder, s.layers * bk - 1)?;
    check_extent("beam rows", rows, bk - 1)?;
    let p = [
        s.batch as u32,
        s.k as u32,
        s.vocab as u32,
        s.layers as u32,
        s.t as u32,
        u32::from(s.last),
        s.eos,
        s.steps as u32,
        s.alpha.to_bits(),
    ];
    rec.dispatch(
        STEP,
        &[],
        &p,
        &[logp, ints, floats, reorder, rows],
        grid_1d(s.batch * WG, WG),
    )
}
