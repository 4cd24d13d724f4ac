//! GRU cell (PyTorch gate order r, z, n; reset applied after the recurrent product, as
//! torch.nn.GRU and cuDNN), appended to recurrent.wgsl.
//!   r = σ(x_r + h_r)   z = σ(x_z + h_z)   n = tanh(x_n + r h_n)   h' = (1 - z) n + z h
//! where x_* include b_ih and h_* = W_h* h + b_h*. Saved per unit: r, z, n, h_n.
//! The hidden-side gradient of the n gate is r * dn_pre, unlike the input side (SPLIT).

const G: u32 = 3u;
const S: u32 = 4u;
const SPLIT: bool = true;

struct CellFwd { h: f32, c: f32, save: array<f32, 4> }
struct CellBwd { dgx: array<f32, 4>, dgh: array<f32, 4>, dh_prev: f32, dc_prev: f32 }

fn cell_forward(x: array<f32, 4>, hh: array<f32, 4>, h_prev: f32, c_prev: f32) -> CellFwd {
  let r = sigmoid(x[0] + hh[0]);
  let z = sigmoid(x[1] + hh[1]);
  let n = tanh_c(x[2] + r * hh[2]);
  let h = (1.0 - z) * n + z * h_prev;
  return CellFwd(h, 0.0, array<f32, 4>(r, z, n, hh[2]));
}

fn cell_backward(dh: f32, dc_in: f32, sv: array<f32, 4>, h_prev: f32, c_prev: f32,
                 h_new: f32, c_new: f32) -> CellBwd {
  let r = sv[0]; let z = sv[1]; let n = sv[2]; let hn = sv[3];
  let dn = dh * (1.0 - z) * (1.0 - n * n);
  let dz = dh * (h_prev - n) * z * (1.0 - z);
  let dr = dn * hn * r * (1.0 - r);
  return CellBwd(array<f32, 4>(dr, dz, dn, 0.0), array<f32, 4>(dr, dz, dn * r, 0.0), dh * z, 0.0);
}
