//! Reference of the linear layer (`matmul.wgsl` + `reduce.wgsl`'s column sums on the GPU).

use super::matmul::matmul;
use super::reduce::colsum;

/// `y [M, out] = x [M, in] w^T + b`, with `w [out, in]` and `b [out]` (zeros when absent).
pub fn linear_forward(
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
    rows: usize,
    fan_in: usize,
    fan_out: usize,
) -> Vec<f64> {
    let mut y = matmul(x, w, rows, fan_out, fan_in);
    if let Some(b) = b {
        for r in 0..rows {
            for o in 0..fan_out {
                y[r * fan_out + o] += b[o];
            }
        }
    }
    y
}

/// Gradients of a linear layer from `dy [M, out]`.
#[derive(Clone, Debug)]
pub struct LinearGradsRef {
    /// `[M, in]`: `dy w`.
    pub dx: Vec<f64>,
    /// `[out, in]`: `dy^T x`.
    pub dw: Vec<f64>,
    /// `[out]`: column sums of `dy`.
    pub db: Vec<f64>,
}

/// Backward of [`linear_forward`].
pub fn linear_backward(
    x: &[f64],
    w: &[f64],
    dy: &[f64],
    rows: usize,
    fan_in: usize,
    fan_out: usize,
) -> LinearGradsRef {
    let mut dx = vec![0.0; rows * fan_in];
    let mut dw = vec![0.0; fan_out * fan_in];
    for r in 0..rows {
        for o in 0..fan_out {
            let g = dy[r * fan_out + o];
            for i in 0..fan_in {
                dx[r * fan_in + i] += g * w[o * fan_in + i];
                dw[o * fan_in + i] += g * x[r * fan_in + i];
            }
        }
    }
    LinearGradsRef {
        dx,
        dw,
        db: colsum(dy, rows, fan_out),
    }
}
