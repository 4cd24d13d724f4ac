//! Launchers for `embedding.wgsl`: lookup, and the sort, segment bounds and segment sums of the
//! deterministic gradient.

use super::{R, RW, check_extent, grid_1d};
use crate::encoder::Recorder;
use crate::error::Result;
use crate::pipeline::KernelSpec;
use crate::shaders::Shader;
use crate::tensor::Tensor;

const FORWARD: KernelSpec = KernelSpec {
    shader: Shader::Embedding,
    entry: "embedding_forward",
    bindings: &[R, R, RW],
};
const KEYS: KernelSpec = KernelSpec {
    shader: Shader::Embedding,
    entry: "embedding_keys_backward",
    bindings: &[R, RW],
};
const SORT: KernelSpec = KernelSpec {
    shader: Shader::Embedding,
    entry: "embedding_sort_backward",
    bindings: &[R, RW],
};
const SEGMENTS: KernelSpec = KernelSpec {
    shader: Shader::Embedding,
    entry: "embedding_segments_backward",
    bindings: &[R, R, RW],
};
const BACKWARD: KernelSpec = KernelSpec {
    shader: Shader::Embedding,
    entry: "embedding_backward",
    bindings: &[R, R, R, RW],
};

/// No padding id (the kernel's `NONE`).
pub(crate) const NO_PADDING: u32 = u32::MAX;

/// Sizes shared by the embedding kernels: `n` ids, `dim` = E, `vocab` = V.
#[derive(Clone, Copy)]
pub(crate) struct EmbedDims {
    pub n: usize,
    pub dim: usize,
    pub vocab: usize,
    pub padding: u32,
}

impl EmbedDims {
    /// The sort's length: `n` rounded up to a power of two.
    pub fn p2(&self) -> usize {
        self.n.max(1).next_power_of_two()
    }

    /// The uniform `Embed` struct in declaration order.
    fn params(&self, k: usize, j: usize, accumulate: bool) -> [u32; 8] {
        [
            self.n as u32,
            self.dim as u32,
            self.vocab as u32,
            self.padding,
            self.p2() as u32,
            k as u32,
            j as u32,
            accumulate as u32,
        ]
    }
}

/// `out [N, E] = table [V, E] [ids [N]]`.
pub(crate) fn embedding_forward(
    rec: &mut Recorder,
    d: EmbedDims,
    table: &Tensor,
    ids: &Tensor,
    out: &Tensor,
) -> Result<()> {
    let len = d.n * d.dim;
    if len == 0 {
        return Ok(());
    }
    check_extent("embedding table", table, d.vocab * d.dim - 1)?;
    check_extent("embedding ids", ids, d.n - 1)?;
    check_extent("embedding out", out, len - 1)?;
    rec.dispatch(
        FORWARD,
        &[],
        &d.params(0, 0, false),
        &[table, ids, out],
        grid_1d(len, 256),
    )
}

/// Sorts the positions `0..N` by (id, position) into `perm [P]`: one dispatch to initialise,
/// then one per bitonic stage (log2(P) (log2(P) + 1) / 2 of them).
pub(crate) fn embedding_sort(
    rec: &mut Recorder,
    d: EmbedDims,
    ids: &Tensor,
    perm: &Tensor,
) -> Result<()> {
    let p2 = d.p2();
    check_extent("embedding perm", perm, p2 - 1)?;
    // The kernels bind `ids` even when N = 0; any tensor will do then.
    if d.n > 0 {
        check_extent("embedding ids", ids, d.n - 1)?;
    }
    rec.dispatch(
        KEYS,
        &[],
        &d.params(0, 0, false),
        &[ids, perm],
        grid_1d(p2, 256),
    )?;
    let mut k = 2;
    while k <= p2 {
        let mut j = k / 2;
        while j > 0 {
            rec.dispatch(
                SORT,
                &[],
                &d.params(k, j, false),
                &[ids, perm],
                grid_1d(p2 / 2, 256),
            )?;
            j /= 2;
        }
        k *= 2;
    }
    Ok(())
}

/// `starts [V + 1]`: where each id's positions begin in the sorted `perm` (`starts[V]` ends the
/// last id's).
pub(crate) fn embedding_segments(
    rec: &mut Recorder,
    d: EmbedDims,
    ids: &Tensor,
    perm: &Tensor,
    starts: &Tensor,
) -> Result<()> {
    check_extent("embedding perm", perm, d.p2() - 1)?;
    if d.n > 0 {
        check_extent("embedding ids", ids, d.n - 1)?;
    }
    check_extent("embedding segment starts", starts, d.vocab)?;
    rec.dispatch(
        SEGMENTS,
        &[],
        &d.params(0, 0, false),
        &[ids, perm, starts],
        grid_1d(d.vocab + 1, 256),
    )
}

/// `dtable [V, E] (+)=` per-id sums of `dy [N, E]` over the segments `starts [V + 1]` of the
/// sorted `perm`, in position order.
pub(crate) fn embedding_backward(
    rec: &mut Recorder,
    d: EmbedDims,
    starts: &Tensor,
    perm: &Tensor,
    dy: &Tensor,
    dtable: &Tensor,
    accumulate: bool,
) -> Result<()> {
    let len = d.vocab * d.dim;
    if len == 0 {
        return Ok(());
    }
    check_extent("embedding segment starts", starts, d.vocab)?;
    check_extent("embedding perm", perm, d.p2() - 1)?;
    if d.n > 0 {
        check_extent("embedding dy", dy, d.n * d.dim - 1)?;
    }
    check_extent("embedding dtable", dtable, len - 1)?;
    rec.dispatch(
        BACKWARD,
        &[],
        &d.params(0, 0, accumulate),
        &[starts, perm, dy, dtable],
        grid_1d(len, 256),
    )
}
