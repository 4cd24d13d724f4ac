//! The smallest useful program: a 2-layer bidirectional LSTM forward on the GPU, its backward,
//! and the agreement of both with the CPU reference.
//!
//! `cargo run --release --example hello_lstm`

use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_backward, rnn_forward};
use wgrnn::{Context, ForwardInputs, Mode, Rnn, RnnConfig, RnnParams, Tensor, Upstream};

fn main() -> wgrnn::Result<()> {
    let ctx = Context::new()?;
    println!("adapter: {} ({})", ctx.adapter_name(), ctx.backend());
    let cfg = RnnConfig::new(Mode::Lstm, 8, 16)
        .layers(2)
        .bidirectional(true);
    let params = RnnParams::init(&cfg, 42)?;
    let rnn = Rnn::new(&ctx, &params)?;
    let (t, b) = (6, 3);
    let x: Vec<f32> = (0..t * b * 8).map(|i| ((i as f32) * 0.37).sin()).collect();
    let input = Tensor::from_f32(&ctx, "input", &[t, b, 8], &x)?; // [T, B, I]
    let lengths = [6, 4, 1]; // packed-sequence lengths
    let inp = ForwardInputs {
        lengths: Some(&lengths),
        ..Default::default()
    };
    let (out, saved) = rnn.forward_train(&ctx, &input, &inp)?; // output [T, B, 2*16]
    let dy = Tensor::from_f32(&ctx, "dy", &[t, b, 32], &vec![1.0; t * b * 32])?;
    let grads = rnn.backward(
        &ctx,
        &saved,
        &Upstream {
            output: Some(&dy),
            ..Default::default()
        },
        None,
    )?;

    let rp = RefParams::from_params(&params);
    let rf = rnn_forward(
        &rp,
        &RefInputs {
            x: x.iter().map(|&v| v as f64).collect(),
            seq: t,
            batch: b,
            lengths: Some(lengths.to_vec()),
            train: true,
            ..Default::default()
        },
    );
    let rg = rnn_backward(&rp, &rf, Some(&vec![1.0; t * b * 32]), None, None);
    let err = |got: &[f32], want: &[f64]| {
        let n: f64 = got
            .iter()
            .zip(want)
            .map(|(&g, &w)| (g as f64 - w).powi(2))
            .sum();
        let d: f64 = want.iter().map(|w| w * w).sum();
        (n / d).sqrt()
    };
    println!(
        "output {:?}: relative error {:.1e}",
        out.output.shape(),
        err(&out.output.to_vec(&ctx)?, &rf.output)
    );
    println!(
        "grad_input: relative error {:.1e}",
        err(&grads.input.to_vec(&ctx)?, &rg.input)
    );
    for (v, (name, want)) in grads.param_views(&cfg).iter().zip(&rg.params).take(2) {
        println!(
            "grad.{name}: relative error {:.1e}",
            err(&v.to_host(&ctx)?.data, want)
        );
    }
    Ok(())
}
