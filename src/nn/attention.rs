//! Attention of decoder states over encoder states, the four scores of the translation
//! models (Luong et al. 2015; Bahdanau et al. 2015), composed from `ops` and [`Linear`].
//!
//! Shapes are batch-major: encoder states `enc [B, S, D]` (D = 2H for a bidirectional
//! encoder), decoder states `s [B, T, H]`, source lengths `[B]`. The encoder side is
//! projected once per batch ([`Attention::record_memory`]) to keys and values of the decoder's
//! size H, so every score is defined when the sizes differ:
//!   k = enc W_k^T, v = enc W_v^T                 [B, S, H]  (no biases)
//!   e[b, t, i] =  s_t . k_i                       dot
//!              =  (W_q s_t) . k_i                 multiplicative (W_q [H, H])
//!              =  (U s_t) . (V k_i)               low-rank (U, V [r, H]: s^T U^T V k)
//!              =  w . tanh(W_1 k_i + W_2 s_t)     additive (W_1, W_2 [A, H], w [1, A])
//!   a = masked_softmax(e) over i < length[b]      [B, T, S]  (padded positions get exactly 0)
//!   c_t = sum_i a[b, t, i] v_i                    [B, T, H]
//! Parameter names: `key.weight`, `value.weight`, `query.weight` (W_q, U or W_2),
//! `key_proj.weight` (V or W_1), `energy.weight` (w). The CPU twin is
//! [`crate::reference::attention`].
//!
//! Teacher-forced training calls [`Attention::record_forward`] once with all T steps; a
//! step-by-step decoder calls it with T = 1 per step on the same memory, and the backward
//! calls accumulate into one [`MemoryGrads`] that [`Attention::record_memory_backward`]
//! turns into the encoder states' gradient.

use std::fmt;

use super::linear::{Linear, LinearGrads};
use super::store::ParamStore;
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result, check_shape};
use crate::ops::{self, AsView};
use crate::tensor::Tensor;

/// The score function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Score {
    /// `s . k`.
    Dot,
    /// `(W_q s) . k`.
    Multiplicative,
    /// `(U s) . (V k)` with U, V of this rank.
    LowRank(usize),
    /// `w . tanh(W_1 k + W_2 s)` with this attention size.
    Additive(usize),
}

impl Score {
    /// Parses `dot`, `multiplicative`, `low-rank` (with `rank`), `additive` (with `rank` as the
    /// attention size).
    pub fn parse(name: &str, rank: usize) -> Result<Score> {
        let s = match name {
            "dot" => Score::Dot,
            "multiplicative" => Score::Multiplicative,
            "low-rank" => Score::LowRank(rank),
            "additive" => Score::Additive(rank),
            _ => {
                return Err(Error::config(format!(
                    "unknown attention {name:?} (dot, multiplicative, low-rank, additive)"
                )));
            }
        };
        if rank == 0 && matches!(s, Score::LowRank(_) | Score::Additive(_)) {
            return Err(Error::config("the attention rank must be at least 1"));
        }
        Ok(s)
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Score::Dot => write!(f, "dot"),
            Score::Multiplicative => write!(f, "multiplicative"),
            Score::LowRank(_) => write!(f, "low-rank"),
            Score::Additive(_) => write!(f, "additive"),
        }
    }
}

/// The layer's parameters.
#[derive(Clone, Debug)]
pub struct Attention {
    /// The score.
    pub score: Score,
    /// `W_k [H, D]`.
    pub key: Linear,
    /// `W_v [H, D]`.
    pub value: Linear,
    /// `W_q [H, H]`, `U [r, H]` or `W_2 [A, H]`; absent for dot.
    pub query: Option<Linear>,
    /// `V [r, H]` or `W_1 [A, H]`; low-rank and additive only.
    pub key_proj: Option<Linear>,
    /// `w [1, A]`; additive only.
    pub energy: Option<Linear>,
}

