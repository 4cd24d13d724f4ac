//! GPU-vs-reference conformance tests, one binary (one shared context, one link).

#[path = "../common/mod.rs"]
mod common;

mod attention;
mod backward;
mod beam;
mod classify;
mod cli;
mod forward;
mod golden;
mod interop;
mod layers;
mod lm;
mod lm_words;
mod loss;
mod nmt;
mod ops;
mod optim;
mod review;
mod steps;
mod tagger;
mod train;
mod unmt;
mod variants;
mod vocab;
