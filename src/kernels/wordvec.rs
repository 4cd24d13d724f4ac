//! Launchers for `wordvec.wgsl`: the skip-gram negative-sampling loss and its gradients, the
//! loss sum, and CSLS retrieval scores.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::Result;
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const FORWARD: KernelSpec = KernelSpec {
    shader: Shader::Wordvec,
    entry: "sgns_forward",
    bindings: &[R, R, R, R, RW, RW],
};
const CENTER_GRAD: KernelSpec = KernelSpec {
    shader: Shader::Wordvec,
    entry: "sgns_center_grad",
    bindings: &[R, R, R, RW],
};
const CONTEXT_GRAD: KernelSpec = KernelSpec {
    shader: Shader::Wordvec,
    entry: "sgns_context_grad",
    bindings: &[R, R, R, RW],
};
const LOSS_SUM: KernelSpec = KernelSpec {
    shader: Shader::Wordvec,
    entry: "sgns_loss_sum",
    bindings: &[R, RW],
};
const CSLS: KernelSpec = KernelSpec {
    shader: Shader::Wordvec,
    entry: "csls_scores",
    bindings: &[R, R, R, RW],
};
const ROW_MEAN: KernelSpec = KernelSpec {
    shader: Shader::Wordvec,
    entry: "row_mean",
    bindings: &[R, RW],
};

/// Sizes of a skip-gram batch: `n` pairs, `slots` = K + 1 context ids each, `dim` = D,
/// `vocab` = V; `scale` multiplies the loss (1 / N: the mean over pairs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SgnsDims {
    pub n: usize,
    pub slots: usize,
    pub dim: usize,
    pub vocab: usize,
    pub scale: f32,
}

/// The uniform `WordVec` struct in declaration order.
fn params(n: usize, slots: usize, dim: usize, flags: u32, scale: f32) -> [u32; 8] {
    [
        n as u32,
        slots as u32,
        dim as u32,
        flags,
        scale.to_bits(),
        0,
        0,
        0,
    ]
}

/// The random mask of stochastic dictionary induction: entry (row0 + i, j) of the whole
/// matrix survives with probability `keep` (1: no mask), a function of `seed`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CslsMask {
    /// The mask's seed.
    pub seed: u32,
    /// The keep probability in (0, 1].
    pub keep: f32,
    /// The block's first row in the whole matrix.
    pub row0: usize,
}

impl Default for CslsMask {
    fn default() -> Self {
        CslsMask {
            seed: 0,
            keep: 1.0,
            row0: 0,
        }
    }
}

impl SgnsDims {
    fn params(&self, flags: u32) -> [u32; 8] {
        params(self.n, self.slots, self.dim, flags, self.scale)
    }

    fn check_tables(&self, win: &Tensor, wout: &Tensor) -> Result<()> {
        check_extent("skip-gram input vectors", win, self.vocab * self.dim - 1)?;
        check_extent("skip-gram output vectors", wout, self.vocab * self.dim - 1)
    }
}

/// `coef [N, slots]` and `loss [N]` of the pairs `centers [N]` x `contexts [N, slots]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgns_forward(
    rec: &mut Recorder,
    d: SgnsDims,
    win: &Tensor,
    wout: &Tensor,
    centers: &Tensor,
    contexts: &Tensor,
    coef: &Tensor,
    loss: &Tensor,
) -> Result<()> {
    d.check_tables(win, wout)?;
    check_extent("skip-gram centers", centers, d.n - 1)?;
    check_extent("skip-gram contexts", contexts, d.n * d.slots - 1)?;
    check_extent("skip-gram coefficients", coef, d.n * d.slots - 1)?;
    check_extent("skip-gram losses", loss, d.n - 1)?;
    rec.dispatch(
        FORWARD,
        &[],
        &d.params(0),
        &[win, wout, centers, contexts, coef, loss],
        grid_1d(d.n, 64),
    )
}

/// `dcenter [N, D] = sum_j coef[n, j] wout[contexts[n, j]]`.
pub(crate) fn sgns_center_grad(
    rec: &mut Recorder,
    d: SgnsDims,
    wout: &Tensor,
    contexts: &Tensor,
    coef: &Tensor,
    dcenter: &Tensor,
) -> Result<()> {
    check_extent("skip-gram output vectors", wout, d.vocab * d.dim - 1)?;
    check_extent("skip-gram center gradient", dcenter, d.n * d.dim - 1)?;
    rec.dispatch(
        CENTER_GRAD,
        &[],
        &d.params(0),
        &[wout, contexts, coef, dcenter],
        grid_1d(d.n * d.dim, 256),
    )
}

/// `dcontext [N*slots, D] = coef[n, j] win[centers[n]]`.
pub(crate) fn sgns_context_grad(
    rec: &mut Recorder,
    d: SgnsDims,
    win: &Tensor,
    centers: &Tensor,
    coef: &Tensor,
    dcontext: &Tensor,
) -> Result<()> {
    check_extent("skip-gram input vectors", win, d.vocab * d.dim - 1)?;
    check_extent(
        "skip-gram context gradient",
        dcontext,
        d.n * d.slots * d.dim - 1,
    )?;
    rec.dispatch(
        CONTEXT_GRAD,
        &[],
        &d.params(0),
        &[win, centers, coef, dcontext],
        grid_1d(d.n * d.slots * d.dim, 256),
    )
}

/// `total [1] (+)= scale * sum(loss [N])`.
pub(crate) fn sgns_loss_sum(
    rec: &mut Recorder,
    d: SgnsDims,
    loss: &Tensor,
    total: &Tensor,
    accumulate: bool,
) -> Result<()> {
    check_extent("skip-gram losses", loss, d.n - 1)?;
    check_extent("skip-gram loss total", total, 0)?;
    rec.dispatch(
        LOSS_SUM,
        &[],
        &d.params(accumulate as u32),
        &[loss, total],
        [1, 1, 1],
    )
}

/// `out [M, C] = 2 sim - rs[i] - rt[j]`, entries outside `mask` -3e38.
#[allow(clippy::too_many_arguments)]
pub(crate) fn csls_scores(
    rec: &mut Recorder,
    (m, c): (usize, usize),
    sim: &Tensor,
    rs: &Tensor,
    rt: &Tensor,
    mask: CslsMask,
    out: &Tensor,
) -> Result<()> {
    check_extent("CSLS similarities", sim, m * c - 1)?;
    check_extent("CSLS source neighbourhoods", rs, m - 1)?;
    check_extent("CSLS target neighbourhoods", rt, c - 1)?;
    check_extent("CSLS scores", out, m * c - 1)?;
    rec.dispatch(
        CSLS,
        &[],
        &{
            let mut p = params(m, c, 0, mask.seed, mask.keep);
            p[5] = mask.row0 as u32;
            p
        },
        &[sim, rs, rt, out],
        grid_1d(m * c, 256),
    )
}

/// `out [M] = mean over the k columns of vals [M, k]`.
pub(crate) fn row_mean(
    rec: &mut Recorder,
    (m, k): (usize, usize),
    vals: &Tensor,
    out: &Tensor,
) -> Result<()> {
    check_extent("row-mean input", vals, m * k - 1)?;
    check_extent("row-mean output", out, m - 1)?;
    rec.dispatch(
        ROW_MEAN,
        &[],
        &params(m, k, 0, 0, 1.0),
        &[vals, out],
        grid_1d(m, 256),
    )
}
