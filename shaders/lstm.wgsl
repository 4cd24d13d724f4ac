//! LSTM cell (PyTorch gate order i, f, g, o), appended to recurrent.wgsl.
//!   i = σ(x_i + h_i)   f = σ(x_f + h_f)   g = tanh(x_g + h_g)   o = σ(x_o + h_o)
//!   c' = f c + i g     h' = o tanh(c')
//! Saved per unit: i, f, g, o (post-activation); c and c' come from the state history.

const G: u32 = 4u;
const S: u32 = 4u;
const SPLIT: bool = false;

struct CellFwd { h: f32, c: f32, save: array<f32, 4> }
struct CellBwd { dgx: array<f32, 4>, dgh: array<f32, 4>, dh_prev: f32, dc_prev: f32 }

fn cell_forward(x: array<f32, 4>, hh: array<f32, 4>, h_prev: f32, c_prev: f32) -> CellFwd {
  let i = sigmoid(x[0] + hh[0]);
  let f = sigmoid(x[1] + hh[1]);
  let g = tanh_c(x[2] + hh[2]);
  let o = sigmoid(x[3] + hh[3]);
  let c = f * c_prev + i * g;
  return CellFwd(o * tanh_c(c), c, array<f32, 4>(i, f, g, o));
}

// dh, dc: gradients w.r.t. h' and c' arriving from later steps and the output.
fn cell_backward(dh: f32, dc_in: f32, sv: array<f32, 4>, h_prev: f32, c_prev: f32,
                 h_new: f32, c_new: f32) -> CellBwd {
  let i = sv[0]; let f = sv[1]; let g = sv[2]; let o = sv[3];
  let tc = tanh_c(c_new);
  let dc = dc_in + dh * o * (1.0 - tc * tc);
  let dg = array<f32, 4>(dc * g * i * (1.0 - i),
                         dc * c_prev * f * (1.0 - f),
                         dc * i * (1.0 - g * g),
                         dh * tc * o * (1.0 - o));
  return CellBwd(dg, dg, 0.0, dc * f);
}
