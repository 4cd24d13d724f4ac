//! Launchers for `dropout.wgsl`: inverted dropout with a counter-based mask.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::pipeline::KernelSpec;
use crate::reference::dropout::threshold;
use crate::shaders::Shader;
use crate::tensor::Tensor;

/// Where a mask comes from: `(seed, stream)`; element (t, b, unit) of `[T, B, U]` is hashed,
/// with t counted from `t0`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MaskKey {
    pub seed: u32,
    pub stream: u32,
    pub p: f32,
    pub t0: u32,
}

/// `dst = mask * src / (1 - p)` (forward) or the same mask applied to a gradient (backward);
/// `src`, `dst`: `[T, B, U]` with `batch` = B, `units` = U.
pub(crate) fn dropout(
    rec: &mut Recorder,
    backward: bool,
    key: MaskKey,
    batch: usize,
    units: usize,
    src: &Tensor,
    dst: &Tensor,
) -> Result<()> {
    let len = src.numel();
    if len == 0 {
        return Ok(());
    }
    // The kernel divides the element index by `units` and the row index by `batch` (u32), so
    // both must be non-zero after the conversion; whole [B, U] blocks keep (t, b, unit) the
    // element's coordinates.
    let (Ok(units32), Ok(batch32)) = (u32::try_from(units), u32::try_from(batch)) else {
        return Err(Error::Device(format!(
            "internal: dropout block [{batch}, {units}] exceeds 32-bit sizes"
        )));
    };
    if units32 == 0 || batch32 == 0 || len % (batch * units) != 0 {
        return Err(Error::Device(format!(
            "internal: dropout over {len} elements in blocks of [{batch}, {units}]"
        )));
    }
    check_extent("dropout dst", dst, len - 1)?;
    let spec = KernelSpec {
        shader: Shader::Dropout,
        entry: if backward {
            "dropout_backward"
        } else {
            "dropout_forward"
        },
        bindings: &[R, RW],
    };
    let params = [
        len as u32,
        units32,
        batch32,
        key.seed,
        key.stream,
        threshold(key.p),
        crate::reference::dropout::scale(key.p).to_bits(),
        key.t0,
    ];
    rec.dispatch(spec, &[], &params, &[src, dst], grid_1d(len, 256))
}