/// Gradients of an [`Attention`]'s parameters, laid out like them.
#[derive(Clone, Debug)]
pub struct AttentionGrads {
    /// Of `key`.
    pub key: LinearGrads,
    /// Of `value`.
    pub value: LinearGrads,
    /// Of `query`.
    pub query: Option<LinearGrads>,
    /// Of `key_proj`.
    pub key_proj: Option<LinearGrads>,
    /// Of `energy`.
    pub energy: Option<LinearGrads>,
}

/// The encoder side of one batch, projected: what every decoder step attends over.
#[derive(Clone, Debug)]
pub struct Memory {
    /// `enc [B*S, D]`, kept for the backward.
    pub enc: Tensor,
    /// Keys `[B*S, H]`.
    pub keys: Tensor,
    /// Values `[B*S, H]`.
    pub values: Tensor,
    /// `V k` or `W_1 k`, `[B*S, r]`.
    pub keys_proj: Option<Tensor>,
    /// Source lengths `[B]` (u32, each in 1..=S).
    pub lengths: Tensor,
    /// B.
    pub batch: usize,
    /// S.
    pub src_len: usize,
}

/// Gradients of a [`Memory`]'s keys and values (and projected keys), accumulated by every
/// [`Attention::record_backward`] over it.
#[derive(Clone, Debug)]
pub struct MemoryGrads {
    /// `[B*S, H]`.
    pub keys: Tensor,
    /// `[B*S, H]`.
    pub values: Tensor,
    /// `[B*S, r]`.
    pub keys_proj: Option<Tensor>,
}

/// What one forward call keeps for its backward.
#[derive(Clone, Debug)]
pub struct AttentionSaved {
    /// The decoder states `[B, T, H]` (the caller's tensor).
    pub states: Tensor,
    /// `W_q s` etc., `[B*T, H | r | A]`.
    pub query_proj: Option<Tensor>,
    /// The weights `[B, T, S]`.
    pub weights: Tensor,
    /// Additive only: `tanh(W_1 k_i + W_2 s_t)` `[B*T*S, A]` and the row indices that
    /// expanded the keys (`b*S + i`) and the queries (`b*T + t`).
    pub additive: Option<(Tensor, Tensor, Tensor)>,
    /// T.
    pub steps: usize,
}

/// An `Option` the score requires (the fields are public, so a hand-built layer may lack one).
trait Need<T> {
    fn need(self, what: &str) -> Result<T>;
}

impl<T> Need<T> for Option<T> {
    fn need(self, what: &str) -> Result<T> {
        self.ok_or_else(|| Error::config(format!("attention: this score needs its {what}")))
    }
}

fn pair(a: &Option<Linear>, g: &Option<LinearGrads>) -> Result<Option<(Linear, LinearGrads)>> {
    match (a, g) {
        (Some(a), Some(g)) => Ok(Some((a.clone(), g.clone()))),
        (None, None) => Ok(None),
        _ => Err(Error::shape(
            "attention gradients",
            "present iff the parameter is",
        )),
    }
}

impl Attention {
    /// Fresh parameters for encoder states of size `enc` and decoder states of size
    /// `hidden`, PyTorch's `nn.Linear` initialisation seeded from `seed`.
    pub fn random(
        ctx: &Context,
        score: Score,
        enc: usize,
        hidden: usize,
        seed: u64,
    ) -> Result<Self> {
        let lin =
            |i: usize, o: usize, k: u64| Linear::random(ctx, i, o, false, seed.wrapping_add(k));
        let (query, key_proj, energy) = match score {
            Score::Dot => (None, None, None),
            Score::Multiplicative => (Some(lin(hidden, hidden, 3)?), None, None),
            Score::LowRank(r) | Score::Additive(r) => {
                if r == 0 {
                    return Err(Error::config("the attention rank must be at least 1"));
                }
                let energy = match score {
                    Score::Additive(_) => Some(lin(r, 1, 5)?),
                    _ => None,
                };
                (Some(lin(hidden, r, 3)?), Some(lin(hidden, r, 4)?), energy)
            }
        };
        Ok(Attention {
            score,
            key: lin(enc, hidden, 1)?,
            value: lin(enc, hidden, 2)?,
            query,
            key_proj,
            energy,
        })
    }

