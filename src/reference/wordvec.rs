//! Reference of `wordvec.wgsl`: the skip-gram negative-sampling loss, its coefficients and
//! gradients (and the whole objective's parameter gradients, for the finite-difference check),
//! and the CSLS retrieval score.

use super::embedding::embedding_backward;

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `(coef [N, slots], loss [N])` of the pairs `centers [N]` x `contexts [N, slots]` (slot 0
/// the true context, the others negatives) over `win`, `wout` `[V, D]`:
/// `coef = (sigmoid(s) - label) * scale`, `loss[n] = softplus(-s_0) + sum_{j>=1} softplus(s_j)`.
pub fn sgns_forward(
    win: &[f64],
    wout: &[f64],
    centers: &[u32],
    contexts: &[u32],
    dim: usize,
    scale: f64,
) -> (Vec<f64>, Vec<f64>) {
    let slots = contexts.len() / centers.len().max(1);
    let row = |t: &'_ [f64], id: u32| -> Vec<f64> {
        t[id as usize * dim..(id as usize + 1) * dim].to_vec()
    };
    let mut coef = vec![0.0; contexts.len()];
    let mut loss = vec![0.0; centers.len()];
    for (n, &c) in centers.iter().enumerate() {
        let v = row(win, c);
        for j in 0..slots {
            let s = dot(&v, &row(wout, contexts[n * slots + j]));
            let label = if j == 0 { 1.0 } else { 0.0 };
            coef[n * slots + j] = (1.0 / (1.0 + (-s).exp()) - label) * scale;
            loss[n] += if j == 0 { softplus(-s) } else { softplus(s) };
        }
    }
    (coef, loss)
}

/// `dcenter [N, D] = sum_j coef[n, j] wout[contexts[n, j]]`, `slots` context ids a pair.
pub fn sgns_center_grad(
    wout: &[f64],
    contexts: &[u32],
    coef: &[f64],
    slots: usize,
    dim: usize,
) -> Vec<f64> {
    let n = contexts.len() / slots;
    let mut out = vec![0.0; n * dim];
    for p in 0..n {
        for j in 0..slots {
            let (o, g) = (contexts[p * slots + j] as usize, coef[p * slots + j]);
            for d in 0..dim {
                out[p * dim + d] += g * wout[o * dim + d];
            }
        }
    }
    out
}

/// `dcontext [N*slots, D] = coef[n, j] win[centers[n]]`.
pub fn sgns_context_grad(win: &[f64], centers: &[u32], coef: &[f64], dim: usize) -> Vec<f64> {
    let slots = coef.len() / centers.len().max(1);
    let mut out = vec![0.0; coef.len() * dim];
    for (r, &g) in coef.iter().enumerate() {
        let c = centers[r / slots] as usize;
        for d in 0..dim {
            out[r * dim + d] = g * win[c * dim + d];
        }
    }
    out
}

/// The whole objective `scale * sum_n loss[n]` and its gradients `(dwin, dwout)` `[V, D]`
/// (the embedding scatter-adds of the two gradient kernels).
pub fn sgns_objective(
    win: &[f64],
    wout: &[f64],
    centers: &[u32],
    contexts: &[u32],
    vocab: usize,
    dim: usize,
    scale: f64,
) -> (f64, Vec<f64>, Vec<f64>) {
    let slots = contexts.len() / centers.len().max(1);
    let (coef, loss) = sgns_forward(win, wout, centers, contexts, dim, scale);
    let dc = sgns_center_grad(wout, contexts, &coef, slots, dim);
    let dx = sgns_context_grad(win, centers, &coef, dim);
    (
        scale * loss.iter().sum::<f64>(),
        embedding_backward(centers, &dc, vocab, dim, None),
        embedding_backward(contexts, &dx, vocab, dim, None),
    )
}

