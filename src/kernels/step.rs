//! Launchers for the recurrent drivers in `recurrent.wgsl` (+ one cell file): `step_forward` and
//! `step_backward`, one dispatch per timestep and layer covering both directions; the wavefront
//! drivers `wave_forward` (one dispatch per wavefront step of a unidirectional stack) and
//! `seq_forward` (the whole stack in one single-workgroup dispatch).

use super::gemm::{Dims, View, gemm_partials};
use super::{R, RW, check_extent};
use crate::context::KernelVariant;
use crate::encoder::Recorder;
use crate::error::Result;
use crate::pipeline::KernelSpec;
use crate::rnn::Mode;
use crate::shaders::Shader;
use crate::tensor::Tensor;

pub(crate) const F_TRAIN: u32 = 1;
pub(crate) const F_BIAS: u32 = 2;
pub(crate) const F_LENGTHS: u32 = 4;
pub(crate) const F_DY: u32 = 8;

/// Smallest batch the subgroup step blocks take (see [`StepDims::subgroup`]): their rows.
const SUBGROUP_MIN_BATCH: usize = 16;

/// The cell's module; with `subgroup`, the one that adds recurrent_cpu_subgroup.wgsl.
fn shader(mode: Mode, subgroup: bool) -> Shader {
    match (mode, subgroup) {
        (Mode::Lstm, false) => Shader::Lstm,
        (Mode::Gru, false) => Shader::Gru,
        (Mode::RnnTanh | Mode::RnnRelu, false) => Shader::Elman,
        (Mode::Lstm, true) => Shader::LstmSubgroup,
        (Mode::Gru, true) => Shader::GruSubgroup,
        (Mode::RnnTanh | Mode::RnnRelu, true) => Shader::ElmanSubgroup,
    }
}

fn constants(mode: Mode) -> Vec<(&'static str, u32)> {
    match mode {
        Mode::RnnTanh => vec![("ACT", 0)],
        Mode::RnnRelu => vec![("ACT", 1)],
        _ => vec![],
    }
}

/// The splits the context asks of a step's recurrent product: `step_split`, and at least two
/// with tensor-core GEMMs (opt-in f16 precision), so that the product runs on them too.
fn wanted_splits(ctx: &crate::context::Context) -> usize {
    match ctx.precision() {
        crate::context::Precision::F16 => ctx.step_split().max(2),
        crate::context::Precision::F32 => ctx.step_split(),
    }
}

impl StepDims {
    /// Override constants of the forward kernels: the cell's, and WF16 for f16 weights.
    fn fwd_constants(&self) -> Constants {
        let mut c = constants(self.mode);
        if self.f16 {
            c.push(("WF16", 1));
        }
        c
    }
}

/// Tile of the tiled step kernels: `rm` batch rows per invocation and, for the forward, `ut`
/// hidden units per invocation (`ut * G <= 4` gate columns); the backward's invocations own 4
/// units. Rows per invocation grow with the batch (more reuse of each weight read) but shrink
/// again while the grid would leave compute units idle.
pub(crate) fn tile(dims: &StepDims, backward: bool, target_groups: usize) -> (usize, usize) {
    let g = dims.mode.gates();
    let ut = if backward { 4 } else { (4 / g).max(1) };
    let units = if backward { 64 } else { 16 * ut };
    let mut rm = match dims.batch {
        0..=16 => 1,
        17..=32 => 2,
        33..=48 => 3,
        _ => 4,
    };
    let groups = |rm: usize| dims.hidden.div_ceil(units) * dims.batch.div_ceil(16 * rm) * dims.dirs;
    while rm > 1 && groups(rm) < target_groups {
        rm -= 1;
    }
    (rm, ut)
}