    /// The decoder size H.
    pub fn hidden(&self) -> usize {
        self.key.fan_out()
    }

    /// Zeroed gradients for every parameter.
    pub fn zero_grads(&self, ctx: &Context) -> Result<AttentionGrads> {
        let z = |l: &Option<Linear>| l.as_ref().map(|l| l.zero_grads(ctx)).transpose();
        Ok(AttentionGrads {
            key: self.key.zero_grads(ctx)?,
            value: self.value.zero_grads(ctx)?,
            query: z(&self.query)?,
            key_proj: z(&self.key_proj)?,
            energy: z(&self.energy)?,
        })
    }

    /// Registers the parameters as `prefix.key.weight`, ... with their gradients.
    pub fn register(
        &self,
        store: &mut ParamStore,
        prefix: &str,
        grads: &AttentionGrads,
    ) -> Result<()> {
        self.key
            .register(store, &format!("{prefix}.key"), &grads.key)?;
        self.value
            .register(store, &format!("{prefix}.value"), &grads.value)?;
        for (name, l, g) in [
            ("query", &self.query, &grads.query),
            ("key_proj", &self.key_proj, &grads.key_proj),
            ("energy", &self.energy, &grads.energy),
        ] {
            if let Some((l, g)) = pair(l, g)? {
                l.register(store, &format!("{prefix}.{name}"), &g)?;
            }
        }
        Ok(())
    }

    /// Records the projection of `enc [B, S, D]` (batch-major; D the encoder size) with
    /// source `lengths [B]` (from [`ops::lengths`], each in 1..=S).
    pub fn record_memory(
        &self,
        rec: &mut Recorder,
        enc: &Tensor,
        lengths: &Tensor,
    ) -> Result<Memory> {
        let (b, s) = match *enc.shape() {
            [b, s, d] if d == self.key.fan_in() => (b, s),
            _ => {
                return Err(Error::shape(
                    "encoder states",
                    format!(
                        "expected [B, S, {}], got {:?}",
                        self.key.fan_in(),
                        enc.shape()
                    ),
                ));
            }
        };
        check_shape("source lengths", lengths.shape(), &[b])?;
        let d = self.key.fan_in();
        let flat = enc.reshape(&[b * s, d])?;
        let keys = self.key.record_forward(rec, &flat)?;
        let values = self.value.record_forward(rec, &flat)?;
        let keys_proj = match &self.key_proj {
            Some(p) => Some(p.record_forward(rec, &keys)?),
            None => None,
        };
        Ok(Memory {
            enc: flat,
            keys,
            values,
            keys_proj,
            lengths: lengths.clone(),
            batch: b,
            src_len: s,
        })
    }

    /// Zeroed gradients for `mem`.
    pub fn zero_memory_grads(&self, ctx: &Context, mem: &Memory) -> Result<MemoryGrads> {
        Ok(MemoryGrads {
            keys: Tensor::zeros(ctx, "grad keys", mem.keys.shape())?,
            values: Tensor::zeros(ctx, "grad values", mem.values.shape())?,
            keys_proj: mem
                .keys_proj
                .as_ref()
                .map(|k| Tensor::zeros(ctx, "grad projected keys", k.shape()))
                .transpose()?,
        })
    }

