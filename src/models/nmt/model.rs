//! The attentional encoder-decoder: model, one training step (teacher forcing, one
//! submission) and greedy decoding on the device.
//!
//! Per batch of B sentence pairs (sources of up to S tokens plus `</s>`, targets of up to
//! T - 1 tokens), all recorded into one submission:
//!   x = src_embedding(src)                        [S, B, E]
//!   enc, h_n = encoder(x, source lengths)         [S, B, 2H], [2L, B, H]  (bidirectional)
//!   h0 = tanh(bridge_h [h_n fwd; h_n bwd] + b)    [L, B, H]   (c0 likewise for an LSTM)
//!   s = decoder(tgt_embedding(<s> y), h0)         [T, B, H]   (one whole-sequence call)
//!   a = attention(s over enc, source lengths)     [B, T, H]   (`nn::Attention`; none: absent)
//!   o = tanh(combine [a; s] + b)                  [B*T, H]
//! (with input feeding the decoder runs step by step, step t's input `[y_t; o_{t-1}]`, and
//! attention and `combine` run per step on `[B, 1]` rows)
//!   logits = output(dropout(o))                   [B*T, V]    -> cross-entropy with y </s>,
//!                                                               padded positions ignored
//! Time-major RNN states become batch-major for attention by a row gather (whose backward is
//! the deterministic scatter-add), so attention runs as batched matrix products.

use super::text::{BOS_ID, EOS_ID, PAD_ID};
use crate::HostTensor;
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::nn::{
    AdamConfig, Attention, AttentionGrads, AttentionSaved, CeOutput, Dropout, Embedding, Linear,
    LinearGrads, Memory, MemoryGrads, Optimizer, ParamStore, Score, record_log_softmax,
    record_softmax_cross_entropy, targets,
};
use crate::ops::{self, AsView, BeamSearch};
use crate::rnn::{
    ForwardInputs, ForwardState, LayerParams, Mode, Rnn, RnnConfig, RnnState, StepSaved, Upstream,
};
use crate::tensor::{DType, Tensor};

/// The ignore index of padded target positions.
pub const IGNORE: u32 = u32::MAX;
/// The dropout hash stream before the output layer.
const OUTPUT_DROPOUT_STREAM: u32 = 2000;

/// Sizes and the attention of a model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Seq2SeqConfig {
    /// `lstm` or `gru`.
    pub mode: String,
    /// Layers of the encoder and of the decoder.
    pub layers: usize,
    /// Hidden size H of each encoder direction and of the decoder.
    pub hidden: usize,
    /// Embedding size E of both languages.
    pub embed: usize,
    /// `dot`, `multiplicative`, `low-rank`, `additive` or `none`.
    pub attention: String,
    /// The rank of `low-rank`, the attention size of `additive`.
    pub attention_rank: usize,
    /// Dropout between layers and before the output layer.
    pub dropout: f32,
    /// Seed of the initialisation.
    pub seed: u64,
    /// Input feeding (Luong et al. 2015): the previous step's attentional vector
    /// `tanh(combine [a; s])` is concatenated to the decoder's input, so the decoder runs
    /// step by step.
    #[serde(default)]
    pub input_feeding: bool,
    /// The source embedding is fixed (pre-trained vectors): no gradient, not registered.
    #[serde(default)]
    pub frozen_src_embedding: bool,
}

impl Seq2SeqConfig {
    /// The attention score, `None` for `none`.
    pub fn score(&self) -> Result<Option<Score>> {
        if self.attention == "none" {
            return Ok(None);
        }
        Score::parse(&self.attention, self.attention_rank).map(Some)
    }

    fn mode(&self) -> Result<Mode> {
        let m = Mode::parse(&self.mode)?;
        if !matches!(m, Mode::Lstm | Mode::Gru) {
            return Err(Error::config(format!(
                "--mode {}: translation takes lstm or gru",
                self.mode
            )));
        }
        Ok(m)
    }

    /// The decoder's input size: E, or E + H with input feeding.
    pub fn decoder_input(&self) -> usize {
        self.embed + if self.input_feeding { self.hidden } else { 0 }
    }

    fn rnn(&self, input: usize, bidirectional: bool) -> Result<RnnConfig> {
        let c = RnnConfig::new(self.mode()?, input, self.hidden)
            .layers(self.layers)
            .bidirectional(bidirectional)
            .dropout(self.dropout);
        c.validate()?;
        Ok(c)
    }
}

/// The model's parameters.
pub struct Seq2Seq {
    /// Its configuration.
    pub config: Seq2SeqConfig,
    /// `src_embedding.weight [Vs, E]`.
    pub src_embedding: Embedding,
    /// Bidirectional encoder stack.
    pub encoder: Rnn,
    /// `bridge_h [H, 2H]` with bias.
    pub bridge_h: Linear,
    /// `bridge_c [H, 2H]` with bias (LSTM only).
    pub bridge_c: Option<Linear>,
    /// `tgt_embedding.weight [Vt, E]`.
    pub tgt_embedding: Embedding,
    /// Unidirectional decoder stack.
    pub decoder: Rnn,
    /// Attention over the encoder states (absent for `none`).
    pub attention: Option<Attention>,
    /// `combine [H, 2H]` (`[H, H]` without attention) with bias.
    pub combine: Linear,
    /// `output [Vt, H]` with bias.
    pub output: Linear,
    dropout: Dropout,
}

/// Gradients of every parameter, laid out like them.
pub struct Seq2SeqGrads {
    /// Of `src_embedding`.
    pub src_embedding: Tensor,
    /// Of `encoder`.
    pub encoder: Vec<LayerParams>,
    /// Of `bridge_h`.
    pub bridge_h: LinearGrads,
    /// Of `bridge_c`.
    pub bridge_c: Option<LinearGrads>,
    /// Of `tgt_embedding`.
    pub tgt_embedding: Tensor,
    /// Of `decoder`.
    pub decoder: Vec<LayerParams>,
    /// Of `attention`.
    pub attention: Option<AttentionGrads>,
    /// Of `combine`.
    pub combine: LinearGrads,
    /// Of `output`.
    pub output: LinearGrads,
}