/// Override constants of a pipeline.
type Constants = Vec<(&'static str, u32)>;

/// Sizes and flags shared by every step of one layer.
#[derive(Clone, Copy)]
pub(crate) struct StepDims {
    pub mode: Mode,
    pub seq: usize,
    pub batch: usize,
    pub hidden: usize,
    pub dirs: usize,
    pub flags: u32,
    /// Forward kernels read their weights as packed f16 pairs (inference, `WeightStorage::F16`).
    pub f16: bool,
}

/// Which implementation runs a forward step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Impl {
    /// One unit for four rows per invocation (CPU adapters).
    Simple,
    /// Register blocks of 8 rows x 8 units, or 1 x 8 for batches below 8 (CPU adapters, H a
    /// multiple of 4, f32 weights).
    Block,
    /// Tile GEMM through workgroup memory.
    Tiled,
    /// One workgroup per unit, lanes splitting the products (GPUs, B <= `narrow_batch`).
    Gemv,
}

impl StepDims {
    /// The forward kernel of a `step_forward` (`wave = false`) or `wave_forward` dispatch with
    /// `z` workgroups in z (directions, or active layers): entry point, constants, grid.
    fn forward_kernel(
        &self,
        rec: &Recorder,
        wave: bool,
        z: usize,
    ) -> (&'static str, Constants, [u32; 3]) {
        let ctx = rec.ctx();
        let imp = match ctx.variant() {
            KernelVariant::Simple if !wave && self.block(ctx) => Impl::Block,
            KernelVariant::Simple => Impl::Simple,
            KernelVariant::Tiled if self.gemv(ctx, 1) => Impl::Gemv,
            KernelVariant::Tiled => Impl::Tiled,
        };
        let subgroup = imp == Impl::Block && self.subgroup(ctx);
        let entry = match (wave, imp) {
            (false, Impl::Simple) => "step_forward",
            (_, Impl::Block) if subgroup => "step_forward_subgroup",
            (_, Impl::Block) if self.batch >= 8 => "step_forward_block",
            (_, Impl::Block) => "step_forward_block_narrow",
            (false, Impl::Tiled) => "step_forward_tiled",
            (false, Impl::Gemv) => "step_forward_gemv",
            (true, Impl::Simple) => "wave_forward",
            (true, Impl::Tiled) => "wave_forward_tiled",
            (true, Impl::Gemv) => "wave_forward_gemv",
        };
        let (consts, g) = match imp {
            Impl::Simple => (self.fwd_constants(), self.groups()),
            Impl::Block => {
                // Rows, units and invocations per workgroup of the subgroup, wide and narrow
                // blocks (scripts/gen_recurrent_cpu.py).
                let (rows, units, wg) = if subgroup {
                    (16, 4, 8)
                } else if self.batch >= 8 {
                    (8, 8, 16)
                } else {
                    (1, 8, 8)
                };
                (
                    self.fwd_constants(),
                    [
                        self.hidden.div_ceil(units * wg) as u32,
                        self.batch.div_ceil(rows) as u32,
                        1,
                    ],
                )
            }
            Impl::Gemv => (self.fwd_constants(), [self.hidden as u32, 1, 1]),
            Impl::Tiled => match self.tiled(rec, false) {
                Some(t) => t,
                None => (self.fwd_constants(), self.groups()),
            },
        };
        (entry, consts, [g[0], g[1], z as u32])
    }

    /// Values saved per unit for the backward (the cell file's S).
    fn saved_per_unit(&self) -> usize {
        match self.mode {
            Mode::Lstm | Mode::Gru => 4,
            Mode::RnnTanh | Mode::RnnRelu => 0,
        }
    }

    /// Proves the per-layer kernels' indices in range (shader modules are trusted, see
    /// `shaders::create`): non-zero extents, the step within T, and every tensor at least as
    /// large as the layouts the kernels index ("State layouts" in recurrent.wgsl).
    /// `last` is the largest valid `iter`: T - 1 for a forward step, T for the backward's
    /// iterations (the last one writes dh0).
    fn check(&self, iter: usize, last: usize, t: [(&str, &Tensor, usize); 6]) -> Result<()> {
        let (sq, b, h, d) = (self.seq, self.batch, self.hidden, self.dirs);
        if sq == 0 || b == 0 || h == 0 || d == 0 || d > 2 || iter > last {
            return Err(crate::error::Error::Device(format!(
                "internal: step {iter} of T={sq}, B={b}, H={h}, D={d}"
            )));
        }
        for (what, tensor, numel) in t {
            if numel > 0 {
                check_extent(what, tensor, numel - 1)?;
            }
        }
        Ok(())
    }

