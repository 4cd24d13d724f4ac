//! The unsupervised translation model: one bidirectional encoder over fixed cross-lingual
//! word vectors, shared by an attention decoder per language, and its training step.
//!
//! Languages are indexed 0 and 1 (`langs`). The encoder reads a joint vocabulary: the four
//! specials, language 0's words, then language 1's (a string in both vocabularies has two
//! rows, one per language); its rows are the mapped vectors of [`super::mapping`] (specials:
//! `<pad>` zero, the others N(0, 1/D)), frozen. `decoders[l]` is a
//! [`Seq2Seq`] that translates into language l; the two share the source embedding, the
//! encoder and the bridges (the same device tensors and the same gradient tensors, into which
//! both decoders' backwards accumulate). Each decoder's target embedding starts from its
//! language's vectors and trains.
//!
//! One training step, for a batch of language-0 sentences `x` and one of language-1
//! sentences `y` (Lample et al. 2018, Artetxe et al. 2018):
//! 1. with back-translation, the current model translates `x` into language 1 and `y` into
//!    language 0, greedily on the device (one submission and one readback each);
//! 2. one submission: the losses `decoders[0](C(x)) -> x` and `decoders[1](C(y)) -> y`
//!    (denoising, C the noise of [`super::data::Noise`]), with back-translation also
//!    `decoders[0](y'(x)) -> x` and `decoders[1](x'(y)) -> y`, their backwards into the shared
//!    gradients, clipping over all of them, and one Adam step on the sum of the losses.

use super::data::{Noise, noise_rng};
use super::mapping::Mapped;
use crate::context::Context;
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::models::corpus::Vocab;
use crate::models::nmt::model::{Seq2Seq, Seq2SeqConfig, Seq2SeqGrads};
use crate::models::nmt::text::{self, PAD_ID, SPECIALS};
use crate::models::nmt::train::{Decoding, Translation, max_len, translate_ids};
use crate::nn::{AdamConfig, Optimizer, ParamStore, normal};
use crate::tensor::Tensor;

/// Hyperparameters of a run.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnmtConfig {
    /// Encoder and decoders (`embed` is the vectors' size; the source embedding is frozen).
    pub model: Seq2SeqConfig,
    /// Sentences per language per batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Global gradient-norm clip (0: none).
    pub clip: f32,
    /// The denoising noise.
    pub noise: Noise,
    /// Train on back-translations too (else denoising only).
    pub back_translation: bool,
    /// The first step that back-translates (denoising alone before it: a translator of the
    /// mapped vectors' quality, cheaper per step, to start back-translation from).
    #[serde(default)]
    pub back_translation_start: u64,
}

impl Default for UnmtConfig {
    /// `train-unmt`'s defaults.
    fn default() -> Self {
        UnmtConfig {
            model: Seq2SeqConfig {
                mode: "lstm".into(),
                layers: 1,
                hidden: 64,
                embed: 0,
                attention: "additive".into(),
                attention_rank: 32,
                dropout: 0.1,
                seed: 1,
                input_feeding: false,
                frozen_src_embedding: true,
            },
            batch: 32,
            lr: 1e-2,
            clip: 5.0,
            noise: Noise::default(),
            back_translation: true,
            back_translation_start: 0,
        }
    }
}

impl UnmtConfig {
    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        let m = &self.model;
        if m.hidden == 0 || m.layers == 0 || self.batch == 0 {
            return Err(Error::config(
                "--hidden, --layers and --batch must be at least 1",
            ));
        }
        let ok = self.lr > 0.0 && self.lr.is_finite() && self.clip >= 0.0 && self.clip.is_finite();
        if !ok {
            return Err(Error::config("--lr must be > 0 and --clip >= 0"));
        }
        self.noise.validate()?;
        m.score()?;
        Ok(())
    }
}

/// The model with its vocabularies.
pub struct Unmt {
    /// Hyperparameters.
    pub config: UnmtConfig,
    /// The two languages' names.
    pub langs: [String; 2],
    /// Each language's vocabulary: [`SPECIALS`], then its words.
    pub vocabs: [Vocab; 2],
    /// `decoders[l]` translates into language l (encoder side shared).
    pub decoders: [Seq2Seq; 2],
    joint_tokens: Vec<String>,
}