/// A batch on the device.
pub struct Batch {
    /// Source ids `[S, B]` (each source followed by `</s>`, padded with `<pad>`).
    pub src: Tensor,
    /// Source lengths (with `</s>`).
    pub src_lengths: Vec<usize>,
    src_lengths_t: Tensor,
    /// Decoder inputs `[T, B]`: `<s>` then the target.
    pub tgt_in: Tensor,
    /// Targets `[B*T]`, batch-major: the target then `</s>`, padded with [`IGNORE`].
    pub tgt_out: Tensor,
    /// S and T.
    pub dims: (usize, usize),
    /// Row `b*S + s` of the batch-major encoder states is row `s*B + b` of the time-major ones.
    src_rows: Tensor,
    /// Row `b*T + t` of the batch-major decoder states is row `t*B + b` of the time-major ones.
    tgt_rows: Tensor,
    /// The inverse permutations (time-major row `s*B + b` is batch-major row `b*S + s`): a
    /// permutation's backward is the gather by its inverse, one dispatch instead of a sort.
    src_rows_inv: Tensor,
    tgt_rows_inv: Tensor,
    /// Rows of the forward and the reverse direction of each layer in `h_n` (`[L*B]` each).
    bridge_rows: (Tensor, Tensor),
}

/// What one forward keeps for the backward.
struct Saved {
    enc: ForwardState,
    bridge_in: Tensor,
    h0: Tensor,
    bridge_c_in: Option<Tensor>,
    c0: Option<Tensor>,
    mem: Option<Memory>,
    dec: DecoderSaved,
    hd: Tensor,
}

/// What the decoder side keeps for the backward (one per training step: its size is
/// immaterial).
#[allow(clippy::large_enum_variant)]
enum DecoderSaved {
    /// One whole-sequence decoder call and one head over the `[B, T]` rows.
    Whole { rnn: ForwardState, head: HeadSaved },
    /// Input feeding: each step's RNN step and head over its `[B]` rows, in time order.
    Steps(Vec<(StepSaved, HeadSaved)>),
}

/// What [`Seq2Seq::record_head`] keeps: the attention's saved values, `[a; s]` and the
/// attentional vectors `o = tanh(combine [a; s] + b)`.
struct HeadSaved {
    att: Option<AttentionSaved>,
    cat: Tensor,
    hid: Tensor,
}

/// `name.weight` and `name.bias` of `l`.
fn push_linear(v: &mut Vec<(String, Tensor)>, name: &str, l: &Linear) {
    v.push((format!("{name}.weight"), l.weight.clone()));
    if let Some(b) = &l.bias {
        v.push((format!("{name}.bias"), b.clone()));
    }
}

/// `idx[b * n + i] = i * batch + b`: batch-major rows of a time-major `[n, batch, ...]`.
fn batch_major_rows(n: usize, batch: usize) -> Vec<u32> {
    (0..batch)
        .flat_map(|b| (0..n).map(move |i| (i * batch + b) as u32))
        .collect()
}

impl Seq2Seq {
    /// A fresh model for vocabularies of `src_vocab` and `tgt_vocab` tokens, PyTorch's
    /// initialisation from `config.seed`.
    pub fn new(
        ctx: &Context,
        src_vocab: usize,
        tgt_vocab: usize,
        config: &Seq2SeqConfig,
    ) -> Result<Seq2Seq> {
        let (h, e, s) = (config.hidden, config.embed, config.seed.wrapping_mul(11));
        let lstm = config.mode()? == Mode::Lstm;
        let attention = match config.score()? {
            Some(sc) => Some(Attention::random(ctx, sc, 2 * h, h, s + 6)?),
            None => None,
        };
        let cat = if attention.is_some() { 2 * h } else { h };
        Ok(Seq2Seq {
            src_embedding: Embedding::random(ctx, src_vocab, e, Some(PAD_ID), s)?,
            encoder: Rnn::random(ctx, &config.rnn(e, true)?, s + 1)?,
            bridge_h: Linear::random(ctx, 2 * h, h, true, s + 2)?,
            bridge_c: if lstm {
                Some(Linear::random(ctx, 2 * h, h, true, s + 3)?)
            } else {
                None
            },
            tgt_embedding: Embedding::random(ctx, tgt_vocab, e, Some(PAD_ID), s + 4)?,
            decoder: Rnn::random(ctx, &config.rnn(config.decoder_input(), false)?, s + 5)?,
            attention,
            combine: Linear::random(ctx, cat, h, true, s + 7)?,
            output: Linear::random(ctx, h, tgt_vocab, true, s + 8)?,
            dropout: Dropout::new(config.dropout, OUTPUT_DROPOUT_STREAM)?,
            config: config.clone(),
        })
    }

    /// Zeroed gradients of every parameter.
    pub fn zero_grads(&self, ctx: &Context) -> Result<Seq2SeqGrads> {
        Ok(Seq2SeqGrads {
            src_embedding: self.src_embedding.zero_grad(ctx)?,
            encoder: self.encoder.zero_grads(ctx)?,
            bridge_h: self.bridge_h.zero_grads(ctx)?,
            bridge_c: self
                .bridge_c
                .as_ref()
                .map(|l| l.zero_grads(ctx))
                .transpose()?,
            tgt_embedding: self.tgt_embedding.zero_grad(ctx)?,
            decoder: self.decoder.zero_grads(ctx)?,
            attention: self
                .attention
                .as_ref()
                .map(|a| a.zero_grads(ctx))
                .transpose()?,
            combine: self.combine.zero_grads(ctx)?,
            output: self.output.zero_grads(ctx)?,
        })
    }

    /// Registers every parameter with its gradient under PyTorch-style names:
    /// `src_embedding.weight`, `encoder.*` (nn.LSTM's names), `bridge_h.*`, `bridge_c.*`,
    /// `tgt_embedding.weight`, `decoder.*`, `attention.*`, `combine.*`, `output.*`.
    pub fn register(&self, store: &mut ParamStore, g: &Seq2SeqGrads) -> Result<()> {
        self.register_encoder(store, g)?;
        self.register_decoder(store, "", g)
    }

    /// Registers the encoder side: `src_embedding.weight` (unless it is frozen),
    /// `encoder.*`, `bridge_h.*`, `bridge_c.*`.
    pub fn register_encoder(&self, store: &mut ParamStore, g: &Seq2SeqGrads) -> Result<()> {
        if !self.config.frozen_src_embedding {
            self.src_embedding
                .register(store, "src_embedding", &g.src_embedding)?;
        }
        store.add_rnn("encoder", &self.encoder, &g.encoder)?;
        self.bridge_h.register(store, "bridge_h", &g.bridge_h)?;
        if let (Some(l), Some(lg)) = (&self.bridge_c, &g.bridge_c) {
            l.register(store, "bridge_c", lg)?;
        }
        Ok(())
    }

