//! PyTorch interop: safetensors weights round trip, the `wgrnn run` command's outputs against the
//! library and the reference, and every error case of its contract (exit status 2, a message
//! naming the tensor, no output file left behind).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

use crate::common::{assert_close, f64s, gpu, uniform};
use wgrnn::interop::{FileData, load_weights, read_safetensors, save_weights};
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_backward, rnn_forward};
use wgrnn::{Mode, RnnConfig, RnnParams};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrnn-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A tensor to write: name, dtype, shape, little-endian bytes.
struct T(String, Dtype, Vec<usize>, Vec<u8>);

fn f32t(name: &str, shape: &[usize], v: &[f32]) -> T {
    T(
        name.into(),
        Dtype::F32,
        shape.to_vec(),
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}
fn i64t(name: &str, v: &[i64]) -> T {
    T(
        name.into(),
        Dtype::I64,
        vec![v.len()],
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

fn write(path: &Path, ts: &[T], mode: Option<&str>) {
    let views: Vec<(String, TensorView)> = ts
        .iter()
        .map(|t| {
            (
                t.0.clone(),
                TensorView::new(t.1, t.2.clone(), &t.3).unwrap(),
            )
        })
        .collect();
    let meta = mode.map(|m| HashMap::from([("mode".to_string(), m.to_string())]));
    std::fs::write(path, safetensors::tensor::serialize(views, meta).unwrap()).unwrap();
}

fn weights_tensors(p: &RnnParams) -> Vec<T> {
    p.iter().map(|(n, t)| f32t(n, &t.shape, &t.data)).collect()
}

fn wgrnn(args: &[&str]) -> (i32, String) {
    let (code, _, err) = crate::common::wgrnn(args);
    (code, err)
}

fn run(dir: &Path, backend: &str, extra: &[&str]) -> (i32, String) {
    let w = dir.join("w.safetensors");
    let i = dir.join("in.safetensors");
    let o = dir.join("out.safetensors");
    let mut a = vec![
        "run",
        "--weights",
        w.to_str().unwrap(),
        "--input",
        i.to_str().unwrap(),
    ];
    a.extend(["--output", o.to_str().unwrap(), "--backend", backend]);
    a.extend(extra);
    wgrnn(&a)
}

fn out_tensor(dir: &Path, name: &str) -> Vec<f32> {
    let f = read_safetensors(dir.join("out.safetensors")).unwrap();
    match &f
        .tensors
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .1
        .data
    {
        FileData::Float(v) => v.clone(),
        _ => panic!("{name} not float"),
    }
}

#[test]
fn weights_round_trip() {
    let d = tmpdir("roundtrip");
    for (i, mode) in [Mode::Lstm, Mode::Gru, Mode::RnnTanh, Mode::RnnRelu]
        .into_iter()
        .enumerate()
    {
        let cfg = RnnConfig::new(mode, 5, 7)
            .layers(2)
            .bidirectional(i % 2 == 0)
            .bias(i != 3);
        let p = RnnParams::init(&cfg, i as u64).unwrap();
        let f = d.join(format!("{i}.safetensors"));
        save_weights(&f, &p).unwrap();
        assert_eq!(load_weights(&f).unwrap(), p);
        // And through the device.
        if let Some(ctx) = gpu() {
            let rnn = wgrnn::Rnn::new(ctx, &p).unwrap();
            assert_eq!(rnn.params(ctx).unwrap(), p);
        }
    }
}

/// f16 and bf16 weights are accepted and converted to f32 exactly.
#[test]
fn half_precision_weights() {
    let d = tmpdir("half");
    let cfg = RnnConfig::new(Mode::Gru, 3, 4);
    let p = RnnParams::init(&cfg, 9).unwrap();
    for dt in [Dtype::F16, Dtype::BF16] {
        let ts: Vec<T> = p
            .iter()
            .map(|(n, t)| {
                let bytes = t
                    .data
                    .iter()
                    .flat_map(|&x| match dt {
                        Dtype::F16 => half::f16::from_f32(x).to_le_bytes(),
                        _ => half::bf16::from_f32(x).to_le_bytes(),
                    })
                    .collect();
                T(n.into(), dt, t.shape.clone(), bytes)
            })
            .collect();
        let f = d.join("w.safetensors");
        write(&f, &ts, None);
        let got = load_weights(&f).unwrap();
        for (n, t) in p.iter() {
            for (a, b) in got.get(n).unwrap().data.iter().zip(&t.data) {
                let want = match dt {
                    Dtype::F16 => half::f16::from_f32(*b).to_f32(),
                    _ => half::bf16::from_f32(*b).to_f32(),
                };
                assert_eq!(*a, want, "{n} {dt:?}");
            }
        }
    }
}

/// `wgrnn run` on GPU and CPU agrees with the reference, forward and backward, batch-first too.
#[test]
fn run_command_matches_reference() {
    if gpu().is_none() {
        return;
    }
    let d = tmpdir("run");
    let cfg = RnnConfig::new(Mode::Lstm, 3, 5)
        .layers(2)
        .bidirectional(true);
    let p = RnnParams::init(&cfg, 4).unwrap();
    write(&d.join("w.safetensors"), &weights_tensors(&p), Some("LSTM"));
    let (t, b, h) = (6, 3, 5);
    let x = uniform(1, t * b * 3, -1.0, 1.0);
    let h0 = uniform(2, 4 * b * h, -1.0, 1.0);
    let dy = uniform(3, t * b * 2 * h, -1.0, 1.0);
    let lengths = [6i64, 1, 4];
    write(
        &d.join("in.safetensors"),
        &[
            f32t("input", &[t, b, 3], &x),
            f32t("h0", &[4, b, h], &h0),
            i64t("lengths", &lengths),
            f32t("grad_output", &[t, b, 2 * h], &dy),
        ],
        None,
    );
    let rp = RefParams::from_params(&p);
    let rf = rnn_forward(
        &rp,
        &RefInputs {
            x: f64s(&x),
            seq: t,
            batch: b,
            h0: Some(f64s(&h0)),
            lengths: Some(vec![6, 1, 4]),
            ..Default::default()
        },
    );
    let rg = rnn_backward(&rp, &rf, Some(&f64s(&dy)), None, None);
    for backend in ["gpu", "cpu"] {
        let (code, err) = run(&d, backend, &[]);
        assert_eq!(code, 0, "{backend}: {err}");
        assert_close("run output", 4, &out_tensor(&d, "output"), &rf.output, 1e-5);
        assert_close("run h_n", 4, &out_tensor(&d, "h_n"), &rf.h_n, 1e-5);
        assert_close(
            "run c_n",
            4,
            &out_tensor(&d, "c_n"),
            rf.c_n.as_ref().unwrap(),
            1e-5,
        );
        assert_close(
            "run grad_input",
            4,
            &out_tensor(&d, "grad_input"),
            &rg.input,
            1e-4,
        );
        assert_close("run grad_h0", 4, &out_tensor(&d, "grad_h0"), &rg.h0, 1e-4);
        assert_close(
            "run grad_c0",
            4,
            &out_tensor(&d, "grad_c0"),
            rg.c0.as_ref().unwrap(),
            1e-4,
        );
        for (n, g) in &rg.params {
            assert_close(
                &format!("run grad.{n}"),
                4,
                &out_tensor(&d, &format!("grad.{n}")),
                g,
                1e-4,
            );
        }
    }
    // Batch-first: the same numbers with the first two axes swapped.
    let swap = |v: &[f32], a: usize, bb: usize, x: usize| -> Vec<f32> {
        let mut o = vec![0.0; v.len()];
        for i in 0..a {
            for j in 0..bb {
                o[(j * a + i) * x..(j * a + i + 1) * x]
                    .copy_from_slice(&v[(i * bb + j) * x..(i * bb + j + 1) * x]);
            }
        }
        o
    };
    let tm_out = out_tensor(&d, "output");
    write(
        &d.join("in.safetensors"),
        &[
            f32t("input", &[b, t, 3], &swap(&x, t, b, 3)),
            f32t("h0", &[4, b, h], &h0),
            i64t("lengths", &lengths),
        ],
        None,
    );
    let (code, err) = run(&d, "gpu", &["--batch-first"]);
    assert_eq!(code, 0, "{err}");
    let bf = out_tensor(&d, "output");
    let want: Vec<f64> = f64s(&swap(&tm_out, t, b, 2 * h));
    assert_close("batch-first output", 4, &bf, &want, 1e-6);
}

/// Each bad input: exit status 2, one message naming the tensor or file, no output file.
#[test]
fn run_command_errors() {
    let d = tmpdir("errors");
    let cfg = RnnConfig::new(Mode::Lstm, 3, 4).layers(2);
    let p = RnnParams::init(&cfg, 1).unwrap();
    let good_w = weights_tensors(&p);
    let x = uniform(1, 2 * 3 * 3, -1.0, 1.0);
    let good_in = || vec![f32t("input", &[2, 3, 3], &x)];
    let check = |case: &str, w: &[T], mode: Option<&str>, inp: &[T], needle: &str| {
        write(&d.join("w.safetensors"), w, mode);
        write(&d.join("in.safetensors"), inp, None);
        let (code, err) = run(&d, "cpu", &[]);
        assert_eq!(code, 2, "{case}: expected exit status 2, got {code}: {err}");
        assert!(
            err.contains(needle),
            "{case}: message {err:?} does not name {needle:?}"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{case}: one line expected: {err:?}"
        );
        assert!(
            !d.join("out.safetensors").exists(),
            "{case}: output file left behind"
        );
    };
    let mut wrong_shape = weights_tensors(&p);
    wrong_shape[1] = f32t("weight_hh_l0", &[16, 5], &[0.0; 80]);
    check(
        "weight shape",
        &wrong_shape,
        None,
        &good_in(),
        "weight_hh_l0",
    );
    let missing: Vec<T> = weights_tensors(&p)
        .into_iter()
        .filter(|t| t.0 != "weight_ih_l1")
        .collect();
    check(
        "missing layer tensor",
        &missing,
        None,
        &good_in(),
        "weight_ih_l1",
    );
    let mut partial = weights_tensors(&p);
    partial.retain(|t| t.0 != "bias_hh_l1");
    check("some biases", &partial, None, &good_in(), "bias");
    let mut proj = weights_tensors(&p);
    proj.push(f32t("weight_hr_l0", &[2, 4], &[0.0; 8]));
    check("projection", &proj, None, &good_in(), "weight_hr_l0");
    let rnn_cfg = RnnConfig::new(Mode::RnnTanh, 3, 4);
    let rnn_w = weights_tensors(&RnnParams::init(&rnn_cfg, 1).unwrap());
    check("ambiguous 1H", &rnn_w, None, &good_in(), "mode");
    check(
        "mode mismatch",
        &good_w,
        Some("GRU"),
        &good_in(),
        "weight_hh_l0",
    );
    check("unknown mode", &good_w, Some("LSTMX"), &good_in(), "LSTMX");
    check(
        "misspelt grad",
        &good_w,
        None,
        &[
            f32t("input", &[2, 3, 3], &x),
            f32t("grad_outputs", &[2, 3, 4], &[0.0; 24]),
        ],
        "grad_outputs",
    );
    check(
        "missing input",
        &good_w,
        None,
        &[f32t("h0", &[2, 3, 4], &[0.0; 24])],
        "input",
    );
    check(
        "input width",
        &good_w,
        None,
        &[f32t("input", &[2, 3, 5], &[0.0; 30])],
        "input",
    );
    check(
        "h0 shape",
        &good_w,
        None,
        &[
            f32t("input", &[2, 3, 3], &x),
            f32t("h0", &[1, 3, 4], &[0.0; 12]),
        ],
        "h0",
    );
    check(
        "lengths range",
        &good_w,
        None,
        &[f32t("input", &[2, 3, 3], &x), i64t("lengths", &[2, 0, 1])],
        "lengths",
    );
    check(
        "lengths size",
        &good_w,
        None,
        &[f32t("input", &[2, 3, 3], &x), i64t("lengths", &[2, 2])],
        "lengths",
    );
    check(
        "lengths dtype",
        &good_w,
        None,
        &[
            f32t("input", &[2, 3, 3], &x),
            f32t("lengths", &[3], &[1.0; 3]),
        ],
        "lengths",
    );
    let gru_w = weights_tensors(&RnnParams::init(&RnnConfig::new(Mode::Gru, 3, 4), 1).unwrap());
    check(
        "c0 for GRU",
        &gru_w,
        None,
        &[
            f32t("input", &[2, 3, 3], &x),
            f32t("c0", &[1, 3, 4], &[0.0; 12]),
        ],
        "c0",
    );
    // Unreadable and truncated files.
    write(&d.join("w.safetensors"), &good_w, None);
    write(&d.join("in.safetensors"), &good_in(), None);
    let bytes = std::fs::read(d.join("in.safetensors")).unwrap();
    std::fs::write(d.join("in.safetensors"), &bytes[..bytes.len() - 7]).unwrap();
    let (code, err) = run(&d, "cpu", &[]);
    assert_eq!(code, 2, "truncated: {err}");
    assert!(err.contains("in.safetensors"), "{err}");
    std::fs::remove_file(d.join("in.safetensors")).unwrap();
    let (code, err) = run(&d, "cpu", &[]);
    assert_eq!(code, 2, "unreadable: {err}");
    assert!(!d.join("out.safetensors").exists());
    // Usage error.
    assert_eq!(wgrnn(&["run", "--weights", "x"]).0, 2);
}
