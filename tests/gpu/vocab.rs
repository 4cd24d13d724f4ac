//! The ops vocabulary (`wgrnn::ops`) against its CPU twins (`wgrnn::reference::ops`) on awkward
//! shapes (1, primes, sizes past a workgroup, ragged lengths with 1 and full length), reading
//! from and accumulating into views; determinism; and the errors bad input gets.

use crate::common::{assert_close, f64s, gpu, uniform};
use wgrnn::ops::{self, PoolKind, Sampling, View};
use wgrnn::reference::loss::{log_softmax_backward, log_softmax_forward};
use wgrnn::reference::ops::{self as r, Pool};
use wgrnn::{Context, Error, Recorder, Tensor};

/// f32 arithmetic against f64 on O(1) values with short sums (at most a few hundred terms):
/// a few 1e-7 relative; 1e-5 leaves room without hiding a wrong term.
const TOL: f64 = 1e-5;

fn up(ctx: &Context, name: &str, shape: &[usize], seed: u64) -> (Tensor, Vec<f64>) {
    let n = shape.iter().product();
    let v = uniform(seed, n, -2.0, 2.0);
    (Tensor::from_f32(ctx, name, shape, &v).unwrap(), f64s(&v))
}

/// A `[rows, cols]` window at row 1, column 3 of a bigger `[rows + 2, cols + 5]` tensor, and
/// the window's values.
fn window(ctx: &Context, name: &str, rows: usize, cols: usize, seed: u64) -> (View, Vec<f64>) {
    let (t, all) = up(ctx, name, &[rows + 2, cols + 5], seed);
    let v = t
        .as_view()
        .narrow(1, rows)
        .unwrap()
        .cols_range(3, cols)
        .unwrap();
    (
        v,
        r::columns(&all[(cols + 5)..(rows + 1) * (cols + 5)], cols + 5, 3, cols),
    )
}

fn read(ctx: &Context, t: &Tensor) -> Vec<f32> {
    t.to_vec(ctx).unwrap()
}

/// The window's values read back from its tensor.
fn read_view(ctx: &Context, v: &View) -> Vec<f32> {
    let all = v.tensor().to_vec(ctx).unwrap();
    (0..v.rows())
        .flat_map(|i| {
            let s = v.offset() + i * v.stride();
            all[s..s + v.cols()].to_vec()
        })
        .collect()
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    r::zip(a, b, |x, y| x + y)
}

#[test]
fn elementwise_on_views() {
    let Some(ctx) = gpu() else { return };
    for (rows, cols, seed) in [(1, 1, 1), (7, 13, 2), (3, 257, 3)] {
        let (a, av) = window(ctx, "a", rows, cols, seed);
        let (b, bv) = up(ctx, "b", &[rows, cols], seed + 1);
        let (bias, biasv) = up(ctx, "bias", &[cols], seed + 2);
        let mut rec = Recorder::new(ctx);
        let outs = [
            ops::record_add(&mut rec, &a, &b).unwrap(),
            ops::record_sub(&mut rec, &a, &b).unwrap(),
            ops::record_mul(&mut rec, &a, &b).unwrap(),
            ops::record_tanh_add(&mut rec, &a, &b).unwrap(),
            ops::record_scale(&mut rec, &a, -0.5).unwrap(),
            ops::record_tanh(&mut rec, &a).unwrap(),
            ops::record_sigmoid(&mut rec, &a).unwrap(),
            ops::record_relu(&mut rec, &a).unwrap(),
            ops::record_copy(&mut rec, &a).unwrap(),
            ops::record_add_bias(&mut rec, &a, &bias).unwrap(),
        ];
        rec.submit().unwrap();
        let want = [
            add(&av, &bv),
            r::zip(&av, &bv, |x, y| x - y),
            r::zip(&av, &bv, |x, y| x * y),
            r::tanh_add(&av, &bv),
            av.iter().map(|v| -0.5 * v).collect(),
            r::tanh(&av),
            r::sigmoid(&av),
            r::relu(&av),
            av.clone(),
            r::add_bias(&av, &biasv),
        ];
        for (i, (o, w)) in outs.iter().zip(&want).enumerate() {
            assert_eq!(o.shape(), &[rows, cols]);
            assert_close(
                &format!("op {i} [{rows}, {cols}]"),
                seed,
                &read(ctx, o),
                w,
                TOL,
            );
        }
    }
}