    /// Registers the decoder side under `prefix`: `{prefix}tgt_embedding.weight`,
    /// `{prefix}decoder.*`, `{prefix}attention.*`, `{prefix}combine.*`, `{prefix}output.*`.
    pub fn register_decoder(
        &self,
        store: &mut ParamStore,
        prefix: &str,
        g: &Seq2SeqGrads,
    ) -> Result<()> {
        let p = |n: &str| format!("{prefix}{n}");
        self.tgt_embedding
            .register(store, &p("tgt_embedding"), &g.tgt_embedding)?;
        store.add_rnn(&p("decoder"), &self.decoder, &g.decoder)?;
        if let (Some(a), Some(ag)) = (&self.attention, &g.attention) {
            a.register(store, &p("attention"), ag)?;
        }
        self.combine.register(store, &p("combine"), &g.combine)?;
        self.output.register(store, &p("output"), &g.output)
    }

    /// Every tensor outside the two RNN stacks under its checkpoint name
    /// (`model.safetensors`): [`Self::named_encoder`], then [`Self::named_decoder`].
    pub fn named(&self) -> Vec<(String, Tensor)> {
        let mut v = self.named_encoder();
        v.extend(self.named_decoder(""));
        v
    }

    /// `src_embedding.weight`, `bridge_h.*`, `bridge_c.*`.
    pub fn named_encoder(&self) -> Vec<(String, Tensor)> {
        let mut v = vec![(
            "src_embedding.weight".to_string(),
            self.src_embedding.weight.clone(),
        )];
        push_linear(&mut v, "bridge_h", &self.bridge_h);
        if let Some(l) = &self.bridge_c {
            push_linear(&mut v, "bridge_c", l);
        }
        v
    }

    /// `{prefix}attention.*`, `{prefix}combine.*`, `{prefix}output.*`,
    /// `{prefix}tgt_embedding.weight`.
    pub fn named_decoder(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        let p = |n: &str| format!("{prefix}{n}");
        if let Some(a) = &self.attention {
            push_linear(&mut v, &p("attention.key"), &a.key);
            push_linear(&mut v, &p("attention.value"), &a.value);
            for (n, l) in [
                ("attention.query", &a.query),
                ("attention.key_proj", &a.key_proj),
                ("attention.energy", &a.energy),
            ] {
                if let Some(l) = l {
                    push_linear(&mut v, &p(n), l);
                }
            }
        }
        push_linear(&mut v, &p("combine"), &self.combine);
        push_linear(&mut v, &p("output"), &self.output);
        v.push((p("tgt_embedding.weight"), self.tgt_embedding.weight.clone()));
        v
    }

    /// Loads the weights of a checkpoint folder: `encoder.safetensors`, `decoder.safetensors`
    /// and `model.safetensors` ([`Self::named`]).
    pub fn load_files(&self, ctx: &Context, dir: &std::path::Path) -> Result<()> {
        use crate::models::checkpoint;
        checkpoint::load_rnn(ctx, &self.encoder, &dir.join("encoder.safetensors"))?;
        checkpoint::load_rnn(ctx, &self.decoder, &dir.join("decoder.safetensors"))?;
        let named = self.named();
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        checkpoint::load_named(ctx, &dir.join("model.safetensors"), &refs)
    }

    /// The target vocabulary size.
    pub fn tgt_vocab(&self) -> usize {
        self.output.fan_out()
    }

    /// The device batch of `pairs` (source ids, target ids; neither with specials). Every
    /// source must be non-empty.
    pub fn batch(&self, ctx: &Context, pairs: &[(&[u32], &[u32])]) -> Result<Batch> {
        let b = pairs.len();
        if b == 0 || pairs.iter().any(|(s, _)| s.is_empty()) {
            return Err(Error::config("a batch needs at least one non-empty source"));
        }
        let s = pairs.iter().map(|(x, _)| x.len() + 1).max().unwrap_or(1);
        let t = pairs.iter().map(|(_, y)| y.len() + 1).max().unwrap_or(1);
        let mut src = vec![PAD_ID; s * b];
        let mut tin = vec![PAD_ID; t * b];
        let mut tout = vec![IGNORE; b * t];
        for (j, (x, y)) in pairs.iter().enumerate() {
            for (i, &id) in x.iter().chain(&[EOS_ID]).enumerate() {
                src[i * b + j] = id;
            }
            for (i, &id) in [BOS_ID].iter().chain(y.iter()).enumerate() {
                tin[i * b + j] = id;
            }
            for (i, &id) in y.iter().chain(&[EOS_ID]).enumerate() {
                tout[j * t + i] = id;
            }
        }
        let src_lengths: Vec<usize> = pairs.iter().map(|(x, _)| x.len() + 1).collect();
        let l = self.config.layers;
        let fwd: Vec<u32> = (0..l)
            .flat_map(|k| (0..b).map(move |j| ((2 * k) * b + j) as u32))
            .collect();
        let rev: Vec<u32> = fwd.iter().map(|&r| r + b as u32).collect();
        Ok(Batch {
            src: Tensor::from_u32(ctx, "source ids", &[s, b], &src)?,
            src_lengths_t: ops::lengths(ctx, "source lengths", &src_lengths, s)?,
            src_lengths,
            tgt_in: Tensor::from_u32(ctx, "decoder inputs", &[t, b], &tin)?,
            tgt_out: targets(ctx, &[b * t], &tout, self.tgt_vocab(), Some(IGNORE))?,
            dims: (s, t),
            src_rows: ops::indices(ctx, "source rows", &batch_major_rows(s, b), s * b)?,
            tgt_rows: ops::indices(ctx, "target rows", &batch_major_rows(t, b), t * b)?,
            src_rows_inv: ops::indices(ctx, "source rows back", &batch_major_rows(b, s), s * b)?,
            tgt_rows_inv: ops::indices(ctx, "target rows back", &batch_major_rows(b, t), t * b)?,
            bridge_rows: (
                ops::indices(ctx, "bridge forward rows", &fwd, 2 * l * b)?,
                ops::indices(ctx, "bridge reverse rows", &rev, 2 * l * b)?,
            ),
        })
    }

    /// `tanh(lin [x_fwd; x_rev] + b)` of the final states `[2L, B, H]`: `(input, output)`.
    fn record_bridge(
        &self,
        rec: &mut Recorder,
        lin: &Linear,
        states: &Tensor,
        bt: &Batch,
    ) -> Result<(Tensor, Tensor)> {
        let (l, b, h) = (self.config.layers, bt.src_lengths.len(), self.config.hidden);
        let flat = states.reshape(&[2 * l * b, h])?;
        let f = ops::record_gather_rows(rec, &flat, &bt.bridge_rows.0)?;
        let r = ops::record_gather_rows(rec, &flat, &bt.bridge_rows.1)?;
        let input = ops::record_concat(rec, &[&f, &r])?;
        let pre = lin.record_forward(rec, &input)?;
        let out = ops::record_tanh(rec, &pre)?.reshape(&[l, b, h])?;
        Ok((input, out))
    }

