//! Optimisers, the parameter store and checkpoints: SGD and Adam against hand-computed steps
//! and the f64 twins over several steps, state and parameter save/load round trips, errors that
//! name the tensor and the file, clipping and zeroing across the whole store.

use std::path::PathBuf;

use crate::common::{assert_close, f64s, gpu, uniform};
use wgrnn::nn::{AdamConfig, Embedding, Linear, Optimizer, ParamStore, SgdConfig};
use wgrnn::reference::optim::{adam_update, sgd_update};
use wgrnn::reference::reduce::clip_scale;
use wgrnn::{Context, Error, HostTensor, Mode, Rnn, RnnConfig, Tensor};

/// Parameters after a few optimiser steps, f32 update arithmetic against f64: each step rounds
/// a handful of operations (~1e-7 relative of the step), accumulated over 5 steps; 1e-6
/// relative to the parameters is far below a wrong term (an lr-sized change, ~1e-2).
const OPT_TOL: f64 = 1e-6;

/// A unique path in the temporary directory for this test.
fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrnn-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A store of three slots: a bidirectional LSTM layer (8 named views in 4 slots), an
/// embedding and a linear layer, parameters and gradients seeded.
fn model(ctx: &Context) -> (ParamStore, Rnn) {
    let cfg = RnnConfig::new(Mode::Lstm, 3, 4).bidirectional(true);
    let rnn = Rnn::random(ctx, &cfg, 1).unwrap();
    let mut store = ParamStore::new();
    store
        .add_rnn("rnn", &rnn, &rnn.zero_grads(ctx).unwrap())
        .unwrap();
    let emb = Embedding::random(ctx, 7, 3, Some(0), 2).unwrap();
    emb.register(&mut store, "embedding", &emb.zero_grad(ctx).unwrap())
        .unwrap();
    let lin = Linear::random(ctx, 8, 7, true, 3).unwrap();
    lin.register(&mut store, "decoder", &lin.zero_grads(ctx).unwrap())
        .unwrap();
    (store, rnn)
}

/// Writes seeded gradients into every slot; returns them.
fn set_grads(ctx: &Context, store: &ParamStore, seed: u64) -> Vec<Vec<f32>> {
    store
        .slots()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let g = uniform(seed * 100 + i as u64, s.grad.numel(), -1.0, 1.0);
            s.grad.write_range(ctx, 0, &g).unwrap();
            g
        })
        .collect()
}

fn params(ctx: &Context, store: &ParamStore) -> Vec<Vec<f32>> {
    store
        .slots()
        .iter()
        .map(|s| s.param.to_vec(ctx).unwrap())
        .collect()
}

#[test]
fn store_names_views_and_slots() {
    let Some(ctx) = gpu() else { return };
    let (store, _) = model(ctx);
    let names: Vec<&str> = store.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "rnn.weight_ih_l0",
            "rnn.weight_hh_l0",
            "rnn.bias_ih_l0",
            "rnn.bias_hh_l0",
            "rnn.weight_ih_l0_reverse",
            "rnn.weight_hh_l0_reverse",
            "rnn.bias_ih_l0_reverse",
            "rnn.bias_hh_l0_reverse",
            "embedding.weight",
            "decoder.weight",
            "decoder.bias"
        ]
    );
    // The LSTM layer's 8 views live in 4 tensors; each underlying tensor is one slot.
    assert_eq!(store.slots().len(), 7);
    let rev = store.get("rnn.weight_hh_l0_reverse").unwrap();
    assert_eq!(
        (rev.slot, rev.offset, &rev.shape[..]),
        (1, 16 * 4, &[16, 4][..])
    );
    store.check_covered().unwrap();

    // Tied weights: a second name for the same tensor reuses its slot and gradient.
    let mut tied = store.clone();
    let emb = &store.slots()[4];
    tied.add("decoder.tied", &emb.param, &emb.grad).unwrap();
    assert_eq!(tied.slots().len(), 7);
    let other = Tensor::zeros(ctx, "g", emb.param.shape()).unwrap();
    let err = tied.add("again", &emb.param, &other).unwrap_err();
    assert!(err.to_string().contains("another gradient"), "{err}");
    let err = tied.add("decoder.tied", &emb.param, &emb.grad).unwrap_err();
    assert!(err.to_string().contains("registered twice"), "{err}");

    // A view that leaves part of its tensor unnamed is refused by optimisers.
    let mut partial = ParamStore::new();
    let p = Tensor::zeros(ctx, "p", &[10]).unwrap();
    let g = Tensor::zeros(ctx, "g", &[10]).unwrap();
    partial.add_view("head", &p, &g, 0, &[4]).unwrap();
    let err = Optimizer::adam(ctx, &partial, AdamConfig::adam(1e-3)).unwrap_err();
    assert!(err.to_string().contains("element 4"), "{err}");
    let err = partial.add_view("tail", &p, &g, 6, &[5]).unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
}