    /// Elements of the state history (training) or ping-pong pair (inference).
    fn state_numel(&self) -> usize {
        let slots = if self.flags & F_TRAIN != 0 {
            self.seq + 1
        } else {
            2
        };
        slots * self.dirs * self.batch * self.hidden
    }

    fn check_forward(&self, iter: usize, t: &ForwardBindings) -> Result<()> {
        let gh = self.mode.gates() * self.hidden;
        let w = self.dirs * gh * self.hidden;
        let w = if self.f16 { w.div_ceil(2) } else { w };
        let lstm = self.mode == Mode::Lstm;
        let train = self.flags & F_TRAIN != 0;
        let tbd = self.seq * self.batch * self.dirs;
        self.check(
            iter,
            self.seq.saturating_sub(1),
            [
                ("step W_hh", t.w_hh, w),
                ("step xproj", t.xproj, tbd * gh),
                ("step states", t.hs, self.state_numel()),
                (
                    "step cell states",
                    t.cs,
                    if lstm { self.state_numel() } else { 0 },
                ),
                ("step output", t.y, tbd * self.hidden),
                (
                    "step saved",
                    t.saved,
                    if train {
                        tbd * self.saved_per_unit() * self.hidden
                    } else {
                        0
                    },
                ),
            ],
        )?;
        if self.flags & F_BIAS != 0 {
            check_extent("step b_hh", t.b_hh, self.dirs * gh - 1)?;
        }
        if self.flags & F_LENGTHS != 0 {
            check_extent("step lengths", t.lengths, self.batch - 1)?;
        }
        Ok(())
    }

    /// Into how many K slices the forward step's recurrent product is split (1: the fused
    /// kernels): `Context::step_split` on the tiled variant for f32 weights and batches above
    /// the matrix-vector kernels', at least 16 of K per slice.
    pub(crate) fn split(&self, ctx: &crate::context::Context) -> usize {
        if ctx.variant() != KernelVariant::Tiled || self.f16 || self.gemv(ctx, 1) {
            return 1;
        }
        wanted_splits(ctx).min(self.hidden / 16).max(1)
    }

    /// [`split`](Self::split) for the backward step, whose recurrent product sums over
    /// K = G*H: at least 16 of it per slice.
    pub(crate) fn split_backward(&self, ctx: &crate::context::Context) -> usize {
        if ctx.variant() != KernelVariant::Tiled || self.gemv(ctx, 8) {
            return 1;
        }
        wanted_splits(ctx)
            .min(self.mode.gates() * self.hidden / 16)
            .max(1)
    }

    /// Whether the register-blocked CPU step kernels (`recurrent_cpu.wgsl`) take this layer:
    /// the simple variant with its blocks on, H a multiple of 4 (vec4 weight reads), f32
    /// weights.
    fn block(&self, ctx: &crate::context::Context) -> bool {
        ctx.variant() == KernelVariant::Simple
            && ctx.cpu_blocks()
            && self.hidden % 4 == 0
            && !self.f16
    }

    /// Whether a blocked layer runs the subgroup blocks (`recurrent_cpu_subgroup.wgsl`, 16
    /// rows per workgroup): subgroups of 8 lanes, and a batch that fills the 16 rows (at
    /// B = 8 the half-empty blocks measured slower than the wide ones on lavapipe).
    fn subgroup(&self, ctx: &crate::context::Context) -> bool {
        self.block(ctx)
            && ctx.cpu_subgroups()
            && ctx.has_cpu_subgroups()
            && self.batch >= SUBGROUP_MIN_BATCH
    }