    /// Records attention of `states [B, T, H]` over `mem`: the contexts `[B, T, H]` and what
    /// the backward needs (the weights `[B, T, S]` among it).
    pub fn record_forward(
        &self,
        rec: &mut Recorder,
        mem: &Memory,
        states: &Tensor,
    ) -> Result<(Tensor, AttentionSaved)> {
        let (b, s, h) = (mem.batch, mem.src_len, self.hidden());
        let t = match *states.shape() {
            [bb, t, hh] if bb == b && hh == h => t,
            _ => {
                return Err(Error::shape(
                    "decoder states",
                    format!("expected [{b}, T, {h}], got {:?}", states.shape()),
                ));
            }
        };
        let flat = states.reshape(&[b * t, h])?;
        let query_proj = match &self.query {
            Some(q) => Some(q.record_forward(rec, &flat)?),
            None => None,
        };
        let mut additive = None;
        let scores = match self.score {
            Score::Dot => {
                ops::record_bmm(rec, states, &mem.keys.reshape(&[b, s, h])?, false, true)?
            }
            Score::Multiplicative | Score::LowRank(_) => {
                let qp = query_proj.as_ref().need("query projection")?;
                let (k, w) = match &mem.keys_proj {
                    Some(kp) => (kp, kp.shape()[1]),
                    None => (&mem.keys, h),
                };
                ops::record_bmm(
                    rec,
                    &qp.reshape(&[b, t, w])?,
                    &k.reshape(&[b, s, w])?,
                    false,
                    true,
                )?
            }
            Score::Additive(a) => {
                let (ki, qi) = expand_indices(rec.ctx(), b, t, s)?;
                let kp = mem.keys_proj.as_ref().need("projected keys")?;
                let qp = query_proj.as_ref().need("query projection")?;
                let ke = ops::record_gather_rows(rec, kp, &ki)?;
                let qe = ops::record_gather_rows(rec, qp, &qi)?;
                let z = ops::record_tanh_add(rec, &ke, &qe)?;
                let e = self
                    .energy
                    .as_ref()
                    .need("energy")?
                    .record_forward(rec, &z)?;
                debug_assert_eq!(z.shape(), &[b * t * s, a]);
                additive = Some((z, ki, qi));
                e.reshape(&[b, t, s])?
            }
        };
        let weights = ops::record_masked_softmax(rec, &scores, Some(&mem.lengths), t)?;
        let ctxs = ops::record_bmm(
            rec,
            &weights,
            &mem.values.reshape(&[b, s, h])?,
            false,
            false,
        )?;
        Ok((
            ctxs,
            AttentionSaved {
                states: states.clone(),
                query_proj,
                weights,
                additive,
                steps: t,
            },
        ))
    }

    /// Records the backward of one [`Self::record_forward`] from `dctx [B, T, H]`: parameter
    /// gradients of the query side accumulate into `grads`, the keys' and values' into
    /// `dmem`; returns `dstates [B, T, H]`.
    pub fn record_backward(
        &self,
        rec: &mut Recorder,
        mem: &Memory,
        saved: &AttentionSaved,
        dctx: &Tensor,
        grads: &AttentionGrads,
        dmem: &MemoryGrads,
    ) -> Result<Tensor> {
        let ctx = rec.ctx();
        let (b, s, h, t) = (mem.batch, mem.src_len, self.hidden(), saved.steps);
        check_shape("context gradient", dctx.shape(), &[b, t, h])?;
        // c = a v: da and dv.
        let dweights = Tensor::zeros(ctx, "grad attention weights", &[b, t, s])?;
        let values = mem.values.reshape(&[b, s, h])?;
        ops::record_bmm_backward(
            rec,
            &saved.weights,
            &values,
            false,
            false,
            dctx,
            Some(&dweights.view()),
            Some(&dmem.values.reshape(&[b, s, h])?.view()),
        )?;
        let dscores = Tensor::zeros(ctx, "grad attention scores", &[b, t, s])?;
        ops::record_masked_softmax_backward(
            rec,
            &saved.weights,
            &dweights,
            Some(&mem.lengths),
            t,
            &dscores,
        )?;
        let states = &saved.states;
        let flat = states.reshape(&[b * t, h])?;
        let qpair = pair(&self.query, &grads.query)?;
        let query_back = |rec: &mut Recorder, dqp: &Tensor| -> Result<Tensor> {
            let (q, g) = qpair.as_ref().need("query")?;
            q.record_backward(rec, &flat, dqp, g, true)?
                .reshape(&[b, t, h])
        };
        match self.score {
            Score::Dot => {
                let dstates = Tensor::zeros(ctx, "grad decoder states", &[b, t, h])?;
                ops::record_bmm_backward(
                    rec,
                    states,
                    &mem.keys.reshape(&[b, s, h])?,
                    false,
                    true,
                    &dscores,
                    Some(&dstates.view()),
                    Some(&dmem.keys.reshape(&[b, s, h])?.view()),
                )?;
                Ok(dstates)
            }
            Score::Multiplicative | Score::LowRank(_) => {
                let qp = saved.query_proj.as_ref().need("query projection")?;
                let (k, dk, w) = match (&mem.keys_proj, &dmem.keys_proj) {
                    (Some(kp), Some(dkp)) => (kp, dkp, kp.shape()[1]),
                    _ => (&mem.keys, &dmem.keys, h),
                };
                let dqp = Tensor::zeros(ctx, "grad query projection", qp.shape())?;
                ops::record_bmm_backward(
                    rec,
                    &qp.reshape(&[b, t, w])?,
                    &k.reshape(&[b, s, w])?,
                    false,
                    true,
                    &dscores,
                    Some(&dqp.reshape(&[b, t, w])?.view()),
                    Some(&dk.reshape(&[b, s, w])?.view()),
                )?;
                query_back(rec, &dqp)
            }
            Score::Additive(_) => {
                let (z, ki, qi) = saved.additive.as_ref().need("additive values")?;
                let (en, eg) = pair(&self.energy, &grads.energy)?.need("energy")?;
                let de = dscores.reshape(&[b * t * s, 1])?;
                let dz = en.record_backward(rec, z, &de, &eg, true)?;
                let dpre = Tensor::zeros(ctx, "grad additive pre-activation", z.shape())?;
                ops::record_tanh_backward(rec, &dz, z, &dpre)?;
                let dkp = dmem.keys_proj.as_ref().need("projected key gradient")?;
                ops::record_gather_rows_backward(rec, ki, &dpre, dkp)?;
                let qp = saved.query_proj.as_ref().need("query projection")?;
                let dqp = Tensor::zeros(ctx, "grad query projection", qp.shape())?;
                ops::record_gather_rows_backward(rec, qi, &dpre, &dqp)?;
                query_back(rec, &dqp)
            }
        }
    }

