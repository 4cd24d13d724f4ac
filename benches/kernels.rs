//! Criterion benches per kernel family: the GEMM, the fused forward step and the backward step,
//! and a language model's decoder (linear layer, softmax cross-entropy and their backward)
//! over vocabularies whose size is and is not a multiple of 4.
//! `WGRNN_BENCH_SMOKE=1` shrinks every size so CI-like machines can run them as a smoke test.
//!
//! The step benches time whole sequences with a one-feature input, so the input projection is
//! negligible and the time is the T fused step dispatches (per element: one timestep).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgrnn::WeightStorage;
use wgrnn::bench::{GemmBench, Pass, Shape, timed_runs};
use wgrnn::{Context, Mode};

fn smoke() -> bool {
    std::env::var("WGRNN_BENCH_SMOKE").is_ok_and(|v| v == "1")
}

fn ctx() -> Context {
    Context::new().expect("benches need a GPU adapter (see README)")
}

fn gemm(c: &mut Criterion) {
    let ctx = ctx();
    let sizes: &[usize] = if smoke() { &[64] } else { &[256, 512, 1024] };
    let mut g = c.benchmark_group("gemm");
    for &s in sizes {
        let b = GemmBench::new(&ctx, s, s, s).unwrap();
        g.throughput(Throughput::Elements(b.flops() as u64));
        g.bench_function(format!("{s}^3"), |it| it.iter(|| b.run(&ctx).unwrap()));
    }
    g.finish();
}

fn steps(c: &mut Criterion, pass: Pass, name: &str) {
    let ctx = ctx();
    let (hs, bs, t): (&[usize], &[usize], usize) = if smoke() {
        (&[16], &[2], 4)
    } else {
        (&[128, 256], &[1, 32], 32)
    };
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    for &h in hs {
        for &b in bs {
            for mode in [Mode::Lstm, Mode::Gru] {
                let shape = Shape {
                    label: "bench".into(),
                    mode,
                    input: 1,
                    hidden: h,
                    batch: b,
                    seq: t,
                    layers: 1,
                    bidirectional: false,
                };
                g.throughput(Throughput::Elements(t as u64));
                let id = format!("{}/H{h}/B{b}", shape.mode_name());
                g.bench_function(id, |it| {
                    it.iter_custom(|iters| {
                        timed_runs(&ctx, &shape, pass, WeightStorage::F32, iters).unwrap()
                    })
                });
            }
        }
    }
    g.finish();
}

fn step_forward(c: &mut Criterion) {
    steps(c, Pass::Inference, "step_forward");
}

fn step_backward(c: &mut Criterion) {
    steps(c, Pass::Backward, "step_backward");
}

/// One training step's decoder: `logits = x W^T + b` for `x [M, H]`, softmax cross-entropy and
/// both backwards, one submission, the loss read back (which waits for the device).
fn decoder(c: &mut Criterion) {
    use wgrnn::nn::{Linear, record_softmax_cross_entropy};
    use wgrnn::{Recorder, Tensor};
    let ctx = ctx();
    let (m, h, vocabs): (usize, usize, &[usize]) = if smoke() {
        (8, 4, &[5])
    } else {
        (1024, 128, &[65, 7050, 7052])
    };
    let mut g = c.benchmark_group("decoder");
    g.sample_size(10);
    for &v in vocabs {
        let x = Tensor::from_f32(&ctx, "x", &[m, h], &wgrnn::bench::bench_data(1, m * h)).unwrap();
        let lin = Linear::random(&ctx, h, v, true, 2).unwrap();
        let grads = lin.zero_grads(&ctx).unwrap();
        let ids: Vec<u32> = (0..m as u32).map(|i| i * 7919 % v as u32).collect();
        let targets = Tensor::from_u32(&ctx, "targets", &[m], &ids).unwrap();
        g.throughput(Throughput::Elements((6 * m * h * v) as u64));
        g.bench_function(format!("M{m}/H{h}/V{v}"), |it| {
            it.iter(|| {
                let mut rec = Recorder::new(&ctx);
                let logits = lin.record_forward(&mut rec, &x).unwrap();
                let ce =
                    record_softmax_cross_entropy(&mut rec, &logits, &targets, None, true).unwrap();
                let dl = ce.dlogits.as_ref().unwrap();
                lin.record_backward(&mut rec, &x, dl, &grads, false)
                    .unwrap();
                rec.submit().unwrap();
                ce.loss(&ctx).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, gemm, step_forward, step_backward, decoder);
criterion_main!(benches);