/// `out [M, C] = 2 sim[i, j] - rs[i] - rt[j]` (Conneau et al. 2018's CSLS); with
/// `keep < 1` an entry survives when `csls_keep(seed, row0 + i, j) < keep`, else -3e38.
pub fn csls_scores(
    sim: &[f64],
    rs: &[f64],
    rt: &[f64],
    (seed, keep, row0): (u32, f32, usize),
) -> Vec<f64> {
    let c = rt.len();
    sim.iter()
        .enumerate()
        .map(|(i, &s)| {
            let (row, col) = (i / c, i % c);
            if keep < 1.0 && csls_keep(seed, (row0 + row) as u32, col as u32) >= keep {
                -3.0e38
            } else {
                2.0 * s - rs[row] - rt[col]
            }
        })
        .collect()
}

/// Wellons' lowbias32 integer hash, as `wordvec.wgsl`'s `mix`.
fn mix(x: u32) -> u32 {
    let mut h = x;
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846ca68b);
    h ^= h >> 16;
    h
}

/// The uniform in [0, 1) that decides entry (row, col) of the stochastic CSLS mask.
pub fn csls_keep(seed: u32, row: u32, col: u32) -> f32 {
    (mix(seed ^ mix(row.wrapping_mul(0x9e37_79b9).wrapping_add(col))) >> 8) as f32
        * (1.0 / 16_777_216.0)
}

/// `r [M]`: the mean of each row of `vals [M, k]`.
pub fn row_mean(vals: &[f64], k: usize) -> Vec<f64> {
    vals.chunks(k)
        .map(|r| r.iter().sum::<f64>() / k as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of an f64 objective at step 1e-6: truncation ~1e-12 relative,
    /// rounding ~1e-10; 1e-6 is far above both and far below a wrong term.
    const FD_TOL: f64 = 1e-6;

    #[test]
    fn sgns_gradient_matches_finite_differences() {
        // V = 5, D = 3, N = 4 pairs with K = 2 negatives; ids repeat (a word is its own
        // negative in one pair) so the scatter-add of repeated rows is exercised.
        let (v, d) = (5, 3);
        let mut s = 7u64;
        let mut r = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let win: Vec<f64> = (0..v * d).map(|_| r()).collect();
        let wout: Vec<f64> = (0..v * d).map(|_| r()).collect();
        let centers = [0u32, 3, 3, 4];
        let contexts = [1u32, 2, 0, 4, 4, 1, 0, 3, 3, 2, 2, 2];
        let scale = 0.25;
        let (_, dwin, dwout) = sgns_objective(&win, &wout, &centers, &contexts, v, d, scale);
        let f = |wi: &[f64], wo: &[f64]| sgns_objective(wi, wo, &centers, &contexts, v, d, scale).0;
        let h = 1e-6;
        for (which, grad) in [(0, &dwin), (1, &dwout)] {
            for k in 0..v * d {
                let (mut a, mut b) = (win.clone(), wout.clone());
                let (mut a2, mut b2) = (win.clone(), wout.clone());
                if which == 0 {
                    a[k] += h;
                    a2[k] -= h;
                } else {
                    b[k] += h;
                    b2[k] -= h;
                }
                let fd = (f(&a, &b) - f(&a2, &b2)) / (2.0 * h);
                let err = (fd - grad[k]).abs() / fd.abs().max(1e-3);
                assert!(
                    err < FD_TOL,
                    "table {which} element {k}: analytic {} against finite differences {fd}",
                    grad[k]
                );
            }
        }
    }

    #[test]
    fn csls_and_row_mean_by_hand() {
        assert_eq!(row_mean(&[1.0, 3.0, 2.0, 4.0], 2), vec![2.0, 3.0]);
        let s = csls_scores(&[0.5, 0.1, 0.2, 0.9], &[0.1, 0.2], &[0.3, 0.4], (0, 1.0, 0));
        let want = [
            1.0 - 0.1 - 0.3,
            0.2 - 0.1 - 0.4,
            0.4 - 0.2 - 0.3,
            1.8 - 0.2 - 0.4,
        ];
        for (g, w) in s.iter().zip(want) {
            assert!((g - w).abs() < 1e-12);
        }
    }
}
