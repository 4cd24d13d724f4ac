//! Language modelling, part two (issue 15): the fixed-window model's gradient against finite
//! differences, next-token probabilities against the scorer, the window model's resume and
//! sampling, grad-flow against the CPU reference, word-level commands and their error cases.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::common::{f64s, gpu, wgrnn};
use crate::lm::{options, scratch, shakespeare};
use wgrnn::models::corpus::{Corpus, Unit, Vocab};
use wgrnn::models::lm::gradflow::{self, FreshStack};
use wgrnn::models::lm::{Body, LanguageModel, LmConfig, SampleOptions, Trainer, train};
use wgrnn::reference::embedding::embedding_forward;
use wgrnn::reference::linear::linear_forward;
use wgrnn::reference::loss::softmax_ce_forward;
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_backward, rnn_forward};
use wgrnn::{Mode, RnnConfig, RnnParams};

fn window(context: usize, unit: Unit) -> LmConfig {
    LmConfig {
        model: "window".into(),
        context,
        hidden: 5,
        embed: 3,
        seq_len: 3,
        batch: 2,
        clip: 0.0,
        seed: 11,
        unit,
        ..LmConfig::default()
    }
}

/// f64 central differences of the f64 reference composition are exact to ~1e-9; the GPU
/// computes in f32 (a few 1e-7 relative).
const GRAD_TOL: f64 = 1e-4;
/// Probabilities from the f32 softmax against exp of f32 mean losses times token counts.
const PROB_TOL: f64 = 2e-4;

fn host(ctx: &wgrnn::Context, t: &wgrnn::Tensor) -> Vec<f64> {
    f64s(&t.to_vec(ctx).unwrap())
}

/// The window model's first-step loss in f64: contexts (padded with the line end) ->
/// embedding -> hidden tanh -> decoder -> cross-entropy over the step's rows.
#[allow(clippy::too_many_arguments)]
fn window_loss(p: &[Vec<f64>; 5], rows: &[(Vec<u32>, u32)], v: usize, c: &LmConfig) -> f64 {
    let (e, n, h) = (c.embed, c.context, c.hidden);
    let ids: Vec<u32> = rows.iter().flat_map(|r| r.0.clone()).collect();
    let x = embedding_forward(&p[0], &ids, v, e);
    let pre = linear_forward(&x, &p[1], Some(&p[2]), rows.len(), n * e, h);
    let t: Vec<f64> = pre.iter().map(|z| z.tanh()).collect();
    let logits = linear_forward(&t, &p[3], Some(&p[4]), rows.len(), h, v);
    let y: Vec<u32> = rows.iter().map(|r| r.1).collect();
    softmax_ce_forward(&logits, &y, v, None).loss
}

