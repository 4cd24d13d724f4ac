//! Elman cell (torch.nn.RNN), appended to recurrent.wgsl. ACT: 0 = tanh, 1 = relu.
//!   h' = act(x + W_hh h + b_hh)      (x includes W_ih x_t + b_ih)
//! Nothing is saved per unit: the backward reads h' from the state history.

const G: u32 = 1u;
const S: u32 = 0u;
const SPLIT: bool = false;
override ACT: u32 = 0u;

struct CellFwd { h: f32, c: f32, save: array<f32, 4> }
struct CellBwd { dgx: array<f32, 4>, dgh: array<f32, 4>, dh_prev: f32, dc_prev: f32 }

fn cell_forward(x: array<f32, 4>, hh: array<f32, 4>, h_prev: f32, c_prev: f32) -> CellFwd {
  let pre = x[0] + hh[0];
  var h = max(pre, 0.0);
  if (ACT == 0u) { h = tanh_c(pre); }
  return CellFwd(h, 0.0, array<f32, 4>(0.0, 0.0, 0.0, 0.0));
}

fn cell_backward(dh: f32, dc_in: f32, sv: array<f32, 4>, h_prev: f32, c_prev: f32,
                 h_new: f32, c_new: f32) -> CellBwd {
  var dpre = select(0.0, dh, h_new > 0.0);
  if (ACT == 0u) { dpre = dh * (1.0 - h_new * h_new); }
  let dg = array<f32, 4>(dpre, 0.0, 0.0, 0.0);
  return CellBwd(dg, dg, 0.0, 0.0);
}
