//! Training one timestep at a time (`Rnn::record_step_train` / `record_step_backward`, issue
//! 12): T chained steps against one whole-sequence forward + backward, a loop whose input is
//! its previous output against finite differences of the reference, and bad input.

use crate::common::{assert_close, f64s, gpu, uniform};
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_forward};
use wgrnn::{
    Context, ForwardInputs, LayerParams, Mode, Recorder, Rnn, RnnConfig, RnnParams, RnnState,
    Tensor, Upstream,
};

/// Same bound as the conformance tests (docs/NUMERICS.md): the step path runs the same kernels.
const TOL: f64 = 1e-4;

fn up(ctx: &Context, name: &str, shape: &[usize], seed: u64) -> (Tensor, Vec<f32>) {
    let n = shape.iter().product();
    let v = uniform(seed, n, -1.0, 1.0);
    (Tensor::from_f32(ctx, name, shape, &v).unwrap(), v)
}

fn read(ctx: &Context, t: &Tensor) -> Vec<f32> {
    t.to_vec(ctx).unwrap()
}

fn grads_of(ctx: &Context, rnn: &Rnn, g: &[LayerParams]) -> Vec<(String, Vec<f32>)> {
    let cfg = rnn.config();
    g.iter()
        .enumerate()
        .flat_map(|(l, lp)| lp.views(cfg, l))
        .map(|v| (v.name.clone(), v.to_host(ctx).unwrap().data))
        .collect()
}

#[test]
fn chained_steps_equal_the_whole_sequence() {
    let Some(ctx) = gpu() else { return };
    let (t_len, b, i) = (4, 3, 5);
    let mut case = 0u64;
    for mode in [Mode::Lstm, Mode::Gru, Mode::RnnTanh] {
        for (layers, dropout, hidden) in [(1, 0.0, 7), (2, 0.0, 8), (2, 0.3, 7)] {
            case += 1;
            let tag = format!("{mode:?} L={layers} p={dropout} H={hidden}");
            let cfg = RnnConfig::new(mode, i, hidden)
                .layers(layers)
                .dropout(dropout);
            let rnn = Rnn::random(ctx, &cfg, case).unwrap();
            let lstm = mode == Mode::Lstm;
            let sn = [layers, b, hidden];
            let (x, xv) = up(ctx, "input", &[t_len, b, i], 10 * case);
            let (h0, _) = up(ctx, "h0", &sn, 10 * case + 1);
            let (c0, _) = up(ctx, "c0", &sn, 10 * case + 2);
            let (dy, dyv) = up(ctx, "dy", &[t_len, b, hidden], 10 * case + 3);
            let (dh, _) = up(ctx, "dh_n", &sn, 10 * case + 4);
            let (dc, _) = up(ctx, "dc_n", &sn, 10 * case + 5);
            let seed = 99;

            // Whole sequence.
            let inp = ForwardInputs {
                h0: Some(&h0),
                c0: lstm.then_some(&c0),
                dropout_seed: seed,
                ..Default::default()
            };
            let (out, st) = rnn.forward_train(ctx, &x, &inp).unwrap();
            let whole_g = rnn.zero_grads(ctx).unwrap();
            let upw = Upstream {
                output: Some(&dy),
                h_n: Some(&dh),
                c_n: lstm.then_some(&dc),
            };
            let g = rnn.backward(ctx, &st, &upw, Some(&whole_g)).unwrap();

            // Step by step, forward then backward, all in one submission.
            let step_g = rnn.zero_grads(ctx).unwrap();
            let mut rec = Recorder::new(ctx);
            let mut state = RnnState {
                h: h0.clone(),
                c: lstm.then(|| c0.clone()),
            };
            let mut outs = Vec::new();
            let mut saved = Vec::new();
            for t in 0..t_len {
                let xt =
                    Tensor::from_f32(ctx, "x_t", &[b, i], &xv[t * b * i..(t + 1) * b * i]).unwrap();
                let (y, next, s) = rnn
                    .record_step_train(&mut rec, &xt, Some(&state), t, seed)
                    .unwrap();
                outs.push(y);
                saved.push(s);
                state = next;
            }
            let mut dstate = RnnState {
                h: dh.clone(),
                c: lstm.then(|| dc.clone()),
            };
            let mut dxs = vec![None; t_len];
            for t in (0..t_len).rev() {
                let dyt = Tensor::from_f32(
                    ctx,
                    "dy_t",
                    &[b, hidden],
                    &dyv[t * b * hidden..(t + 1) * b * hidden],
                )
                .unwrap();
                let (dx, prev) = rnn
                    .record_step_backward(&mut rec, &saved[t], Some(&dyt), Some(&dstate), &step_g)
                    .unwrap();
                dxs[t] = Some(dx);
                dstate = prev;
            }
            let sub = rec.submit().unwrap();
            assert!(sub.dispatches > 0);

            let wo = read(ctx, &out.output);
            let wdx = read(ctx, &g.input);
            for t in 0..t_len {
                let w = &wo[t * b * hidden..(t + 1) * b * hidden];
                assert_close(
                    &format!("{tag} output t={t}"),
                    case,
                    &read(ctx, &outs[t]),
                    &f64s(w),
                    TOL,
                );
                let w = &wdx[t * b * i..(t + 1) * b * i];
                assert_close(
                    &format!("{tag} dx t={t}"),
                    case,
                    &read(ctx, dxs[t].as_ref().unwrap()),
                    &f64s(w),
                    TOL,
                );
            }
            assert_close(
                &format!("{tag} h_n"),
                case,
                &read(ctx, &state.h),
                &f64s(&read(ctx, &out.h_n)),
                TOL,
            );
            assert_close(
                &format!("{tag} dh0"),
                case,
                &read(ctx, &dstate.h),
                &f64s(&read(ctx, &g.h0)),
                TOL,
            );
            if lstm {
                let c = |s: &RnnState| read(ctx, s.c.as_ref().unwrap());
                assert_close(
                    &format!("{tag} c_n"),
                    case,
                    &c(&state),
                    &f64s(&read(ctx, out.c_n.as_ref().unwrap())),
                    TOL,
                );
                assert_close(
                    &format!("{tag} dc0"),
                    case,
                    &c(&dstate),
                    &f64s(&read(ctx, g.c0.as_ref().unwrap())),
                    TOL,
                );
            }
            for ((name, a), (_, w)) in grads_of(ctx, &rnn, &step_g)
                .iter()
                .zip(grads_of(ctx, &rnn, &whole_g))
            {
                assert_close(&format!("{tag} grad.{name}"), case, a, &f64s(&w), TOL);
            }
        }
    }
}

