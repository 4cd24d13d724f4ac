//! Finite-difference checks (f64 central differences) of the backward of every op in the
//! vocabulary's CPU twin (`wgrnn::reference::ops`, `reference::loss::log_softmax_backward`).
//! Needs no GPU.

#[path = "common/mod.rs"]
mod common;

use common::{f64s, uniform};
use wgrnn::reference::loss::{log_softmax_backward, log_softmax_forward};
use wgrnn::reference::ops::{self as r, Pool};

/// Central differences with EPS = 1e-6 in f64 are exact to about 1e-9 relative (truncation
/// ~EPS^2, rounding ~1e-16/EPS); 1e-6 catches any wrong term while never flagging rounding.
const EPS: f64 = 1e-6;
const FD_TOL: f64 = 1e-6;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks `analytic` = d<f(x), w>/dx by central differences of `f` around `x`.
fn check(name: &str, x: &[f64], w: &[f64], analytic: &[f64], f: impl Fn(&[f64]) -> Vec<f64>) {
    assert_eq!(analytic.len(), x.len(), "{name}: gradient length");
    let (mut num, mut den, mut worst) = (0.0, 0.0, (0usize, 0.0f64, 0.0f64));
    for i in 0..x.len() {
        let mut xp = x.to_vec();
        xp[i] += EPS;
        let mut xm = x.to_vec();
        xm[i] -= EPS;
        let n = (dot(&f(&xp), w) - dot(&f(&xm), w)) / (2.0 * EPS);
        let a = analytic[i];
        num += (n - a) * (n - a);
        den += n * n;
        if (n - a).abs() > (worst.1 - worst.2).abs() {
            worst = (i, a, n);
        }
    }
    let rel = (num / den.max(1e-300)).sqrt();
    assert!(
        rel <= FD_TOL || num.sqrt() <= 1e-9,
        "{name}: relative error {rel:.3e}; worst [{}]: analytic {:.9e} numeric {:.9e}",
        worst.0,
        worst.1,
        worst.2
    );
}

fn data(seed: u64, n: usize) -> Vec<f64> {
    f64s(&uniform(seed, n, -2.0, 2.0))
}

#[test]
fn activations() {
    // 7 x 5: neither a multiple of 4 nor of a workgroup.
    let x = data(1, 35);
    let w = data(2, 35);
    let y = r::tanh(&x);
    check("tanh", &x, &w, &r::tanh_backward(&w, &y), r::tanh);
    let y = r::sigmoid(&x);
    check("sigmoid", &x, &w, &r::sigmoid_backward(&w, &y), |v| {
        r::sigmoid(v)
    });
    // relu away from its kink (no perturbation crosses 0)
    let xr: Vec<f64> = x
        .iter()
        .map(|v| if v.abs() < 1e-3 { 0.5 } else { *v })
        .collect();
    let y = r::relu(&xr);
    check("relu", &xr, &w, &r::relu_backward(&w, &y), r::relu);
}

#[test]
fn binary_ops() {
    let (a, b, w) = (data(3, 26), data(4, 26), data(5, 26));
    let mul = |x: &[f64], y: &[f64]| r::zip(x, y, |p, q| p * q);
    check("mul a", &a, &w, &mul(&w, &b), |v| mul(v, &b));
    check("mul b", &b, &w, &mul(&w, &a), |v| mul(&a, v));
    let y = r::tanh_add(&a, &b);
    let dz = r::tanh_backward(&w, &y);
    check("tanh_add a", &a, &w, &dz, |v| r::tanh_add(v, &b));
    check("tanh_add b", &b, &w, &dz, |v| r::tanh_add(&a, v));
    // bias [13] over 2 rows
    let bias = data(6, 13);
    check("add_bias", &bias, &w, &r::bias_backward(&w, 13), |v| {
        r::add_bias(&a, v)
    });
}