#[test]
fn window_model_gradient_matches_finite_differences() {
    let Some(ctx) = gpu() else { return };
    let text = "to be, or not\nto be: that is\nthe question";
    let corpus = Corpus::chars("text", text).unwrap();
    let v = corpus.vocab.len();
    let c = window(3, Unit::Char);
    let model = LanguageModel::new(ctx, &corpus.vocab, &c).unwrap();
    let Body::Window(hidden) = &model.body else {
        panic!("not a window model")
    };
    let p = [
        host(ctx, &model.embedding.weight),
        host(ctx, &hidden.weight),
        host(ctx, hidden.bias.as_ref().unwrap()),
        host(ctx, &model.decoder.weight),
        host(ctx, model.decoder.bias.as_ref().unwrap()),
    ];
    let pad = corpus.vocab.id("\n").unwrap();
    // Step 0: rows (t, b) predict train[b per + t + 1] from the 3 tokens before it.
    let per = corpus.train.len() / c.batch;
    let mut rows = Vec::new();
    for t in 0..c.seq_len {
        for b in 0..c.batch {
            let i = b * per + t + 1;
            let ctx_ids: Vec<u32> = (0..c.context)
                .map(|k| {
                    let j = i as isize - c.context as isize + k as isize;
                    if j < 0 { pad } else { corpus.train[j as usize] }
                })
                .collect();
            rows.push((ctx_ids, corpus.train[i]));
        }
    }
    let names = [
        "embedding.weight",
        "hidden.weight",
        "hidden.bias",
        "decoder.weight",
        "decoder.bias",
    ];
    let mut trainer = Trainer::new(ctx, model, &corpus.train).unwrap();
    let (loss, grads) = trainer.gradients(ctx).unwrap();
    let l0 = window_loss(&p, &rows, v, &c);
    assert!(
        (loss as f64 - l0).abs() < 1e-5,
        "loss {loss} vs reference {l0}"
    );
    assert_eq!(
        grads.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
        names
    );
    let eps = 1e-6;
    for (k, (name, g)) in grads.iter().enumerate() {
        let numeric: Vec<f64> = (0..g.data.len())
            .map(|i| {
                let at = |e: f64| {
                    let mut q = p.clone();
                    q[k][i] += e;
                    window_loss(&q, &rows, v, &c)
                };
                (at(eps) - at(-eps)) / (2.0 * eps)
            })
            .collect();
        let num: f64 = numeric
            .iter()
            .zip(&g.data)
            .map(|(n, &a)| (n - a as f64).powi(2))
            .sum();
        let den: f64 = numeric.iter().map(|n| n * n).sum();
        let rel = (num / den.max(1e-300)).sqrt();
        assert!(
            rel < GRAD_TOL,
            "{name}: GPU gradient vs finite differences: relative error {rel:.3e}"
        );
    }
}

/// `predict_next` equals the scorer: `-log p(w | prime)` is the summed loss of `prime ++ [w]`
/// minus that of `prime`; the full distribution sums to 1 and a top-k list to at most 1.
#[test]
fn next_token_probabilities_equal_the_scored_loss() {
    let Some(ctx) = gpu() else { return };
    let text = shakespeare(3000);
    let chars = Corpus::chars("t", &text).unwrap();
    let words = Corpus::words("t", &text, 1, None).unwrap();
    let rnn = LmConfig {
        hidden: 12,
        embed: 5,
        seed: 4,
        ..LmConfig::default()
    };
    let cases = [
        (
            "char gru",
            &chars,
            LmConfig {
                mode: "gru".into(),
                ..rnn.clone()
            },
            "First Cit",
        ),
        (
            "word lstm",
            &words,
            LmConfig {
                unit: Unit::Word,
                ..rnn.clone()
            },
            "You are all resolved",
        ),
        ("char window", &chars, window(4, Unit::Char), "Fi"),
        ("word window", &words, window(3, Unit::Word), "We know"),
    ];
    for (what, corpus, config, prime) in cases {
        let model = LanguageModel::new(ctx, &corpus.vocab, &config).unwrap();
        let v = corpus.vocab.len();
        let ids = config.unit.encode(&corpus.vocab, "prime", prime).unwrap();
        let all = model.predict_next(ctx, &ids, v).unwrap();
        let total: f64 = all.iter().map(|p| p.1 as f64).sum();
        assert!(
            (total - 1.0).abs() < 1e-4,
            "{what}: probabilities sum to {total}"
        );
        assert!(
            all.windows(2).all(|w| w[0].1 >= w[1].1),
            "{what}: not sorted"
        );
        let top = model.predict_next(ctx, &ids, 3).unwrap();
        assert_eq!(
            &top[..],
            &all[..3],
            "{what}: top-3 is the head of the ranking"
        );
        assert!(top.iter().map(|p| p.1 as f64).sum::<f64>() <= 1.0 + 1e-6);
        // The window model pads its first contexts, so the scorer's loss of the prime's
        // tokens is the same conditional chain.
        let sum = |s: &[u32]| {
            let sc = model.evaluate(ctx, s, None).unwrap();
            sc.loss_nats * sc.tokens as f64
        };
        let mut stream = ids.clone();
        if stream.len() < 2 && !config.is_window() {
            panic!("{what}: prime too short for the check");
        }
        let base = if stream.len() >= 2 { sum(&stream) } else { 0.0 };
        for &(w, p) in &all[..4] {
            stream.push(w);
            let want = (base - sum(&stream)).exp();
            stream.pop();
            assert!(
                (p as f64 - want).abs() < PROB_TOL * want.max(1e-3),
                "{what}: p({}) = {p} from the softmax, {want} from the scorer",
                corpus.vocab.tokens()[w as usize]
            );
        }
    }
}