/// A loop the whole-sequence API cannot express: each step's input is the previous step's
/// output (I = H). J = sum_t <y_t, w_t>; the GPU's gradients of x_0, h0 and every parameter
/// against f64 central differences of the same loop on the reference (f32 against f64: 1e-4).
#[test]
fn feedback_loop_matches_finite_differences() {
    let Some(ctx) = gpu() else { return };
    let (t_len, b, h) = (5, 2, 6);
    for (k, mode) in [Mode::Lstm, Mode::Gru, Mode::RnnTanh]
        .into_iter()
        .enumerate()
    {
        let cfg = RnnConfig::new(mode, h, h).layers(2);
        let params = RnnParams::init(&cfg, 40 + k as u64).unwrap();
        let rnn = Rnn::new(ctx, &params).unwrap();
        let x0v = uniform(50 + k as u64, b * h, -1.0, 1.0);
        let wv = uniform(60 + k as u64, t_len * b * h, -1.0, 1.0);
        let lstm = mode == Mode::Lstm;

        // GPU: forward loop, then the chained backward; dy_t = w_t + the next input's gradient.
        let grads = rnn.zero_grads(ctx).unwrap();
        let mut rec = Recorder::new(ctx);
        let x0 = Tensor::from_f32(ctx, "x0", &[b, h], &x0v).unwrap();
        let mut x = x0.clone();
        let mut state: Option<RnnState> = None;
        let mut saved = Vec::new();
        for t in 0..t_len {
            let (y, next, s) = rnn
                .record_step_train(&mut rec, &x, state.as_ref(), t, 0)
                .unwrap();
            saved.push(s);
            state = Some(next);
            x = y;
        }
        let mut dnext: Option<Tensor> = None; // gradient w.r.t. the next step's input
        let mut dstate: Option<RnnState> = None;
        for t in (0..t_len).rev() {
            let w = Tensor::from_f32(ctx, "w_t", &[b, h], &wv[t * b * h..(t + 1) * b * h]).unwrap();
            let dy = match &dnext {
                Some(d) => wgrnn::ops::record_add(&mut rec, &w, d).unwrap(),
                None => w,
            };
            let (dx, prev) = rnn
                .record_step_backward(&mut rec, &saved[t], Some(&dy), dstate.as_ref(), &grads)
                .unwrap();
            dnext = Some(dx);
            dstate = Some(prev);
        }
        rec.submit().unwrap();

        // Reference loop in f64.
        let j = |p: &RefParams, x0: &[f64]| -> f64 {
            let mut x = x0.to_vec();
            let (mut hs, mut cs) = (None, None);
            let mut total = 0.0;
            for t in 0..t_len {
                let f = rnn_forward(
                    p,
                    &RefInputs {
                        x: x.clone(),
                        seq: 1,
                        batch: b,
                        h0: hs.clone(),
                        c0: cs.clone(),
                        ..Default::default()
                    },
                );
                total += f
                    .output
                    .iter()
                    .zip(&wv[t * b * h..])
                    .map(|(y, &w)| y * w as f64)
                    .sum::<f64>();
                hs = Some(f.h_n.clone());
                cs = f.c_n.clone();
                x = f.output;
            }
            total
        };
        let p0 = RefParams::from_params(&params);
        let x0d = f64s(&x0v);
        let eps = 1e-6;
        let fd_x: Vec<f64> = (0..x0d.len())
            .map(|i| {
                let (mut a, mut m) = (x0d.clone(), x0d.clone());
                a[i] += eps;
                m[i] -= eps;
                (j(&p0, &a) - j(&p0, &m)) / (2.0 * eps)
            })
            .collect();
        let tag = format!("{mode:?}");
        assert_close(
            &format!("{tag} dx0"),
            k as u64,
            &read(ctx, dnext.as_ref().unwrap()),
            &fd_x,
            TOL,
        );
        let st = dstate.unwrap();
        let zero_h0 = vec![0.0f64; 2 * b * h];
        let fd_h0: Vec<f64> = (0..zero_h0.len())
            .map(|i| {
                let run = |e: f64| {
                    let mut x = x0d.clone();
                    let mut h0 = zero_h0.clone();
                    h0[i] += e;
                    let (mut hs, mut cs) = (Some(h0), lstm.then(|| zero_h0.clone()));
                    let mut total = 0.0;
                    for t in 0..t_len {
                        let f = rnn_forward(
                            &p0,
                            &RefInputs {
                                x: x.clone(),
                                seq: 1,
                                batch: b,
                                h0: hs.clone(),
                                c0: cs.clone(),
                                ..Default::default()
                            },
                        );
                        total += f
                            .output
                            .iter()
                            .zip(&wv[t * b * h..])
                            .map(|(y, &w)| y * w as f64)
                            .sum::<f64>();
                        hs = Some(f.h_n.clone());
                        cs = f.c_n.clone();
                        x = f.output;
                    }
                    total
                };
                (run(eps) - run(-eps)) / (2.0 * eps)
            })
            .collect();
        assert_close(
            &format!("{tag} dh0"),
            k as u64,
            &read(ctx, &st.h),
            &fd_h0,
            TOL,
        );
        for (name, g) in grads_of(ctx, &rnn, &grads) {
            let fd: Vec<f64> = (0..g.len())
                .map(|i| {
                    let pert = |e: f64| {
                        let mut p = p0.clone();
                        for (n, v) in p.named_mut() {
                            if n == name {
                                v[i] += e;
                            }
                        }
                        j(&p, &x0d)
                    };
                    (pert(eps) - pert(-eps)) / (2.0 * eps)
                })
                .collect();
            assert_close(&format!("{tag} grad.{name}"), k as u64, &g, &fd, TOL);
        }
    }
}

