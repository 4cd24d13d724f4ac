//! Embedding, linear and dropout layers: GPU vs the f64 CPU twins on awkward shapes, the
//! embedding gradient's determinism, padding and id validation.

use crate::common::{assert_close, f64s, gpu, uniform};
use wgrnn::nn::{Dropout, Embedding, Linear};
use wgrnn::reference::{dropout, embedding, linear};
use wgrnn::{Error, Tensor};

/// Embedding gradient rows are f32 sums of up to N = 296 terms in position order, against an
/// f64 sum; measured worst 2.1e-7 on lavapipe (printed by `embedding_matches_reference`); 1e-6
/// leaves a 5x margin while a missed or doubled position is an error of order 1.
const EMBED_TOL: f64 = 1e-6;

/// Linear: f32 GEMMs with reductions over up to K = 67 (forward, dx) or M = 60 rows (dW), and
/// column sums over M rows, against f64; measured worst 1.6e-7 on lavapipe (printed by
/// `linear_matches_reference`); 1e-6 keeps a 6x margin, a wrong index or transpose gives errors
/// of order 1.
const LINEAR_TOL: f64 = 1e-6;

/// Ids in `0..vocab` drawn from only a few values (so ids repeat within a batch), with the
/// padding id sprinkled in.
fn ids_for(seed: u64, n: usize, vocab: usize, padding: Option<u32>) -> Vec<u32> {
    let r = uniform(seed, n, 0.0, 1.0);
    let distinct = vocab.clamp(1, 5) as f32;
    (0..n)
        .map(|i| match padding {
            Some(p) if i % 4 == 1 => p,
            // A handful of ids spread over the vocabulary, so rows repeat and most rows are empty.
            _ => ((r[i] * distinct).floor() as usize * 97 % vocab) as u32,
        })
        .collect()
}

#[test]
fn embedding_matches_reference() {
    let Some(ctx) = gpu() else { return };
    // vocabulary 1, a prime, larger than a workgroup (256); dims 1 and odd; N up to 296.
    let cases: [(usize, usize, usize, usize, Option<u32>); 6] = [
        (1, 1, 1, 1, None),
        (1, 4, 3, 5, Some(0)),
        (7, 5, 3, 3, None),
        (7, 1, 37, 8, Some(3)),
        (300, 33, 37, 8, Some(0)),
        (300, 16, 6, 2, None),
    ];
    let mut worst: f64 = 0.0;
    for (i, &(vocab, dim, t, b, padding)) in cases.iter().enumerate() {
        let seed = 100 + i as u64;
        let what = format!("embedding V={vocab} E={dim} T={t} B={b} padding={padding:?}");
        let emb = Embedding::random(ctx, vocab, dim, padding, seed).unwrap();
        let table = emb.weight.to_vec(ctx).unwrap();
        let ids = ids_for(seed + 1, t * b, vocab, padding);
        let idt = emb.ids(ctx, &[t, b], &ids).unwrap();
        let y = emb.forward(ctx, &idt).unwrap();
        assert_eq!(y.shape(), &[t, b, dim]);
        let want = embedding::embedding_forward(&f64s(&table), &ids, vocab, dim);
        // A lookup copies: bit-exact.
        assert_eq!(
            y.to_vec(ctx).unwrap(),
            want.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            "{what}"
        );

        let dy = uniform(seed + 2, t * b * dim, -1.0, 1.0);
        let dyt = Tensor::from_f32(ctx, "dy", &[t, b, dim], &dy).unwrap();
        let dw = emb.backward(ctx, &idt, &dyt).unwrap();
        let want = embedding::embedding_backward(&ids, &f64s(&dy), vocab, dim, padding);
        let got = dw.to_vec(ctx).unwrap();
        worst = worst.max(assert_close(
            &format!("{what} grad.weight"),
            seed,
            &got,
            &want,
            EMBED_TOL,
        ));
        if let Some(p) = padding {
            let row = &got[p as usize * dim..(p as usize + 1) * dim];
            assert!(
                row.iter().all(|&v| v == 0.0),
                "{what}: padding row got a gradient"
            );
        }
    }
    eprintln!("embedding: worst relative error {worst:.2e}");
}

/// Accumulating adds to the existing gradient; overwriting ignores it.
#[test]
fn embedding_backward_accumulates() {
    let Some(ctx) = gpu() else { return };
    let (vocab, dim, n) = (11, 3, 20);
    let emb = Embedding::random(ctx, vocab, dim, Some(2), 1).unwrap();
    let ids = ids_for(2, n, vocab, Some(2));
    let idt = emb.ids(ctx, &[n], &ids).unwrap();
    let dy = uniform(3, n * dim, -1.0, 1.0);
    let dyt = Tensor::from_f32(ctx, "dy", &[n, dim], &dy).unwrap();
    let base = uniform(4, vocab * dim, -1.0, 1.0);
    let dw = Tensor::from_f32(ctx, "dw", &[vocab, dim], &base).unwrap();
    let mut rec = wgrnn::Recorder::new(ctx);
    emb.record_backward(&mut rec, &idt, &dyt, &dw, true)
        .unwrap();
    rec.submit().unwrap();
    let g = embedding::embedding_backward(&ids, &f64s(&dy), vocab, dim, Some(2));
    let want: Vec<f64> = g.iter().zip(&base).map(|(a, &b)| a + b as f64).collect();
    assert_close(
        "embedding accumulate",
        4,
        &dw.to_vec(ctx).unwrap(),
        &want,
        EMBED_TOL,
    );
}

