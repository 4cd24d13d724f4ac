//! Nearest-neighbour retrieval scores (`wordvec.wgsl`): the mean of each row's k best
//! similarities and Conneau et al.'s cross-domain similarity local scaling (CSLS).

use crate::encoder::Recorder;
use crate::error::{Result, check_shape};
pub use crate::kernels::wordvec::CslsMask;
use crate::kernels::wordvec::{csls_scores, row_mean};
use crate::tensor::{DType, Tensor};

/// `r [M]`: the mean of each row of `vals [M, k]` (e.g. [`super::record_topk`]'s values: the
/// mean similarity of a word's k nearest neighbours).
pub fn record_row_mean(rec: &mut Recorder, vals: &Tensor) -> Result<Tensor> {
    let s = vals.shape();
    let (k, m) = (
        *s.last().unwrap_or(&0),
        s.iter().rev().skip(1).product::<usize>(),
    );
    let out = Tensor::empty(rec.ctx(), "row mean", &[m], DType::F32)?;
    if m * k > 0 {
        row_mean(rec, (m, k), vals, &out)?;
    }
    Ok(out)
}

/// `csls [M, C] = 2 sim - rs[i] - rt[j]` from cosine similarities `sim [M, C]`, the source
/// words' neighbourhood means `rs [M]` and the target words' `rt [C]`; entries that `mask`
/// drops are -3e38 (so no arg-max picks them).
pub fn record_csls(
    rec: &mut Recorder,
    sim: &Tensor,
    rs: &Tensor,
    rt: &Tensor,
    mask: CslsMask,
) -> Result<Tensor> {
    if !(mask.keep > 0.0 && mask.keep <= 1.0) {
        return Err(crate::error::Error::config(format!(
            "CSLS keep probability {} must lie in (0, 1]",
            mask.keep
        )));
    }
    let s = sim.shape();
    let (m, c) = (
        s.iter().rev().skip(1).product::<usize>(),
        *s.last().unwrap_or(&0),
    );
    check_shape("CSLS source neighbourhoods", rs.shape(), &[m])?;
    check_shape("CSLS target neighbourhoods", rt.shape(), &[c])?;
    let out = Tensor::empty(rec.ctx(), "CSLS scores", &[m, c], DType::F32)?;
    if m * c > 0 {
        csls_scores(rec, (m, c), sim, rs, rt, mask, &out)?;
    }
    Ok(out)
}
