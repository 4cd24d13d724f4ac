//! Checks that the host refuses bad writes and bad sizes before they reach the device, and that
//! the submission counters count what really happens (review findings, issue 13).

use wgrnn::nn::{AdamConfig, Embedding, Linear, OptimConfig, Optimizer, ParamStore};
use wgrnn::{
    DType, Error, ForwardInputs, HostTensor, Mode, Recorder, Rnn, RnnConfig, Tensor, Upstream,
};

use crate::common::{gpu, uniform};

#[test]
fn counters_count_submissions_and_readbacks() {
    if gpu().is_none() {
        return;
    }
    // A context of its own: the shared one counts the other tests' work running meanwhile.
    let own = wgrnn::Context::new().unwrap();
    let ctx = &own;
    let rnn = Rnn::random(ctx, &RnnConfig::new(Mode::Gru, 3, 5).layers(2), 0).unwrap();
    let x = Tensor::from_f32(ctx, "input", &[4, 2, 3], &uniform(1, 24, -1.0, 1.0)).unwrap();
    let before = ctx.counts();
    let out = rnn.forward(ctx, &x, &ForwardInputs::default()).unwrap();
    let c = ctx.counts().since(&before);
    assert_eq!((c.submits, c.readbacks), (1, 0), "{c:?}");
    assert!(c.dispatches >= 8, "{c:?}");
    let before = ctx.counts();
    out.output.to_vec(ctx).unwrap();
    out.h_n.to_vec(ctx).unwrap();
    let c = ctx.counts().since(&before);
    assert_eq!((c.submits, c.readbacks, c.dispatches), (0, 2, 0), "{c:?}");
}

/// Profiling times every dispatch of a call: the table's counts add up to the dispatches the
/// call made, under the kernels' entry names, and its times are finite and non-negative.
#[test]
fn profile_times_every_dispatch() {
    let own = wgrnn::Context::new().unwrap();
    let ctx = &own;
    if !ctx.set_profile(true) {
        eprintln!("skipped: the adapter has no timestamp queries");
        return;
    }
    let rnn = Rnn::random(ctx, &RnnConfig::new(Mode::Lstm, 3, 5).layers(2), 0).unwrap();
    let x = Tensor::from_f32(ctx, "input", &[4, 2, 3], &uniform(1, 24, -1.0, 1.0)).unwrap();
    let before = ctx.counts();
    rnn.forward(ctx, &x, &ForwardInputs::default()).unwrap();
    let c = ctx.counts().since(&before);
    let rows = ctx.profile().unwrap();
    let timed: u64 = rows.iter().map(|r| r.1).sum();
    assert_eq!(timed, c.dispatches, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.2.is_finite() && r.2 >= 0.0),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.0.starts_with("step_forward")),
        "{rows:?}"
    );
    assert!(
        rows.windows(2).all(|w| w[0].2 >= w[1].2),
        "not sorted: {rows:?}"
    );
    ctx.set_profile(false);
    assert!(ctx.profile().is_none());
}

#[test]
fn refused_learning_rate_does_not_stay() {
    let Some(ctx) = gpu() else { return };
    let w = Tensor::zeros(ctx, "w", &[3]).unwrap();
    let g = Tensor::zeros(ctx, "g", &[3]).unwrap();
    let mut store = ParamStore::new();
    store.add("w", &w, &g).unwrap();
    let mut opt = Optimizer::adam(ctx, &store, AdamConfig::adam(1e-3)).unwrap();
    assert!(opt.set_lr(f32::NAN).is_err());
    assert!(opt.set_lr(-1.0).is_err());
    match opt.config() {
        OptimConfig::Adam(c) => assert_eq!(c.lr, 1e-3),
        other => panic!("{other:?}"),
    }
    opt.set_lr(0.5).unwrap();
    match opt.config() {
        OptimConfig::Adam(c) => assert_eq!(c.lr, 0.5),
        other => panic!("{other:?}"),
    }
}