    /// The backward of [`Self::record_bridge`] from `dout [L, B, H]`: the final states'
    /// gradient `[2L, B, H]`.
    #[allow(clippy::too_many_arguments)]
    fn record_bridge_backward(
        &self,
        rec: &mut Recorder,
        lin: &Linear,
        grads: &LinearGrads,
        input: &Tensor,
        out: &Tensor,
        dout: &Tensor,
        bt: &Batch,
    ) -> Result<Tensor> {
        let ctx = rec.ctx();
        let (l, b, h) = (self.config.layers, bt.src_lengths.len(), self.config.hidden);
        let dpre = Tensor::zeros(ctx, "grad bridge pre-activation", &[l * b, h])?;
        let out = out.reshape(&[l * b, h])?;
        ops::record_tanh_backward(rec, &dout.reshape(&[l * b, h])?, &out, &dpre)?;
        let din = lin.record_backward(rec, input, &dpre, grads, true)?;
        let parts = ops::split(&din, &[h, h])?;
        // The gathered rows of layer k are the blocks 2k (forward) and 2k + 1 (reverse) of
        // B rows each: the backward copies the blocks back.
        let dstates = Tensor::empty(
            ctx,
            "grad encoder final states",
            &[2 * l * b, h],
            DType::F32,
        )?;
        let df = ops::record_copy(rec, &parts[0])?;
        let dr = ops::record_copy(rec, &parts[1])?;
        for k in 0..l {
            rec.copy(&df, k * b * h, &dstates, 2 * k * b * h, b * h)?;
            rec.copy(&dr, k * b * h, &dstates, (2 * k + 1) * b * h, b * h)?;
        }
        dstates.reshape(&[2 * l, b, h])
    }

    /// The encoder side: memory for attention (if any) and the decoder's initial state, each
    /// sentence's repeated `expand` times (`[B*K, S, ...]`, `[L, B*K, H]`: the rows of a beam
    /// search; 1 otherwise).
    #[allow(clippy::type_complexity)]
    fn record_encode(
        &self,
        rec: &mut Recorder,
        bt: &Batch,
        seed: Option<u32>,
        expand: usize,
    ) -> Result<(
        Option<ForwardState>,
        Option<Memory>,
        (Tensor, Tensor),
        Option<(Tensor, Tensor)>,
    )> {
        let train = seed.is_some();
        let (s, b, h) = (bt.dims.0, bt.src_lengths.len(), self.config.hidden);
        let x = self.src_embedding.record_forward(rec, &bt.src)?;
        let inp = ForwardInputs {
            lengths: Some(&bt.src_lengths),
            dropout_seed: seed.unwrap_or(0),
            ..Default::default()
        };
        let (out, st) = self.encoder.record_forward(rec, &x, &inp, train)?;
        let ctx = rec.ctx();
        let k = expand.max(1);
        // Row i of the expanded [B*K*n] is row (i / (K*n)) * n + i % n of [B*n].
        let repeat = |n: usize, what: &str| -> Result<Tensor> {
            let idx: Vec<u32> = (0..b * k * n)
                .map(|i| ((i / (k * n)) * n + i % n) as u32)
                .collect();
            ops::indices(ctx, what, &idx, b * n)
        };
        let mem = match &self.attention {
            Some(a) => {
                let flat = out.output.reshape(&[s * b, 2 * h])?;
                let mut encb = ops::record_gather_rows(rec, &flat, &bt.src_rows)?;
                let mut lengths = bt.src_lengths_t.clone();
                if k > 1 {
                    encb = ops::record_gather_rows(rec, &encb, &repeat(s, "beam source rows")?)?;
                    let lens: Vec<usize> = bt
                        .src_lengths
                        .iter()
                        .flat_map(|&l| std::iter::repeat_n(l, k))
                        .collect();
                    lengths = ops::lengths(ctx, "beam source lengths", &lens, s)?;
                }
                Some(a.record_memory(rec, &encb.reshape(&[b * k, s, 2 * h])?, &lengths)?)
            }
            None => None,
        };
        let l = self.config.layers;
        let expand_state = |rec: &mut Recorder, x: Tensor| -> Result<Tensor> {
            if k == 1 {
                return Ok(x);
            }
            // [L, B, H] as [L*B] rows: layer-major blocks of B, each row repeated K times.
            let idx: Vec<u32> = (0..l * b * k).map(|i| (i / k) as u32).collect();
            let idx = ops::indices(ctx, "beam state rows", &idx, l * b)?;
            ops::record_gather_rows(rec, &x.reshape(&[l * b, h])?, &idx)?.reshape(&[l, b * k, h])
        };
        let (hi, ho) = self.record_bridge(rec, &self.bridge_h, &out.h_n, bt)?;
        let hb = (hi, expand_state(rec, ho)?);
        let cb = match (&self.bridge_c, &out.c_n) {
            (Some(lin), Some(c)) => {
                let (ci, co) = self.record_bridge(rec, lin, c, bt)?;
                Some((ci, expand_state(rec, co)?))
            }
            _ => None,
        };
        Ok((st, mem, hb, cb))
    }

    /// `[a; s]` (or `s`) -> `o = tanh(combine)` of batch-major decoder states
    /// `decb [B, T', H]`; `o` is `[B*T', H]`.
    fn record_head(
        &self,
        rec: &mut Recorder,
        mem: Option<&Memory>,
        decb: &Tensor,
    ) -> Result<HeadSaved> {
        let s = decb.shape().to_vec();
        let rows = s[0] * s[1];
        let flat = decb.reshape(&[rows, s[2]])?;
        let (att, cat) = match (&self.attention, mem) {
            (Some(a), Some(m)) => {
                let (c, sv) = a.record_forward(rec, m, decb)?;
                let c = c.reshape(&[rows, s[2]])?;
                (Some(sv), ops::record_concat(rec, &[&c, &flat])?)
            }
            _ => (None, flat),
        };
        let pre = self.combine.record_forward(rec, &cat)?;
        let hid = ops::record_tanh(rec, &pre)?;
        Ok(HeadSaved { att, cat, hid })
    }

