//! The CPU reference: a plain, readable twin of every GPU op, forward and backward, in f64.
//! It is the ground truth of the conformance tests; it is written to be obviously right, not
//! fast. Module and function names mirror the kernels:
//!
//! | kernel (shaders/)                 | reference                                  |
//! |-----------------------------------|--------------------------------------------|
//! | matmul.wgsl `matmul_*`            | [`matmul::matmul`]                         |
//! | transpose.wgsl `transpose_forward` | [`matmul::transpose`]                      |
//! | transpose.wgsl `pack_f16_forward` | [`matmul::pack_f16`]                       |
//! | lstm/gru/elman.wgsl `cell_*`      | [`cells::cell_forward`], [`cells::cell_backward`] |
//! | recurrent.wgsl `step_forward`     | [`rnn::rnn_forward`] (the whole stack)     |
//! | recurrent.wgsl `step_backward`    | [`rnn::rnn_backward`]                      |
//! | dropout.wgsl `dropout_*`          | [`dropout::keep`], [`dropout::dropout`]    |
//! | reduce.wgsl                       | [`reduce`]                                 |
//! | embedding.wgsl                    | [`embedding::embedding_forward`], [`embedding::embedding_backward`] |
//! | matmul.wgsl + reduce.wgsl (linear) | [`linear::linear_forward`], [`linear::linear_backward`] |
//! | loss.wgsl                         | [`loss::softmax_ce_forward`], [`loss::log_softmax_forward`], [`loss::log_softmax_backward`] |
//! | elementwise.wgsl `unary_forward`, `binary_forward` | [`ops::tanh`], [`ops::sigmoid`], [`ops::relu`], [`ops::zip`], [`ops::tanh_add`], [`ops::tanh_backward`], [`ops::sigmoid_backward`], [`ops::relu_backward`], [`ops::add_bias`], [`ops::concat`] |
//! | elementwise.wgsl `gather_rows_forward` | [`ops::gather_rows_forward`], [`ops::gather_rows_backward`] |
//! | matmul.wgsl (batched)             | [`ops::bmm`], [`ops::bmm_backward`]        |
//! | softmax.wgsl                      | [`ops::masked_softmax_forward`], [`ops::masked_softmax_backward`] |
//! | pool.wgsl                         | [`ops::pool_mean_forward`], [`ops::pool_max_forward`], [`ops::pool_last_forward`], [`ops::pool_backward`] |
//! | decode.wgsl                       | [`ops::argmax`], [`ops::topk_row`], [`ops::sample_row`] with [`ops::uniform01`] |
//! | beam.wgsl `beam_step`             | [`beam::RefBeam`] (a whole search)         |
//! | optim.wgsl                        | [`optim::sgd_update`], [`optim::adam_update`] |
//! | wordvec.wgsl                      | [`wordvec::sgns_forward`], [`wordvec::sgns_center_grad`], [`wordvec::sgns_context_grad`], [`wordvec::sgns_objective`], [`wordvec::csls_scores`], [`wordvec::row_mean`] |
//! | `nn::Attention` (composed)        | [`attention::AttentionRef`]                |

//!
//! [`compare`] is how every comparison against the reference is measured.

// Index loops mirror the math (and the kernels) more plainly than iterator chains.
#![allow(clippy::needless_range_loop)]

pub mod attention;
pub mod beam;
pub mod cells;
pub mod compare;
pub mod dropout;
pub mod embedding;
pub mod linear;
pub mod loss;
pub mod matmul;
pub mod ops;
pub mod optim;
pub mod reduce;
pub mod rnn;
pub mod wordvec;
