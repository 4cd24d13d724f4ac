//! Softmax cross-entropy and log-softmax: GPU vs the f64 CPU twin over vocabulary sizes 1, a
//! prime and larger than a workgroup, ignored rows, logits of magnitude 1e4, target validation.

use crate::common::{assert_close, f64s, gpu, uniform};
use wgrnn::nn::{log_softmax, softmax_cross_entropy, targets};
use wgrnn::reference::loss::{log_softmax_forward, softmax_ce_forward};
use wgrnn::{Error, Tensor};

/// Per-row losses, log-probabilities and gradients: f32 exp/log of max-subtracted logits and
/// row sums of up to V = 1000 terms against f64: ~1e-7 relative; measured worst 2.1e-7 on
/// lavapipe (printed by `softmax_ce_matches_reference`); 1e-6 leaves a 5x margin.
const CE_TOL: f64 = 1e-6;

/// The mean loss, relative to max(1, |loss|): the per-row error (~1e-7) plus a tree-ordered
/// f32 sum over up to 257 rows (~log2(257) * 6e-8); 1e-6 is far below any real mistake.
const MEAN_TOL: f64 = 1e-6;

/// Targets in `0..vocab` with every third row the ignore index (when given).
fn targets_for(seed: u64, rows: usize, vocab: usize, ignore: Option<u32>) -> Vec<u32> {
    let r = uniform(seed, rows, 0.0, 1.0);
    (0..rows)
        .map(|i| match ignore {
            Some(ig) if i % 3 == 2 => ig,
            _ => ((r[i] * vocab as f32) as usize).min(vocab - 1) as u32,
        })
        .collect()
}

/// Runs one case (logits uniform in `[-scale, scale]`); returns the worst relative error.
fn run_case(seed: u64, lead: &[usize], vocab: usize, ignore: Option<u32>, scale: f64) -> f64 {
    let Some(ctx) = gpu() else { return 0.0 };
    let what = format!("softmax CE {lead:?} V={vocab} ignore={ignore:?} scale={scale}");
    let rows: usize = lead.iter().product();
    let mut shape = lead.to_vec();
    shape.push(vocab);
    let x = uniform(seed, rows * vocab, -scale, scale);
    let tg = targets_for(seed + 1, rows, vocab, ignore);
    let xt = Tensor::from_f32(ctx, "logits", &shape, &x).unwrap();
    let tt = targets(ctx, lead, &tg, vocab, ignore).unwrap();
    let out = softmax_cross_entropy(ctx, &xt, &tt, ignore, true).unwrap();
    let want = softmax_ce_forward(&f64s(&x), &tg, vocab, ignore);

    let loss = out.loss(ctx).unwrap() as f64;
    assert!(
        (loss - want.loss).abs() <= MEAN_TOL * want.loss.abs().max(1.0),
        "{what} (seed {seed}): mean loss gpu {loss:.9e} vs reference {:.9e}",
        want.loss
    );
    assert_eq!(
        out.count.to_vec(ctx).unwrap()[0] as usize,
        want.count,
        "{what}: count"
    );
    let rl = out.row_loss.to_vec(ctx).unwrap();
    let mut worst = assert_close(
        &format!("{what} row loss"),
        seed,
        &rl,
        &want.row_loss,
        CE_TOL,
    );
    let dl = out.dlogits.as_ref().unwrap();
    assert_eq!(dl.shape(), &shape[..]);
    worst = worst.max(assert_close(
        &format!("{what} dlogits"),
        seed,
        &dl.to_vec(ctx).unwrap(),
        &want.dlogits,
        CE_TOL,
    ));

    let lp = log_softmax(ctx, &xt).unwrap();
    assert_eq!(lp.shape(), &shape[..]);
    let wl = log_softmax_forward(&f64s(&x), vocab);
    worst.max(assert_close(
        &format!("{what} log_softmax"),
        seed,
        &lp.to_vec(ctx).unwrap(),
        &wl,
        CE_TOL,
    ))
}

#[test]
fn softmax_ce_matches_reference() {
    let mut worst: f64 = 0.0;
    let cases: [(&[usize], usize, Option<u32>); 8] = [
        (&[1], 1, None),
        (&[4, 3], 1, Some(0)),
        (&[5, 3], 13, None),
        (&[5, 3], 13, Some(4)),
        (&[257], 64, Some(u32::MAX - 1)),
        (&[3, 7], 300, Some(299)),
        (&[2, 5], 1000, None),
        (&[1, 1, 2], 2, Some(1)),
    ];
    for (i, &(lead, vocab, ignore)) in cases.iter().enumerate() {
        worst = worst.max(run_case(40 + i as u64, lead, vocab, ignore, 5.0));
    }
    eprintln!("softmax CE: worst relative error {worst:.2e}");
}

