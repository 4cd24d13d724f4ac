//! CPU twins of the ops vocabulary (`crate::ops`; elementwise.wgsl, softmax.wgsl, pool.wgsl,
//! decode.wgsl, the bmm on matmul.wgsl), in f64 on contiguous row-major data. Names follow the
//! kernels; backward functions return fresh gradients (the GPU ones accumulate).

use super::dropout::mix32;

/// The elementwise maps of `unary_forward` (by name).
pub fn tanh(x: &[f64]) -> Vec<f64> {
    x.iter().map(|v| v.tanh()).collect()
}

/// `1 / (1 + exp(-x))`.
pub fn sigmoid(x: &[f64]) -> Vec<f64> {
    x.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect()
}

/// `max(x, 0)`.
pub fn relu(x: &[f64]) -> Vec<f64> {
    x.iter().map(|v| v.max(0.0)).collect()
}

/// `f(a, b)` elementwise.
pub fn zip(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
}

/// `tanh(a + b)`.
pub fn tanh_add(a: &[f64], b: &[f64]) -> Vec<f64> {
    zip(a, b, |x, y| (x + y).tanh())
}

/// `dy * (1 - y^2)` from tanh's output.
pub fn tanh_backward(dy: &[f64], y: &[f64]) -> Vec<f64> {
    zip(dy, y, |g, v| g * (1.0 - v * v))
}

/// `dy * y * (1 - y)` from the sigmoid's output.
pub fn sigmoid_backward(dy: &[f64], y: &[f64]) -> Vec<f64> {
    zip(dy, y, |g, v| g * v * (1.0 - v))
}

/// `dy * [y > 0]` from relu's output.
pub fn relu_backward(dy: &[f64], y: &[f64]) -> Vec<f64> {
    zip(dy, y, |g, v| if v > 0.0 { g } else { 0.0 })
}

/// `x [rows, cols] + bias [cols]`.
pub fn add_bias(x: &[f64], bias: &[f64]) -> Vec<f64> {
    let c = bias.len();
    x.iter().enumerate().map(|(i, v)| v + bias[i % c]).collect()
}

/// Column sums of `dy [rows, cols]` (the bias gradient).
pub fn bias_backward(dy: &[f64], cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; cols];
    for (i, v) in dy.iter().enumerate() {
        out[i % cols] += v;
    }
    out
}

/// Concatenation along the last axis of parts `[rows, widths[i]]`.
pub fn concat(parts: &[&[f64]], widths: &[usize]) -> Vec<f64> {
    let rows = parts[0].len() / widths[0].max(1);
    let mut out = Vec::new();
    for r in 0..rows {
        for (p, &w) in parts.iter().zip(widths) {
            out.extend_from_slice(&p[r * w..(r + 1) * w]);
        }
    }
    out
}

/// Columns `c0..c0 + w` of `x [rows, cols]`.
pub fn columns(x: &[f64], cols: usize, c0: usize, w: usize) -> Vec<f64> {
    x.chunks(cols)
        .flat_map(|r| r[c0..c0 + w].to_vec())
        .collect()
}

/// Element (r, c) of a stored `[rows, cols]` matrix read transposed when `t`.
fn at(x: &[f64], rows: usize, cols: usize, t: bool, r: usize, c: usize) -> f64 {
    if t {
        debug_assert!(c < rows && r < cols);
        x[c * cols + r]
    } else {
        x[r * cols + c]
    }
}

/// `c [n, m, p] = op(a) op(b)`: `a` stored `[n, m, k]` (`[n, k, m]` when `ta`), `b` stored
/// `[n, k, p]` (`[n, p, k]` when `tb`).
#[allow(clippy::too_many_arguments)]
pub fn bmm(
    a: &[f64],
    b: &[f64],
    n: usize,
    m: usize,
    k: usize,
    p: usize,
    ta: bool,
    tb: bool,
) -> Vec<f64> {
    let (ar, ac) = if ta { (k, m) } else { (m, k) };
    let (br, bc) = if tb { (p, k) } else { (k, p) };
    let mut c = vec![0.0; n * m * p];
    for z in 0..n {
        let az = &a[z * m * k..(z + 1) * m * k];
        let bz = &b[z * k * p..(z + 1) * k * p];
        for i in 0..m {
            for j in 0..p {
                c[(z * m + i) * p + j] = (0..k)
                    .map(|q| at(az, ar, ac, ta, i, q) * at(bz, br, bc, tb, q, j))
                    .sum();
            }
        }
    }
    c
}