/// Two backward runs give identical bits: the sort fixes every summation order. N = 1000 ids
/// from 3 distinct values (long segments), P = 1024 (24 filler positions).
#[test]
fn embedding_backward_is_deterministic() {
    let Some(ctx) = gpu() else { return };
    let (vocab, dim, n) = (50, 8, 1000);
    let emb = Embedding::random(ctx, vocab, dim, Some(0), 5).unwrap();
    let r = uniform(6, n, 0.0, 1.0);
    let ids: Vec<u32> = r
        .iter()
        .map(|&u| [0, 7, 49][(u * 3.0) as usize % 3])
        .collect();
    let idt = emb.ids(ctx, &[n], &ids).unwrap();
    let dy = uniform(7, n * dim, -1.0, 1.0);
    let dyt = Tensor::from_f32(ctx, "dy", &[n, dim], &dy).unwrap();
    let bits = || -> Vec<u32> {
        let g = emb.backward(ctx, &idt, &dyt).unwrap();
        g.to_vec(ctx).unwrap().iter().map(|v| v.to_bits()).collect()
    };
    let a = bits();
    assert_eq!(a, bits(), "two embedding backward runs differ");
    let want = embedding::embedding_backward(&ids, &f64s(&dy), vocab, dim, Some(0));
    let got: Vec<f32> = a.iter().map(|&b| f32::from_bits(b)).collect();
    assert_close("embedding long segments", 7, &got, &want, EMBED_TOL);
}

