//! Layers and training utilities built on the kernels: gradient clipping (more layers follow).

mod clip;

pub use clip::clip_grad_norm;
