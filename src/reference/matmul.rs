//! Reference GEMM (`C = A B^T` on row-major slices, f64 accumulation) and transpose.

/// `a [m, k]`, `b [n, k]` -> `[m, n]` with `c[i][j] = sum_k a[i][k] b[j][k]`.
pub fn matmul(a: &[f64], b: &[f64], m: usize, n: usize, k: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for q in 0..k {
                s += a[i * k + q] * b[j * k + q];
            }
            c[i * n + j] = s;
        }
    }
    c
}

/// `x [rows, cols]` -> `[cols, rows]`, the twin of `transpose_forward`.
pub fn transpose(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = x[r * cols + c];
        }
    }
    out
}
