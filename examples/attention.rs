//! One attention layer composed from the ops vocabulary and trained on a task that needs it:
//! each sequence (ragged lengths, padded) holds one marker token somewhere, and the model must
//! name the token that follows the marker. No fixed position works; the layer has to find it.
//!
//! Per sequence b (batch-major, `[B, S, ...]`):
//!   x = embedding(ids)                        [B, S, E]
//!   f = [x_s ; x_{s-1}]                       [B, S, 2E]   (concat with the previous token)
//!   k = tanh(f W_k^T + b_k)                   [B, S, A]    keys
//!   a = masked_softmax(q k^T, lengths)        [B, 1, S]    q: one learned query [A]
//!   c = a f                                   [B, 1, 2E]   context (the values are f)
//!   logits = c W_o^T + b_o                    [B, V]       -> cross-entropy with the answer
//! The key of position s sees the previous token, so "the token after the marker" is the
//! position whose previous token is the marker. The backward runs through every op by hand;
//! a whole training step is one submission and only the loss is read back.
//!
//! `cargo run --release --example attention`

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgrnn::nn::{
    AdamConfig, Embedding, Linear, Optimizer, ParamStore, record_softmax_cross_entropy, targets,
};
use wgrnn::ops;
use wgrnn::{Context, Recorder, Tensor};

const VOCAB: usize = 12; // 0 padding, 1 the marker, 2.. content
const PAD: u32 = 0;
const MARKER: u32 = 1;
/// Batch, longest sequence, embedding and key sizes.
const B: usize = 64;
const S: usize = 12;
const E: usize = 16;
const A: usize = 16;
const STEPS: usize = 300;

/// A batch: ids `[B, S]` (padded), lengths, and the answers.
fn batch(rng: &mut ChaCha8Rng) -> (Vec<u32>, Vec<usize>, Vec<u32>) {
    let mut ids = vec![PAD; B * S];
    let mut lens = Vec::new();
    let mut answers = Vec::new();
    for b in 0..B {
        let len = rng.random_range(4..=S);
        let marker_at = rng.random_range(0..len - 1);
        for s in 0..len {
            ids[b * S + s] = rng.random_range(2..VOCAB as u32);
        }
        ids[b * S + marker_at] = MARKER;
        answers.push(ids[b * S + marker_at + 1]);
        lens.push(len);
    }
    (ids, lens, answers)
}