/// The backward of [`bmm`] from `dc [n, m, p]`: `(da, db)` in the stored layouts of a and b.
#[allow(clippy::too_many_arguments)]
pub fn bmm_backward(
    a: &[f64],
    b: &[f64],
    dc: &[f64],
    n: usize,
    m: usize,
    k: usize,
    p: usize,
    ta: bool,
    tb: bool,
) -> (Vec<f64>, Vec<f64>) {
    let (ar, ac) = if ta { (k, m) } else { (m, k) };
    let (br, bc) = if tb { (p, k) } else { (k, p) };
    let mut da = vec![0.0; a.len()];
    let mut db = vec![0.0; b.len()];
    for z in 0..n {
        let az = &a[z * m * k..(z + 1) * m * k];
        let bz = &b[z * k * p..(z + 1) * k * p];
        for i in 0..m {
            for j in 0..p {
                let g = dc[(z * m + i) * p + j];
                for q in 0..k {
                    // c[i, j] += opa[i, q] opb[q, j]
                    let ia = if ta { q * ac + i } else { i * ac + q };
                    let ib = if tb { j * bc + q } else { q * bc + j };
                    da[z * m * k + ia] += g * at(bz, br, bc, tb, q, j);
                    db[z * k * p + ib] += g * at(az, ar, ac, ta, i, q);
                }
            }
        }
    }
    (da, db)
}

/// Valid columns of row r: `lens[r / rows_per_len]` clamped to `cols`, or `cols`.
fn row_len(lens: Option<&[usize]>, rows_per_len: usize, r: usize, cols: usize) -> usize {
    lens.map_or(cols, |l| l[r / rows_per_len].min(cols))
}

/// `masked_softmax_forward` on `x [rows, cols]`: softmax over each row's first `len` columns,
/// exactly 0 after them.
pub fn masked_softmax_forward(
    x: &[f64],
    cols: usize,
    lens: Option<&[usize]>,
    rows_per_len: usize,
) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for (r, (xr, yr)) in x.chunks(cols).zip(y.chunks_mut(cols)).enumerate() {
        let len = row_len(lens, rows_per_len, r, cols);
        if len == 0 {
            continue;
        }
        let m = xr[..len].iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = xr[..len].iter().map(|v| (v - m).exp()).sum();
        for c in 0..len {
            yr[c] = (xr[c] - m).exp() / s;
        }
    }
    y
}

/// `masked_softmax_backward`: `dx = y * (dy - sum(dy * y))` over valid columns, 0 after.
pub fn masked_softmax_backward(
    y: &[f64],
    dy: &[f64],
    cols: usize,
    lens: Option<&[usize]>,
    rows_per_len: usize,
) -> Vec<f64> {
    let mut dx = vec![0.0; y.len()];
    for r in 0..y.len() / cols {
        let len = row_len(lens, rows_per_len, r, cols);
        let b = r * cols;
        let dot: f64 = (0..len).map(|c| dy[b + c] * y[b + c]).sum();
        for c in 0..len {
            dx[b + c] = y[b + c] * (dy[b + c] - dot);
        }
    }
    dx
}

/// Index of element (t, b, c) of a contiguous `[T, B, C]`.
fn tbc(t: usize, b: usize, c: usize, batch: usize, cols: usize) -> usize {
    (t * batch + b) * cols + c
}

/// `pool_mean_forward`: `[B, C]` means of `x [T, B, C]` over `t < lens[b]`.
pub fn pool_mean_forward(x: &[f64], batch: usize, cols: usize, lens: &[usize]) -> Vec<f64> {
    let mut out = vec![0.0; batch * cols];
    for b in 0..batch {
        for c in 0..cols {
            let s: f64 = (0..lens[b]).map(|t| x[tbc(t, b, c, batch, cols)]).sum();
            out[b * cols + c] = s / lens[b] as f64;
        }
    }
    out
}

/// `pool_max_forward`: `([B, C] maxima, [B, C] first arg-max step)`.
pub fn pool_max_forward(
    x: &[f64],
    batch: usize,
    cols: usize,
    lens: &[usize],
) -> (Vec<f64>, Vec<usize>) {
    let mut out = vec![0.0; batch * cols];
    let mut arg = vec![0; batch * cols];
    for b in 0..batch {
        for c in 0..cols {
            let (mut m, mut at) = (x[tbc(0, b, c, batch, cols)], 0);
            for t in 1..lens[b] {
                let v = x[tbc(t, b, c, batch, cols)];
                if v > m {
                    (m, at) = (v, t);
                }
            }
            out[b * cols + c] = m;
            arg[b * cols + c] = at;
        }
    }
    (out, arg)
}

/// The step `pool_last_forward` reads for (b, c).
pub fn last_step_of(c: usize, split: usize, len: usize) -> usize {
    if c < split { len - 1 } else { 0 }
}