    /// Records the backward of [`Self::record_memory`] once every attention call's backward
    /// has accumulated into `dmem`: parameter gradients into `grads`; returns the encoder
    /// states' gradient `[B, S, D]`.
    pub fn record_memory_backward(
        &self,
        rec: &mut Recorder,
        mem: &Memory,
        dmem: &MemoryGrads,
        grads: &AttentionGrads,
    ) -> Result<Tensor> {
        let dkeys = match (&self.key_proj, &grads.key_proj, &dmem.keys_proj) {
            (Some(p), Some(g), Some(dkp)) => {
                let dk = p.record_backward(rec, &mem.keys, dkp, g, true)?;
                ops::record_add(rec, &dk, &dmem.keys)?
            }
            _ => dmem.keys.clone(),
        };
        let de = self
            .key
            .record_backward(rec, &mem.enc, &dkeys, &grads.key, true)?;
        let dv = self
            .value
            .record_backward(rec, &mem.enc, &dmem.values, &grads.value, true)?;
        ops::record_add(rec, &de, &dv)?.reshape(&[mem.batch, mem.src_len, self.key.fan_in()])
    }
}

/// Row indices that expand `[B*S, A]` keys and `[B*T, A]` queries to `[B*T*S, A]`: row
/// `(b*T + t)*S + i` takes key row `b*S + i` and query row `b*T + t`.
fn expand_indices(ctx: &Context, b: usize, t: usize, s: usize) -> Result<(Tensor, Tensor)> {
    let mut ki = Vec::with_capacity(b * t * s);
    let mut qi = Vec::with_capacity(b * t * s);
    for bb in 0..b {
        for tt in 0..t {
            for i in 0..s {
                ki.push((bb * s + i) as u32);
                qi.push((bb * t + tt) as u32);
            }
        }
    }
    Ok((
        ops::indices(ctx, "attention key rows", &ki, b * s)?,
        ops::indices(ctx, "attention query rows", &qi, b * t)?,
    ))
}