/// A word-level window model: 3 steps then `--resume` to 6 equals 6 in one go, bit for bit;
/// greedy sampling starts with predict-next's first choice.
#[test]
fn word_window_model_resumes_exactly_and_samples_its_argmax() {
    let Some(ctx) = gpu() else { return };
    let d = scratch("words-resume");
    let data = d.join("text.txt");
    std::fs::write(&data, shakespeare(6000)).unwrap();
    let config = LmConfig {
        dropout: 0.2,
        hidden: 16,
        embed: 6,
        seq_len: 5,
        batch: 4,
        ..window(3, Unit::Word)
    };
    let stop = AtomicBool::new(false);
    let (a, b) = (d.join("a"), d.join("b"));
    train(
        &options(&data, &a, config.clone(), 6, false),
        &stop,
        &mut |_| {},
    )
    .unwrap();
    train(
        &options(&data, &b, config.clone(), 3, false),
        &stop,
        &mut |_| {},
    )
    .unwrap();
    train(&options(&data, &b, config, 6, true), &stop, &mut |_| {}).unwrap();
    crate::common::assert_same_checkpoint(
        &a.join("last"),
        &b.join("last"),
        &["model.safetensors", "optimizer.safetensors"],
    );
    assert!(!a.join("last").join("rnn.safetensors").exists());
    let (model, info) = LanguageModel::load(ctx, &a).unwrap();
    assert_eq!(info.config.unit, Unit::Word);
    let prime = Unit::Word
        .encode(&info.vocab, "p", "First Citizen")
        .unwrap();
    let top = model.predict_next(ctx, &prime, 1).unwrap();
    let opts = SampleOptions {
        length: 5,
        temperature: 0.0,
        top_k: 0,
        seed: 0,
    };
    let greedy = model.sample(ctx, &prime, &opts, &mut |_| {}).unwrap();
    assert_eq!(
        greedy[0], top[0].0,
        "greedy sampling's first token is the arg-max"
    );
    let drawn = SampleOptions {
        temperature: 1.0,
        seed: 5,
        ..opts
    };
    let s1 = model.sample(ctx, &prime, &drawn, &mut |_| {}).unwrap();
    assert_eq!(s1, model.sample(ctx, &prime, &drawn, &mut |_| {}).unwrap());
    let _ = std::fs::remove_dir_all(&d);
}