    /// Whether the matrix-vector kernels (`units` hidden units per workgroup) take this layer:
    /// a batch up to `narrow_batch` and a grid of H / `units` workgroups within the x limit.
    fn gemv(&self, ctx: &crate::context::Context, units: usize) -> bool {
        self.batch <= ctx.narrow_batch()
            && self.hidden.div_ceil(units) as u32
                <= ctx.limits().max_compute_workgroups_per_dimension
    }

    fn tiled(&self, rec: &Recorder, backward: bool) -> Option<(Constants, [u32; 3])> {
        let ctx = rec.ctx();
        if ctx.variant() != KernelVariant::Tiled {
            return None;
        }
        let (rm, ut) = tile(self, backward, ctx.target_workgroups());
        let mut c = if backward {
            constants(self.mode)
        } else {
            self.fwd_constants()
        };
        c.push(("RM", rm as u32));
        c.push(("UT", ut as u32));
        let units = if backward { 64 } else { 16 * ut };
        let groups = [
            self.hidden.div_ceil(units) as u32,
            self.batch.div_ceil(16 * rm) as u32,
            self.dirs as u32,
        ];
        Some((c, groups))
    }

    fn params(&self, iter: usize, h0_off: usize) -> [u32; 8] {
        self.wave_params(iter, h0_off, 1)
    }

    fn wave_params(&self, iter: usize, h0_off: usize, layers: usize) -> [u32; 8] {
        [
            self.seq as u32,
            self.batch as u32,
            self.hidden as u32,
            self.dirs as u32,
            iter as u32,
            self.flags,
            h0_off as u32,
            layers as u32,
        ]
    }
    fn groups(&self) -> [u32; 3] {
        [
            self.hidden.div_ceil(64) as u32,
            self.batch.div_ceil(4) as u32,
            self.dirs as u32,
        ]
    }
}

/// Tensors of a forward step. Shapes: `w_hh [D, G*H, H]` for the tiled kernel or its transpose
/// `[D, H, G*H]` for the simple one (as f16 pairs with `dims.f16`), `b_hh [D, G*H]`,
/// `xproj [D, T, B, G*H]`, `lengths [B]`, `hs`/`cs` `[D, T+1, B, H]` (training) or
/// `[2, D, B, H]` (inference), `y [T, B, D*H]`, `saved [D, T, B, S*H]`. Unused ones may be any
/// distinct placeholder tensor.
///
/// The wavefront drivers (unidirectional stacks; "Wavefront" in recurrent.wgsl) bind the
/// same slots differently: `w_hh` = every layer's weights `[L, 2, N]`, N = G*H*H rounded up to
/// even (W_hh, W_ih; as stored for the tiled and gemv kernels, transposed for the others),
/// `b_hh` = every layer's biases `[L, 2, G*H]` (b_ih, b_hh), `xproj [T, B, G*H]` (layer 0),
/// `hs`/`cs` `[L, 2, B, H]` (training: `[L, T+1, B, H]`), `y [T, B, H]`, `saved`
/// `[L, T, B, S*H]` in training, else unused.
pub(crate) struct ForwardBindings<'a> {
    pub w_hh: &'a Tensor,
    pub b_hh: &'a Tensor,
    pub xproj: &'a Tensor,
    pub lengths: &'a Tensor,
    pub hs: &'a Tensor,
    pub cs: &'a Tensor,
    pub y: &'a Tensor,
    pub saved: &'a Tensor,
    /// Scratch of the split step, `[splits, D, B, G*H]` ([`StepDims::split`] > 1; only
    /// `step_forward` uses it).
    pub split: Option<&'a Tensor>,
}

impl ForwardBindings<'_> {
    fn tensors(&self) -> [&Tensor; 8] {
        [
            self.w_hh,
            self.b_hh,
            self.xproj,
            self.lengths,
            self.hs,
            self.cs,
            self.y,
            self.saved,
        ]
    }
}

