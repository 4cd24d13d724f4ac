//! Reference of `reduce.wgsl`: column sums and global-norm clipping.

/// Sums `x [rows, cols]` over rows -> `[cols]`.
pub fn colsum(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; cols];
    for r in 0..rows {
        for c in 0..cols {
            out[c] += x[r * cols + c];
        }
    }
    out
}

/// The global L2 norm of all tensors and the scale `min(1, max_norm / (norm + 1e-6))` that
/// `clip_grad_norm` applies (1 when `max_norm <= 0` or the norm is within it).
pub fn clip_scale(tensors: &[&[f64]], max_norm: f64) -> (f64, f64) {
    let norm = tensors
        .iter()
        .flat_map(|t| t.iter())
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt();
    let scale = if max_norm > 0.0 && norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    };
    (norm, scale)
}
