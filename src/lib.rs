//! wgrnn: LSTM, GRU and Elman RNN forward and backward as fused WGSL compute shaders on wgpu,
//! checked against a CPU reference.
//!
//! ```no_run
//! use wgrnn::{Context, Mode, Rnn, RnnConfig, Tensor, ForwardInputs};
//! # fn main() -> wgrnn::Result<()> {
//! let ctx = Context::new()?;                                   // honours WGPU_BACKEND / WGPU_ADAPTER_NAME
//! let cfg = RnnConfig::new(Mode::Lstm, 32, 64).layers(2);       // like nn.LSTM(32, 64, num_layers=2)
//! let rnn = Rnn::random(&ctx, &cfg, 0)?;                        // PyTorch's default initialisation
//! let x = Tensor::from_f32(&ctx, "input", &[10, 4, 32], &vec![0.1; 10 * 4 * 32])?; // [T, B, I]
//! let out = rnn.forward(&ctx, &x, &ForwardInputs::default())?;  // one command buffer
//! let y = out.output.to_vec(&ctx)?;                             // [T, B, D*H]
//! # Ok(()) }
//! ```
//!
//! See ARCHITECTURE.md for how a call flows from this API through the scheduler to the kernels.

#![warn(missing_docs)]

pub mod bench;
pub mod context;
pub mod encoder;
pub mod error;
pub mod files;
pub mod interop;
pub(crate) mod kernels;
pub mod models;
pub mod nn;
pub mod ops;
pub(crate) mod pipeline;
pub mod reference;
pub mod rnn;
pub mod shaders;
pub mod tensor;
pub mod tune;

pub use context::{Context, KernelVariant, Persistent, Precision};
pub use encoder::{Recorder, Submitted};
pub use error::{Error, Result};
pub use rnn::{
    ForwardInputs, ForwardState, HostTensor, LayerParams, Mode, ParamView, Rnn, RnnConfig,
    RnnGrads, RnnOutput, RnnParams, RnnState, Schedule, StepSaved, Upstream, WeightStorage,
};
pub use tensor::{DType, Tensor};
