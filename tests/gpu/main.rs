//! GPU-vs-reference conformance tests, one binary (one shared context, one link).

#[path = "../common.rs"]
mod common;

mod backward;
mod forward;
mod layers;
mod loss;
mod ops;
mod optim;
mod train;
