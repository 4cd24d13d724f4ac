//! Reference of `loss.wgsl`: softmax cross-entropy with its gradient, and log-softmax. Rows are
//! max-subtracted like the kernels (the reference is at least as careful as what it checks).

/// Results of [`softmax_ce_forward`].
#[derive(Clone, Debug)]
pub struct CeRef {
    /// Mean loss over the rows whose target is not ignored (0 when there are none).
    pub loss: f64,
    /// `[N]`: each row's loss (0 for ignored rows, NaN for a target `>= V`).
    pub row_loss: Vec<f64>,
    /// `[N, V]`: gradient of the mean loss w.r.t. the logits (0 on ignored rows).
    pub dlogits: Vec<f64>,
    /// Rows whose target is not ignored.
    pub count: usize,
}

/// `(max, log sum exp(x - max))` of one row.
fn row_lse(x: &[f64]) -> (f64, f64) {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (m, x.iter().map(|v| (v - m).exp()).sum::<f64>().ln())
}

/// `logits [N, V]`, `targets [N]`: mean cross-entropy over non-ignored rows and its gradient.
pub fn softmax_ce_forward(
    logits: &[f64],
    targets: &[u32],
    vocab: usize,
    ignore: Option<u32>,
) -> CeRef {
    let rows = targets.len();
    let count = targets.iter().filter(|&&t| Some(t) != ignore).count();
    let mut row_loss = vec![0.0; rows];
    let mut dlogits = vec![0.0; rows * vocab];
    for n in 0..rows {
        let t = targets[n];
        if Some(t) == ignore {
            continue;
        }
        let x = &logits[n * vocab..(n + 1) * vocab];
        let (m, lse) = row_lse(x);
        row_loss[n] = if (t as usize) < vocab {
            lse - (x[t as usize] - m)
        } else {
            f64::NAN
        };
        for v in 0..vocab {
            let onehot = if v == t as usize { 1.0 } else { 0.0 };
            dlogits[n * vocab + v] = ((x[v] - m - lse).exp() - onehot) / count as f64;
        }
    }
    let loss = if count > 0 {
        row_loss.iter().sum::<f64>() / count as f64
    } else {
        0.0
    };
    CeRef {
        loss,
        row_loss,
        dlogits,
        count,
    }
}

/// `logits [N, V]` -> `[N, V]` log-probabilities, row by row.
pub fn log_softmax_forward(logits: &[f64], vocab: usize) -> Vec<f64> {
    let mut out = vec![0.0; logits.len()];
    for (x, o) in logits.chunks(vocab).zip(out.chunks_mut(vocab)) {
        let (m, lse) = row_lse(x);
        for v in 0..vocab {
            o[v] = x[v] - m - lse;
        }
    }
    out
}

/// `log_softmax_backward`: `dx = dy - exp(logp) * sum(dy)` row by row (rows of `vocab`).
pub fn log_softmax_backward(logp: &[f64], dy: &[f64], vocab: usize) -> Vec<f64> {
    let mut dx = vec![0.0; dy.len()];
    for ((lr, gr), dr) in logp
        .chunks(vocab)
        .zip(dy.chunks(vocab))
        .zip(dx.chunks_mut(vocab))
    {
        let s: f64 = gr.iter().sum();
        for v in 0..vocab {
            dr[v] = gr[v] - lr[v].exp() * s;
        }
    }
    dx
}
