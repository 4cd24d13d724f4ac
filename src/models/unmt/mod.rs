//! Unsupervised translation from two monolingual corpora (issue 22), after Artetxe et al.
//! (2018) and Lample et al. (2018):
//! - [`vectors`]: skip-gram word vectors per language, trained on the device;
//! - [`mapping`]: an orthogonal map into one space, self-learnt from identical strings with
//!   CSLS retrieval, and the word-by-word baseline;
//! - [`data`]: the protocol (disjoint halves of the training pairs) and the denoising noise;
//! - [`model`]: one bidirectional encoder over the fixed cross-lingual vectors, shared by an
//!   attention decoder per language ([`crate::models::nmt::model::Seq2Seq`]s sharing their
//!   encoder side), trained by denoising and on-the-fly back-translation;
//! - [`train`]: `train-unmt`'s loop, checkpoints and validation.

pub mod data;
pub mod mapping;
pub mod model;
pub mod train;
pub mod vectors;
