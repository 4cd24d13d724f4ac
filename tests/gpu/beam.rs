//! `ops::BeamSearch` (beam.wgsl) against its f64 twin `reference::beam::RefBeam`: whole
//! searches over seeded random log-probabilities, awkward sizes (one sentence, K = 1, a
//! vocabulary smaller than 2K, a length limit of one step), with and without length
//! normalisation; the finished lists, their order, tokens, rows and scores must agree.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::gpu;
use wgrnn::Recorder;
use wgrnn::ops::BeamSearch;
use wgrnn::reference::beam::RefBeam;
use wgrnn::tensor::Tensor;

/// Scores are sums of at most T f32 log-probabilities of magnitude < 10: a few ulps of 100.
const SCORE_TOL: f32 = 1e-4;

/// Log-softmax rows of random logits (scale 3: near-ties improbable), `</s>` lifted by `lift`
/// so that hypotheses finish at different steps.
fn logp(rng: &mut ChaCha8Rng, rows: usize, v: usize, eos: usize, lift: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * v);
    for _ in 0..rows {
        let mut x: Vec<f32> = (0..v).map(|_| 3.0 * rng.random::<f32>()).collect();
        x[eos] += lift;
        let m = x.iter().cloned().fold(f32::MIN, f32::max);
        let lse = m + x.iter().map(|a| (a - m).exp()).sum::<f32>().ln();
        out.extend(x.iter().map(|a| a - lse));
    }
    out
}

#[test]
fn beam_search_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let cases = [
        // (B, K, V, T, alpha, eos lift)
        (1, 1, 7, 5, 1.0, 0.5),
        (3, 2, 13, 6, 0.0, 1.0),
        (2, 5, 3, 4, 1.0, 0.0),
        (4, 5, 31, 7, 0.6, 1.5),
        (1, 4, 11, 1, 1.0, 1.0),
        (5, 3, 67, 9, 1.0, 2.5),
        // The largest beam: 2K = 64 candidates per lane list.
        (2, 32, 97, 3, 1.0, 1.0),
    ];
    for (case, &(b, k, v, t, alpha, lift)) in cases.iter().enumerate() {
        let seed = 100 + case as u64;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let eos = 1usize;
        let search = BeamSearch::new(ctx, b, k, t, 2, eos as u32, alpha).unwrap();
        let mut reference = RefBeam::new(b, k, t, eos as u32, alpha as f64);
        let mut rec = Recorder::new(ctx);
        for step in 0..t {
            let lp = logp(&mut rng, b * k, v, eos, lift);
            let dev = Tensor::from_f32(ctx, "logp", &[b * k, v], &lp).unwrap();
            search.record_step(&mut rec, &dev, step).unwrap();
            let lp64: Vec<f64> = lp.iter().map(|&x| x as f64).collect();
            reference.step(&lp64, v, step);
        }
        rec.submit().unwrap();
        let got = search.finished(ctx).unwrap();
        let want = reference.finished();
        for (s, (g, w)) in got.iter().zip(&want).enumerate() {
            let what = format!("case {case} (B {b} K {k} V {v} T {t}, seed {seed}) sentence {s}");
            assert_eq!(g.len(), w.len(), "{what}: finished count");
            for (i, (gh, wh)) in g.iter().zip(w).enumerate() {
                assert_eq!(gh.ids, wh.ids, "{what} hypothesis {i}: tokens");
                assert_eq!(gh.rows, wh.rows, "{what} hypothesis {i}: rows");
                assert_eq!(gh.ended, wh.ended, "{what} hypothesis {i}: ended");
                let err = (gh.score - wh.score).abs();
                assert!(
                    err <= SCORE_TOL * wh.score.abs().max(1.0),
                    "{what} hypothesis {i}: score {} vs {} (error {err:.2e})",
                    gh.score,
                    wh.score
                );
            }
            // K distinct hypotheses, all finished by the end.
            assert_eq!(g.len(), k.min(w.len()), "{what}");
            for i in 0..g.len() {
                for j in 0..i {
                    assert_ne!(
                        g[i].ids, g[j].ids,
                        "{what}: hypotheses {j} and {i} are equal"
                    );
                }
            }
        }
    }
}

#[test]
fn beam_search_rejects_bad_sizes() {
    let Some(ctx) = gpu() else { return };
    for (b, k, t, alpha) in [
        (1, 0, 3, 1.0),
        (1, 33, 3, 1.0),
        (0, 2, 3, 1.0),
        (1, 2, 0, 1.0),
    ]
    .into_iter()
    .chain([(1, 2, 3, -1.0), (1, 2, 3, f32::NAN)])
    {
        assert!(
            BeamSearch::new(ctx, b, k, t, 1, 1, alpha).is_err(),
            "B {b} K {k} T {t} alpha {alpha}"
        );
    }
    let s = BeamSearch::new(ctx, 2, 3, 4, 1, 1, 1.0).unwrap();
    let wrong = Tensor::zeros(ctx, "logp", &[5, 7]).unwrap();
    let mut rec = Recorder::new(ctx);
    assert!(s.record_step(&mut rec, &wrong, 0).is_err());
    let right = Tensor::zeros(ctx, "logp", &[6, 7]).unwrap();
    assert!(s.record_step(&mut rec, &right, 4).is_err());
}
