//! A tiny model trained end to end on the device: embedding -> LSTM -> linear -> softmax
//! cross-entropy, Adam, gradient clipping over the parameter store, each step one submission.
//! Its loss must fall clearly within a few hundred steps on a repeating sequence.

use std::time::Instant;

use crate::common::gpu;
use wgrnn::nn::{
    AdamConfig, Embedding, Linear, Optimizer, ParamStore, record_softmax_cross_entropy, targets,
};
use wgrnn::{ForwardInputs, Mode, Recorder, Rnn, RnnConfig, Upstream};

/// The repeated pattern: after a 1 the next token depends on the token before it, so the LSTM
/// must remember one step back. Id 0 is padding.
const PATTERN: [u32; 6] = [1, 2, 1, 3, 1, 4];

#[test]
fn tiny_model_learns_a_repeating_sequence() {
    let Some(ctx) = gpu() else { return };
    let (vocab, dim, hidden, t_len, batch) = (6usize, 8usize, 16usize, 12usize, 4usize);
    let lengths = [12usize, 12, 12, 9];
    let mut ids = vec![0u32; t_len * batch];
    let mut tgt = vec![0u32; t_len * batch];
    for b in 0..batch {
        for t in 0..lengths[b] {
            ids[t * batch + b] = PATTERN[(t + b) % 6];
            tgt[t * batch + b] = PATTERN[(t + b + 1) % 6];
        }
    }

    let emb = Embedding::random(ctx, vocab, dim, Some(0), 1).unwrap();
    let rnn = Rnn::random(ctx, &RnnConfig::new(Mode::Lstm, dim, hidden), 2).unwrap();
    let dec = Linear::random(ctx, hidden, vocab, true, 3).unwrap();
    let demb = emb.zero_grad(ctx).unwrap();
    let rnn_grads = rnn.zero_grads(ctx).unwrap();
    let dec_grads = dec.zero_grads(ctx).unwrap();
    let mut store = ParamStore::new();
    emb.register(&mut store, "embedding", &demb).unwrap();
    store.add_rnn("rnn", &rnn, &rnn_grads).unwrap();
    dec.register(&mut store, "decoder", &dec_grads).unwrap();
    let mut opt = Optimizer::adam(ctx, &store, AdamConfig::adam(0.02)).unwrap();
    // The backward accumulates into the store's RNN gradients.
    let acc = rnn_grads;

    let idt = emb.ids(ctx, &[t_len, batch], &ids).unwrap();
    let tgt = targets(ctx, &[t_len, batch], &tgt, vocab, Some(0)).unwrap();
    let inp = ForwardInputs {
        lengths: Some(&lengths),
        ..Default::default()
    };
    let start = Instant::now();
    let mut losses = Vec::new();
    let steps = 300;
    for step in 0..steps {
        let mut rec = Recorder::new(ctx);
        store.record_zero_grads(&mut rec).unwrap();
        let x = emb.record_forward(&mut rec, &idt).unwrap();
        let (out, saved) = rnn.record_forward(&mut rec, &x, &inp, true).unwrap();
        let saved = saved.unwrap();
        let logits = dec.record_forward(&mut rec, &out.output).unwrap();
        let ce = record_softmax_cross_entropy(&mut rec, &logits, &tgt, Some(0), true).unwrap();
        let dlogits = ce.dlogits.as_ref().unwrap();
        let dh = dec
            .record_backward(&mut rec, &out.output, dlogits, &dec_grads, true)
            .unwrap();
        let up = Upstream {
            output: Some(&dh),
            ..Default::default()
        };
        let g = rnn
            .record_backward(&mut rec, &saved, &up, Some(&acc))
            .unwrap();
        emb.record_backward(&mut rec, &idt, &g.input, &demb, true)
            .unwrap();
        store.record_clip_grad_norm(&mut rec, 5.0).unwrap();
        opt.record_step(&mut rec, &store).unwrap();
        rec.submit().unwrap();
        if step % 50 == 0 || step + 1 == steps {
            losses.push((step, ce.loss(ctx).unwrap()));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("tiny model: {steps} Adam steps in {secs:.2} s; loss by step: {losses:?}");
    let first = losses[0].1;
    let last = losses[losses.len() - 1].1;
    assert!(first.is_finite() && last.is_finite(), "{losses:?}");
    // Chance level is ln 5 = 1.6 over the five real tokens; every position but the sequences'
    // first is predictable from one step of memory, so the loss must fall far below.
    assert!(
        last < 0.25 * first && last < 0.3,
        "loss did not fall clearly: {losses:?}"
    );
    assert_eq!(opt.steps(), steps as u64);
}