/// `grad-flow` on a fresh two-layer Elman stack equals the norms of the f64 reference
/// backward's input gradient, step by step.
#[test]
fn grad_flow_matches_the_reference_backward() {
    let Some(ctx) = gpu() else { return };
    let (t, seed) = (9usize, 5u64);
    for (mode, input, hidden, layers) in [(Mode::RnnTanh, 3, 5, 2), (Mode::Lstm, 4, 7, 1)] {
        let s = FreshStack {
            mode,
            input,
            hidden,
            layers,
        };
        let curve = gradflow::fresh(ctx, &s, t, seed).unwrap();
        let cfg = RnnConfig::new(mode, input, hidden).layers(layers);
        let p = RefParams::from_params(&RnnParams::init(&cfg, seed).unwrap());
        let f = rnn_forward(
            &p,
            &RefInputs {
                x: f64s(&gradflow::fresh_inputs(input, t, seed)),
                seq: t,
                batch: 1,
                ..Default::default()
            },
        );
        let mut dy = vec![0.0; t * hidden];
        dy[(t - 1) * hidden..].fill(1.0);
        let g = rnn_backward(&p, &f, Some(&dy), None, None);
        assert_eq!(curve.norms.len(), t);
        for (k, row) in g.input.chunks(input).enumerate() {
            let want = row.iter().map(|x| x * x).sum::<f64>().sqrt();
            let got = curve.norms[k];
            // Relative to each step's own norm: they span orders of magnitude.
            assert!(
                (got - want).abs() <= 1e-4 * want + 1e-12,
                "{mode:?} t={}: GPU {got:e}, reference {want:e}",
                k + 1
            );
        }
        assert!(
            curve.norms[0] < curve.norms[t - 1],
            "{mode:?}: the gradient decays back in time"
        );
    }
    // The command writes the PNG and the CSV with one row per (step, model).
    let d = scratch("words-flow");
    let png = d.join("flow.png");
    let (code, out, err) = wgrnn(&[
        "grad-flow",
        "--mode",
        "rnn_tanh",
        "--hidden",
        "6",
        "--mode",
        "gru",
        "--hidden",
        "4",
        "--input",
        "3",
        "--layers",
        "2",
        "--seq-len",
        "6",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let csv = std::fs::read_to_string(d.join("flow.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "t,norm,model");
    assert_eq!(lines.len(), 1 + 2 * 6);
    assert!(lines[7].ends_with("gru H=4 L=2 fresh"), "{}", lines[7]);
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let _ = std::fs::remove_dir_all(&d);
}

/// Word-level commands end to end on a tiny model; bad input gets exit status 2 and one line.
#[test]
fn word_commands_and_their_errors() {
    if gpu().is_none() {
        return;
    }
    let d = scratch("words-cli");
    let s = |p: &Path| p.display().to_string();
    let data = d.join("text.txt");
    std::fs::write(&data, shakespeare(5000)).unwrap();
    let out = d.join("run");
    let (code, _, err) = wgrnn(&[
        "train-lm",
        "--unit",
        "word",
        "--data",
        &s(&data),
        "--out",
        &s(&out),
        "--steps",
        "2",
        "--hidden",
        "8",
        "--embed",
        "4",
        "--batch",
        "2",
        "--seq-len",
        "4",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, json, err) = wgrnn(&["eval-lm", "--checkpoint", &s(&out), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let corpus = Corpus::words("t", &shakespeare(5000), 2, None).unwrap();
    assert_eq!(v["tokens"], corpus.valid.len() - 1);
    for k in ["loss_nats", "bits_per_token", "perplexity"] {
        assert!(v[k].as_f64().unwrap() > 0.0, "{k}: {json}");
    }
    let (code, json, err) = wgrnn(&[
        "predict-next",
        "--checkpoint",
        &s(&out),
        "--prime",
        "the students opened their",
        "--top-k",
        "4",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["prime"], "the students opened their");
    let next = v["next"].as_array().unwrap();
    assert_eq!(next.len(), 4);
    let sum: f64 = next.iter().map(|n| n["prob"].as_f64().unwrap()).sum();
    assert!(sum <= 1.0 + 1e-6 && next[0]["token"].is_string(), "{json}");
    let (code, text, err) = wgrnn(&[
        "sample",
        "--checkpoint",
        &s(&out),
        "--length",
        "7",
        "--prime",
        "MENENIUS:",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("MENENIUS: "), "{text}");
    let (code, json, _) = wgrnn(&[
        "ngram",
        "--unit",
        "word",
        "--data",
        &s(&data),
        "--order",
        "3",
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["tokens"], corpus.valid.len() - 1);

    // A window model over a text without line ends has no padding rule.
    let flat = d.join("flat.txt");
    std::fs::write(&flat, "abcab cabca bcabc ".repeat(40)).unwrap();
    let win = d.join("win");
    let (code, _, err) = wgrnn(&[
        "train-lm",
        "--model",
        "window",
        "--context",
        "3",
        "--data",
        &s(&flat),
        "--out",
        &s(&win),
        "--steps",
        "2",
        "--hidden",
        "6",
        "--embed",
        "3",
        "--batch",
        "2",
        "--seq-len",
        "4",
    ]);
    assert_eq!(code, 0, "{err}");
    let fake = d.join("fake");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(
        fake.join("config.json"),
        r#"{"kind": "tagger", "format_version": 1}"#,
    )
    .unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "predict-next".into(),
                "--checkpoint".into(),
                s(&win),
                "--prime".into(),
                "".into(),
            ],
            "line end",
        ),
        (
            vec![
                "predict-next".into(),
                "--checkpoint".into(),
                s(&win),
                "--prime".into(),
                "ab".into(),
            ],
            "reads 3",
        ),
        (
            vec![
                "predict-next".into(),
                "--checkpoint".into(),
                s(&fake),
                "--prime".into(),
                "a".into(),
            ],
            "tagger",
        ),
        (
            vec![
                "eval-lm".into(),
                "--checkpoint".into(),
                s(&out),
                "--unit".into(),
                "char".into(),
            ],
            "word-level",
        ),
        (
            vec![
                "train-lm".into(),
                "--unit".into(),
                "syllable".into(),
                "--out".into(),
                s(&d.join("x")),
            ],
            "--unit",
        ),
        (
            vec![
                "grad-flow".into(),
                "--checkpoint".into(),
                s(&win),
                "--seq-len".into(),
                "4".into(),
                "--out".into(),
                s(&d.join("g.png")),
            ],
            "recurrent",
        ),
        (
            vec![
                "grad-flow".into(),
                "--hidden".into(),
                "4".into(),
                "--seq-len".into(),
                "4".into(),
                "--out".into(),
                s(&d.join("g.png")),
            ],
            "--mode",
        ),
    ];
    for (args, want) in cases {
        let a: Vec<&str> = args.iter().map(|x| x.as_str()).collect();
        let (code, _, err) = wgrnn(&a);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert!(!d.join("g.png").exists() && !d.join("x").exists());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn vocab_of_words_is_kept_in_the_checkpoint() {
    // The word vocabulary a checkpoint stores is what eval and predict-next encode with.
    let v = Vocab::new(vec!["<unk>".into(), "<eos>".into(), "x".into()]).unwrap();
    let c = Corpus::words("t", &"x y\n".repeat(30), 5, Some(&v)).unwrap();
    assert!(c.train.iter().all(|&i| i <= 2));
    assert_eq!(c.vocab, v);
}

/// `eval-lm` on committed word-level checkpoints (a GRU and a window model) equals PyTorch's
/// score of the same files (`tests/fixtures/lm_words/torch.json`, from scripts/torch_lm.py,
/// which tokenises with its own implementation of the rules).
#[test]
fn word_models_score_as_pytorch_does() {
    if gpu().is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lm_words");
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("torch.json")).unwrap()).unwrap();
    for m in ["gru", "window"] {
        let (code, out, err) = wgrnn(&[
            "eval-lm",
            "--checkpoint",
            dir.join(m).to_str().unwrap(),
            "--data",
            dir.join("text.txt").to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let got: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(got["tokens"], want[m]["tokens"], "{m}");
        let (g, w) = (
            got["loss_nats"].as_f64().unwrap(),
            want[m]["loss_nats"].as_f64().unwrap(),
        );
        // f32 forward on both sides, summed in f64 (torch) and over f32 chunk means (wgrnn).
        assert!((g - w).abs() < 1e-6 * w, "{m}: wgrnn {g}, PyTorch {w}");
    }
}