/// One SGD step with momentum and weight decay, and a second, computed by hand.
#[test]
fn sgd_step_matches_hand_computed() {
    let Some(ctx) = gpu() else { return };
    let p = Tensor::from_f32(ctx, "p", &[2], &[1.0, -2.0]).unwrap();
    let g = Tensor::from_f32(ctx, "g", &[2], &[0.5, 0.25]).unwrap();
    let mut store = ParamStore::new();
    store.add("w", &p, &g).unwrap();
    let cfg = SgdConfig::new(0.1).momentum(0.9).weight_decay(0.01);
    let mut opt = Optimizer::sgd(ctx, &store, cfg).unwrap();
    opt.step(ctx, &store).unwrap();
    // g' = g + 0.01 p = (0.51, 0.23); buf = g'; p = p - 0.1 buf = (0.949, -2.023)
    let got = p.to_vec(ctx).unwrap();
    assert_close("sgd step 1", 0, &got, &[0.949, -2.023], OPT_TOL);
    opt.step(ctx, &store).unwrap();
    // g' = (0.5 + 0.00949, 0.25 - 0.02023) = (0.50949, 0.22977)
    // buf = 0.9 (0.51, 0.23) + g' = (0.96849, 0.43677); p = (0.949 - 0.096849, -2.023 - 0.043677)
    assert_close(
        "sgd step 2",
        0,
        &p.to_vec(ctx).unwrap(),
        &[0.852151, -2.066677],
        OPT_TOL,
    );
    assert_eq!(opt.steps(), 2);
}

/// Adam's first step moves each parameter by lr * g / (|g| + eps), about lr against the
/// gradient's sign; AdamW first shrinks the parameter by lr * wd.
#[test]
fn adam_step_matches_hand_computed() {
    let Some(ctx) = gpu() else { return };
    for (cfg, want) in [
        // p - 0.01 * g / (|g| + 1e-8) for g = (0.5, 0.25)
        (AdamConfig::adam(0.01), [0.990_000_000_2, -2.009_999_999_6]),
        // L2: g' = g + 0.2 p = (0.7, -0.15): the second parameter now moves up
        (
            AdamConfig::adam(0.01).weight_decay(0.2),
            [0.990_000_000_143, -1.990_000_000_667],
        ),
        // AdamW: p (1 - 0.01 * 0.2) = (0.998, -1.996), then the plain step on g
        (
            AdamConfig::adamw(0.01).weight_decay(0.2),
            [0.988_000_000_2, -2.005_999_999_6],
        ),
    ] {
        let p = Tensor::from_f32(ctx, "p", &[2], &[1.0, -2.0]).unwrap();
        let g = Tensor::from_f32(ctx, "g", &[2], &[0.5, 0.25]).unwrap();
        let mut store = ParamStore::new();
        store.add("w", &p, &g).unwrap();
        let mut opt = Optimizer::adam(ctx, &store, cfg).unwrap();
        opt.step(ctx, &store).unwrap();
        let what = format!("adam step {cfg:?}");
        assert_close(&what, 0, &p.to_vec(ctx).unwrap(), &want, OPT_TOL);
    }
}

