//! The only place that loads WGSL. Each kernel family is one file under `shaders/`; the recurrent
//! drivers are composed with one cell file at load time (WGSL has no includes).

use crate::context::Context;

const MATMUL: &str = include_str!("../shaders/matmul.wgsl");
const RECURRENT: &str = include_str!("../shaders/recurrent.wgsl");
const LSTM: &str = include_str!("../shaders/lstm.wgsl");
const GRU: &str = include_str!("../shaders/gru.wgsl");
const ELMAN: &str = include_str!("../shaders/elman.wgsl");
const REDUCE: &str = include_str!("../shaders/reduce.wgsl");
const DROPOUT: &str = include_str!("../shaders/dropout.wgsl");
const TRANSPOSE: &str = include_str!("../shaders/transpose.wgsl");
const EMBEDDING: &str = include_str!("../shaders/embedding.wgsl");
const LOSS: &str = include_str!("../shaders/loss.wgsl");
const OPTIM: &str = include_str!("../shaders/optim.wgsl");
const ELEMENTWISE: &str = include_str!("../shaders/elementwise.wgsl");
const SOFTMAX: &str = include_str!("../shaders/softmax.wgsl");
const POOL: &str = include_str!("../shaders/pool.wgsl");
const DECODE: &str = include_str!("../shaders/decode.wgsl");

/// A WGSL module: one kernel family (or the recurrent drivers with one cell).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    /// `matmul.wgsl`
    Matmul,
    /// `recurrent.wgsl` + `lstm.wgsl`
    Lstm,
    /// `recurrent.wgsl` + `gru.wgsl`
    Gru,
    /// `recurrent.wgsl` + `elman.wgsl`
    Elman,
    /// `reduce.wgsl`
    Reduce,
    /// `dropout.wgsl`
    Dropout,
    /// `transpose.wgsl`
    Transpose,
    /// `embedding.wgsl`
    Embedding,
    /// `loss.wgsl`
    Loss,
    /// `optim.wgsl`
    Optim,
    /// `elementwise.wgsl`
    Elementwise,
    /// `softmax.wgsl`
    Softmax,
    /// `pool.wgsl`
    Pool,
    /// `decode.wgsl`
    Decode,
}

impl Shader {
    /// Every module, for validation tests.
    pub const ALL: [Shader; 14] = [
        Shader::Matmul,
        Shader::Lstm,
        Shader::Gru,
        Shader::Elman,
        Shader::Reduce,
        Shader::Dropout,
        Shader::Transpose,
        Shader::Embedding,
        Shader::Loss,
        Shader::Optim,
        Shader::Elementwise,
        Shader::Softmax,
        Shader::Pool,
        Shader::Decode,
    ];

    /// The module's full WGSL source.
    pub fn source(self) -> String {
        match self {
            Shader::Matmul => MATMUL.to_string(),
            Shader::Lstm => format!("{RECURRENT}\n{LSTM}"),
            Shader::Gru => format!("{RECURRENT}\n{GRU}"),
            Shader::Elman => format!("{RECURRENT}\n{ELMAN}"),
            Shader::Reduce => REDUCE.to_string(),
            Shader::Dropout => DROPOUT.to_string(),
            Shader::Transpose => TRANSPOSE.to_string(),
            Shader::Embedding => EMBEDDING.to_string(),
            Shader::Loss => LOSS.to_string(),
            Shader::Optim => OPTIM.to_string(),
            Shader::Elementwise => ELEMENTWISE.to_string(),
            Shader::Softmax => SOFTMAX.to_string(),
            Shader::Pool => POOL.to_string(),
            Shader::Decode => DECODE.to_string(),
        }
    }
}

pub(crate) fn module(ctx: &Context, shader: Shader) -> wgpu::ShaderModule {
    let src = shader.source();
    ctx.device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(match shader {
                Shader::Matmul => "matmul.wgsl",
                Shader::Lstm => "lstm.wgsl",
                Shader::Gru => "gru.wgsl",
                Shader::Elman => "elman.wgsl",
                Shader::Reduce => "reduce.wgsl",
                Shader::Dropout => "dropout.wgsl",
                Shader::Transpose => "transpose.wgsl",
                Shader::Embedding => "embedding.wgsl",
                Shader::Loss => "loss.wgsl",
                Shader::Optim => "optim.wgsl",
                Shader::Elementwise => "elementwise.wgsl",
                Shader::Softmax => "softmax.wgsl",
                Shader::Pool => "pool.wgsl",
                Shader::Decode => "decode.wgsl",
            }),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        })
}
