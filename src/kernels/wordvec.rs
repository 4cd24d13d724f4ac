//! Launchers for `wordvec.wgsl`: the skip-gram negative-sampling loss and its gradients, the
//! loss sum, and CSLS retrieval scores.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::{Error, Result};
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
        let mut p = params(self.n, self.slots, self.dim, flags, self.scale);
        // V: the kernels read no table row of an id >= V (a NaN row instead).
        p[6] = self.vocab as u32;
        p
    }

    fn check_tables(&self, win: &Tensor, wout: &Tensor) -> Result<()> {
        check_extent("skip-gram input vectors", win, self.table_max()?)?;
        check_extent("skip-gram output vectors", wout, self.table_max()?)
    }

    /// The largest table element a kernel may read, `V * D - 1`; an error for an empty
    /// batch or table (the index arithmetic below assumes N, slots, V, D >= 1).
    fn table_max(&self) -> Result<usize> {
        if self.n == 0 || self.slots == 0 || self.vocab == 0 || self.dim == 0 {
            return Err(Error::Device(format!(
                "internal: skip-gram batch of {} pairs x {} slots over a {} x {} table",
                self.n, self.slots, self.vocab, self.dim
            )));
        }
        Ok(self.vocab * self.dim - 1)
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
    check_extent("skip-gram output vectors", wout, d.table_max()?)?;
    // The ids and coefficients the kernel reads, [N, slots] each.
    check_extent("skip-gram contexts", contexts, d.n * d.slots - 1)?;
    check_extent("skip-gram coefficients", coef, d.n * d.slots - 1)?;
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
    check_extent("skip-gram input vectors", win, d.table_max()?)?;
    // The ids [N] and coefficients [N, slots] the kernel reads.
    check_extent("skip-gram centers", centers, d.n - 1)?;
    check_extent("skip-gram coefficients", coef, d.n * d.slots - 1)?;
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

#[cfg(test)]
mod tests {
    //! Ids the host could not validate (>= V) read no table row: the pair's loss, the
    //! coefficients of the slots they reach and the gradient rows they reach are NaN, the other
    //! pairs match the reference. Needs an adapter (CI fails without one).

    use super::*;
    use crate::context::Context;
    use crate::reference::wordvec as r;
    use crate::tensor::DType;

    fn close(what: &str, got: f32, want: f64) {
        assert!(
            (got as f64 - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{what}: got {got}, want {want}"
        );
    }

    #[test]
    fn ids_outside_the_vocabulary_give_nan_not_reads() {
        let ctx = match Context::new() {
            Ok(c) => c,
            Err(_)
                if std::env::var("WGRNN_SKIP_GPU_TESTS").is_ok_and(|v| v == "1")
                    && !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") =>
            {
                return;
            }
            Err(e) => panic!("GPU tests need an adapter: {e}"),
        };
        // V = 3, D = 2; pair 0 valid, pair 1's center and pair 2's negative outside V.
        let (v, dim, n, slots) = (3, 2, 3, 2);
        let win = [0.1f32, -0.2, 0.3, 0.4, -0.5, 0.6];
        let wout = [0.7f32, 0.2, -0.3, 0.5, 0.1, -0.4];
        let centers = [0u32, 9, 1];
        let contexts = [1u32, 2, 0, 1, 2, 7];
        let t = |name, data: &[f32]| Tensor::from_f32(&ctx, name, &[data.len()], data).unwrap();
        let (win_t, wout_t) = (t("win", &win), t("wout", &wout));
        let centers_t = Tensor::from_u32(&ctx, "centers", &[n], &centers).unwrap();
        let contexts_t = Tensor::from_u32(&ctx, "contexts", &[n, slots], &contexts).unwrap();
        let e = |name, shape: &[usize]| Tensor::empty(&ctx, name, shape, DType::F32).unwrap();
        let (coef, loss) = (e("coef", &[n, slots]), e("loss", &[n]));
        let (dc, dx) = (e("dcenter", &[n, dim]), e("dcontext", &[n * slots, dim]));
        let d = SgnsDims {
            n,
            slots,
            dim,
            vocab: v,
            scale: 0.5,
        };
        let mut rec = Recorder::new(&ctx);
        sgns_forward(
            &mut rec,
            d,
            &win_t,
            &wout_t,
            &centers_t,
            &contexts_t,
            &coef,
            &loss,
        )
        .unwrap();
        sgns_center_grad(&mut rec, d, &wout_t, &contexts_t, &coef, &dc).unwrap();
        sgns_context_grad(&mut rec, d, &win_t, &centers_t, &coef, &dx).unwrap();
        rec.submit().unwrap();
        let (coef, loss) = (coef.to_vec(&ctx).unwrap(), loss.to_vec(&ctx).unwrap());
        let (dc, dx) = (dc.to_vec(&ctx).unwrap(), dx.to_vec(&ctx).unwrap());

        let f = |x: &[f32]| x.iter().map(|&y| y as f64).collect::<Vec<_>>();
        let (win64, wout64) = (f(&win), f(&wout));
        // Pair 0 against the reference; slot 0 of pair 2 (both ids valid) too.
        let (c0, l0) = r::sgns_forward(&win64, &wout64, &[0], &contexts[..2], dim, 0.5);
        close("loss 0", loss[0], l0[0]);
        close("coef (0, 0)", coef[0], c0[0]);
        close("coef (0, 1)", coef[1], c0[1]);
        let dc0 = r::sgns_center_grad(&wout64, &contexts[..2], &c0, slots, dim);
        let dx0 = r::sgns_context_grad(&win64, &[0], &c0, dim);
        for i in 0..dim {
            close("dcenter 0", dc[i], dc0[i]);
        }
        for i in 0..slots * dim {
            close("dcontext 0", dx[i], dx0[i]);
        }
        let (c2, _) = r::sgns_forward(&win64, &wout64, &[1], &[2, 0], dim, 0.5);
        close("coef (2, 0)", coef[4], c2[0]);
        // The sentinel: NaN wherever an id >= V is involved.
        assert!(loss[1].is_nan() && loss[2].is_nan(), "losses {loss:?}");
        assert!(
            coef[2].is_nan() && coef[3].is_nan() && coef[5].is_nan(),
            "coefficients {coef:?}"
        );
        assert!(dc[4..6].iter().all(|x| x.is_nan()), "dcenter {dc:?}");
        assert!(dx[4..8].iter().all(|x| x.is_nan()), "dcontext {dx:?}");
    }
}