fn main() -> wgrnn::Result<()> {
    let ctx = Context::new()?;
    let emb = Embedding::random(&ctx, VOCAB, E, Some(PAD), 1)?;
    let keys = Linear::random(&ctx, 2 * E, A, true, 2)?;
    let out = Linear::random(&ctx, 2 * E, VOCAB, true, 3)?;
    let q = Tensor::from_f32(&ctx, "query", &[A], &[0.0; A])?;
    let (demb, dkeys, dout) = (
        emb.zero_grad(&ctx)?,
        keys.zero_grads(&ctx)?,
        out.zero_grads(&ctx)?,
    );
    let dq = Tensor::zeros(&ctx, "grad.query", &[A])?;
    let mut store = ParamStore::new();
    emb.register(&mut store, "embedding", &demb)?;
    keys.register(&mut store, "keys", &dkeys)?;
    out.register(&mut store, "out", &dout)?;
    store.add("query", &q, &dq)?;
    let mut opt = Optimizer::adam(&ctx, &store, AdamConfig::adam(0.01))?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut first, mut last) = (None, 0.0);

    for step in 0..STEPS {
        let (ids, lens, answers) = batch(&mut rng);
        let ids_t = emb.ids(&ctx, &[B, S], &ids)?;
        let len_t = ops::lengths(&ctx, "lengths", &lens, S)?;
        let tgt = targets(&ctx, &[B], &answers, VOCAB, None)?;
        let mut rec = Recorder::new(&ctx);
        store.record_zero_grads(&mut rec)?;

        // Forward.
        let x = emb.record_forward(&mut rec, &ids_t)?; // [B, S, E]
        let prev = Tensor::empty(&ctx, "previous token", &[B, S, E], wgrnn::DType::F32)?;
        rec.copy(&x, 0, &prev, E, (B * S - 1) * E)?; // row r+1 <- row r ...
        for b in 0..B {
            rec.clear(&prev, b * S * E, E)?; // ... and nothing before each sequence's start
        }
        let f = ops::record_concat(&mut rec, &[&x, &prev])?; // [B, S, 2E]
        let k_pre = keys.record_forward(&mut rec, &f)?; // [B, S, A]
        let k = ops::record_tanh(&mut rec, &k_pre)?;
        let qb = q.as_view().with_leading(&[1])?.broadcast(&[B, 1])?; // [B, 1, A], stride 0
        let scores = ops::record_bmm(&mut rec, &qb, &k, false, true)?; // [B, 1, S]
        let att = ops::record_masked_softmax(&mut rec, &scores, Some(&len_t), 1)?;
        let c = ops::record_bmm(&mut rec, &att, &f, false, false)?; // [B, 1, 2E]
        let c2 = c.reshape(&[B, 2 * E])?;
        let logits = out.record_forward(&mut rec, &c2)?; // [B, V]
        let ce = record_softmax_cross_entropy(&mut rec, &logits, &tgt, None, true)?;

        // Backward, op by op.
        let dlogits = ce.dlogits.as_ref().expect("asked for the gradient");
        let dc = out.record_backward(&mut rec, &c2, dlogits, &dout, true)?;
        let dc = dc.reshape(&[B, 1, 2 * E])?;
        let datt = Tensor::zeros(&ctx, "grad attention", &[B, 1, S])?;
        let df = Tensor::zeros(&ctx, "grad features", &[B, S, 2 * E])?;
        ops::record_bmm_backward(
            &mut rec,
            &att,
            &f,
            false,
            false,
            &dc,
            Some(&datt.as_view()),
            Some(&df.as_view()),
        )?;
        let dscores = Tensor::zeros(&ctx, "grad scores", &[B, 1, S])?;
        ops::record_masked_softmax_backward(&mut rec, &att, &datt, Some(&len_t), 1, &dscores)?;
        let dqb = Tensor::zeros(&ctx, "grad query rows", &[B, 1, A])?;
        let dk = Tensor::zeros(&ctx, "grad keys", &[B, S, A])?;
        ops::record_bmm_backward(
            &mut rec,
            &qb,
            &k,
            false,
            true,
            &dscores,
            Some(&dqb.as_view()),
            Some(&dk.as_view()),
        )?;
        ops::record_bias_backward(&mut rec, &dqb, &dq)?; // the shared query: sum over the batch
        let dk_pre = Tensor::zeros(&ctx, "grad key pre-activations", &[B, S, A])?;
        ops::record_tanh_backward(&mut rec, &dk, &k, &dk_pre)?;
        let df_keys = keys.record_backward(&mut rec, &f, &dk_pre, &dkeys, true)?;
        ops::record_accumulate(&mut rec, &df, &df_keys, 1.0)?;
        // Split the feature gradient: the token's own half, and the previous token's half
        // shifted back one position (dropping what fell on each sequence's start).
        let parts = ops::split(&df, &[E, E])?;
        let dx = ops::record_copy(&mut rec, &parts[0])?; // [B, S, E]
        let dprev = ops::record_copy(&mut rec, &parts[1])?;
        for b in 0..B {
            rec.clear(&dprev, b * S * E, E)?;
        }
        let flat = |t: &Tensor| t.as_view().with_leading(&[B * S]);
        ops::record_accumulate(
            &mut rec,
            &flat(&dx)?.narrow(0, B * S - 1)?,
            &flat(&dprev)?.narrow(1, B * S - 1)?,
            1.0,
        )?;
        emb.record_backward(&mut rec, &ids_t, &dx, &demb, true)?;
        store.record_clip_grad_norm(&mut rec, 5.0)?;
        opt.record_step(&mut rec, &store)?;
        rec.submit()?;

        if step % 25 == 0 || step + 1 == STEPS {
            let loss = ce.loss(&ctx)?;
            println!("step {step} loss {loss:.4}");
            first.get_or_insert(loss);
            last = loss;
        }
    }
    let first = first.unwrap_or(f32::NAN);
    println!(
        "first loss {first:.4}, last loss {last:.4} (chance: ln {VOCAB} = {:.4})",
        (VOCAB as f32).ln()
    );
    if last.is_nan() || last >= 0.5 * first {
        eprintln!("attention: the loss did not fall below half its first value");
        std::process::exit(1);
    }
    Ok(())
}
