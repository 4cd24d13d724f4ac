//! Reference GEMM (`C = A B^T` on row-major slices, f64 accumulation), transpose, the strided
//! copy that re-lays GEMM operands, and the f16 rounding of packed weights.

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

/// Twin of `copy_strided`: into `dst`, the `rows x cols` block of `src` read at
/// `s_off + r s_rs + c s_cs`, written at `d_off + r d_rs + c`, and zeros in columns
/// `cols..d_cols` of each row; every other element of `dst` is left as it is.
#[allow(clippy::too_many_arguments)]
pub fn copy_strided(
    src: &[f64],
    (s_off, s_rs, s_cs): (usize, usize, usize),
    dst: &mut [f64],
    (d_off, d_rs): (usize, usize),
    rows: usize,
    cols: usize,
    d_cols: usize,
) {
    for r in 0..rows {
        for c in 0..d_cols.max(cols) {
            dst[d_off + r * d_rs + c] = if c < cols {
                src[s_off + r * s_rs + c * s_cs]
            } else {
                0.0
            };
        }
    }
}

/// `x` rounded to the nearest f16 value, ties to even (for values inside f16's range).
pub fn round_f16(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    (x / f16_ulp(x)).round_ties_even() * f16_ulp(x)
}

/// The spacing of f16 values around `x`: 2^(e - 10) in the binade 2^e, 2^-24 for subnormals.
pub fn f16_ulp(x: f64) -> f64 {
    (x.abs().log2().floor().max(-14.0) - 10.0).exp2()
}

/// `x [nz, rows, cols]` (or its transpose `[nz, cols, rows]`) rounded to f16: the values
/// `pack_f16_forward` packs, in its output order.
pub fn pack_f16(x: &[f64], nz: usize, rows: usize, cols: usize, transposed: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for q in 0..nz {
        let blk = &x[q * rows * cols..(q + 1) * rows * cols];
        let blk = if transposed {
            transpose(blk, rows, cols)
        } else {
            blk.to_vec()
        };
        out.extend(blk.into_iter().map(round_f16));
    }
    out
}