#[test]
fn concat_and_split() {
    let (a, b) = (data(7, 3 * 2), data(8, 3 * 5));
    let w = data(9, 3 * 7);
    // The gradient of each part is its columns of the concatenation's gradient.
    check("concat a", &a, &w, &r::columns(&w, 7, 0, 2), |v| {
        r::concat(&[v, &b], &[2, 5])
    });
    check("concat b", &b, &w, &r::columns(&w, 7, 2, 5), |v| {
        r::concat(&[&a, v], &[2, 5])
    });
}

#[test]
fn batched_matmul_every_transposition() {
    let (n, m, k, p) = (2, 3, 5, 4);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = data(10, n * m * k);
        let b = data(11, n * k * p);
        let w = data(12, n * m * p);
        let (da, db) = r::bmm_backward(&a, &b, &w, n, m, k, p, ta, tb);
        let tag = format!("bmm ta={ta} tb={tb}");
        check(&format!("{tag} a"), &a, &w, &da, |v| {
            r::bmm(v, &b, n, m, k, p, ta, tb)
        });
        check(&format!("{tag} b"), &b, &w, &db, |v| {
            r::bmm(&a, v, n, m, k, p, ta, tb)
        });
    }
}

#[test]
fn masked_softmax_and_log_softmax() {
    // scores [N=3, M=2, S=7], source lengths [7, 1, 4]: rows_per_len = M.
    let (rows, cols) = (6, 7);
    let lens = [7usize, 1, 4];
    let x = data(13, rows * cols);
    let w = data(14, rows * cols);
    let f = |v: &[f64]| r::masked_softmax_forward(v, cols, Some(&lens), 2);
    let y = f(&x);
    let dx = r::masked_softmax_backward(&y, &w, cols, Some(&lens), 2);
    check("masked softmax", &x, &w, &dx, f);
    // Past the length: probability exactly 0 and no gradient.
    for row in 0..rows {
        for c in lens[row / 2]..cols {
            assert_eq!(y[row * cols + c], 0.0);
            assert_eq!(dx[row * cols + c], 0.0);
        }
    }
    let f = |v: &[f64]| r::masked_softmax_forward(v, cols, None, 1);
    let y = f(&x);
    check(
        "softmax",
        &x,
        &w,
        &r::masked_softmax_backward(&y, &w, cols, None, 1),
        f,
    );
    let lp = log_softmax_forward(&x, cols);
    check(
        "log_softmax",
        &x,
        &w,
        &log_softmax_backward(&lp, &w, cols),
        |v| log_softmax_forward(v, cols),
    );
}

#[test]
fn pooling_over_time() {
    // [T=5, B=3, C=4] with lengths 5 (full), 1 and 3.
    let (t, b, c) = (5, 3, 4);
    let lens = [5usize, 1, 3];
    let x = data(15, t * b * c);
    let w = data(16, b * c);
    check(
        "pool mean",
        &x,
        &w,
        &r::pool_backward(Pool::Mean, &w, t, b, c, &lens),
        |v| r::pool_mean_forward(v, b, c, &lens),
    );
    let (_, arg) = r::pool_max_forward(&x, b, c, &lens);
    check(
        "pool max",
        &x,
        &w,
        &r::pool_backward(Pool::Max(&arg), &w, t, b, c, &lens),
        |v| r::pool_max_forward(v, b, c, &lens).0,
    );
    // bidirectional [.., 2H] with H = 2
    check(
        "last step",
        &x,
        &w,
        &r::pool_backward(Pool::Last(2), &w, t, b, c, &lens),
        |v| r::pool_last_forward(v, b, c, &lens, 2),
    );
}

#[test]
fn gather_rows() {
    let (n, c) = (5, 3);
    let idx = [4usize, 0, 4, 2, 4, 1, 0];
    let x = data(17, n * c);
    let w = data(18, idx.len() * c);
    check(
        "gather",
        &x,
        &w,
        &r::gather_rows_backward(&idx, &w, n, c),
        |v| r::gather_rows_forward(v, c, &idx),
    );
}