#[test]
fn elementwise_backward_accumulates_into_views() {
    let Some(ctx) = gpu() else { return };
    let (rows, cols, seed) = (7, 13, 10);
    let (dy, dyv) = up(ctx, "dy", &[rows, cols], seed);
    let (x, xv) = up(ctx, "x", &[rows, cols], seed + 1);
    let (other, ov) = up(ctx, "other", &[rows, cols], seed + 2);
    let mut rec = Recorder::new(ctx);
    let yt = ops::record_tanh(&mut rec, &x).unwrap();
    let ys = ops::record_sigmoid(&mut rec, &x).unwrap();
    let yr = ops::record_relu(&mut rec, &x).unwrap();
    rec.submit().unwrap();
    type Backward<'a> = Box<dyn Fn(&mut Recorder, &View) + 'a>;
    let cases: Vec<(&str, Backward, Vec<f64>)> = vec![
        (
            "tanh",
            Box::new(|rec: &mut Recorder, g: &View| {
                ops::record_tanh_backward(rec, &dy, &yt, g).unwrap()
            }),
            r::tanh_backward(&dyv, &r::tanh(&xv)),
        ),
        (
            "sigmoid",
            Box::new(|rec: &mut Recorder, g: &View| {
                ops::record_sigmoid_backward(rec, &dy, &ys, g).unwrap()
            }),
            r::sigmoid_backward(&dyv, &r::sigmoid(&xv)),
        ),
        (
            "relu",
            Box::new(|rec: &mut Recorder, g: &View| {
                ops::record_relu_backward(rec, &dy, &yr, g).unwrap()
            }),
            r::relu_backward(&dyv, &r::relu(&xv)),
        ),
        (
            "mul a",
            Box::new(|rec: &mut Recorder, g: &View| {
                ops::record_mul_backward(rec, &dy, &x, &other, Some(g), None).unwrap()
            }),
            r::zip(&dyv, &ov, |p, q| p * q),
        ),
        (
            "accumulate -2",
            Box::new(|rec: &mut Recorder, g: &View| {
                ops::record_accumulate(rec, g, &dy, -2.0).unwrap()
            }),
            dyv.iter().map(|v| -2.0 * v).collect(),
        ),
    ];
    for (name, f, grad) in cases {
        // The gradient lives in a window of a bigger tensor that already holds values.
        let (g, gv) = window(ctx, "grad", rows, cols, seed + 3);
        let mut rec = Recorder::new(ctx);
        f(&mut rec, &g);
        rec.submit().unwrap();
        assert_close(name, seed, &read_view(ctx, &g), &add(&gv, &grad), TOL);
        // Outside the window nothing changed.
        let all = read(ctx, g.tensor());
        assert_eq!(
            all[0],
            uniform(seed + 3, 1, -2.0, 2.0)[0],
            "{name}: row 0 touched"
        );
    }
    // Bias gradient: column sums accumulated.
    let (db, dbv) = up(ctx, "dbias", &[cols], seed + 4);
    let mut rec = Recorder::new(ctx);
    ops::record_bias_backward(&mut rec, &dy, &db).unwrap();
    rec.submit().unwrap();
    assert_close(
        "bias",
        seed,
        &read(ctx, &db),
        &add(&dbv, &r::bias_backward(&dyv, cols)),
        TOL,
    );
}

#[test]
fn concat_split_and_split_backward() {
    let Some(ctx) = gpu() else { return };
    let rows = 5;
    let (a, av) = up(ctx, "a", &[rows, 1], 20);
    let (b, bv) = window(ctx, "b", rows, 13, 21);
    let (c, cv) = up(ctx, "c", &[rows, 4], 22);
    let mut rec = Recorder::new(ctx);
    let cat = ops::record_concat(&mut rec, &[&a, &b, &c]).unwrap();
    rec.submit().unwrap();
    assert_eq!(cat.shape(), &[rows, 18]);
    let want = r::concat(&[&av, &bv, &cv], &[1, 13, 4]);
    assert_eq!(f64s(&read(ctx, &cat)), want, "concat copies exactly");
    // Split gives views of the very columns, no copy; split's backward adds each part back.
    let parts = ops::split(&cat, &[1, 13, 4]).unwrap();
    assert!(parts.iter().all(|p| p.tensor().same_buffer(&cat)));
    assert_eq!(f64s(&read_view(ctx, &parts[1])), bv);
    let (dx, dxv) = up(ctx, "dx", &[rows, 18], 23);
    let mut rec = Recorder::new(ctx);
    ops::record_split_backward(&mut rec, &[&a, &b, &c], &dx).unwrap();
    rec.submit().unwrap();
    assert_close(
        "split backward",
        23,
        &read(ctx, &dx),
        &add(&dxv, &want),
        TOL,
    );
}

