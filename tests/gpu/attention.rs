//! `nn::Attention` against its CPU twin (`reference::attention`) for every score, on awkward
//! shapes with ragged source lengths (1 and full length among them): contexts, weights and
//! every gradient; padded source positions get weight exactly 0 and gradient exactly 0; a
//! step-by-step decoder (T calls of one step on one memory, backward accumulated) gives the
//! whole-sequence call's gradients.

use crate::common::{assert_close, f64s, gpu, uniform};
use wgrnn::nn::{Attention, AttentionGrads, Linear, Score};
use wgrnn::ops;
use wgrnn::reference::attention::AttentionRef;
use wgrnn::{Context, Recorder, Tensor};

/// f32 against f64 through two GEMMs, a softmax and (additive) a tanh over at most a few
/// dozen terms: errors of a few 1e-7 relative; 1e-5 leaves room without hiding a wrong term.
const TOL: f64 = 1e-5;

fn read(ctx: &Context, t: &Tensor) -> Vec<f32> {
    t.to_vec(ctx).unwrap()
}

fn weights(ctx: &Context, l: &Option<Linear>) -> Option<Vec<f64>> {
    l.as_ref().map(|l| f64s(&read(ctx, &l.weight)))
}

fn twin(ctx: &Context, a: &Attention) -> AttentionRef {
    AttentionRef {
        score: a.score,
        enc: a.key.fan_in(),
        hidden: a.hidden(),
        key: f64s(&read(ctx, &a.key.weight)),
        value: f64s(&read(ctx, &a.value.weight)),
        query: weights(ctx, &a.query),
        key_proj: weights(ctx, &a.key_proj),
        energy: weights(ctx, &a.energy),
    }
}

fn scores() -> [Score; 4] {
    [
        Score::Dot,
        Score::Multiplicative,
        Score::LowRank(3),
        Score::Additive(7),
    ]
}

fn grad_list(ctx: &Context, g: &AttentionGrads) -> Vec<(&'static str, Vec<f32>)> {
    let mut v = vec![
        ("dkey", read(ctx, &g.key.weight)),
        ("dvalue", read(ctx, &g.value.weight)),
    ];
    for (n, l) in [
        ("dquery", &g.query),
        ("dkey_proj", &g.key_proj),
        ("denergy", &g.energy),
    ] {
        if let Some(l) = l {
            v.push((n, read(ctx, &l.weight)));
        }
    }
    v
}

