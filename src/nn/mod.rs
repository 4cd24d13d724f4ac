//! Layers and training utilities built on the kernels, each with an explicit forward and
//! backward (no autograd graph) and a CPU twin in [`crate::reference`]:
//!
//! | layer | forward | backward |
//! |---|---|---|
//! | [`Embedding`] | `ids [T, B]` -> `[T, B, E]` | `dweight [V, E]`, deterministic (sort + segment sums) |
//! | [`Linear`] | `x [..., in]` -> `[..., out]` | `dx`, `dweight`, `dbias` |
//! | [`Dropout`] | inverted, training only | same mask |
//! | [`softmax_cross_entropy`] | mean loss `[1]` over non-ignored rows | `dlogits [..., V]`, same pass |
//! | [`log_softmax`] | `[..., V]` log-probabilities | |
//! | [`SkipGram`] | `centers [N]`, `contexts [N, K+1]` -> negative-sampling loss `[1]` | `dinput`, `doutput` `[V, D]` (deterministic) |
//! | [`Attention`] | `s [B, T, H]` over `enc [B, S, D]` -> contexts `[B, T, H]` (dot, multiplicative, low-rank, additive; masked by source length) | `ds`, `denc`, every weight |
//!
//! Training utilities: [`ParamStore`] (every parameter named, with its gradient; safetensors
//! checkpoints), [`Optimizer`] (SGD, Adam, AdamW on the device), [`clip_grad_norm`].
//!
//! Every layer has `record_*` functions that record into a caller's
//! [`Recorder`](crate::Recorder), so a whole training step is one submission, and convenience
//! functions that submit.

mod attention;
mod clip;
mod dropout;
mod embedding;
mod linear;
mod loss;
mod optim;
mod skipgram;
mod store;

pub use attention::{Attention, AttentionGrads, AttentionSaved, Memory, MemoryGrads, Score};
pub use clip::{clip_grad_norm, record_clip_grad_norm};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub(crate) use embedding::normal;
pub use linear::{Linear, LinearGrads};
pub use loss::{
    CeOutput, log_softmax, record_log_softmax, record_softmax_cross_entropy, softmax_cross_entropy,
    targets,
};
pub use optim::{AdamConfig, OptimConfig, Optimizer, SgdConfig};
pub use skipgram::{SgnsBatch, SkipGram, SkipGramGrads};
pub(crate) use store::match_names;
pub use store::{NamedParam, ParamStore, Slot};