/// Records step `s` (time s forward, T-1-s reverse) of one layer.
pub(crate) fn step_forward(
    rec: &mut Recorder,
    dims: &StepDims,
    s: usize,
    t: &ForwardBindings,
) -> Result<()> {
    dims.check_forward(s, t)?;
    if let Some(parts) = t.split {
        return split_step_forward(rec, dims, s, t, parts);
    }
    let (entry, consts, groups) = dims.forward_kernel(rec, false, dims.dirs);
    let params = dims.params(s, 0);
    dispatch_forward(rec, dims, entry, &consts, &params, &t.tensors(), groups)
}

/// Step `s` as a split-K GEMM of `h_{t-1} W_hh^T` per direction into `parts`, then
/// `step_cell_split` (sums the splits in order, adds b_hh and the input side, applies the
/// cell): more workgroups than the fused tiled kernel when B * G*H gives few tiles and H is
/// long. Tiled variant, f32 weights `[D, G*H, H]` as stored.
fn split_step_forward(
    rec: &mut Recorder,
    dims: &StepDims,
    s: usize,
    t: &ForwardBindings,
    parts: &Tensor,
) -> Result<()> {
    let (b, h, nd) = (dims.batch, dims.hidden, dims.dirs);
    let gh = dims.mode.gates() * h;
    let bh = b * h;
    // Where h_{t-1} of direction 0 starts and how far direction 1's is from it ("State
    // layouts" in recurrent.wgsl): training, d = 0 reads slot s, d = 1 slot T - s of its own
    // [T+1, B, H] block; inference, slot s % 2 of the ping-pong pair.
    let (off, zs) = if dims.flags & F_TRAIN != 0 {
        (s * bh, (2 * dims.seq + 1 - 2 * s) * bh)
    } else {
        ((s % 2) * nd * bh, bh)
    };
    let a = View {
        t: t.hs,
        off,
        rs: h,
        cs: 1,
        zs: if nd > 1 { zs } else { 0 },
        ss: 0,
    };
    let w = View::rows(t.w_hh, 0, h).t().z(gh * h);
    let gemm = Dims {
        m: b,
        n: gh,
        k: h,
        z: nd,
        nsum: 1,
    };
    let splits = gemm_partials(rec, gemm, a, w, parts, dims.split(rec.ctx()))?;
    let mut params = dims.params(s, 0);
    params[7] = splits as u32;
    let mut tensors = t.tensors();
    tensors[0] = parts;
    let groups = [h.div_ceil(64) as u32, b as u32, nd as u32];
    dispatch_forward(
        rec,
        dims,
        "step_cell_split",
        &constants(dims.mode),
        &params,
        &tensors,
        groups,
    )
}

/// Records one dispatch of a forward driver (every one binds the same eight tensors).
fn dispatch_forward(
    rec: &mut Recorder,
    dims: &StepDims,
    entry: &'static str,
    consts: &Constants,
    params: &[u32; 8],
    tensors: &[&Tensor; 8],
    groups: [u32; 3],
) -> Result<()> {
    let spec = KernelSpec {
        shader: shader(dims.mode, entry.ends_with("_subgroup")),
        entry,
        bindings: FORWARD_BINDINGS,
    };
    rec.dispatch(spec, consts, params, tensors, groups)
}

/// Tensors of a backward step. Shapes: `w_hh [D, G*H, H]`, `lengths [B]`,
/// `saved [D, T, B, S*H]`, `hs`/`cs` `[D, T+1, B, H]`, `dy [T, B, D*H]`, `dgx`/`dgh`
/// `[D, T, B, G*H]`, `dhs`/`dcs` `[2, D, B, H]`, `dh0`/`dc0` `[L*D, B, H]`.
pub(crate) struct BackwardBindings<'a> {
    pub w_hh: &'a Tensor,
    pub lengths: &'a Tensor,
    pub saved: &'a Tensor,
    pub hs: &'a Tensor,
    pub cs: &'a Tensor,
    pub dy: &'a Tensor,
    pub dgx: &'a Tensor,
    pub dgh: &'a Tensor,
    pub dhs: &'a Tensor,
    pub dcs: &'a Tensor,
    pub dh0: &'a Tensor,
    pub dc0: &'a Tensor,
    /// Scratch of the split step, `[splits, D, B, H]` ([`StepDims::split_backward`] > 1).
    pub split: Option<&'a Tensor>,
}