    /// The backward of [`Self::record_head`] from `dhid [B*T', H]`: parameter gradients into
    /// `g`, the keys' and values' into `dmem`; returns the decoder states' gradient
    /// `[B*T', H]` (batch-major, as the forward's rows).
    #[allow(clippy::too_many_arguments)]
    fn record_head_backward(
        &self,
        rec: &mut Recorder,
        mem: Option<&Memory>,
        head: &HeadSaved,
        dhid: &Tensor,
        g: &Seq2SeqGrads,
        dmem: Option<&MemoryGrads>,
        batch: usize,
    ) -> Result<Tensor> {
        let (rows, h) = (dhid.shape()[0], self.config.hidden);
        let dpre = Tensor::zeros(rec.ctx(), "grad combine pre-activation", &[rows, h])?;
        ops::record_tanh_backward(rec, dhid, &head.hid, &dpre)?;
        let dcat = self
            .combine
            .record_backward(rec, &head.cat, &dpre, &g.combine, true)?;
        match (&self.attention, mem, &head.att, &g.attention, dmem) {
            (Some(a), Some(mem), Some(att), Some(ag), Some(dmem)) => {
                let parts = ops::split(&dcat, &[h, h])?;
                let dctx = ops::record_copy(rec, &parts[0])?.reshape(&[batch, rows / batch, h])?;
                let direct = ops::record_copy(rec, &parts[1])?;
                let datt = a.record_backward(rec, mem, att, &dctx, ag, dmem)?;
                ops::record_add(rec, &direct, &datt.reshape(&[rows, h])?)
            }
            _ => Ok(dcat),
        }
    }

    /// The decoder's input at one step: `y [B, E]`, or `[y; feed]` `[B, E + H]` with input
    /// feeding.
    fn record_step_input(
        &self,
        rec: &mut Recorder,
        y: &Tensor,
        feed: Option<&Tensor>,
    ) -> Result<Tensor> {
        match feed {
            Some(f) => ops::record_concat(rec, &[y, f]),
            None => Ok(y.clone()),
        }
    }

    /// One decoder step in inference mode: `x [B, I]` from `state` -> `s [B, H]` and the
    /// new state.
    fn record_decoder_step(
        &self,
        rec: &mut Recorder,
        x: &Tensor,
        state: &RnnState,
    ) -> Result<(Tensor, RnnState)> {
        let (b, i) = (x.shape()[0], x.shape()[1]);
        let inp = ForwardInputs {
            h0: Some(&state.h),
            c0: state.c.as_ref(),
            ..Default::default()
        };
        let (out, _) = self
            .decoder
            .record_forward(rec, &x.reshape(&[1, b, i])?, &inp, false)?;
        let s = out.output.reshape(&[b, self.config.hidden])?;
        Ok((
            s,
            RnnState {
                h: out.h_n,
                c: out.c_n,
            },
        ))
    }

    /// The teacher-forced decoder with input feeding, step by step from `state`: step t's
    /// input is `[y_t; o_{t-1}]` (`o_{-1} = 0`) of the target embeddings `y [T, B, E]`.
    /// Returns the attentional vectors `o` time-major `[T*B, H]` and, in training mode
    /// (`train`, decoder dropout from `seed`), each step's saved values.
    #[allow(clippy::too_many_arguments)]
    fn record_fed(
        &self,
        rec: &mut Recorder,
        bt: &Batch,
        mem: Option<&Memory>,
        y: &Tensor,
        mut state: RnnState,
        seed: u32,
        train: bool,
    ) -> Result<(Tensor, Vec<(StepSaved, HeadSaved)>)> {
        let ctx = rec.ctx();
        let (t, b) = (bt.dims.1, bt.src_lengths.len());
        let (h, e) = (self.config.hidden, self.config.embed);
        let outs = Tensor::empty(ctx, "attentional vectors", &[t * b, h], DType::F32)?;
        let mut feed = Tensor::zeros(ctx, "input feed", &[b, h])?;
        let mut steps = Vec::with_capacity(if train { t } else { 0 });
        let rows = y.reshape(&[t * b, e])?;
        for i in 0..t {
            // Step i's rows of y, read in place.
            let yi = rows.view().narrow(i * b, b)?;
            let x = ops::record_concat(rec, &[&yi, &feed])?;
            let (si, next, saved) = if train {
                let (si, next, sv) =
                    self.decoder
                        .record_step_train(rec, &x, Some(&state), i, seed)?;
                (si, next, Some(sv))
            } else {
                let (si, next) = self.record_decoder_step(rec, &x, &state)?;
                (si, next, None)
            };
            let head = self.record_head(rec, mem, &si.reshape(&[b, 1, h])?)?;
            rec.copy(&head.hid, 0, &outs, i * b * h, b * h)?;
            feed = head.hid.clone();
            state = next;
            if let Some(sv) = saved {
                steps.push((sv, head));
            }
        }
        Ok((outs, steps))
    }

    /// The backward of [`Self::record_fed`] from the batch-major `dhid [B*T, H]`, last step
    /// first: the gradient reaching `o_t` is its own plus what step t + 1's input passes
    /// back. Returns the gradients of the target embeddings `[T, B, E]` and of the initial
    /// state `[L, B, H]`.
    #[allow(clippy::too_many_arguments)]
    fn record_fed_backward(
        &self,
        rec: &mut Recorder,
        bt: &Batch,
        mem: Option<&Memory>,
        steps: &[(StepSaved, HeadSaved)],
        dhid: &Tensor,
        g: &Seq2SeqGrads,
        dmem: Option<&MemoryGrads>,
    ) -> Result<(Tensor, RnnState)> {
        let ctx = rec.ctx();
        let (t, b) = (bt.dims.1, bt.src_lengths.len());
        let (h, e) = (self.config.hidden, self.config.embed);
        let dhid = ops::record_gather_rows(rec, dhid, &bt.tgt_rows_inv)?;
        let dy = Tensor::empty(ctx, "grad decoder inputs", &[t * b, e], DType::F32)?;
        let mut dfeed: Option<Tensor> = None;
        let mut dstate: Option<RnnState> = None;
        for (i, (step, head)) in steps.iter().enumerate().rev() {
            let own = dhid.view().narrow(i * b, b)?;
            let dh = match &dfeed {
                Some(f) => ops::record_add(rec, &own, f)?,
                None => ops::record_copy(rec, &own)?,
            };
            let ds = self.record_head_backward(rec, mem, head, &dh, g, dmem, b)?;
            let (dx, dprev) = self.decoder.record_step_backward(
                rec,
                step,
                Some(&ds),
                dstate.as_ref(),
                &g.decoder,
            )?;
            let parts = ops::split(&dx, &[e, h])?;
            let dyi = ops::record_copy(rec, &parts[0])?;
            rec.copy(&dyi, 0, &dy, i * b * e, b * e)?;
            dfeed = Some(ops::record_copy(rec, &parts[1])?);
            dstate = Some(dprev);
        }
        let dstate =
            dstate.ok_or_else(|| Error::Device("internal: input feeding saved no step".into()))?;
        Ok((dy.reshape(&[t, b, e])?, dstate))
    }