impl Unmt {
    /// A fresh model over `mapped`'s two languages (`langs[0]` first), its embeddings from
    /// the vectors.
    pub fn new(
        ctx: &Context,
        mapped: &Mapped,
        langs: [&str; 2],
        config: &UnmtConfig,
    ) -> Result<Unmt> {
        let sides = [mapped.side(langs[0])?.0, mapped.side(langs[1])?.0];
        let words = |i: usize| -> Vec<String> {
            SPECIALS
                .iter()
                .map(|s| s.to_string())
                .chain(sides[i].words.iter().cloned())
                .collect()
        };
        let vocabs = [Vocab::new(words(0))?, Vocab::new(words(1))?];
        let mut config = config.clone();
        config.model.embed = mapped.src.dim;
        config.model.frozen_src_embedding = true;
        let m = Self::build(ctx, &config, [langs[0], langs[1]], vocabs)?;
        let d = mapped.src.dim;
        let specials = specials_rows(config.model.seed, d);
        let mut joint = specials.clone();
        for s in sides {
            joint.extend_from_slice(&s.data);
        }
        m.decoders[0]
            .src_embedding
            .weight
            .write_range(ctx, 0, &joint)?;
        for (l, s) in sides.iter().enumerate() {
            let mut t = specials.clone();
            t.extend_from_slice(&s.data);
            m.decoders[l].tgt_embedding.weight.write_range(ctx, 0, &t)?;
        }
        Ok(m)
    }

    /// The model's structure (weights random) for `vocabs`.
    pub fn build(
        ctx: &Context,
        config: &UnmtConfig,
        langs: [&str; 2],
        vocabs: [Vocab; 2],
    ) -> Result<Unmt> {
        config.validate()?;
        if config.model.embed == 0 {
            return Err(Error::config("the embedding size must be at least 1"));
        }
        let n = SPECIALS.len();
        let joint_tokens: Vec<String> = vocabs[0]
            .tokens()
            .iter()
            .chain(&vocabs[1].tokens()[n..])
            .cloned()
            .collect();
        let v = joint_tokens.len();
        let to0 = Seq2Seq::new(ctx, v, vocabs[0].len(), &config.model)?;
        // The second decoder starts from other random weights; its encoder side is replaced
        // by the first's.
        let mut c1 = config.model.clone();
        c1.seed = c1.seed.wrapping_add(0x1_0000);
        let mut to1 = Seq2Seq::new(ctx, v, vocabs[1].len(), &c1)?;
        to1.src_embedding = to0.src_embedding.clone();
        to1.encoder = to0.encoder.clone();
        to1.bridge_h = to0.bridge_h.clone();
        to1.bridge_c = to0.bridge_c.clone();
        Ok(Unmt {
            config: config.clone(),
            langs: [langs[0].to_string(), langs[1].to_string()],
            vocabs,
            decoders: [to0, to1],
            joint_tokens,
        })
    }

    /// The index of language `lang`.
    pub fn lang(&self, lang: &str) -> Result<usize> {
        self.langs.iter().position(|l| l == lang).ok_or_else(|| {
            Error::config(format!(
                "language `{lang}`: this model translates between `{}` and `{}`",
                self.langs[0], self.langs[1]
            ))
        })
    }

    /// The joint source vocabulary's tokens by id.
    pub fn joint_tokens(&self) -> &[String] {
        &self.joint_tokens
    }

    /// Language `l`'s ids of `tokens` (unknown ones `<unk>`).
    pub fn encode<S: AsRef<str>>(&self, l: usize, tokens: &[S]) -> Vec<u32> {
        text::encode(&self.vocabs[l], tokens)
    }

    /// Language `l`'s ids as encoder (joint) ids.
    pub fn joint(&self, l: usize, ids: &[u32]) -> Vec<u32> {
        let n = SPECIALS.len() as u32;
        let off = if l == 0 {
            0
        } else {
            self.vocabs[0].len() as u32 - n
        };
        ids.iter()
            .map(|&i| if i < n { i } else { i + off })
            .collect()
    }

    /// Zeroed gradients of both decoders, the encoder side's tensors shared.
    pub fn zero_grads(&self, ctx: &Context) -> Result<[Seq2SeqGrads; 2]> {
        let g0 = self.decoders[0].zero_grads(ctx)?;
        let mut g1 = self.decoders[1].zero_grads(ctx)?;
        g1.src_embedding = g0.src_embedding.clone();
        g1.encoder = g0.encoder.clone();
        g1.bridge_h = g0.bridge_h.clone();
        g1.bridge_c = g0.bridge_c.clone();
        Ok([g0, g1])
    }

