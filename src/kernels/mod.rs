//! One launcher per WGSL entry point: each takes tensors and sizes, packs the kernel's uniform
//! parameters in the order its WGSL struct declares them, and records one dispatch. Launchers
//! check their own arithmetic (views inside their tensors) and return errors, never panic.

pub(crate) mod beam;
pub(crate) mod decode;
pub(crate) mod dropout;
pub(crate) mod elementwise;
pub(crate) mod embedding;
pub(crate) mod gemm;
pub(crate) mod loss;
pub(crate) mod optim;
pub(crate) mod pool;
pub(crate) mod reduce;
pub(crate) mod softmax;
pub(crate) mod step;
pub(crate) mod transpose;
pub(crate) mod wordvec;

use crate::error::{Error, Result};
use crate::pipeline::Access;
use crate::tensor::Tensor;

pub(crate) const R: Access = Access::Read;
pub(crate) const RW: Access = Access::ReadWrite;

/// Workgroup counts for `n` invocations of a 1-D kernel of `wg` invocations, folded into y when
/// x would exceed the per-dimension limit (kernels rebuild the index from `num_workgroups`).
pub(crate) fn grid_1d(n: usize, wg: usize) -> [u32; 3] {
    let groups = n.div_ceil(wg).max(1);
    if groups <= 65535 {
        [groups as u32, 1, 1]
    } else {
        let y = groups.div_ceil(65535);
        [groups.div_ceil(y) as u32, y as u32, 1]
    }
}

/// Fails (as an internal error) when a kernel would touch element `max_index` of `t`.
pub(crate) fn check_extent(what: &str, t: &Tensor, max_index: usize) -> Result<()> {
    if max_index >= t.numel() {
        return Err(Error::Device(format!(
            "internal: {what} would read element {max_index} of a {}-element tensor",
            t.numel()
        )));
    }
    if max_index > u32::MAX as usize {
        return Err(Error::Limit {
            name: what.to_string(),
            bytes: 4 * max_index as u64,
            limit_name: "32-bit element index",
            limit: 4 * u32::MAX as u64,
        });
    }
    Ok(())
}