#[test]
fn batched_matmul_and_backward() {
    let Some(ctx) = gpu() else { return };
    for (n, m, k, p) in [(1, 1, 1, 1), (3, 5, 7, 2), (2, 13, 67, 5)] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let sa = if ta { [n, k, m] } else { [n, m, k] };
            let sb = if tb { [n, p, k] } else { [n, k, p] };
            let (a, av) = up(ctx, "a", &sa, 30);
            // b as a column range of a wider tensor: its rows are strided.
            let (bw, bwv) = up(ctx, "b wide", &[sb[0], sb[1], sb[2] + 3], 31);
            let b = bw.as_view().cols_range(1, sb[2]).unwrap();
            let bv = r::columns(&bwv, sb[2] + 3, 1, sb[2]);
            let (dc, dcv) = up(ctx, "dc", &[n, m, p], 32);
            let da = Tensor::zeros(ctx, "da", &sa).unwrap();
            let db = Tensor::zeros(ctx, "db", &sb).unwrap();
            let mut rec = Recorder::new(ctx);
            let c = ops::record_bmm(&mut rec, &a, &b, ta, tb).unwrap();
            ops::record_bmm_backward(
                &mut rec,
                &a,
                &b,
                ta,
                tb,
                &dc,
                Some(&da.as_view()),
                Some(&db.as_view()),
            )
            .unwrap();
            rec.submit().unwrap();
            let tag = format!("bmm {n}x{m}x{k}x{p} ta={ta} tb={tb}");
            let want = r::bmm(&av, &bv, n, m, k, p, ta, tb);
            assert_close(&tag, 30, &read(ctx, &c), &want, TOL);
            let (wa, wb) = r::bmm_backward(&av, &bv, &dcv, n, m, k, p, ta, tb);
            assert_close(&format!("{tag} da"), 30, &read(ctx, &da), &wa, TOL);
            assert_close(&format!("{tag} db"), 30, &read(ctx, &db), &wb, TOL);
        }
    }
}

#[test]
fn masked_softmax_and_backward() {
    let Some(ctx) = gpu() else { return };
    // scores [N = 3, M = 2, S]; S = 7 and 131 (two passes of the 64 lanes).
    for (cols, lens) in [(7usize, [7usize, 1, 4]), (131, [131, 1, 64])] {
        let rows = 6;
        let (x, xv) = window(ctx, "scores", rows, cols, 40);
        let lt = ops::lengths(ctx, "lengths", &lens, cols).unwrap();
        let (dy, dyv) = up(ctx, "dy", &[rows, cols], 41);
        let dx = Tensor::zeros(ctx, "dx", &[rows, cols]).unwrap();
        let mut rec = Recorder::new(ctx);
        let y = ops::record_masked_softmax(&mut rec, &x, Some(&lt), 2).unwrap();
        ops::record_masked_softmax_backward(&mut rec, &y, &dy, Some(&lt), 2, &dx).unwrap();
        rec.submit().unwrap();
        let want = r::masked_softmax_forward(&xv, cols, Some(&lens), 2);
        let got = read(ctx, &y);
        assert_close(&format!("softmax S={cols}"), 40, &got, &want, TOL);
        let gd = read(ctx, &dx);
        for row in 0..rows {
            for c in lens[row / 2]..cols {
                assert_eq!(got[row * cols + c], 0.0, "probability past the length");
                assert_eq!(gd[row * cols + c], 0.0, "gradient past the length");
            }
        }
        let wd = r::masked_softmax_backward(&want, &dyv, cols, Some(&lens), 2);
        assert_close(&format!("softmax backward S={cols}"), 41, &gd, &wd, TOL);
        // Without lengths every column counts (the kernel binds a read-only placeholder).
        let dx = Tensor::zeros(ctx, "dx", &[rows, cols]).unwrap();
        let mut rec = Recorder::new(ctx);
        let y = ops::record_masked_softmax(&mut rec, &x, None, 1).unwrap();
        ops::record_masked_softmax_backward(&mut rec, &y, &dy, None, 1, &dx).unwrap();
        rec.submit().unwrap();
        let want = r::masked_softmax_forward(&xv, cols, None, 1);
        assert_close(
            &format!("softmax S={cols}, all columns"),
            40,
            &read(ctx, &y),
            &want,
            TOL,
        );
        let wd = r::masked_softmax_backward(&want, &dyv, cols, None, 1);
        assert_close(
            &format!("softmax backward S={cols}, all columns"),
            41,
            &read(ctx, &dx),
            &wd,
            TOL,
        );
    }
    // log-softmax backward (rows 5, V = 67).
    let (x, xv) = up(ctx, "logits", &[5, 67], 42);
    let (dy, dyv) = up(ctx, "dy", &[5, 67], 43);
    let (dx, dxv) = up(ctx, "dx", &[5, 67], 44);
    let mut rec = Recorder::new(ctx);
    let lp = wgrnn::nn::record_log_softmax(&mut rec, &x).unwrap();
    ops::record_log_softmax_backward(&mut rec, &lp, &dy, &dx).unwrap();
    rec.submit().unwrap();
    let w = log_softmax_backward(&log_softmax_forward(&xv, 67), &dyv, 67);
    assert_close(
        "log_softmax backward",
        43,
        &read(ctx, &dx),
        &add(&dxv, &w),
        TOL,
    );
}

