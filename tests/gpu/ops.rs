//! Small ops: dropout masks and global-norm clipping against their CPU twins.

use crate::common::{assert_close, f64s, gpu, uniform};
use wgrnn::nn::clip_grad_norm;
use wgrnn::reference::reduce::clip_scale;
use wgrnn::{Mode, Rnn, RnnConfig, Tensor};

/// p = 0 dropout equals no dropout: the training forward matches the inference forward.
#[test]
fn dropout_zero_is_identity() {
    let Some(ctx) = gpu() else { return };
    let cfg = RnnConfig::new(Mode::Lstm, 6, 10).layers(3).dropout(0.0);
    let rnn = Rnn::random(ctx, &cfg, 1).unwrap();
    let x = Tensor::from_f32(ctx, "input", &[5, 2, 6], &uniform(3, 60, -1.0, 1.0)).unwrap();
    let a = rnn
        .forward(ctx, &x, &Default::default())
        .unwrap()
        .output
        .to_vec(ctx)
        .unwrap();
    let (b, _) = rnn.forward_train(ctx, &x, &Default::default()).unwrap();
    assert_eq!(a, b.output.to_vec(ctx).unwrap());
}

/// The mask drops the expected fraction (binomial: within 4 standard deviations).
#[test]
fn dropout_fraction() {
    use wgrnn::reference::dropout::keep;
    for p in [0.1f32, 0.5, 0.9] {
        let n = 200_000u32;
        let kept = (0..n)
            .filter(|&i| keep(42, 1, i / 1000, (i / 10) % 100, i % 10, p))
            .count() as f64;
        let want = (1.0 - p as f64) * n as f64;
        let sd = (n as f64 * p as f64 * (1.0 - p as f64)).sqrt();
        assert!(
            (kept - want).abs() < 4.0 * sd,
            "p={p}: kept {kept}, expected {want} +- {sd}"
        );
    }
}

/// Clipping: the norm matches the CPU computation; gradients above the threshold are scaled,
/// below it left bit-identical.
#[test]
fn clip_matches_reference() {
    let Some(ctx) = gpu() else { return };
    let sizes = [1usize, 17, 40_000];
    let data: Vec<Vec<f32>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| uniform(i as u64, n, -1.0, 1.0))
        .collect();
    let want: Vec<Vec<f64>> = data.iter().map(|d| f64s(d)).collect();
    let refs: Vec<&[f64]> = want.iter().map(|v| &v[..]).collect();
    for max_norm in [1.0f32, 1e6] {
        let ts: Vec<Tensor> = data
            .iter()
            .zip(sizes)
            .map(|(d, n)| Tensor::from_f32(ctx, "g", &[n], d).unwrap())
            .collect();
        let tr: Vec<&Tensor> = ts.iter().collect();
        let norm = clip_grad_norm(ctx, &tr, max_norm).unwrap();
        let (rn, scale) = clip_scale(&refs, max_norm as f64);
        assert!(
            ((norm as f64 - rn) / rn).abs() < 1e-5,
            "norm {norm} vs {rn}"
        );
        for (t, w) in ts.iter().zip(&want) {
            let got = t.to_vec(ctx).unwrap();
            if scale == 1.0 {
                assert_eq!(
                    got,
                    data[ts.iter().position(|x| x.same_buffer(t)).unwrap()],
                    "below the threshold gradients must be untouched"
                );
            } else {
                let scaled: Vec<f64> = w.iter().map(|v| v * scale).collect();
                assert_close("clipped", 0, &got, &scaled, 1e-6);
            }
        }
    }
}
