//! Model families built on the engine, as library code: data, model, training loop, evaluation
//! and decoding for each, so the CLI only parses flags, shows progress and prints.
//!
//! - [`lm`]: recurrent language models (character level), trained by truncated BPTT;
//!   perplexity; sampling on the device.
//! - [`ngram`]: the interpolated Kneser-Ney n-gram baseline (CPU).
//! - [`classify`]: sentence classification (many-to-one, bidirectional, pooled over lengths).
//! - [`tagger`]: part-of-speech tagging (many-to-many) with character-level word features,
//!   on [`conllu`] files.
//! - [`nmt`]: translation (so far its text handling); [`bleu`]: corpus BLEU as sacreBLEU
//!   computes it.
//!
//! Shared by every family: [`corpus`] (vocabulary, split), [`checkpoint`] (the checkpoint
//! folder layout of `../shared/notes/model-commands.md`, written atomically) and [`metrics`]
//! (`metrics.csv` and the PNG of the curves).

pub mod bleu;
pub mod checkpoint;
pub mod classify;
pub mod conllu;
pub mod corpus;
pub mod epochs;
pub mod lm;
pub mod metrics;
pub mod ngram;
pub mod nmt;
pub mod tagger;
pub mod unmt;
