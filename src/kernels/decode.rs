//! Launchers for `decode.wgsl`: arg-max, top-k and sampling over the last axis, one workgroup
//! per row.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::Result;
use crate::ops::View;
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const ARGMAX: KernelSpec = KernelSpec {
    shader: Shader::Decode,
    entry: "argmax_forward",
    bindings: &[R, RW],
};
const TOPK: KernelSpec = KernelSpec {
    shader: Shader::Decode,
    entry: "topk_forward",
    bindings: &[R, RW, RW],
};
const SAMPLE: KernelSpec = KernelSpec {
    shader: Shader::Decode,
    entry: "sample_forward",
    bindings: &[R, RW],
};

/// Lanes per row (the WGSL `WG`).
const ROW_WG: usize = 64;

/// The uniform `Decode` struct: `k`, output offset, seed, step, temperature.
fn params(x: &View, k: usize, o_off: usize, seed: u32, step: u32, temperature: f32) -> [u32; 9] {
    [
        x.rows() as u32,
        x.cols() as u32,
        x.offset() as u32,
        x.stride() as u32,
        k as u32,
        o_off as u32,
        seed,
        step,
        temperature.to_bits(),
    ]
}

fn check(x: &View, ids: &Tensor, o_off: usize) -> Result<()> {
    check_extent("decode input", x.tensor(), x.max_index())?;
    check_extent("decode output", ids, o_off + x.rows() - 1)
}

/// `ids[o_off + r] = argmax_c x[r, c]`.
pub(crate) fn argmax(rec: &mut Recorder, x: &View, ids: &Tensor, o_off: usize) -> Result<()> {
    if x.rows() == 0 {
        return Ok(());
    }
    check(x, ids, o_off)?;
    let p = params(x, 0, o_off, 0, 0, 1.0);
    rec.dispatch(
        ARGMAX,
        &[],
        &p,
        &[x.tensor(), ids],
        grid_1d(x.rows() * ROW_WG, ROW_WG),
    )
}

/// `values [rows, k]`, `indices [rows, k]`: each row's k best elements in order.
pub(crate) fn topk(
    rec: &mut Recorder,
    x: &View,
    k: usize,
    values: &Tensor,
    indices: &Tensor,
) -> Result<()> {
    if x.rows() == 0 || k == 0 {
        return Ok(());
    }
    check_extent("top-k input", x.tensor(), x.max_index())?;
    check_extent("top-k values", values, x.rows() * k - 1)?;
    check_extent("top-k indices", indices, x.rows() * k - 1)?;
    let p = params(x, k, 0, 0, 0, 1.0);
    rec.dispatch(
        TOPK,
        &[],
        &p,
        &[x.tensor(), indices, values],
        grid_1d(x.rows() * ROW_WG, ROW_WG),
    )
}

/// `ids[o_off + r]` = a draw from softmax(x[r] / temperature) over the top `k` (all when 0).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sample(
    rec: &mut Recorder,
    x: &View,
    k: usize,
    temperature: f32,
    seed: u32,
    step: u32,
    ids: &Tensor,
    o_off: usize,
) -> Result<()> {
    if x.rows() == 0 {
        return Ok(());
    }
    check(x, ids, o_off)?;
    let p = params(x, k, o_off, seed, step, temperature);
    rec.dispatch(
        SAMPLE,
        &[],
        &p,
        &[x.tensor(), ids],
        grid_1d(x.rows() * ROW_WG, ROW_WG),
    )
}