/// A host tensor whose data is longer than its view would overwrite the reverse direction's
/// block of the same device tensor.
#[test]
fn mis_sized_host_tensors_are_refused() {
    let Some(ctx) = gpu() else { return };
    let cfg = RnnConfig::new(Mode::Lstm, 2, 3).bidirectional(true);
    let rnn = Rnn::random(ctx, &cfg, 0).unwrap();
    let mut params = rnn.params(ctx).unwrap();
    let reverse_before = params.get("weight_ih_l0_reverse").unwrap().clone();
    let t = params.get_mut("weight_ih_l0").unwrap();
    let n = t.data.len();
    t.data = vec![7.0; 2 * n]; // shape still [12, 2]
    let e = rnn.set_params(ctx, &params).unwrap_err();
    assert!(e.to_string().contains("weight_ih_l0"), "{e}");
    let after = rnn.params(ctx).unwrap();
    assert_eq!(after.get("weight_ih_l0_reverse").unwrap(), &reverse_before);
    assert!(Rnn::new(ctx, &params).is_err());

    let mut store = ParamStore::new();
    store
        .add_rnn("rnn", &rnn, &rnn.zero_grads(ctx).unwrap())
        .unwrap();
    let long = HostTensor {
        shape: vec![12, 2],
        data: vec![1.0; 48],
    };
    let e = store.set_param(ctx, "rnn.weight_ih_l0", &long).unwrap_err();
    assert!(e.to_string().contains("48 values"), "{e}");
    assert_eq!(
        store
            .param_to_host(ctx, "rnn.weight_ih_l0_reverse")
            .unwrap(),
        reverse_before
    );
}

#[test]
fn recorder_copy_and_clear_check_bounds() {
    let Some(ctx) = gpu() else { return };
    let a = Tensor::zeros(ctx, "alpha", &[4]).unwrap();
    let b = Tensor::zeros(ctx, "beta", &[6]).unwrap();
    let mut rec = Recorder::new(ctx);
    let e = rec.copy(&a, 2, &b, 0, 3).unwrap_err();
    assert!(
        matches!(&e, Error::Shape { name, .. } if name == "alpha"),
        "{e}"
    );
    let e = rec.copy(&a, 0, &b, 4, 3).unwrap_err();
    assert!(
        matches!(&e, Error::Shape { name, .. } if name == "beta"),
        "{e}"
    );
    let e = rec.clear(&b, usize::MAX, 2).unwrap_err();
    assert!(
        matches!(&e, Error::Shape { name, .. } if name == "beta"),
        "{e}"
    );
    rec.copy(&a, 0, &b, 2, 4).unwrap();
    rec.clear(&b, 0, 6).unwrap();
    rec.submit().unwrap();
}

#[test]
fn absurd_sizes_are_refused_before_allocation() {
    let Some(ctx) = gpu() else { return };
    let huge = usize::MAX / 2;
    let e = Tensor::empty(ctx, "x", &[huge, 4, 4], DType::F32).unwrap_err();
    assert!(matches!(e, Error::Limit { .. }), "{e}");
    assert!(Tensor::zeros(ctx, "x", &[1 << 20, 1 << 20]).is_err());
    let cfg = RnnConfig::new(Mode::Lstm, 256, 100_000_000);
    assert!(matches!(
        Rnn::random(ctx, &cfg, 0).unwrap_err(),
        Error::Limit { .. }
    ));
    assert!(matches!(
        Embedding::random(ctx, 1 << 30, 1 << 10, None, 0).unwrap_err(),
        Error::Limit { .. }
    ));
    assert!(matches!(
        Linear::random(ctx, huge, 3, true, 0).unwrap_err(),
        Error::Limit { .. }
    ));
}

#[test]
fn backward_refuses_a_foreign_saved_state() {
    let Some(ctx) = gpu() else { return };
    let a = Rnn::random(ctx, &RnnConfig::new(Mode::Lstm, 3, 4), 0).unwrap();
    let b = Rnn::random(ctx, &RnnConfig::new(Mode::Lstm, 3, 5), 0).unwrap();
    let x = Tensor::from_f32(ctx, "input", &[2, 1, 3], &uniform(2, 6, -1.0, 1.0)).unwrap();
    let (_, st) = a.forward_train(ctx, &x, &ForwardInputs::default()).unwrap();
    let e = b
        .backward(ctx, &st, &Upstream::default(), None)
        .unwrap_err();
    assert!(e.to_string().contains("another stack"), "{e}");
    a.backward(ctx, &st, &Upstream::default(), None).unwrap();
}