/// `pool_last_forward`: `x[last_step_of(c), b, c]`.
pub fn pool_last_forward(
    x: &[f64],
    batch: usize,
    cols: usize,
    lens: &[usize],
    split: usize,
) -> Vec<f64> {
    let mut out = vec![0.0; batch * cols];
    for b in 0..batch {
        for c in 0..cols {
            out[b * cols + c] = x[tbc(last_step_of(c, split, lens[b]), b, c, batch, cols)];
        }
    }
    out
}

/// Which pooling [`pool_backward`] undoes (the reference's mirror of `ops::PoolKind`).
#[derive(Clone, Copy, Debug)]
pub enum Pool<'a> {
    /// Mean over valid steps.
    Mean,
    /// Max, with the forward's arg-max `[B, C]`.
    Max(&'a [usize]),
    /// Last valid step for columns below `split`, step 0 above.
    Last(usize),
}

/// `pool_backward`: `dx [T, B, C]` from `dy [B, C]`.
pub fn pool_backward(
    kind: Pool,
    dy: &[f64],
    seq: usize,
    batch: usize,
    cols: usize,
    lens: &[usize],
) -> Vec<f64> {
    let mut dx = vec![0.0; seq * batch * cols];
    for b in 0..batch {
        for c in 0..cols {
            let g = dy[b * cols + c];
            let len = lens[b];
            match kind {
                Pool::Mean => {
                    for t in 0..len {
                        dx[tbc(t, b, c, batch, cols)] = g / len as f64;
                    }
                }
                Pool::Max(arg) => dx[tbc(arg[b * cols + c], b, c, batch, cols)] = g,
                Pool::Last(split) => {
                    dx[tbc(last_step_of(c, split, len), b, c, batch, cols)] = g;
                }
            }
        }
    }
    dx
}

/// `gather_rows_forward`: rows `idx` of `x [N, C]`.
pub fn gather_rows_forward(x: &[f64], cols: usize, idx: &[usize]) -> Vec<f64> {
    idx.iter()
        .flat_map(|&i| x[i * cols..(i + 1) * cols].to_vec())
        .collect()
}

/// The gather's backward: `dx [N, C]` with each row of `dy [M, C]` added to row `idx[i]`, in
/// increasing i.
pub fn gather_rows_backward(idx: &[usize], dy: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut dx = vec![0.0; rows * cols];
    for (i, &r) in idx.iter().enumerate() {
        for c in 0..cols {
            dx[r * cols + c] += dy[i * cols + c];
        }
    }
    dx
}

/// (v, i) comes before (w, j): larger value first, lower index on a tie.
fn before(v: f64, i: usize, w: f64, j: usize) -> bool {
    v > w || (v == w && i < j)
}

/// `topk_forward` of one row: the k best (value, index) pairs in order.
pub fn topk_row(row: &[f64], k: usize) -> Vec<(f64, usize)> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| {
        if before(row[a], a, row[b], b) {
            std::cmp::Ordering::Less
        } else {
            std::cmp::Ordering::Greater
        }
    });
    idx[..k].iter().map(|&i| (row[i], i)).collect()
}

/// `argmax_forward`: the first index of each row's maximum of `x [rows, cols]`.
pub fn argmax(x: &[f64], cols: usize) -> Vec<usize> {
    x.chunks(cols).map(|r| topk_row(r, 1)[0].1).collect()
}

/// The uniform draw in [0, 1) of `sample_forward` for (seed, step, row): 24 bits of a mix32
/// chain, as the kernel computes it.
pub fn uniform01(seed: u32, step: u32, row: u32) -> f64 {
    let mut h = mix32(seed ^ 0x9e37_79b9);
    h = mix32(h ^ step);
    h = mix32(h ^ row);
    (h >> 8) as f64 / (1u64 << 24) as f64
}

/// `sample_forward` of one row: the index where the cumulative softmax(row / temperature)
/// (over the `top_k` best when `top_k > 0`, in index order) first exceeds `u * total`.
pub fn sample_row(row: &[f64], temperature: f64, top_k: usize, u: f64) -> usize {
    let best = topk_row(row, top_k.max(1));
    let (m, (tv, ti)) = (best[0].0, *best.last().unwrap_or(&best[0]));
    let ok = |c: usize| top_k == 0 || !before(tv, ti, row[c], c);
    let w: Vec<f64> = (0..row.len())
        .map(|c| {
            if ok(c) {
                ((row[c] - m) / temperature).exp()
            } else {
                0.0
            }
        })
        .collect();
    let target = u * w.iter().sum::<f64>();
    let mut acc = 0.0;
    for (c, &wc) in w.iter().enumerate() {
        if wc == 0.0 && !ok(c) {
            continue;
        }
        acc += wc;
        if acc > target {
            return c;
        }
    }
    best[0].1
}