#[test]
fn decoding_twins() {
    let row = [1.0, 3.0, 3.0, -1.0, 2.0];
    assert_eq!(r::argmax(&row, 5), vec![1]);
    let top: Vec<usize> = r::topk_row(&row, 4).iter().map(|p| p.1).collect();
    assert_eq!(top, vec![1, 2, 4, 0]);
    // Inverse CDF: u just above 0 gives the first candidate, u near 1 the last.
    assert_eq!(r::sample_row(&row, 1.0, 0, 0.0), 0);
    assert_eq!(r::sample_row(&row, 1.0, 0, 0.999_999), 4);
    assert_eq!(r::sample_row(&row, 1.0, 2, 0.999_999), 2);
    // Empirical frequencies follow the softmax (binomial, 4 standard deviations).
    let n = 20000u32;
    let mut counts = [0usize; 5];
    for s in 0..n {
        counts[r::sample_row(&row, 1.0, 0, r::uniform01(7, s, 3))] += 1;
    }
    let z: f64 = row.iter().map(|v| f64::exp(*v)).sum();
    for (i, &cnt) in counts.iter().enumerate() {
        let p = row[i].exp() / z;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (cnt as f64 - n as f64 * p).abs() < 4.0 * sd,
            "index {i}: {cnt} draws, expected {}",
            n as f64 * p
        );
    }
}

#[test]
fn attention_every_score() {
    use wgrnn::nn::Score;
    use wgrnn::reference::attention::AttentionRef;
    // B = 3, S = 4 (lengths 4, 1, 2), T = 3, D = 5, H = 3, rank 2.
    let (b, s, t, d, h) = (3, 4, 3, 5, 3);
    let lens = [4, 1, 2];
    for (k, score) in [
        Score::Dot,
        Score::Multiplicative,
        Score::LowRank(2),
        Score::Additive(2),
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 40 + 10 * k as u64;
        let w = match score {
            Score::Dot | Score::Multiplicative => h,
            Score::LowRank(r) | Score::Additive(r) => r,
        };
        let base = AttentionRef {
            score,
            enc: d,
            hidden: h,
            key: data(seed, h * d),
            value: data(seed + 1, h * d),
            query: (score != Score::Dot).then(|| data(seed + 2, w * h)),
            key_proj: matches!(score, Score::LowRank(_) | Score::Additive(_))
                .then(|| data(seed + 3, w * h)),
            energy: matches!(score, Score::Additive(_)).then(|| data(seed + 4, w)),
        };
        let enc = data(seed + 5, b * s * d);
        let st = data(seed + 6, b * t * h);
        let dc = data(seed + 7, b * t * h);
        let g = base.backward(&enc, &lens, &st, t, &dc);
        let name = |n: &str| format!("attention {score} {n}");
        check(&name("denc"), &enc, &dc, &g.denc, |x| {
            base.forward(x, &lens, &st, t).0
        });
        check(&name("dstates"), &st, &dc, &g.dstates, |x| {
            base.forward(&enc, &lens, x, t).0
        });
        type Field = fn(&mut AttentionRef) -> &mut Vec<f64>;
        let mut fields: Vec<(&str, Field, &Vec<f64>)> = vec![
            ("dkey", |a| &mut a.key, &g.dkey),
            ("dvalue", |a| &mut a.value, &g.dvalue),
        ];
        if base.query.is_some() {
            fields.push(("dquery", |a| a.query.as_mut().unwrap(), &g.dquery));
        }
        if base.key_proj.is_some() {
            fields.push(("dkey_proj", |a| a.key_proj.as_mut().unwrap(), &g.dkey_proj));
        }
        if base.energy.is_some() {
            fields.push(("denergy", |a| a.energy.as_mut().unwrap(), &g.denergy));
        }
        for (n, field, analytic) in fields {
            let x0 = field(&mut base.clone()).clone();
            check(&name(n), &x0, &dc, analytic, |x| {
                let mut a = base.clone();
                *field(&mut a) = x.to_vec();
                a.forward(&enc, &lens, &st, t).0
            });
        }
    }
}
