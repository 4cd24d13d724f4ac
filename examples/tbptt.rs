//! Truncated backpropagation through time: a character-level LSTM language model trained on a
//! stream cut into chunks of T steps. Each chunk starts from the previous chunk's final state
//! (`h_n`, `c_n` become the next `h0`, `c0`), so the model sees the whole stream, but the
//! backward stops at the chunk's start: the gradient w.r.t. h0 is simply not used.
//!
//! `cargo run --release --example tbptt`

use wgrnn::nn::{
    AdamConfig, Embedding, Linear, Optimizer, ParamStore, record_softmax_cross_entropy, targets,
};
use wgrnn::{Context, ForwardInputs, Mode, Recorder, Rnn, RnnConfig, Upstream};

const TEXT: &str = "Shall I compare thee to a summer's day? Thou art more lovely and more temperate: \
Rough winds do shake the darling buds of May, And summer's lease hath all too short a date; \
Sometime too hot the eye of heaven shines, And often is his gold complexion dimm'd; ";

fn main() -> wgrnn::Result<()> {
    let ctx = Context::new()?;
    let mut chars: Vec<char> = TEXT.chars().collect();
    chars.sort();
    chars.dedup();
    let vocab = chars.len();
    let ids: Vec<u32> = TEXT
        .chars()
        .map(|c| chars.binary_search(&c).unwrap_or(0) as u32)
        .collect();
    let (batch, t_len, hidden, dim) = (4usize, 16usize, 64usize, 32usize);
    // B parallel streams, each a contiguous quarter of the text.
    let per = ids.len() / batch;
    let chunks = (per - 1) / t_len;

    let emb = Embedding::random(&ctx, vocab, dim, None, 1)?;
    let rnn = Rnn::random(&ctx, &RnnConfig::new(Mode::Lstm, dim, hidden), 2)?;
    let dec = Linear::random(&ctx, hidden, vocab, true, 3)?;
    let (demb, drnn, ddec) = (
        emb.zero_grad(&ctx)?,
        rnn.zero_grads(&ctx)?,
        dec.zero_grads(&ctx)?,
    );
    let mut store = ParamStore::new();
    emb.register(&mut store, "embedding", &demb)?;
    store.add_rnn("rnn", &rnn, &drnn)?;
    dec.register(&mut store, "decoder", &ddec)?;
    let mut opt = Optimizer::adam(&ctx, &store, AdamConfig::adam(0.01))?;

    for epoch in 0..30 {
        let mut state: Option<(wgrnn::Tensor, Option<wgrnn::Tensor>)> = None; // carried, no gradient
        let mut total = 0.0;
        for c in 0..chunks {
            let mut x_ids = vec![0u32; t_len * batch];
            let mut y_ids = vec![0u32; t_len * batch];
            for b in 0..batch {
                for t in 0..t_len {
                    let i = b * per + c * t_len + t;
                    x_ids[t * batch + b] = ids[i];
                    y_ids[t * batch + b] = ids[i + 1];
                }
            }
            let xt = emb.ids(&ctx, &[t_len, batch], &x_ids)?;
            let yt = targets(&ctx, &[t_len, batch], &y_ids, vocab, None)?;
            let inp = ForwardInputs {
                h0: state.as_ref().map(|s| &s.0),
                c0: state.as_ref().and_then(|s| s.1.as_ref()),
                ..Default::default()
            };
            let mut rec = Recorder::new(&ctx);
            store.record_zero_grads(&mut rec)?;
            let x = emb.record_forward(&mut rec, &xt)?;
            let (out, saved) = rnn.record_forward(&mut rec, &x, &inp, true)?;
            let saved = saved.ok_or_else(|| wgrnn::Error::config("no saved state"))?;
            let logits = dec.record_forward(&mut rec, &out.output)?;
            let ce = record_softmax_cross_entropy(&mut rec, &logits, &yt, None, true)?;
            let dlogits = ce
                .dlogits
                .as_ref()
                .ok_or_else(|| wgrnn::Error::config("no gradient"))?;
            let dh = dec.record_backward(&mut rec, &out.output, dlogits, &ddec, true)?;
            let up = Upstream {
                output: Some(&dh),
                ..Default::default()
            };
            let g = rnn.record_backward(&mut rec, &saved, &up, Some(&drnn))?; // g.h0 is dropped
            emb.record_backward(&mut rec, &xt, &g.input, &demb, true)?;
            store.record_clip_grad_norm(&mut rec, 1.0)?;
            opt.record_step(&mut rec, &store)?;
            rec.submit()?;
            total += ce.loss(&ctx)?;
            state = Some((out.h_n, out.c_n));
        }
        if epoch % 5 == 0 || epoch == 29 {
            println!(
                "epoch {epoch:2}: mean loss {:.3} nats/char",
                total / chunks as f32
            );
        }
    }
    Ok(())
}