/// Five steps of every optimiser variant over the whole model equal the f64 twins.
#[test]
fn optimizers_match_reference() {
    let Some(ctx) = gpu() else { return };
    let sgd = [
        SgdConfig::new(0.05),
        SgdConfig::new(0.05)
            .momentum(0.9)
            .dampening(0.1)
            .weight_decay(0.01),
        SgdConfig::new(0.05).momentum(0.8).nesterov(true),
    ];
    let adam = [
        AdamConfig::adam(0.01).weight_decay(0.05),
        AdamConfig::adamw(0.01).betas(0.8, 0.99).eps(1e-6),
    ];
    let configs: Vec<wgrnn::nn::OptimConfig> = sgd
        .into_iter()
        .map(wgrnn::nn::OptimConfig::Sgd)
        .chain(adam.into_iter().map(wgrnn::nn::OptimConfig::Adam))
        .collect();
    for (ci, cfg) in configs.into_iter().enumerate() {
        let (store, _) = model(ctx);
        let mut opt = Optimizer::new(ctx, &store, cfg).unwrap();
        let mut p: Vec<Vec<f64>> = params(ctx, &store).iter().map(|v| f64s(v)).collect();
        let mut s1: Vec<Vec<f64>> = p.iter().map(|v| vec![0.0; v.len()]).collect();
        let mut s2 = s1.clone();
        for step in 1..=5u64 {
            let grads = set_grads(ctx, &store, ci as u64 * 10 + step);
            opt.step(ctx, &store).unwrap();
            for i in 0..p.len() {
                let g = f64s(&grads[i]);
                match cfg {
                    wgrnn::nn::OptimConfig::Sgd(c) => {
                        sgd_update(&c, &mut p[i], &g, &mut s1[i], step == 1)
                    }
                    wgrnn::nn::OptimConfig::Adam(c) => {
                        adam_update(&c, &mut p[i], &g, &mut s1[i], &mut s2[i], step)
                    }
                }
            }
        }
        for (i, got) in params(ctx, &store).iter().enumerate() {
            assert_close(&format!("{cfg:?} slot {i}"), ci as u64, got, &p[i], OPT_TOL);
        }
    }
}