/// Records backward iteration `k` (processing step T-1-k; `k == T` writes dh0/dc0 at `h0_off`).
pub(crate) fn step_backward(
    rec: &mut Recorder,
    dims: &StepDims,
    k: usize,
    h0_off: usize,
    t: &BackwardBindings,
) -> Result<()> {
    let gh = dims.mode.gates() * dims.hidden;
    let tbd = dims.seq * dims.batch * dims.dirs;
    let bh = dims.batch * dims.hidden;
    let lstm = dims.mode == Mode::Lstm;
    dims.check(
        k,
        dims.seq,
        [
            ("backward W_hh", t.w_hh, dims.dirs * gh * dims.hidden),
            (
                "backward saved",
                t.saved,
                tbd * dims.saved_per_unit() * dims.hidden,
            ),
            ("backward states", t.hs, dims.state_numel()),
            ("backward gate gradients", t.dgx, tbd * gh),
            // Only cells whose two sides' gate gradients differ (GRU: SPLIT) bind their own.
            (
                "backward hidden-side gate gradients",
                t.dgh,
                if dims.mode == Mode::Gru { tbd * gh } else { 0 },
            ),
            ("backward carried gradients", t.dhs, 2 * dims.dirs * bh),
        ],
    )?;
    check_extent("backward dh0", t.dh0, h0_off + dims.dirs * bh - 1)?;
    if lstm {
        check_extent("backward cell states", t.cs, dims.state_numel() - 1)?;
        check_extent(
            "backward carried cell gradients",
            t.dcs,
            2 * dims.dirs * bh - 1,
        )?;
        check_extent("backward dc0", t.dc0, h0_off + dims.dirs * bh - 1)?;
    }
    if dims.flags & F_DY != 0 {
        check_extent("backward dy", t.dy, tbd * dims.hidden - 1)?;
    }
    if dims.flags & F_LENGTHS != 0 {
        check_extent("backward lengths", t.lengths, dims.batch - 1)?;
    }
    if let Some(parts) = t.split {
        return split_step_backward(rec, dims, k, h0_off, t, parts);
    }
    let narrow = dims.gemv(rec.ctx(), 8);
    let (entry, consts, groups) = match dims.tiled(rec, true) {
        Some(_) if narrow => (
            "step_backward_gemv",
            constants(dims.mode),
            [dims.hidden.div_ceil(8) as u32, 1, dims.dirs as u32],
        ),
        Some((c, g)) => ("step_backward_tiled", c, g),
        None if dims.block(rec.ctx()) => {
            // Rows, units and invocations per workgroup of the subgroup, wide and narrow
            // blocks (scripts/gen_recurrent_cpu.py).
            let (entry, rows, units, wg) = if dims.subgroup(rec.ctx()) {
                ("step_backward_subgroup", 16, 8, 8)
            } else if dims.batch >= 8 {
                ("step_backward_block", 8, 16, 8)
            } else {
                ("step_backward_block_narrow", 1, 16, 8)
            };
            let g = [
                dims.hidden.div_ceil(units * wg) as u32,
                dims.batch.div_ceil(rows) as u32,
                dims.dirs as u32,
            ];
            (entry, constants(dims.mode), g)
        }
        None => ("step_backward", constants(dims.mode), dims.groups()),
    };
    let spec = KernelSpec {
        shader: shader(dims.mode, entry.ends_with("_subgroup")),
        entry,
        bindings: BACKWARD_BINDINGS,
    };
    rec.dispatch(
        spec,
        &consts,
        &dims.params(k, h0_off),
        &[
            t.w_hh, t.lengths, t.saved, t.hs, t.cs, t.dy, t.dgx, t.dgh, t.dhs, t.dcs, t.dh0, t.dc0,
        ],
        groups,
    )
}