/// (B, S, T, D, H, source lengths).
type Case = (usize, usize, usize, usize, usize, &'static [usize]);

#[test]
fn every_score_matches_the_reference_forward_and_backward() {
    let Some(ctx) = gpu() else { return };
    // (B, S, T, D, H, lengths): a single position; primes; a step (T = 1) over 13 sources.
    let cases: [Case; 3] = [
        (1, 1, 1, 1, 1, &[1]),
        (3, 5, 7, 6, 5, &[5, 1, 3]),
        (2, 13, 1, 10, 9, &[13, 4]),
    ];
    for (ci, &(b, s, t, d, h, lens)) in cases.iter().enumerate() {
        for (si, score) in scores().into_iter().enumerate() {
            let seed = (ci * 10 + si) as u64 + 1;
            let att = Attention::random(ctx, score, d, h, seed).unwrap();
            let r = twin(ctx, &att);
            let enc = uniform(seed + 100, b * s * d, -1.5, 1.5);
            let st = uniform(seed + 200, b * t * h, -1.5, 1.5);
            let dctx = uniform(seed + 300, b * t * h, -1.0, 1.0);
            let enc_t = Tensor::from_f32(ctx, "enc", &[b, s, d], &enc).unwrap();
            let st_t = Tensor::from_f32(ctx, "states", &[b, t, h], &st).unwrap();
            let dctx_t = Tensor::from_f32(ctx, "dctx", &[b, t, h], &dctx).unwrap();
            let len_t = ops::lengths(ctx, "lengths", lens, s).unwrap();
            let grads = att.zero_grads(ctx).unwrap();
            let mut rec = Recorder::new(ctx);
            let mem = att.record_memory(&mut rec, &enc_t, &len_t).unwrap();
            let dmem = att.zero_memory_grads(ctx, &mem).unwrap();
            let (c, saved) = att.record_forward(&mut rec, &mem, &st_t).unwrap();
            let dst = att
                .record_backward(&mut rec, &mem, &saved, &dctx_t, &grads, &dmem)
                .unwrap();
            let denc = att
                .record_memory_backward(&mut rec, &mem, &dmem, &grads)
                .unwrap();
            rec.submit().unwrap();

            let what = |n: &str| format!("{score} B={b} S={s} T={t} D={d} H={h} {n}");
            let (wc, ww) = r.forward(&f64s(&enc), lens, &f64s(&st), t);
            let g = r.backward(&f64s(&enc), lens, &f64s(&st), t, &f64s(&dctx));
            assert_close(&what("contexts"), seed, &read(ctx, &c), &wc, TOL);
            let w = read(ctx, &saved.weights);
            assert_close(&what("weights"), seed, &w, &ww, TOL);
            assert_close(&what("dstates"), seed, &read(ctx, &dst), &g.dstates, TOL);
            let de = read(ctx, &denc);
            assert_close(&what("denc"), seed, &de, &g.denc, TOL);
            for (name, got) in grad_list(ctx, &grads) {
                let want = match name {
                    "dkey" => &g.dkey,
                    "dvalue" => &g.dvalue,
                    "dquery" => &g.dquery,
                    "dkey_proj" => &g.dkey_proj,
                    _ => &g.denergy,
                };
                assert_close(&what(name), seed, &got, want, TOL);
            }
            // Padding: exactly zero weight, exactly zero gradient.
            for bb in 0..b {
                for i in lens[bb]..s {
                    for tt in 0..t {
                        assert_eq!(w[(bb * t + tt) * s + i], 0.0, "{}", what("pad weight"));
                    }
                    let row = &de[(bb * s + i) * d..(bb * s + i + 1) * d];
                    assert!(row.iter().all(|&x| x == 0.0), "{}", what("pad denc"));
                }
            }
        }
    }
}

#[test]
fn steps_one_at_a_time_equal_the_whole_sequence() {
    let Some(ctx) = gpu() else { return };
    let (b, s, t, d, h) = (2, 6, 4, 8, 5);
    let lens = [6, 2];
    for (si, score) in scores().into_iter().enumerate() {
        let seed = 50 + si as u64;
        let att = Attention::random(ctx, score, d, h, seed).unwrap();
        let enc =
            Tensor::from_f32(ctx, "enc", &[b, s, d], &uniform(seed, b * s * d, -1.0, 1.0)).unwrap();
        let st = uniform(seed + 1, b * t * h, -1.0, 1.0);
        let dc = uniform(seed + 2, b * t * h, -1.0, 1.0);
        let len_t = ops::lengths(ctx, "lengths", &lens, s).unwrap();
        // Whole sequence.
        let g1 = att.zero_grads(ctx).unwrap();
        let mut rec = Recorder::new(ctx);
        let mem = att.record_memory(&mut rec, &enc, &len_t).unwrap();
        let dmem = att.zero_memory_grads(ctx, &mem).unwrap();
        let st_t = Tensor::from_f32(ctx, "s", &[b, t, h], &st).unwrap();
        let dc_t = Tensor::from_f32(ctx, "dc", &[b, t, h], &dc).unwrap();
        let (c1, saved) = att.record_forward(&mut rec, &mem, &st_t).unwrap();
        let ds1 = att
            .record_backward(&mut rec, &mem, &saved, &dc_t, &g1, &dmem)
            .unwrap();
        let de1 = att
            .record_memory_backward(&mut rec, &mem, &dmem, &g1)
            .unwrap();
        rec.submit().unwrap();
        // One step per call, the backward from the last step to the first, one submission.
        let pick = |v: &[f32], tt: usize| -> Vec<f32> {
            (0..b)
                .flat_map(|bb| v[(bb * t + tt) * h..(bb * t + tt + 1) * h].to_vec())
                .collect()
        };
        let g2 = att.zero_grads(ctx).unwrap();
        let mut rec = Recorder::new(ctx);
        let mem = att.record_memory(&mut rec, &enc, &len_t).unwrap();
        let dmem = att.zero_memory_grads(ctx, &mem).unwrap();
        let mut steps = Vec::new();
        for tt in 0..t {
            let x = Tensor::from_f32(ctx, "s_t", &[b, 1, h], &pick(&st, tt)).unwrap();
            let (c, sv) = att.record_forward(&mut rec, &mem, &x).unwrap();
            steps.push((c, sv));
        }
        let mut ds2 = vec![Vec::new(); t];
        let mut dts = Vec::new();
        for tt in (0..t).rev() {
            let d = Tensor::from_f32(ctx, "dc_t", &[b, 1, h], &pick(&dc, tt)).unwrap();
            let dx = att
                .record_backward(&mut rec, &mem, &steps[tt].1, &d, &g2, &dmem)
                .unwrap();
            dts.push((tt, dx));
        }
        let de2 = att
            .record_memory_backward(&mut rec, &mem, &dmem, &g2)
            .unwrap();
        rec.submit().unwrap();
        for (tt, dx) in dts {
            ds2[tt] = read(ctx, &dx);
        }
        let c1 = read(ctx, &c1);
        let ds1 = read(ctx, &ds1);
        for tt in 0..t {
            let what = format!("{score} step {tt}");
            let want: Vec<f64> = f64s(&pick(&c1, tt));
            assert_close(
                &format!("{what} context"),
                seed,
                &read(ctx, &steps[tt].0),
                &want,
                TOL,
            );
            assert_close(
                &format!("{what} dstates"),
                seed,
                &ds2[tt],
                &f64s(&pick(&ds1, tt)),
                TOL,
            );
        }
        assert_close(
            &format!("{score} denc"),
            seed,
            &read(ctx, &de2),
            &f64s(&read(ctx, &de1)),
            TOL,
        );
        for ((n, a), (_, w)) in grad_list(ctx, &g2).into_iter().zip(grad_list(ctx, &g1)) {
            assert_close(&format!("{score} {n}"), seed, &a, &f64s(&w), TOL);
        }
    }
}

#[test]
fn bad_shapes_are_errors() {
    let Some(ctx) = gpu() else { return };
    let att = Attention::random(ctx, Score::Dot, 4, 3, 1).unwrap();
    let enc = Tensor::zeros(ctx, "enc", &[2, 5, 3]).unwrap();
    let len = ops::lengths(ctx, "l", &[5, 2], 5).unwrap();
    let mut rec = Recorder::new(ctx);
    let e = att.record_memory(&mut rec, &enc, &len).unwrap_err();
    assert!(e.to_string().contains("encoder states"), "{e}");
    let enc = Tensor::zeros(ctx, "enc", &[2, 5, 4]).unwrap();
    let mem = att.record_memory(&mut rec, &enc, &len).unwrap();
    let st = Tensor::zeros(ctx, "s", &[3, 1, 3]).unwrap();
    assert!(att.record_forward(&mut rec, &mem, &st).is_err());
    assert!(Score::parse("low-rank", 0).is_err());
    assert!(Score::parse("bilinear", 4).is_err());
    assert_eq!(Score::parse("additive", 8).unwrap(), Score::Additive(8));
}