#[test]
fn pooling_over_time_and_backward() {
    let Some(ctx) = gpu() else { return };
    let (t, b) = (5, 3);
    let lens = [5usize, 1, 3];
    for c in [4usize, 257] {
        // x: the first C columns of a [T, B, 2C] output (one direction of a bidirectional stack).
        let (wide, wv) = up(ctx, "x", &[t, b, 2 * c], 50);
        let x = wide.as_view().cols_range(0, c).unwrap();
        let xv = r::columns(&wv, 2 * c, 0, c);
        let lt = ops::lengths(ctx, "lengths", &lens, t).unwrap();
        let (dy, dyv) = up(ctx, "dy", &[b, c], 51);
        let mut rec = Recorder::new(ctx);
        let mean = ops::record_pool_mean(&mut rec, &x, &lt).unwrap();
        let (max, arg) = ops::record_pool_max(&mut rec, &x, &lt).unwrap();
        let last = ops::record_last_step(&mut rec, &x, &lt, c / 2).unwrap();
        rec.submit().unwrap();
        let (wmax, warg) = r::pool_max_forward(&xv, b, c, &lens);
        assert_close(
            "mean",
            50,
            &read(ctx, &mean),
            &r::pool_mean_forward(&xv, b, c, &lens),
            TOL,
        );
        assert_eq!(f64s(&read(ctx, &max)), wmax, "max is exact");
        assert_eq!(
            arg.to_vec_u32(ctx).unwrap(),
            warg.iter().map(|&a| a as u32).collect::<Vec<_>>()
        );
        let wl = r::pool_last_forward(&xv, b, c, &lens, c / 2);
        assert_eq!(f64s(&read(ctx, &last)), wl, "last step is a copy");
        for (kind, rk) in [
            (PoolKind::Mean, Pool::Mean),
            (PoolKind::Max, Pool::Max(&warg)),
            (PoolKind::Last { split: c / 2 }, Pool::Last(c / 2)),
        ] {
            // The gradient goes into the same column window of a [T, B, 2C] gradient.
            let (g, gv) = up(ctx, "dx", &[t, b, 2 * c], 52);
            let gview = g.as_view().cols_range(0, c).unwrap();
            let mut rec = Recorder::new(ctx);
            ops::record_pool_backward(&mut rec, kind, &dy, &lt, Some(&arg), &gview).unwrap();
            rec.submit().unwrap();
            let want = add(
                &r::columns(&gv, 2 * c, 0, c),
                &r::pool_backward(rk, &dyv, t, b, c, &lens),
            );
            assert_close(
                &format!("{kind:?} backward C={c}"),
                52,
                &read_view(ctx, &gview),
                &want,
                TOL,
            );
            let after = read(ctx, &g);
            assert_eq!(
                f64s(
                    &after
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % (2 * c) >= c)
                        .map(|(_, v)| *v)
                        .collect::<Vec<_>>()
                ),
                gv.iter()
                    .enumerate()
                    .filter(|(i, _)| i % (2 * c) >= c)
                    .map(|(_, v)| *v)
                    .collect::<Vec<_>>(),
                "the other direction's columns are untouched"
            );
        }
    }
}