    /// Records the teacher-forced logits `[B*T, V]` (batch-major); with a dropout `seed`, in
    /// training mode with what the backward needs.
    fn record_logits(
        &self,
        rec: &mut Recorder,
        bt: &Batch,
        seed: Option<u32>,
    ) -> Result<(Tensor, Option<Saved>)> {
        let train = seed.is_some();
        let (t, b, h) = (bt.dims.1, bt.src_lengths.len(), self.config.hidden);
        let (enc_st, mem, (bridge_in, h0), cb) = self.record_encode(rec, bt, seed, 1)?;
        let y = self.tgt_embedding.record_forward(rec, &bt.tgt_in)?;
        let dec_seed = seed.unwrap_or(0).wrapping_add(1);
        let (hid, dec) = if self.config.input_feeding {
            let state = RnnState {
                h: h0.clone(),
                c: cb.as_ref().map(|c| c.1.clone()),
            };
            let (outs, steps) =
                self.record_fed(rec, bt, mem.as_ref(), &y, state, dec_seed, train)?;
            let hid = ops::record_gather_rows(rec, &outs, &bt.tgt_rows)?;
            (hid, train.then_some(DecoderSaved::Steps(steps)))
        } else {
            let inp = ForwardInputs {
                h0: Some(&h0),
                c0: cb.as_ref().map(|c| &c.1),
                dropout_seed: dec_seed,
                ..Default::default()
            };
            let (dec, dec_st) = self.decoder.record_forward(rec, &y, &inp, train)?;
            let flat = dec.output.reshape(&[t * b, h])?;
            let decb = ops::record_gather_rows(rec, &flat, &bt.tgt_rows)?.reshape(&[b, t, h])?;
            let head = self.record_head(rec, mem.as_ref(), &decb)?;
            let hid = head.hid.clone();
            (hid, dec_st.map(|rnn| DecoderSaved::Whole { rnn, head }))
        };
        let hd = self
            .dropout
            .record_forward(rec, &hid, seed.unwrap_or(0), train)?;
        let logits = self.output.record_forward(rec, &hd)?;
        let saved = match (enc_st, dec) {
            (Some(enc), Some(dec)) => Some(Saved {
                enc,
                bridge_in,
                h0,
                bridge_c_in: cb.as_ref().map(|c| c.0.clone()),
                c0: cb.map(|c| c.1),
                mem,
                dec,
                hd,
            }),
            _ => None,
        };
        Ok((logits, saved))
    }

    /// Records the loss of `bt` and, with a dropout `seed`, the whole backward into `g`
    /// (accumulating: zero it first). Returns the cross-entropy (mean over target tokens).
    pub fn record_loss(
        &self,
        rec: &mut Recorder,
        bt: &Batch,
        seed: Option<u32>,
        g: Option<&Seq2SeqGrads>,
    ) -> Result<CeOutput> {
        let ctx = rec.ctx();
        let want_grad = g.is_some();
        let (logits, saved) = self.record_logits(rec, bt, seed.or(want_grad.then_some(0)))?;
        let ce = record_softmax_cross_entropy(rec, &logits, &bt.tgt_out, Some(IGNORE), want_grad)?;
        let (Some(g), Some(sv)) = (g, saved) else {
            return Ok(ce);
        };
        let seed = seed.unwrap_or(0);
        let (s, t) = bt.dims;
        let (b, h) = (bt.src_lengths.len(), self.config.hidden);
        let dlogits = ce.grad()?;
        let dhd = self
            .output
            .record_backward(rec, &sv.hd, dlogits, &g.output, true)?;
        let dhid = self.dropout.record_backward(rec, &dhd, seed)?;
        let dmem = match (&self.attention, &sv.mem) {
            (Some(a), Some(mem)) => Some(a.zero_memory_grads(ctx, mem)?),
            _ => None,
        };
        let mem = sv.mem.as_ref();
        let (dy, dstate0) = match &sv.dec {
            DecoderSaved::Whole { rnn, head } => {
                let ddecb =
                    self.record_head_backward(rec, mem, head, &dhid, g, dmem.as_ref(), b)?;
                let ddec =
                    ops::record_gather_rows(rec, &ddecb, &bt.tgt_rows_inv)?.reshape(&[t, b, h])?;
                let gd = self.decoder.record_backward(
                    rec,
                    rnn,
                    &Upstream {
                        output: Some(&ddec),
                        ..Default::default()
                    },
                    Some(&g.decoder),
                )?;
                let st = RnnState { h: gd.h0, c: gd.c0 };
                (gd.input, st)
            }
            DecoderSaved::Steps(steps) => {
                self.record_fed_backward(rec, bt, mem, steps, &dhid, g, dmem.as_ref())?
            }
        };
        self.tgt_embedding
            .record_backward(rec, &bt.tgt_in, &dy, &g.tgt_embedding, true)?;
        let dh_n = self.record_bridge_backward(
            rec,
            &self.bridge_h,
            &g.bridge_h,
            &sv.bridge_in,
            &sv.h0,
            &dstate0.h,
            bt,
        )?;
        let dc_n = match (
            &self.bridge_c,
            &g.bridge_c,
            &sv.bridge_c_in,
            &sv.c0,
            &dstate0.c,
        ) {
            (Some(l), Some(lg), Some(i), Some(o), Some(d)) => {
                Some(self.record_bridge_backward(rec, l, lg, i, o, d, bt)?)
            }
            _ => None,
        };
        let denc = match (&self.attention, mem, &dmem, &g.attention) {
            (Some(a), Some(mem), Some(dmem), Some(ag)) => {
                let d = a.record_memory_backward(rec, mem, dmem, ag)?;
                let d = d.reshape(&[b * s, 2 * h])?;
                Some(ops::record_gather_rows(rec, &d, &bt.src_rows_inv)?.reshape(&[s, b, 2 * h])?)
            }
            _ => None,
        };
        let ge = self.encoder.record_backward(
            rec,
            &sv.enc,
            &Upstream {
                output: denc.as_ref(),
                h_n: Some(&dh_n),
                c_n: dc_n.as_ref(),
            },
            Some(&g.encoder),
        )?;
        if !self.config.frozen_src_embedding {
            self.src_embedding
                .record_backward(rec, &bt.src, &ge.input, &g.src_embedding, true)?;
        }
        Ok(ce)
    }

    /// Greedy decoding of `sources` (token ids without specials, each non-empty), at most
    /// `max_len` tokens each: every step's arg-max feeds the next step's embedding on the
    /// device, the whole batch in one submission and one readback. Returns each
    /// translation's ids up to (without) `</s>`.
    pub fn greedy(
        &self,
        ctx: &Context,
        sources: &[&[u32]],
        max_len: usize,
    ) -> Result<Vec<Vec<u32>>> {
        Ok(self
            .decode_greedy(ctx, sources, max_len, false)?
            .into_iter()
            .map(|h| h.ids)
            .collect())
    }