/// Logits of magnitude 1e4: finite and correct (no exp overflow), both signs.
#[test]
fn softmax_ce_stable_at_1e4() {
    run_case(60, &[6, 2], 13, Some(5), 1e4);
    run_case(61, &[3], 300, None, 1e4);
    let Some(ctx) = gpu() else { return };
    // One logit at +1e4, the target's at -1e4: loss 2e4, gradient exactly (1, .., -1) / N.
    let x = [1e4f32, -1e4, 0.0];
    let xt = Tensor::from_f32(ctx, "logits", &[1, 3], &x).unwrap();
    let tt = targets(ctx, &[1], &[1], 3, None).unwrap();
    let out = softmax_cross_entropy(ctx, &xt, &tt, None, true).unwrap();
    assert_eq!(out.loss(ctx).unwrap(), 2e4);
    assert_eq!(
        out.dlogits.unwrap().to_vec(ctx).unwrap(),
        vec![1.0, -1.0, 0.0]
    );
}

/// Every row ignored: loss 0 and a zero gradient (not NaN); without `grad` no gradient tensor.
#[test]
fn softmax_ce_all_ignored_and_no_grad() {
    let Some(ctx) = gpu() else { return };
    let xt = Tensor::from_f32(ctx, "logits", &[2, 3], &uniform(1, 6, -1.0, 1.0)).unwrap();
    let tt = targets(ctx, &[2], &[7, 7], 3, Some(7)).unwrap();
    let out = softmax_cross_entropy(ctx, &xt, &tt, Some(7), true).unwrap();
    assert_eq!(out.loss(ctx).unwrap(), 0.0);
    assert_eq!(out.dlogits.unwrap().to_vec(ctx).unwrap(), vec![0.0; 6]);
    let tt = targets(ctx, &[2], &[0, 2], 3, None).unwrap();
    let out = softmax_cross_entropy(ctx, &xt, &tt, None, false).unwrap();
    assert!(out.dlogits.is_none());
    assert!(out.loss(ctx).unwrap() > 0.0);
}

/// Host targets outside the vocabulary are a shape error naming the position; a device-resident
/// one makes the loss NaN; mismatched shapes are rejected.
#[test]
fn softmax_ce_target_validation() {
    let Some(ctx) = gpu() else { return };
    let err = targets(ctx, &[2, 2], &[0, 1, 3, 0], 3, Some(9)).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    assert!(err.to_string().contains("targets[1, 0] = 3"), "{err}");
    assert!(targets(ctx, &[2], &[9, 1], 3, Some(9)).is_ok());

    let xt = Tensor::from_f32(ctx, "logits", &[2, 3], &uniform(1, 6, -1.0, 1.0)).unwrap();
    let raw = Tensor::from_u32(ctx, "targets", &[2], &[1, 3]).unwrap();
    let out = softmax_cross_entropy(ctx, &xt, &raw, None, true).unwrap();
    assert!(out.loss(ctx).unwrap().is_nan());
    let wrong = Tensor::from_u32(ctx, "targets", &[3], &[1, 1, 1]).unwrap();
    let err = softmax_cross_entropy(ctx, &xt, &wrong, None, true).unwrap_err();
    assert!(err.to_string().starts_with("targets:"), "{err}");
}

/// The mean and the gradient come out bit-identical run to run (fixed summation orders).
#[test]
fn softmax_ce_is_deterministic() {
    let Some(ctx) = gpu() else { return };
    let (rows, vocab) = (700, 97);
    let xt = Tensor::from_f32(
        ctx,
        "logits",
        &[rows, vocab],
        &uniform(8, rows * vocab, -4.0, 4.0),
    )
    .unwrap();
    let tt = targets(
        ctx,
        &[rows],
        &targets_for(9, rows, vocab, Some(0)),
        vocab,
        Some(0),
    )
    .unwrap();
    let run = || {
        let out = softmax_cross_entropy(ctx, &xt, &tt, Some(0), true).unwrap();
        let mut bits = vec![out.loss(ctx).unwrap().to_bits()];
        bits.extend(
            out.dlogits
                .unwrap()
                .to_vec(ctx)
                .unwrap()
                .iter()
                .map(|v| v.to_bits()),
        );
        bits
    };
    assert!(run() == run(), "two softmax cross-entropy runs differ");
}
