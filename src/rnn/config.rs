//! RNN configuration (torch.nn.LSTM / GRU / RNN's constructor arguments) and its validation.

use crate::error::{Error, Result};

/// The recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// torch.nn.LSTM: gates i, f, g, o.
    Lstm,
    /// torch.nn.GRU: gates r, z, n, reset applied after the recurrent product.
    Gru,
    /// torch.nn.RNN(nonlinearity='tanh').
    RnnTanh,
    /// torch.nn.RNN(nonlinearity='relu').
    RnnRelu,
}

impl Mode {
    /// Gates per hidden unit (G): 4, 3, 1, 1.
    pub fn gates(self) -> usize {
        match self {
            Mode::Lstm => 4,
            Mode::Gru => 3,
            Mode::RnnTanh | Mode::RnnRelu => 1,
        }
    }

    /// Values per hidden unit and timestep the training forward saves for the backward.
    pub(crate) fn saved_per_unit(self) -> usize {
        match self {
            Mode::Lstm | Mode::Gru => 4,
            Mode::RnnTanh | Mode::RnnRelu => 0,
        }
    }

    /// PyTorch's mode name: `LSTM`, `GRU`, `RNN_TANH`, `RNN_RELU`.
    pub fn torch_name(self) -> &'static str {
        match self {
            Mode::Lstm => "LSTM",
            Mode::Gru => "GRU",
            Mode::RnnTanh => "RNN_TANH",
            Mode::RnnRelu => "RNN_RELU",
        }
    }

    /// Parses PyTorch's names and the CLI's (`lstm`, `gru`, `rnn_tanh`, `rnn_relu`), any case.
    pub fn parse(s: &str) -> Result<Mode> {
        match s.to_ascii_uppercase().as_str() {
            "LSTM" => Ok(Mode::Lstm),
            "GRU" => Ok(Mode::Gru),
            "RNN_TANH" | "TANH" | "RNN" => Ok(Mode::RnnTanh),
            "RNN_RELU" | "RELU" => Ok(Mode::RnnRelu),
            _ => Err(Error::config(format!(
                "unknown mode {s:?} (expected LSTM, GRU, RNN_TANH or RNN_RELU)"
            ))),
        }
    }

    /// True for the LSTM, the only cell with a cell state `c`.
    pub fn has_cell_state(self) -> bool {
        self == Mode::Lstm
    }
}

/// A stack of recurrent layers, as torch.nn.LSTM/GRU/RNN's arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnConfig {
    /// The cell.
    pub mode: Mode,
    /// Features per timestep of the input (I).
    pub input_size: usize,
    /// Hidden units per direction (H).
    pub hidden_size: usize,
    /// Stacked layers (L).
    pub num_layers: usize,
    /// Two directions (D = 2) when true.
    pub bidirectional: bool,
    /// Whether the layers have `bias_ih` / `bias_hh`.
    pub bias: bool,
    /// Dropout probability on the outputs of every layer but the last (training only).
    pub dropout: f32,
}

impl RnnConfig {
    /// One unidirectional layer with biases and no dropout.
    pub fn new(mode: Mode, input_size: usize, hidden_size: usize) -> Self {
        RnnConfig {
            mode,
            input_size,
            hidden_size,
            num_layers: 1,
            bidirectional: false,
            bias: true,
            dropout: 0.0,
        }
    }

    /// With `n` layers.
    pub fn layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }

    /// Bidirectional or not.
    pub fn bidirectional(mut self, b: bool) -> Self {
        self.bidirectional = b;
        self
    }

    /// With or without biases.
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }

    /// Dropout probability between layers.
    pub fn dropout(mut self, p: f32) -> Self {
        self.dropout = p;
        self
    }

    /// Directions (D): 1 or 2.
    pub fn dirs(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Input features of layer `l` (I_l): I for layer 0, D*H above it.
    pub fn layer_input(&self, l: usize) -> usize {
        if l == 0 {
            self.input_size
        } else {
            self.dirs() * self.hidden_size
        }
    }

    /// G*H: rows of every weight matrix.
    pub fn gate_rows(&self) -> usize {
        self.mode.gates() * self.hidden_size
    }

    /// Checks the sizes; every problem is named.
    pub fn validate(&self) -> Result<()> {
        if self.input_size == 0 {
            return Err(Error::config("input_size must be at least 1"));
        }
        if self.hidden_size == 0 {
            return Err(Error::config("hidden_size must be at least 1"));
        }
        if self.num_layers == 0 {
            return Err(Error::config("num_layers must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.dropout) || self.dropout.is_nan() {
            return Err(Error::config(format!(
                "dropout must be in [0, 1], got {}",
                self.dropout
            )));
        }
        Ok(())
    }

    /// Parameter names in PyTorch's order (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`,
    /// `bias_hh_l0`, then the `_reverse` ones, then layer 1, ...).
    pub fn param_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        for l in 0..self.num_layers {
            for d in 0..self.dirs() {
                let suf = if d == 1 { "_reverse" } else { "" };
                v.push(format!("weight_ih_l{l}{suf}"));
                v.push(format!("weight_hh_l{l}{suf}"));
                if self.bias {
                    v.push(format!("bias_ih_l{l}{suf}"));
                    v.push(format!("bias_hh_l{l}{suf}"));
                }
            }
        }
        v
    }

    /// The shape PyTorch gives parameter `name`: `[G*H, I_l]`, `[G*H, H]` or `[G*H]`; `None` for a
    /// name this configuration does not have.
    pub fn param_shape(&self, name: &str) -> Option<Vec<usize>> {
        let (kind, l, _) = parse_param_name(name)?;
        if l >= self.num_layers
            || (name.ends_with("_reverse") && !self.bidirectional)
            || (kind >= 2 && !self.bias)
        {
            return None;
        }
        let gh = self.gate_rows();
        Some(match kind {
            0 => vec![gh, self.layer_input(l)],
            1 => vec![gh, self.hidden_size],
            _ => vec![gh],
        })
    }
}

/// Splits `weight_hh_l3_reverse` into (kind, layer, direction): kind 0 weight_ih, 1 weight_hh,
/// 2 bias_ih, 3 bias_hh.
pub fn parse_param_name(name: &str) -> Option<(usize, usize, usize)> {
    let (rest, d) = match name.strip_suffix("_reverse") {
        Some(r) => (r, 1),
        None => (name, 0),
    };
    let kinds = ["weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"];
    for (k, pre) in kinds.iter().enumerate() {
        if let Some(num) = rest.strip_prefix(pre) {
            if num.is_empty()
                || !num.bytes().all(|c| c.is_ascii_digit())
                || (num.len() > 1 && num.starts_with('0'))
            {
                return None;
            }
            return num.parse().ok().map(|l| (k, l, d));
        }
    }
    None
}