    /// [`Self::greedy`] as [`Hypothesis`]es (no score), with the attention weights of every
    /// step when `attention` is asked for and the model has attention.
    pub fn decode_greedy(
        &self,
        ctx: &Context,
        sources: &[&[u32]],
        max_len: usize,
        attention: bool,
    ) -> Result<Vec<Hypothesis>> {
        let b = sources.len();
        let max_len = max_len.max(1);
        let mut rec = Recorder::new(ctx);
        let mut d = self.record_decode_start(&mut rec, sources, 1, max_len, attention)?;
        let generated = Tensor::empty(ctx, "generated ids", &[max_len, b], DType::U32)?;
        for t in 0..max_len {
            let ids = if t == 0 {
                d.first.clone()
            } else {
                let ids = Tensor::empty(ctx, "step ids", &[1, b], DType::U32)?;
                rec.copy(&generated, (t - 1) * b, &ids, 0, b)?;
                ids
            };
            let (logits, next, hid) = self.record_decode_step(&mut rec, &d, &ids, t)?;
            ops::record_argmax_into(&mut rec, &logits.view(), &generated, t * b)?;
            d.state = next;
            if d.feed.is_some() {
                d.feed = Some(hid);
            }
        }
        rec.submit()?;
        let ids = generated.to_vec_u32(ctx)?;
        let weights = d.weights.as_ref().map(|w| w.to_vec(ctx)).transpose()?;
        Ok((0..b)
            .map(|j| {
                let out: Vec<u32> = (0..max_len)
                    .map(|t| ids[t * b + j])
                    .take_while(|&i| i != EOS_ID)
                    .collect();
                // The rows of the tokens, and of the </s> when it came within the limit.
                let rows: Vec<usize> = vec![j; (out.len() + 1).min(max_len)];
                Hypothesis {
                    attention: weights.as_ref().map(|w| d.pick(w, &rows, j)),
                    ended: out.len() < max_len,
                    ids: out,
                    score: None,
                }
            })
            .collect())
    }

    /// Encodes `sources` for decoding with `k` rows per sentence (beam search; 1: greedy):
    /// the memory, the decoder's first state and input feed, `<s>` ids and, when asked for
    /// and the model has attention, a weights buffer `[max_len, B*k, S]`.
    fn record_decode_start(
        &self,
        rec: &mut Recorder,
        sources: &[&[u32]],
        k: usize,
        max_len: usize,
        attention: bool,
    ) -> Result<DecodeState> {
        let ctx = rec.ctx();
        let pairs: Vec<(&[u32], &[u32])> = sources.iter().map(|s| (*s, &[][..])).collect();
        let bt = self.batch(ctx, &pairs)?;
        let (rows, src_len) = (sources.len() * k, bt.dims.0);
        let (_, mem, (_, h0), cb) = self.record_encode(rec, &bt, None, k)?;
        let feed = if self.config.input_feeding {
            Some(Tensor::zeros(
                ctx,
                "input feed",
                &[rows, self.config.hidden],
            )?)
        } else {
            None
        };
        let weights = if attention && self.attention.is_some() {
            Some(Tensor::zeros(
                ctx,
                "attention weights",
                &[max_len * rows * src_len],
            )?)
        } else {
            None
        };
        Ok(DecodeState {
            mem,
            state: RnnState {
                h: h0,
                c: cb.map(|c| c.1),
            },
            feed,
            weights,
            first: Tensor::from_u32(ctx, "<s>", &[1, rows], &vec![BOS_ID; rows])?,
            rows,
            src_len,
            src_lengths: bt.src_lengths,
        })
    }

    /// One decoding step of all of `d`'s rows from their previous tokens `ids [1, rows]`:
    /// the logits `[rows, V]`, the new state and the attentional vectors `[rows, H]`; step
    /// t's attention weights go into `d.weights`.
    fn record_decode_step(
        &self,
        rec: &mut Recorder,
        d: &DecodeState,
        ids: &Tensor,
        t: usize,
    ) -> Result<(Tensor, RnnState, Tensor)> {
        let (n, h, e) = (d.rows, self.config.hidden, self.config.embed);
        let y = self.tgt_embedding.record_forward(rec, ids)?;
        let x = self.record_step_input(rec, &y.reshape(&[n, e])?, d.feed.as_ref())?;
        let (s, next) = self.record_decoder_step(rec, &x, &d.state)?;
        // [rows, H] is [rows, 1, H] batch-major.
        let head = self.record_head(rec, d.mem.as_ref(), &s.reshape(&[n, 1, h])?)?;
        if let (Some(w), Some(att)) = (&d.weights, &head.att) {
            let m = n * d.src_len;
            rec.copy(&att.weights, 0, w, t * m, m)?;
        }
        let logits = self.output.record_forward(rec, &head.hid)?;
        Ok((logits, next, head.hid))
    }

    /// Beam search over `sources` (token ids without specials, each non-empty) with `k` beams
    /// per sentence, length normalisation `alpha` and at most `max_len` tokens (rules in
    /// [`ops::BeamSearch`]): the B*K decoder rows step together, each step's log-softmax feeds
    /// the beam kernel, and the decoder states (and the input feed) follow the chosen beams
    /// by a device-indexed row gather; one submission and one readback for the whole batch.
    /// Returns each sentence's finished hypotheses, best first (K of them, distinct). K = 1 is
    /// greedy decoding.
    pub fn beam_search(
        &self,
        ctx: &Context,
        sources: &[&[u32]],
        k: usize,
        alpha: f32,
        max_len: usize,
        attention: bool,
    ) -> Result<Vec<Vec<Hypothesis>>> {
        let (h, l, max_len) = (self.config.hidden, self.config.layers, max_len.max(1));
        let bk = sources.len() * k;
        let search = BeamSearch::new(ctx, sources.len(), k, max_len, l, EOS_ID, alpha)?;
        let mut rec = Recorder::new(ctx);
        let mut d = self.record_decode_start(&mut rec, sources, k, max_len, attention)?;
        let follow = |rec: &mut Recorder, x: &Tensor| -> Result<Tensor> {
            let flat = x.reshape(&[l * bk, h])?;
            ops::record_gather_rows(rec, &flat, &search.reorder)?.reshape(&[l, bk, h])
        };
        for t in 0..max_len {
            let ids = if t == 0 {
                d.first.clone()
            } else {
                search.record_tokens(&mut rec, t - 1)?
            };
            let (logits, next, hid) = self.record_decode_step(&mut rec, &d, &ids, t)?;
            let logp = record_log_softmax(&mut rec, &logits)?;
            search.record_step(&mut rec, &logp, t)?;
            d.state = RnnState {
                h: follow(&mut rec, &next.h)?,
                c: next.c.as_ref().map(|c| follow(&mut rec, c)).transpose()?,
            };
            if d.feed.is_some() {
                d.feed = Some(ops::record_gather_rows(&mut rec, &hid, &search.rows)?);
            }
        }
        rec.submit()?;
        let finished = search.finished(ctx)?;
        let weights = d.weights.as_ref().map(|w| w.to_vec(ctx)).transpose()?;
        Ok(finished
            .into_iter()
            .enumerate()
            .map(|(j, hyps)| {
                hyps.into_iter()
                    .map(|f| Hypothesis {
                        attention: weights.as_ref().map(|w| d.pick(w, &f.rows, j)),
                        ids: f.ids,
                        score: Some(f.score),
                        ended: f.ended,
                    })
                    .collect()
            })
            .collect())
    }
}

