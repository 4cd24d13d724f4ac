//! Criterion benches of whole calls: inference and train (forward + backward) over a few B, T, H,
//! and the inference schedules (per layer, wavefront, single workgroup) and f16 weights side by
//! side. `WGRNN_BENCH_SMOKE=1` shrinks every size so CI-like machines can run them as a smoke
//! test.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgrnn::bench::{Pass, Shape, timed_runs};
use wgrnn::{Context, Mode, Persistent, WeightStorage};

fn sequences(c: &mut Criterion) {
    let ctx = Context::new().expect("benches need a GPU adapter (see README)");
    let smoke = std::env::var("WGRNN_BENCH_SMOKE").is_ok_and(|v| v == "1");
    let shapes: &[(usize, usize, usize)] = if smoke {
        &[(8, 2, 4)]
    } else {
        &[(128, 16, 32), (256, 32, 64), (512, 8, 16)]
    };
    let mut g = c.benchmark_group("sequence");
    g.sample_size(10);
    for &(h, b, t) in shapes {
        for pass in [Pass::Inference, Pass::Train] {
            let shape = lstm2(h, b, t);
            g.throughput(Throughput::Elements((b * t) as u64));
            g.bench_function(format!("lstm2/{}/H{h}/B{b}/T{t}", pass.name()), |it| {
                it.iter_custom(|iters| {
                    timed_runs(&ctx, &shape, pass, WeightStorage::F32, iters).unwrap()
                })
            });
        }
    }
    g.finish();
}

/// A 2-layer unidirectional LSTM with I = H.
fn lstm2(h: usize, b: usize, t: usize) -> Shape {
    Shape {
        label: "bench".into(),
        mode: Mode::Lstm,
        input: h,
        hidden: h,
        batch: b,
        seq: t,
        layers: 2,
        bidirectional: false,
    }
}

/// A 2-layer unidirectional LSTM's inference on each schedule, f32 and f16 weights.
fn schedules(c: &mut Criterion) {
    let smoke = std::env::var("WGRNN_BENCH_SMOKE").is_ok_and(|v| v == "1");
    let (h, b, t) = if smoke { (8, 2, 4) } else { (64, 4, 64) };
    let shape = lstm2(h, b, t);
    let mut g = c.benchmark_group("schedule");
    g.sample_size(10);
    g.throughput(Throughput::Elements((b * t) as u64));
    for (name, wavefront, persistent) in [
        ("per-layer", false, Persistent::Never),
        ("wavefront", true, Persistent::Never),
        ("single-workgroup", true, Persistent::Always),
    ] {
        let ctx = Context::new().expect("benches need a GPU adapter (see README)");
        ctx.set_wavefront(wavefront);
        ctx.set_persistent(persistent);
        for (wname, w) in [("f32", WeightStorage::F32), ("f16", WeightStorage::F16)] {
            g.bench_function(format!("lstm2/H{h}/B{b}/T{t}/{name}/{wname}"), |it| {
                it.iter_custom(|iters| timed_runs(&ctx, &shape, Pass::Inference, w, iters).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, sequences, schedules);
criterion_main!(benches);