const BACKWARD_BINDINGS: &[super::Access] = &[R, R, R, R, R, R, RW, RW, RW, RW, RW, RW];

/// Backward iteration `k` as a split-K GEMM of the later step's hidden-side gate gradients
/// with W_hh (`dgates_{later} W_hh`, K = G*H) into `parts` per direction, then
/// `step_backward_cell_split` (sums the splits in order, applies the cell's backward). The
/// first iteration has no later step: no GEMM, zero splits.
fn split_step_backward(
    rec: &mut Recorder,
    dims: &StepDims,
    k: usize,
    h0_off: usize,
    t: &BackwardBindings,
    parts: &Tensor,
) -> Result<()> {
    let (sq, b, h, nd) = (dims.seq, dims.batch, dims.hidden, dims.dirs);
    let gh = dims.mode.gates() * h;
    let bgh = b * gh;
    // The later step sf = T - k (in the direction's own order) is at time sf forward and
    // T-1-sf reverse ("State layouts" in recurrent.wgsl).
    let sf = sq - k;
    let mut splits = 0;
    if sf < sq {
        let dg = if dims.mode == Mode::Gru { t.dgh } else { t.dgx };
        let a = View {
            t: dg,
            off: sf * bgh,
            rs: gh,
            cs: 1,
            zs: if nd > 1 {
                (2 * sq - 1 - 2 * sf) * bgh
            } else {
                0
            },
            ss: 0,
        };
        let w = View::rows(t.w_hh, 0, h).z(gh * h);
        let gemm = Dims {
            m: b,
            n: h,
            k: gh,
            z: nd,
            nsum: 1,
        };
        splits = gemm_partials(rec, gemm, a, w, parts, dims.split_backward(rec.ctx()))?;
    }
    let mut params = dims.params(k, h0_off);
    params[7] = splits as u32;
    let spec = KernelSpec {
        shader: shader(dims.mode, false),
        entry: "step_backward_cell_split",
        bindings: BACKWARD_BINDINGS,
    };
    rec.dispatch(
        spec,
        &constants(dims.mode),
        &params,
        &[
            parts, t.lengths, t.saved, t.hs, t.cs, t.dy, t.dgx, t.dgh, t.dhs, t.dcs, t.dh0, t.dc0,
        ],
        [h.div_ceil(64) as u32, b as u32, nd as u32],
    )
}

const FORWARD_BINDINGS: &[super::Access] = &[R, R, R, R, RW, RW, RW, RW];

/// Records wavefront step `w` of a stack of `layers` (layer l at its step w - l, for every l
/// with 0 <= w - l < T): `dims.dirs` must be 1.
pub(crate) fn wave_forward(
    rec: &mut Recorder,
    dims: &StepDims,
    layers: usize,
    w: usize,
    t: &ForwardBindings,
) -> Result<()> {
    let lo = (w + 1).saturating_sub(dims.seq);
    let active = w.min(layers - 1) + 1 - lo;
    let (entry, consts, groups) = dims.forward_kernel(rec, true, active);
    let params = dims.wave_params(w, 0, layers);
    dispatch_forward(rec, dims, entry, &consts, &params, &t.tensors(), groups)
}

/// Records the whole wavefront of a stack of `layers` as one single-workgroup dispatch
/// (transposed `pack`).
pub(crate) fn seq_forward(
    rec: &mut Recorder,
    dims: &StepDims,
    layers: usize,
    t: &ForwardBindings,
) -> Result<()> {
    let (consts, params) = (dims.fwd_constants(), dims.wave_params(0, 0, layers));
    dispatch_forward(
        rec,
        dims,
        "seq_forward",
        &consts,
        &params,
        &t.tensors(),
        [1, 1, 1],
    )
}