/// A decoding in progress ([`Seq2Seq::record_decode_start`]).
struct DecodeState {
    mem: Option<Memory>,
    state: RnnState,
    feed: Option<Tensor>,
    weights: Option<Tensor>,
    first: Tensor,
    /// Decoder rows (B, or B*K).
    rows: usize,
    src_len: usize,
    src_lengths: Vec<usize>,
}

impl DecodeState {
    /// From the read-back weights `[T, rows, S]`: sentence `j`'s weights over its source
    /// positions at each step t, from decoder row `rows[t]`.
    fn pick(&self, w: &[f32], rows: &[usize], j: usize) -> Vec<Vec<f32>> {
        let n = self.src_lengths[j];
        rows.iter()
            .enumerate()
            .map(|(t, &row)| {
                let at = (t * self.rows + row) * self.src_len;
                w[at..at + n].to_vec()
            })
            .collect()
    }
}

/// One decoded translation.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    /// Target ids, `</s>` not included.
    pub ids: Vec<u32>,
    /// Beam search: its length-normalised log-probability (greedy decoding: none).
    pub score: Option<f32>,
    /// Whether it ended with `</s>` (otherwise at the length limit).
    pub ended: bool,
    /// When asked for (and the model has attention): for each output position (the tokens,
    /// then `</s>` when it ended with one) the attention weights over the source positions
    /// (its tokens and `</s>`); each row sums to 1.
    pub attention: Option<Vec<Vec<f32>>>,
}

/// Adam over every parameter of a [`Seq2Seq`], one submission per step.
pub struct Seq2SeqTrainer {
    /// The model being trained.
    pub model: Seq2Seq,
    grads: Seq2SeqGrads,
    store: ParamStore,
    opt: Optimizer,
    clip: f32,
    /// Steps taken.
    pub step: u64,
}

impl Seq2SeqTrainer {
    /// A trainer with Adam at `lr` and global-norm clipping at `clip` (0: none).
    pub fn new(ctx: &Context, model: Seq2Seq, lr: f32, clip: f32) -> Result<Seq2SeqTrainer> {
        let grads = model.zero_grads(ctx)?;
        let mut store = ParamStore::new();
        model.register(&mut store, &grads)?;
        let opt = Optimizer::adam(ctx, &store, AdamConfig::adam(lr))?;
        Ok(Seq2SeqTrainer {
            model,
            grads,
            store,
            opt,
            clip,
            step: 0,
        })
    }

    /// The parameters and their gradients by name.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// Writes a checkpoint folder atomically: the model's files, `optimizer.safetensors` and
    /// `config` as `config.json`.
    pub fn save(
        &self,
        ctx: &Context,
        dir: &std::path::Path,
        config: &serde_json::Value,
    ) -> Result<()> {
        let named = self.model.named();
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let folder = crate::models::checkpoint::Folder {
            rnns: &[
                ("encoder.safetensors", &self.model.encoder),
                ("decoder.safetensors", &self.model.decoder),
            ],
            model: &refs,
            optimizer: Some((&self.opt, &self.store)),
            extra: &[],
            config,
        };
        crate::models::checkpoint::write_folder(ctx, dir, &folder)
    }

    /// Restores the optimiser from checkpoint `dir` (the model's weights were loaded with
    /// it) and returns the position its `conf` records, `(step, epoch, batch_in_epoch)`.
    pub fn restore(
        &mut self,
        ctx: &Context,
        dir: &std::path::Path,
        conf: &serde_json::Value,
    ) -> Result<(u64, u64, usize)> {
        crate::models::epochs::restore_position(ctx, &mut self.opt, &self.store, dir, conf)
    }

    /// The dropout seed of step `step`.
    fn seed(&self) -> u32 {
        (self.model.config.seed as u32) ^ (self.step as u32).wrapping_mul(0x9e37_79b9)
    }

    /// One step on `pairs` (source ids, target ids): forward, backward, clipping and Adam in
    /// one submission; returns the batch's mean cross-entropy per target token.
    pub fn train_step(&mut self, ctx: &Context, pairs: &[(&[u32], &[u32])]) -> Result<f32> {
        let bt = self.model.batch(ctx, pairs)?;
        let mut rec = Recorder::new(ctx);
        self.store.record_zero_grads(&mut rec)?;
        let ce = self
            .model
            .record_loss(&mut rec, &bt, Some(self.seed()), Some(&self.grads))?;
        if self.clip > 0.0 {
            self.store.record_clip_grad_norm(&mut rec, self.clip)?;
        }
        self.opt.record_step(&mut rec, &self.store)?;
        rec.submit()?;
        self.step += 1;
        ce.loss(ctx)
    }

    /// The mean loss of `pairs` and every parameter's gradient by name, nothing updated and
    /// dropout as at the current step (gradient checks).
    pub fn gradients(
        &mut self,
        ctx: &Context,
        pairs: &[(&[u32], &[u32])],
    ) -> Result<(f32, Vec<(String, HostTensor)>)> {
        let bt = self.model.batch(ctx, pairs)?;
        let mut rec = Recorder::new(ctx);
        self.store.record_zero_grads(&mut rec)?;
        let ce = self
            .model
            .record_loss(&mut rec, &bt, Some(self.seed()), Some(&self.grads))?;
        rec.submit()?;
        let grads = self
            .store
            .params()
            .iter()
            .map(|p| Ok((p.name.clone(), self.store.grad_to_host(ctx, &p.name)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((ce.loss(ctx)?, grads))
    }

    /// The mean loss of `pairs` without dropout or gradients.
    pub fn loss(&self, ctx: &Context, pairs: &[(&[u32], &[u32])]) -> Result<f32> {
        let bt = self.model.batch(ctx, pairs)?;
        let mut rec = Recorder::new(ctx);
        let ce = self.model.record_loss(&mut rec, &bt, None, None)?;
        rec.submit()?;
        ce.loss(ctx)
    }
}