#[test]
fn gather_rows_and_deterministic_scatter() {
    let Some(ctx) = gpu() else { return };
    for (n, c, m) in [(1usize, 1usize, 1usize), (5, 3, 7), (37, 13, 300)] {
        let (x, xv) = window(ctx, "x", n, c, 60);
        let idx: Vec<u32> = uniform(61, m, 0.0, n as f64)
            .iter()
            .map(|v| *v as u32 % n as u32)
            .collect();
        let it = ops::indices(ctx, "idx", &idx, n).unwrap();
        let (dy, dyv) = up(ctx, "dy", &[m, c], 62);
        let (dx, dxv) = up(ctx, "dx", &[n, c], 63);
        let mut rec = Recorder::new(ctx);
        let g = ops::record_gather_rows(&mut rec, &x, &it).unwrap();
        ops::record_gather_rows_backward(&mut rec, &it, &dy, &dx).unwrap();
        rec.submit().unwrap();
        let iu: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
        assert_eq!(f64s(&read(ctx, &g)), r::gather_rows_forward(&xv, c, &iu));
        let want = add(&dxv, &r::gather_rows_backward(&iu, &dyv, n, c));
        let first = read(ctx, &dx);
        assert_close(
            &format!("gather backward {n}x{c} M={m}"),
            62,
            &first,
            &want,
            TOL,
        );
        // A second run from the same start gives identical bits.
        let (dx2, _) = up(ctx, "dx", &[n, c], 63);
        let mut rec = Recorder::new(ctx);
        ops::record_gather_rows_backward(&mut rec, &it, &dy, &dx2).unwrap();
        rec.submit().unwrap();
        assert_eq!(read(ctx, &dx2), first, "bit-identical runs");
    }
}

#[test]
fn argmax_topk_and_ties() {
    let Some(ctx) = gpu() else { return };
    for (rows, cols) in [(1usize, 1usize), (4, 131), (3, 7)] {
        // Values on a coarse grid: many ties.
        let v: Vec<f32> = uniform(70, rows * cols, 0.0, 5.0)
            .iter()
            .map(|x| x.floor())
            .collect();
        let t = Tensor::from_f32(ctx, "x", &[rows, cols], &v).unwrap();
        let xv = f64s(&v);
        for k in [1, 5.min(cols), 64.min(cols), cols] {
            let mut rec = Recorder::new(ctx);
            let am = ops::record_argmax(&mut rec, &t).unwrap();
            let (vals, idx) = ops::record_topk(&mut rec, &t, k).unwrap();
            rec.submit().unwrap();
            let want_am: Vec<u32> = r::argmax(&xv, cols).iter().map(|&i| i as u32).collect();
            assert_eq!(am.to_vec_u32(ctx).unwrap(), want_am, "argmax {rows}x{cols}");
            let (mut wv, mut wi) = (Vec::new(), Vec::new());
            for row in xv.chunks(cols) {
                for (val, i) in r::topk_row(row, k) {
                    wv.push(val);
                    wi.push(i as u32);
                }
            }
            assert_eq!(idx.to_vec_u32(ctx).unwrap(), wi, "top-{k} of {rows}x{cols}");
            assert_eq!(f64s(&read(ctx, &vals)), wv);
        }
    }
}