    /// Registers the encoder side once, then each decoder side under `{lang}.`.
    pub fn register(&self, store: &mut ParamStore, g: &[Seq2SeqGrads; 2]) -> Result<()> {
        self.decoders[0].register_encoder(store, &g[0])?;
        for ((d, lang), g) in self.decoders.iter().zip(&self.langs).zip(g) {
            d.register_decoder(store, &format!("{lang}."), g)?;
        }
        Ok(())
    }

    /// Every tensor outside the RNN stacks under its checkpoint name: the encoder side, then
    /// each decoder side under `{lang}.`.
    pub fn named(&self) -> Vec<(String, Tensor)> {
        let mut v = self.decoders[0].named_encoder();
        for l in 0..2 {
            v.extend(self.decoders[l].named_decoder(&format!("{}.", self.langs[l])));
        }
        v
    }

    /// The RNN stacks with their checkpoint file names: `encoder.safetensors`,
    /// `decoder_{lang}.safetensors`.
    pub fn stacks(&self) -> Vec<(String, &crate::rnn::Rnn)> {
        let mut v = vec![("encoder.safetensors".to_string(), &self.decoders[0].encoder)];
        for l in 0..2 {
            v.push((
                format!("decoder_{}.safetensors", self.langs[l]),
                &self.decoders[l].decoder,
            ));
        }
        v
    }

    /// Loads the weights of checkpoint folder `dir`.
    pub fn load_files(&self, ctx: &Context, dir: &std::path::Path) -> Result<()> {
        use crate::models::checkpoint;
        for (name, rnn) in self.stacks() {
            checkpoint::load_rnn(ctx, rnn, &dir.join(name))?;
        }
        let named = self.named();
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
        checkpoint::load_named(ctx, &dir.join("model.safetensors"), &refs)
    }

    /// Translations of raw `lines` from language `from` into language `to` (greedy or beam
    /// search as `dec` says), in input order.
    pub fn translate(
        &self,
        ctx: &Context,
        from: usize,
        to: usize,
        lines: &[String],
        dec: &Decoding,
    ) -> Result<Vec<Translation>> {
        if from == to {
            return Err(Error::config("a direction needs two different languages"));
        }
        let ids: Vec<Vec<u32>> = lines
            .iter()
            .map(|l| self.joint(from, &self.encode(from, &text::tokenize(l))))
            .collect();
        translate_ids(
            ctx,
            &self.decoders[to],
            &self.joint_tokens,
            &self.vocabs[to],
            &ids,
            dec,
        )
    }

    /// Greedy translations into language `to` of `sources` (language `1 - to`'s ids, each
    /// non-empty), as language `to`'s ids (one submission, one readback).
    pub fn back_translate(
        &self,
        ctx: &Context,
        to: usize,
        sources: &[Vec<u32>],
    ) -> Result<Vec<Vec<u32>>> {
        let joint: Vec<Vec<u32>> = sources.iter().map(|s| self.joint(1 - to, s)).collect();
        let refs: Vec<&[u32]> = joint.iter().map(Vec::as_slice).collect();
        let longest = refs.iter().map(|s| s.len()).max().unwrap_or(1);
        self.decoders[to].greedy(ctx, &refs, max_len(longest))
    }
}

/// The rows of the four specials: `<pad>` zero, the others N(0, 1/D) from `seed`.
fn specials_rows(seed: u64, d: usize) -> Vec<f32> {
    let n = SPECIALS.len();
    let scale = 1.0 / (d as f32).sqrt();
    let mut r: Vec<f32> = normal(seed.wrapping_add(0x5bec), n * d)
        .into_iter()
        .map(|x| x * scale)
        .collect();
    r[PAD_ID as usize * d..(PAD_ID as usize + 1) * d].fill(0.0);
    r
}

/// The losses of one step (mean cross-entropy per target token each).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepLosses {
    /// Denoising, language 0 and 1.
    pub denoise: [f32; 2],
    /// Back-translation into language 0 and 1 (absent without it, or when every
    /// back-translation of a batch came out empty).
    pub back: [Option<f32>; 2],
}