/// Host ids outside the vocabulary are a shape error naming the position; device-resident ones
/// give a NaN row in the forward and no gradient.
#[test]
fn embedding_out_of_range_ids() {
    let Some(ctx) = gpu() else { return };
    let emb = Embedding::random(ctx, 5, 2, None, 1).unwrap();
    let err = emb.ids(ctx, &[2, 3], &[0, 1, 2, 3, 5, 4]).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("[1, 1]") && msg.contains("= 5"), "{msg}");

    let raw = Tensor::from_u32(ctx, "ids", &[3], &[1, 9, 1]).unwrap();
    let y = emb.forward(ctx, &raw).unwrap().to_vec(ctx).unwrap();
    assert!(y[2].is_nan() && y[3].is_nan(), "{y:?}");
    assert!(y[0].is_finite() && y[4].is_finite(), "{y:?}");
    let dy = Tensor::from_f32(ctx, "dy", &[3, 2], &[1.0; 6]).unwrap();
    let g = emb.backward(ctx, &raw, &dy).unwrap().to_vec(ctx).unwrap();
    assert_eq!(g, vec![0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn linear_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let cases: [(&[usize], usize, usize, bool); 6] = [
        (&[1], 1, 1, true),
        (&[3], 7, 1, false),
        (&[4, 5], 1, 7, true),
        (&[2, 3, 5], 67, 13, true),
        (&[60], 13, 67, false),
        (&[7, 1], 32, 65, true),
    ];
    let mut worst: f64 = 0.0;
    for (i, &(lead, fan_in, fan_out, bias)) in cases.iter().enumerate() {
        let seed = 300 + i as u64;
        let what = format!("linear {lead:?} x {fan_in} -> {fan_out} bias={bias}");
        let lin = Linear::random(ctx, fan_in, fan_out, bias, seed).unwrap();
        let m: usize = lead.iter().product();
        let mut xs = lead.to_vec();
        xs.push(fan_in);
        let mut ys = lead.to_vec();
        ys.push(fan_out);
        let x = uniform(seed + 1, m * fan_in, -1.0, 1.0);
        let xt = Tensor::from_f32(ctx, "x", &xs, &x).unwrap();
        let y = lin.forward(ctx, &xt).unwrap();
        assert_eq!(y.shape(), &ys[..]);
        let w = f64s(&lin.weight.to_vec(ctx).unwrap());
        let b = lin.bias.as_ref().map(|b| f64s(&b.to_vec(ctx).unwrap()));
        let want = linear::linear_forward(&f64s(&x), &w, b.as_deref(), m, fan_in, fan_out);
        worst = worst.max(assert_close(
            &format!("{what} y"),
            seed,
            &y.to_vec(ctx).unwrap(),
            &want,
            LINEAR_TOL,
        ));

        let dy = uniform(seed + 2, m * fan_out, -1.0, 1.0);
        let dyt = Tensor::from_f32(ctx, "dy", &ys, &dy).unwrap();
        let (dx, g) = lin.backward(ctx, &xt, &dyt).unwrap();
        assert_eq!(dx.shape(), &xs[..]);
        let r = linear::linear_backward(&f64s(&x), &w, &f64s(&dy), m, fan_in, fan_out);
        worst = worst.max(assert_close(
            &format!("{what} dx"),
            seed,
            &dx.to_vec(ctx).unwrap(),
            &r.dx,
            LINEAR_TOL,
        ));
        worst = worst.max(assert_close(
            &format!("{what} dweight"),
            seed,
            &g.weight.to_vec(ctx).unwrap(),
            &r.dw,
            LINEAR_TOL,
        ));
        if let Some(db) = &g.bias {
            worst = worst.max(assert_close(
                &format!("{what} dbias"),
                seed,
                &db.to_vec(ctx).unwrap(),
                &r.db,
                LINEAR_TOL,
            ));
        }
    }
    eprintln!("linear: worst relative error {worst:.2e}");
}

/// Accumulating parameter gradients: two backward calls into zeroed gradients equal twice one.
#[test]
fn linear_backward_accumulates() {
    let Some(ctx) = gpu() else { return };
    let lin = Linear::random(ctx, 9, 4, true, 1).unwrap();
    let x = Tensor::from_f32(ctx, "x", &[6, 9], &uniform(2, 54, -1.0, 1.0)).unwrap();
    let dy = Tensor::from_f32(ctx, "dy", &[6, 4], &uniform(3, 24, -1.0, 1.0)).unwrap();
    let (_, once) = lin.backward(ctx, &x, &dy).unwrap();
    let acc = lin.zero_grads(ctx).unwrap();
    let mut rec = wgrnn::Recorder::new(ctx);
    lin.record_backward(&mut rec, &x, &dy, &acc, true).unwrap();
    lin.record_backward(&mut rec, &x, &dy, &acc, true).unwrap();
    rec.submit().unwrap();
    for (a, o) in [
        (&acc.weight, &once.weight),
        (acc.bias.as_ref().unwrap(), once.bias.as_ref().unwrap()),
    ] {
        let want: Vec<f64> = o
            .to_vec(ctx)
            .unwrap()
            .iter()
            .map(|&v| 2.0 * v as f64)
            .collect();
        assert_close(
            "linear accumulate",
            1,
            &a.to_vec(ctx).unwrap(),
            &want,
            LINEAR_TOL,
        );
    }
}

#[test]
fn linear_rejects_wrong_shapes() {
    let Some(ctx) = gpu() else { return };
    let lin = Linear::random(ctx, 3, 2, true, 1).unwrap();
    let x = Tensor::zeros(ctx, "x", &[4, 5]).unwrap();
    let err = lin.forward(ctx, &x).unwrap_err();
    assert!(err.to_string().starts_with("input:"), "{err}");
    let x = Tensor::zeros(ctx, "x", &[4, 3]).unwrap();
    let dy = Tensor::zeros(ctx, "dy", &[4, 3]).unwrap();
    let err = lin.backward(ctx, &x, &dy).unwrap_err();
    assert!(err.to_string().starts_with("grad_output:"), "{err}");
}

/// The dropout layer's masks equal the CPU hash's bit for bit (forward and backward), and
/// evaluation mode is the identity.
#[test]
fn dropout_layer_matches_reference() {
    let Some(ctx) = gpu() else { return };
    for (i, shape) in [vec![7usize], vec![5, 3], vec![4, 3, 10]]
        .into_iter()
        .enumerate()
    {
        let n: usize = shape.iter().product();
        let (b, u) = match shape.len() {
            1 => (1, shape[0]),
            k => (shape[k - 2], shape[k - 1]),
        };
        let d = Dropout::new(0.4, 1000 + i as u32).unwrap();
        let x = uniform(i as u64, n, -1.0, 1.0);
        let xt = Tensor::from_f32(ctx, "x", &shape, &x).unwrap();
        let seed = 77;
        let y = d
            .forward(ctx, &xt, seed, true)
            .unwrap()
            .to_vec(ctx)
            .unwrap();
        let want = dropout::dropout(&f64s(&x), b, u, seed, d.stream, d.p);
        // Kept values are x * scale in f32 on both sides.
        let want32: Vec<f32> = x
            .iter()
            .zip(&want)
            .map(|(&v, &w)| {
                if w == 0.0 {
                    0.0
                } else {
                    v * dropout::scale(d.p)
                }
            })
            .collect();
        assert_eq!(y, want32, "dropout forward {shape:?}");
        let dx = d.backward(ctx, &xt, seed).unwrap().to_vec(ctx).unwrap();
        assert_eq!(dx, want32, "dropout backward {shape:?}");
        let e = d.forward(ctx, &xt, seed, false).unwrap();
        assert!(e.same_buffer(&xt), "evaluation mode must not copy");
    }
    assert!(Dropout::new(1.5, 0).is_err());
}