#[test]
fn bad_step_input_is_refused() {
    let Some(ctx) = gpu() else { return };
    let rnn = Rnn::random(ctx, &RnnConfig::new(Mode::Lstm, 3, 4).layers(2), 0).unwrap();
    let other = Rnn::random(ctx, &RnnConfig::new(Mode::Lstm, 3, 5).layers(2), 0).unwrap();
    let bi = Rnn::random(ctx, &RnnConfig::new(Mode::Gru, 3, 4).bidirectional(true), 0).unwrap();
    let (x, _) = up(ctx, "x", &[2, 3], 1);
    let mut rec = Recorder::new(ctx);
    let bad = RnnState {
        h: Tensor::zeros(ctx, "h", &[2, 2, 5]).unwrap(),
        c: Some(Tensor::zeros(ctx, "c", &[2, 2, 4]).unwrap()),
    };
    let e = rnn
        .record_step_train(&mut rec, &x, Some(&bad), 0, 0)
        .unwrap_err();
    assert!(e.to_string().contains("state.h"), "{e}");
    let no_c = RnnState {
        h: Tensor::zeros(ctx, "h", &[2, 2, 4]).unwrap(),
        c: None,
    };
    assert!(
        rnn.record_step_train(&mut rec, &x, Some(&no_c), 0, 0)
            .unwrap_err()
            .to_string()
            .contains("state.c")
    );
    let e = bi.record_step_train(&mut rec, &x, None, 0, 0).unwrap_err();
    assert!(e.to_string().contains("unidirectional"), "{e}");
    let (_, _, saved) = rnn.record_step_train(&mut rec, &x, None, 0, 0).unwrap();
    let g = other.zero_grads(ctx).unwrap();
    let e = other
        .record_step_backward(&mut rec, &saved, None, None, &g)
        .unwrap_err();
    assert!(e.to_string().contains("another stack"), "{e}");
    let e = rnn
        .record_step_backward(
            &mut rec,
            &saved,
            Some(&x),
            None,
            &rnn.zero_grads(ctx).unwrap(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("grad_output"), "{e}");
}