impl StepLosses {
    /// The sum of the terms (what Adam minimised).
    pub fn total(&self) -> f32 {
        self.denoise.iter().sum::<f32>() + self.back.iter().flatten().sum::<f32>()
    }
}

/// Adam over every parameter of a [`Unmt`].
pub struct UnmtTrainer {
    /// The model being trained.
    pub model: Unmt,
    grads: [Seq2SeqGrads; 2],
    store: ParamStore,
    opt: Optimizer,
    /// Steps taken.
    pub step: u64,
}

impl UnmtTrainer {
    /// A trainer with the model's Adam rate.
    pub fn new(ctx: &Context, model: Unmt) -> Result<UnmtTrainer> {
        let grads = model.zero_grads(ctx)?;
        let mut store = ParamStore::new();
        model.register(&mut store, &grads)?;
        let opt = Optimizer::adam(ctx, &store, AdamConfig::adam(model.config.lr))?;
        Ok(UnmtTrainer {
            model,
            grads,
            store,
            opt,
            step: 0,
        })
    }

    /// The parameters and gradients by name.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// The optimiser.
    pub fn optimizer(&self) -> &Optimizer {
        &self.opt
    }

    /// Restores the optimiser from checkpoint `dir` and returns the position its `conf`
    /// records, `(step, epoch, batch_in_epoch)`.
    pub fn restore(
        &mut self,
        ctx: &Context,
        dir: &std::path::Path,
        conf: &serde_json::Value,
    ) -> Result<(u64, u64, usize)> {
        crate::models::epochs::restore_position(ctx, &mut self.opt, &self.store, dir, conf)
    }

    /// One step on `batches[l]` (language l's ids, each non-empty); see the module docs.
    pub fn train_step(&mut self, ctx: &Context, batches: [&[Vec<u32>]; 2]) -> Result<StepLosses> {
        let m = &self.model;
        let c = &m.config;
        let back = if c.back_translation && self.step >= c.back_translation_start {
            // back[l]: language l's sentences translated into the other language.
            Some([
                m.back_translate(ctx, 1, batches[0])?,
                m.back_translate(ctx, 0, batches[1])?,
            ])
        } else {
            None
        };
        let seed = (c.model.seed as u32) ^ (self.step as u32).wrapping_mul(0x9e37_79b9);
        let mut rec = Recorder::new(ctx);
        self.store.record_zero_grads(&mut rec)?;
        // (language, back-translated?, encoder ids of each source): denoising first, then
        // language l's sentences from their translations into the other language.
        let mut terms: Vec<(usize, bool, Vec<Vec<u32>>)> = (0..2)
            .map(|l| {
                let noisy = batches[l]
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let mut rng = noise_rng(c.model.seed, self.step, 2 * i + l);
                        m.joint(l, &c.noise.apply(s, &mut rng))
                    })
                    .collect();
                (l, false, noisy)
            })
            .collect();
        if let Some(back) = &back {
            for (l, ys) in back.iter().enumerate() {
                terms.push((l, true, ys.iter().map(|y| m.joint(1 - l, y)).collect()));
            }
        }
        let mut ces = Vec::new();
        for (l, is_back, srcs) in &terms {
            // An empty back-translation has no source: its pair is left out.
            let pairs: Vec<(&[u32], &[u32])> = srcs
                .iter()
                .zip(batches[*l])
                .filter(|(x, _)| !x.is_empty())
                .map(|(x, y)| (x.as_slice(), y.as_slice()))
                .collect();
            if pairs.is_empty() {
                continue;
            }
            let bt = m.decoders[*l].batch(ctx, &pairs)?;
            let stream = *l as u32 + if *is_back { 3 } else { 1 };
            let s = seed ^ stream.wrapping_mul(0x85eb_ca6b);
            let ce = m.decoders[*l].record_loss(&mut rec, &bt, Some(s), Some(&self.grads[*l]))?;
            ces.push((*is_back, *l, ce));
        }
        if c.clip > 0.0 {
            self.store.record_clip_grad_norm(&mut rec, c.clip)?;
        }
        self.opt.record_step(&mut rec, &self.store)?;
        rec.submit()?;
        self.step += 1;
        let mut out = StepLosses::default();
        for (is_back, l, ce) in ces {
            let v = ce.loss(ctx)?;
            if is_back {
                out.back[l] = Some(v);
            } else {
                out.denoise[l] = v;
            }
        }
        Ok(out)
    }
}