/// Saving and loading parameters and optimiser state, then continuing, gives the same bits as
/// never stopping; the step count comes back; mismatches are errors naming tensor and file.
#[test]
fn checkpoint_round_trip() {
    let Some(ctx) = gpu() else { return };
    let params_path = temp_path("params.safetensors");
    let state_path = temp_path("adam.safetensors");
    let cfg = AdamConfig::adamw(0.01);

    let (store, _) = model(ctx);
    let mut opt = Optimizer::adam(ctx, &store, cfg).unwrap();
    for s in 1..=3 {
        set_grads(ctx, &store, s);
        opt.step(ctx, &store).unwrap();
    }
    store.save(ctx, &params_path).unwrap();
    opt.save(ctx, &store, &state_path).unwrap();
    for s in 4..=5 {
        set_grads(ctx, &store, s);
        opt.step(ctx, &store).unwrap();
    }
    let straight = params(ctx, &store);

    let (fresh, _) = model(ctx);
    fresh.load(ctx, &params_path).unwrap();
    let mut opt2 = Optimizer::adam(ctx, &fresh, cfg).unwrap();
    opt2.load(ctx, &fresh, &state_path).unwrap();
    assert_eq!(opt2.steps(), 3);
    for s in 4..=5 {
        set_grads(ctx, &fresh, s);
        opt2.step(ctx, &fresh).unwrap();
    }
    assert!(
        params(ctx, &fresh) == straight,
        "resumed training differs from uninterrupted"
    );

    // A plain-Adam optimiser refuses AdamW state; SGD with momentum refuses it too.
    let mut wrong = Optimizer::adam(ctx, &fresh, AdamConfig::adam(0.01)).unwrap();
    let err = wrong.load(ctx, &fresh, &state_path).unwrap_err();
    assert!(
        matches!(err, Error::Format { .. }) && err.to_string().contains("adamw"),
        "{err}"
    );
    let mut sgd = Optimizer::sgd(ctx, &fresh, SgdConfig::new(0.1).momentum(0.9)).unwrap();
    assert!(sgd.load(ctx, &fresh, &state_path).is_err());

    // A model with one more parameter: the file lacks it; one with one fewer: the file has extra.
    let (mut bigger, _) = model(ctx);
    let p = Tensor::zeros(ctx, "p", &[2]).unwrap();
    let g = Tensor::zeros(ctx, "g", &[2]).unwrap();
    bigger.add("extra.weight", &p, &g).unwrap();
    let err = bigger.load(ctx, &params_path).unwrap_err().to_string();
    assert!(
        err.contains("params.safetensors") && err.contains("extra.weight: missing"),
        "{err}"
    );
    let mut smaller = ParamStore::new();
    let e = Embedding::random(ctx, 7, 3, Some(0), 2).unwrap();
    e.register(&mut smaller, "embedding", &e.zero_grad(ctx).unwrap())
        .unwrap();
    let err = smaller.load(ctx, &params_path).unwrap_err().to_string();
    assert!(err.contains("not a tensor of this model"), "{err}");
    // Same name, other shape.
    let mut reshaped = ParamStore::new();
    let e = Embedding::random(ctx, 8, 3, None, 2).unwrap();
    e.register(&mut reshaped, "embedding", &e.zero_grad(ctx).unwrap())
        .unwrap();
    let err = reshaped.load(ctx, &params_path).unwrap_err().to_string();
    assert!(err.contains("embedding.weight: shape [7, 3]"), "{err}");

    // A file that is not safetensors; a directory that does not exist (no partial file left).
    std::fs::write(temp_path("junk.safetensors"), b"not a checkpoint").unwrap();
    let err = store.load(ctx, temp_path("junk.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    let missing_dir = temp_path("no-such-dir").join("params.safetensors");
    let err = store.save(ctx, &missing_dir).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("no-such-dir"),
        "{err}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(params_path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    // The saved file holds PyTorch-style names a Python reader sees as they are.
    let host: HostTensor = fresh.param_to_host(ctx, "rnn.bias_hh_l0_reverse").unwrap();
    assert_eq!(host.shape, [16]);
}

/// Clipping and zeroing over the store cover every slot once.
#[test]
fn store_clips_and_zeroes_every_gradient() {
    let Some(ctx) = gpu() else { return };
    let (store, _) = model(ctx);
    let grads = set_grads(ctx, &store, 9);
    let refs: Vec<Vec<f64>> = grads.iter().map(|g| f64s(g)).collect();
    let slices: Vec<&[f64]> = refs.iter().map(|v| &v[..]).collect();
    let (norm, scale) = clip_scale(&slices, 1.0);
    let got = store.clip_grad_norm(ctx, 1.0).unwrap();
    assert!(
        ((got as f64 - norm) / norm).abs() < 1e-6,
        "norm {got} vs {norm}"
    );
    for (s, r) in store.slots().iter().zip(&refs) {
        let want: Vec<f64> = r.iter().map(|v| v * scale).collect();
        assert_close("clipped", 9, &s.grad.to_vec(ctx).unwrap(), &want, 1e-6);
    }
    store.zero_grads(ctx).unwrap();
    for s in store.slots() {
        assert!(s.grad.to_vec(ctx).unwrap().iter().all(|&v| v == 0.0));
    }
}
