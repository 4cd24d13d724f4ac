//! A decoder trained one timestep at a time, whose next input is a function of its previous
//! output (what PyTorch users write with `nn.LSTMCell` in a loop, and what a whole-sequence
//! forward cannot express): from a start token s it must emit s, s+3, s+6, ... (mod V), and
//! its only input after the first step is `x_{t+1} = tanh(F y_t)`.
//!
//!   x_0 = embedding(s)                         [B, H]
//!   y_t, state = LSTM step(x_t, state)         [B, H]   (Rnn::record_step_train)
//!   logits_t = D y_t                           [B, V]   -> cross-entropy with (s + 3t) mod V
//!   x_{t+1} = tanh(F y_t)                      [B, H]
//!
//! The backward chains `Rnn::record_step_backward` from the last step to the first, adding to
//! each step's output gradient the gradient that came back through the next step's input. The
//! whole loop, forward and backward, and the Adam step are one submission; only the loss is
//! read back.
//!
//! `cargo run --release --example step_loop`

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgrnn::nn::{
    AdamConfig, Embedding, Linear, Optimizer, ParamStore, record_softmax_cross_entropy, targets,
};
use wgrnn::{Context, Mode, Recorder, Rnn, RnnConfig, RnnState, Tensor, ops};

const V: usize = 10;
const H: usize = 32;
const B: usize = 16;
const T: usize = 8;
const STEPS: usize = 300;

fn main() -> wgrnn::Result<()> {
    let ctx = Context::new()?;
    let emb = Embedding::random(&ctx, V, H, None, 1)?;
    let rnn = Rnn::random(&ctx, &RnnConfig::new(Mode::Lstm, H, H), 2)?;
    let out = Linear::random(&ctx, H, V, true, 3)?;
    let feed = Linear::random(&ctx, H, H, true, 4)?;
    let (demb, drnn) = (emb.zero_grad(&ctx)?, rnn.zero_grads(&ctx)?);
    let (dout, dfeed) = (out.zero_grads(&ctx)?, feed.zero_grads(&ctx)?);
    let mut store = ParamStore::new();
    emb.register(&mut store, "embedding", &demb)?;
    store.add_rnn("rnn", &rnn, &drnn)?;
    out.register(&mut store, "out", &dout)?;
    feed.register(&mut store, "feed", &dfeed)?;
    let mut opt = Optimizer::adam(&ctx, &store, AdamConfig::adam(1e-2))?;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (mut first, mut last) = (None, 0.0f32);

    for step in 0..STEPS {
        let starts: Vec<u32> = (0..B).map(|_| rng.random_range(0..V as u32)).collect();
        let ids = emb.ids(&ctx, &[B], &starts)?;
        let tgts: Vec<Tensor> = (0..T)
            .map(|t| {
                let v: Vec<u32> = starts
                    .iter()
                    .map(|&s| (s + 3 * t as u32) % V as u32)
                    .collect();
                targets(&ctx, &[B], &v, V, None)
            })
            .collect::<wgrnn::Result<_>>()?;
        let mut rec = Recorder::new(&ctx);
        store.record_zero_grads(&mut rec)?;

        // Forward, one step at a time.
        let mut x = emb.record_forward(&mut rec, &ids)?; // [B, H]
        let mut state: Option<RnnState> = None;
        let (mut ys, mut xs, mut saved, mut ces) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (t, tgt) in tgts.iter().enumerate() {
            let (y, next, s) = rnn.record_step_train(&mut rec, &x, state.as_ref(), t, 0)?;
            let logits = out.record_forward(&mut rec, &y)?;
            ces.push(record_softmax_cross_entropy(
                &mut rec, &logits, tgt, None, true,
            )?);
            let pre = feed.record_forward(&mut rec, &y)?;
            let nx = ops::record_tanh(&mut rec, &pre)?;
            xs.push(x);
            ys.push(y);
            saved.push(s);
            state = Some(next);
            x = nx;
        }

        // Backward, from the last step to the first.
        let mut dx_next: Option<Tensor> = None; // gradient w.r.t. x_{t+1}
        let mut dstate: Option<RnnState> = None;
        for t in (0..T).rev() {
            let dlogits = ces[t].dlogits.as_ref().expect("asked for it");
            let dy = out.record_backward(&mut rec, &ys[t], dlogits, &dout, true)?;
            if let Some(dxn) = &dx_next {
                // x_{t+1} = tanh(F y_t): back through the tanh and F into dy_t.
                let nx = &xs[t + 1]; // dx_next exists only below the last step
                let dpre = Tensor::zeros(&ctx, "grad feed", &[B, H])?;
                ops::record_tanh_backward(&mut rec, dxn, nx, &dpre)?;
                let dy_feed = feed.record_backward(&mut rec, &ys[t], &dpre, &dfeed, true)?;
                ops::record_accumulate(&mut rec, &dy, &dy_feed, 1.0)?;
            }
            let (dx, prev) =
                rnn.record_step_backward(&mut rec, &saved[t], Some(&dy), dstate.as_ref(), &drnn)?;
            dx_next = Some(dx);
            dstate = Some(prev);
        }
        let dx0 = dx_next.expect("T >= 1");
        emb.record_backward(&mut rec, &ids, &dx0, &demb, true)?;
        store.record_clip_grad_norm(&mut rec, 5.0)?;
        opt.record_step(&mut rec, &store)?;
        // The loss: the mean over steps of each step's mean cross-entropy, summed on the device.
        let total = Tensor::zeros(&ctx, "loss", &[1])?;
        for ce in &ces {
            ops::record_accumulate(&mut rec, &total, &ce.loss, 1.0 / T as f32)?;
        }
        rec.submit()?;

        if step % 25 == 0 || step + 1 == STEPS {
            let loss = total.to_vec(&ctx)?[0];
            println!("step {step} loss {loss:.4}");
            first.get_or_insert(loss);
            last = loss;
        }
    }
    let first = first.unwrap_or(f32::NAN);
    println!(
        "first loss {first:.4}, last loss {last:.4} (chance: ln {V} = {:.4})",
        (V as f32).ln()
    );
    if last.is_nan() || last >= 0.5 * first {
        eprintln!("step_loop: the loss did not fall below half its first value");
        std::process::exit(1);
    }
    Ok(())
}
