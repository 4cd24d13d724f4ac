//! Sequence-to-sequence translation (issue 18): [`text`] holds the tokenization, the
//! vocabularies and the parallel corpus; the attention layer is [`crate::nn::Attention`] and
//! the score [`super::bleu`].

pub mod heatmap;
pub mod model;
pub mod text;
pub mod train;