#[test]
fn sampling_matches_twin_and_is_reproducible() {
    let Some(ctx) = gpu() else { return };
    let (rows, cols) = (200, 37);
    let (x, xv) = up(ctx, "logits", &[rows, cols], 80);
    for (temperature, top_k) in [(1.0f32, 0usize), (0.7, 5), (2.5, 1)] {
        let s = Sampling {
            temperature,
            top_k,
            seed: 9,
            step: 3,
        };
        let mut rec = Recorder::new(ctx);
        let a = ops::record_sample(&mut rec, &x, &s).unwrap();
        let b = ops::record_sample(&mut rec, &x, &s).unwrap();
        let c = ops::record_sample(&mut rec, &x, &Sampling { step: 4, ..s }).unwrap();
        rec.submit().unwrap();
        let (a, b, c) = (
            a.to_vec_u32(ctx).unwrap(),
            b.to_vec_u32(ctx).unwrap(),
            c.to_vec_u32(ctx).unwrap(),
        );
        assert_eq!(a, b, "same seed and step, same draws");
        if top_k != 1 {
            assert_ne!(a, c, "another step draws afresh");
        }
        let want: Vec<u32> = xv
            .chunks(cols)
            .enumerate()
            .map(|(row, v)| {
                r::sample_row(v, temperature as f64, top_k, r::uniform01(9, 3, row as u32)) as u32
            })
            .collect();
        // f32 against f64 cumulative sums can only differ when u falls within ~1e-6 of a
        // boundary: allow one row in 200 to differ.
        let diff = a.iter().zip(&want).filter(|(g, w)| g != w).count();
        assert!(
            diff <= 1,
            "T={temperature} top_k={top_k}: {diff} rows differ from the twin: {a:?} vs {want:?}"
        );
        if top_k == 1 {
            let am: Vec<u32> = r::argmax(&xv, cols).iter().map(|&i| i as u32).collect();
            assert_eq!(a, am, "top-1 sampling is arg-max");
        }
    }
    // Into a buffer at an offset.
    let ids = Tensor::from_u32(ctx, "ids", &[rows + 3], &vec![u32::MAX; rows + 3]).unwrap();
    let mut rec = Recorder::new(ctx);
    ops::record_argmax_into(&mut rec, &x, &ids, 3).unwrap();
    rec.submit().unwrap();
    let got = ids.to_vec_u32(ctx).unwrap();
    assert_eq!(&got[..3], &[u32::MAX; 3]);
    let am: Vec<u32> = r::argmax(&xv, cols).iter().map(|&i| i as u32).collect();
    assert_eq!(&got[3..], &am[..]);
}

fn shape_err(e: Error) -> String {
    assert!(matches!(e, Error::Shape { .. } | Error::Config(_)), "{e:?}");
    e.to_string()
}

#[test]
fn bad_input_is_refused_with_the_tensor_named() {
    let Some(ctx) = gpu() else { return };
    let (a, _) = up(ctx, "alpha", &[3, 4], 90);
    let (b, _) = up(ctx, "beta", &[3, 5], 91);
    let mut rec = Recorder::new(ctx);
    let e = shape_err(ops::record_add(&mut rec, &a, &b).unwrap_err());
    assert!(e.contains("alpha") && e.contains("beta"), "{e}");
    let e = shape_err(ops::record_topk(&mut rec, &a, 5).unwrap_err());
    assert!(e.contains("k = 5"), "{e}");
    let e = shape_err(
        ops::record_bmm(
            &mut rec,
            &a.reshape(&[1, 3, 4]).unwrap(),
            &b.reshape(&[1, 3, 5]).unwrap(),
            false,
            false,
        )
        .unwrap_err(),
    );
    assert!(e.contains("do not multiply"), "{e}");
    let e = shape_err(ops::indices(ctx, "beam", &[0, 3], 3).unwrap_err());
    assert!(e.contains("beam[1] = 3"), "{e}");
    let e = shape_err(ops::lengths(ctx, "src_len", &[2, 0], 4).unwrap_err());
    assert!(e.contains("src_len[1] = 0"), "{e}");
    let e = shape_err(a.as_view().cols_range(2, 3).unwrap_err());
    assert!(e.contains("alpha"), "{e}");
    let bias = a.as_view().narrow(0, 1).unwrap().broadcast(&[3]).unwrap();
    let e = shape_err(ops::record_accumulate(&mut rec, &bias, &a, 1.0).unwrap_err());
    assert!(e.contains("broadcast"), "{e}");
    let e = shape_err(
        ops::record_sample(
            &mut rec,
            &a,
            &Sampling {
                temperature: 0.0,
                top_k: 0,
                seed: 0,
                step: 0,
            },
        )
        .unwrap_err(),
    );
    assert!(e.contains("temperature"), "{e}");
    let lt = ops::lengths(ctx, "len", &[1, 2], 4).unwrap();
    let e = shape_err(
        ops::record_pool_mean(&mut rec, &a.reshape(&[1, 3, 4]).unwrap(), &lt).unwrap_err(),
    );
    assert!(e.contains("lengths"), "{e}");
    drop(rec);
}
