//! Sentence classification (issue 16): a tiny classifier's gradient against finite differences
//! of the reference composition, padding invariance, a synthetic task learned by every
//! pooling, exact resume, and the commands' error cases.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{gpu, wgrnn_bytes};
use wgrnn::models::classify::{
    Budget, Classifier, ClassifyConfig, ClassifyTrainer, Example, Pool, TrainOptions, train,
};
use wgrnn::models::corpus::Vocab;
use wgrnn::reference::embedding::embedding_forward;
use wgrnn::reference::linear::linear_forward;
use wgrnn::reference::loss::softmax_ce_forward;
use wgrnn::reference::ops::{pool_last_forward, pool_max_forward, pool_mean_forward};
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_forward};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrnn-cls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tiny(pool: Pool) -> ClassifyConfig {
    ClassifyConfig {
        mode: "lstm".into(),
        layers: 1,
        hidden: 4,
        embed: 3,
        bidirectional: true,
        pool,
        dropout: 0.0,
        word_dropout: 0.0,
        min_count: 1,
        batch: 4,
        lr: 1e-2,
        clip: 0.0,
        seed: 3,
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn f64v(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// The mean cross-entropy of `sents` (ids) in f64 through the reference of every layer.
#[allow(clippy::too_many_arguments)]
fn reference_loss(
    emb: &[f64],
    rnn: &RefParams,
    w: &[f64],
    b: &[f64],
    sents: &[Vec<u32>],
    labels: &[u32],
    c: &ClassifyConfig,
    vocab: usize,
) -> f64 {
    let t = sents.iter().map(Vec::len).max().unwrap();
    let bs = sents.len();
    let mut ids = vec![0u32; t * bs];
    for (j, s) in sents.iter().enumerate() {
        for (i, &id) in s.iter().enumerate() {
            ids[i * bs + j] = id;
        }
    }
    let lens: Vec<usize> = sents.iter().map(Vec::len).collect();
    let x = embedding_forward(emb, &ids, vocab, c.embed);
    let f = rnn_forward(
        rnn,
        &RefInputs {
            x,
            seq: t,
            batch: bs,
            lengths: Some(lens.clone()),
            ..Default::default()
        },
    );
    let cols = 2 * c.hidden;
    let pooled = match c.pool {
        Pool::Mean => pool_mean_forward(&f.output, bs, cols, &lens),
        Pool::Max => pool_max_forward(&f.output, bs, cols, &lens).0,
        Pool::Last => pool_last_forward(&f.output, bs, cols, &lens, c.hidden),
    };
    let logits = linear_forward(&pooled, w, Some(b), bs, cols, 2);
    softmax_ce_forward(&logits, labels, 2, None).loss
}

/// f64 central differences of the reference are exact to ~1e-9; the GPU computes in f32.
const GRAD_TOL: f64 = 1e-4;

#[test]
fn tiny_classifier_gradient_matches_finite_differences() {
    let Some(ctx) = gpu() else { return };
    let train_ex = vec![
        Example {
            label: 1,
            tokens: words("a good film"),
        },
        Example {
            label: 0,
            tokens: words("a bad bad film really"),
        },
        Example {
            label: 1,
            tokens: words("good"),
        },
    ];
    let vocab = Vocab::from_counts(
        train_ex
            .iter()
            .flat_map(|e| e.tokens.iter().map(String::as_str)),
        1,
        &["<pad>", "<unk>"],
    )
    .unwrap();
    for pool in [Pool::Last, Pool::Mean, Pool::Max] {
        let c = tiny(pool);
        let model = Classifier::new(ctx, vocab.clone(), 2, &c).unwrap();
        let emb = f64v(&model.embedding.weight.to_vec(ctx).unwrap());
        let w = f64v(&model.classifier.weight.to_vec(ctx).unwrap());
        let b = f64v(&model.classifier.bias.as_ref().unwrap().to_vec(ctx).unwrap());
        let rnn = RefParams::from_params(&model.rnn.params(ctx).unwrap());
        let sents: Vec<Vec<u32>> = train_ex.iter().map(|e| model.encode(&e.tokens)).collect();
        let labels: Vec<u32> = train_ex.iter().map(|e| e.label).collect();
        let mut tr = ClassifyTrainer::new(ctx, model, &train_ex).unwrap();
        let (loss, grads) = tr.gradients(ctx, &sents, &labels).unwrap();
        let v = vocab.len();
        let f = |emb: &[f64], rnn: &RefParams, w: &[f64], bb: &[f64]| {
            reference_loss(emb, rnn, w, bb, &sents, &labels, &c, v)
        };
        assert!(
            (loss as f64 - f(&emb, &rnn, &w, &b)).abs() < 1e-5,
            "{pool:?}: loss"
        );
        let eps = 1e-6;
        for (name, g) in &grads {
            let numeric: Vec<f64> = (0..g.data.len())
                .map(|i| {
                    let d = |e: f64| match name.as_str() {
                        "embedding.weight" => {
                            let mut p = emb.clone();
                            p[i] += e;
                            f(&p, &rnn, &w, &b)
                        }
                        "classifier.weight" => {
                            let mut p = w.clone();
                            p[i] += e;
                            f(&emb, &rnn, &p, &b)
                        }
                        "classifier.bias" => {
                            let mut p = b.clone();
                            p[i] += e;
                            f(&emb, &rnn, &w, &p)
                        }
                        other => {
                            let short = other.strip_prefix("rnn.").unwrap();
                            let mut p = rnn.clone();
                            for (n, t) in p.named_mut() {
                                if n == short {
                                    t[i] += e;
                                }
                            }
                            f(&emb, &p, &w, &b)
                        }
                    };
                    (d(eps) - d(-eps)) / (2.0 * eps)
                })
                .collect();
            // The padding row of the embedding gets no gradient, by definition.
            let numeric = if name == "embedding.weight" {
                let mut n = numeric;
                n[..c.embed].fill(0.0);
                n
            } else {
                numeric
            };
            let num: f64 = numeric
                .iter()
                .zip(&g.data)
                .map(|(n, &a)| (n - a as f64).powi(2))
                .sum();
            let den: f64 = numeric.iter().map(|n| n * n).sum();
            let rel = (num / den.max(1e-300)).sqrt();
            assert!(
                rel < GRAD_TOL || num.sqrt() < 1e-7,
                "{pool:?} {name}: relative error {rel:.3e}"
            );
        }
    }
}

/// A sentence alone and padded in a batch of longer ones (whose rows carry no loss) gives the
/// same probabilities and the same gradients.
#[test]
fn padding_changes_nothing() {
    let Some(ctx) = gpu() else { return };
    let ex = vec![
        Example {
            label: 0,
            tokens: words("short one"),
        },
        Example {
            label: 1,
            tokens: words("a much longer sentence with many many words in it"),
        },
        Example {
            label: 0,
            tokens: words("another rather long sentence here"),
        },
    ];
    let vocab = Vocab::from_counts(
        ex.iter().flat_map(|e| e.tokens.iter().map(String::as_str)),
        1,
        &["<pad>", "<unk>"],
    )
    .unwrap();
    for pool in [Pool::Last, Pool::Mean, Pool::Max] {
        let c = ClassifyConfig {
            hidden: 8,
            embed: 8,
            layers: 2,
            ..tiny(pool)
        };
        let model = Classifier::new(ctx, vocab.clone(), 2, &c).unwrap();
        let sents: Vec<Vec<u32>> = ex.iter().map(|e| model.encode(&e.tokens)).collect();
        let alone = model.predict(ctx, &sents[..1]).unwrap();
        let padded = model.predict(ctx, &sents).unwrap();
        for (a, p) in alone[0].iter().zip(&padded[0]) {
            assert!((a - p).abs() < 1e-6, "{pool:?}: {alone:?} vs {padded:?}");
        }
        let mut tr = ClassifyTrainer::new(ctx, model, &ex).unwrap();
        let (l1, g1) = tr.gradients(ctx, &sents[..1], &[0]).unwrap();
        let (l2, g2) = tr.gradients(ctx, &sents, &[0, u32::MAX, u32::MAX]).unwrap();
        assert!((l1 - l2).abs() < 1e-6, "{pool:?}: loss {l1} vs {l2}");
        for ((n, a), (_, b)) in g1.iter().zip(&g2) {
            let worst = a
                .data
                .iter()
                .zip(&b.data)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-6, "{pool:?} {n}: gradients differ by {worst}");
        }
    }
}

/// Writes a marker task: label 1 iff the token MARK occurs (anywhere) in the sentence.
fn marker_data(path: &Path, n: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = String::new();
    for _ in 0..n {
        let len = rng.random_range(3..12usize);
        let mut toks: Vec<String> = (0..len)
            .map(|_| format!("w{}", rng.random_range(0..20u32)))
            .collect();
        let label = rng.random_range(0..2u32);
        if label == 1 {
            let at = rng.random_range(0..len);
            toks[at] = "MARK".into();
        }
        s.push_str(&format!("{label} {}\n", toks.join(" ")));
    }
    std::fs::write(path, s).unwrap();
}

fn options(d: &Path, out: &str, config: ClassifyConfig, epochs: u64, resume: bool) -> TrainOptions {
    TrainOptions {
        train: d.join("train.txt"),
        dev: d.join("dev.txt"),
        out: d.join(out),
        config,
        budget: Budget::Epochs(epochs),
        resume,
    }
}

#[test]
fn every_pooling_learns_the_marker_task() {
    if gpu().is_none() {
        return;
    }
    let d = scratch("marker");
    marker_data(&d.join("train.txt"), 600, 1);
    marker_data(&d.join("dev.txt"), 200, 2);
    for pool in [Pool::Last, Pool::Mean, Pool::Max] {
        let c = ClassifyConfig {
            hidden: 16,
            embed: 16,
            dropout: 0.0,
            word_dropout: 0.0,
            batch: 16,
            lr: 1e-2,
            ..ClassifyConfig {
                pool,
                ..ClassifyConfig::default()
            }
        };
        let s = train(
            &options(&d, &format!("{pool:?}"), c, 6, false),
            &AtomicBool::new(false),
            &mut |_, _, _, _| {},
            &mut |_| {},
        )
        .unwrap();
        assert!(s.best >= 0.95, "{pool:?}: dev accuracy {}", s.best);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn resume_is_exact() {
    if gpu().is_none() {
        return;
    }
    let d = scratch("resume");
    marker_data(&d.join("train.txt"), 100, 3);
    marker_data(&d.join("dev.txt"), 30, 4);
    let c = ClassifyConfig {
        hidden: 8,
        embed: 8,
        batch: 16,
        layers: 2,
        dropout: 0.2,
        word_dropout: 0.2,
        ..ClassifyConfig::default()
    };
    let stop = AtomicBool::new(false);
    train(
        &options(&d, "a", c.clone(), 1, false),
        &stop,
        &mut |_, _, _, _| {},
        &mut |_| {},
    )
    .unwrap();
    train(
        &options(&d, "a", c.clone(), 3, true),
        &stop,
        &mut |_, _, _, _| {},
        &mut |_| {},
    )
    .unwrap();
    train(
        &options(&d, "b", c, 3, false),
        &stop,
        &mut |_, _, _, _| {},
        &mut |_| {},
    )
    .unwrap();
    crate::common::assert_same_checkpoint(
        &d.join("a/last"),
        &d.join("b/last"),
        &[
            "rnn.safetensors",
            "model.safetensors",
            "optimizer.safetensors",
        ],
    );
    let _ = std::fs::remove_dir_all(&d);
}

fn wgrnn(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let (code, out, err) = wgrnn_bytes(args, stdin.map(str::as_bytes));
    (code, String::from_utf8_lossy(&out).into_owned(), err)
}

#[test]
fn commands_classify_and_refuse_bad_lines() {
    if gpu().is_none() {
        return;
    }
    let d = scratch("cli");
    marker_data(&d.join("train.txt"), 80, 5);
    marker_data(&d.join("dev.txt"), 20, 6);
    let s = |p: PathBuf| p.display().to_string();
    let (tr, dev, out) = (
        s(d.join("train.txt")),
        s(d.join("dev.txt")),
        s(d.join("run")),
    );
    let small = [
        "--hidden", "8", "--embed", "8", "--batch", "16", "--epochs", "1",
    ];
    let mut args = vec![
        "train-classify",
        "--train",
        &tr,
        "--dev",
        &dev,
        "--out",
        &out,
    ];
    args.extend(small);
    let (code, _, err) = wgrnn(&args, None);
    assert_eq!(code, 0, "{err}");
    let (code, o, err) = wgrnn(
        &["classify", "--checkpoint", &out],
        Some("w1 MARK w2\nw3 w4\nw5\n"),
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines.len(), 3, "{o}");
    for l in &lines {
        let (lab, p) = l.split_once('\t').unwrap();
        assert!(lab == "0" || lab == "1", "{l}");
        let p: f64 = p.parse().unwrap();
        assert!((0.5..=1.0).contains(&p), "{l}");
    }
    let (code, o, err) = wgrnn(
        &[
            "eval-classify",
            "--checkpoint",
            &out,
            "--data",
            &dev,
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(o.trim()).unwrap();
    assert_eq!(v["n"], 20);
    assert!((0.0..=1.0).contains(&v["accuracy"].as_f64().unwrap()));
    // Bad lines: one line naming the file and line, exit 2, nothing written.
    let bad = d.join("bad.txt");
    for (text, want) in [
        ("1 fine\n\n0 also fine\n", "line 2"),
        ("1 fine\nx not a label\n", "line 2"),
        ("1 fine\n0\n", "line 2"),
        ("1 fine\n0 ok\n7 too big\n", "line 3"),
    ] {
        std::fs::write(&bad, text).unwrap();
        let b = s(bad.clone());
        let (code, _, err) = wgrnn(&["eval-classify", "--checkpoint", &out, "--data", &b], None);
        assert_eq!(code, 2, "{text:?}: {err}");
        assert!(
            err.contains("bad.txt") && err.contains(want),
            "{text:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        let o2 = s(d.join("never"));
        let (code, _, err) = wgrnn(
            &[
                "train-classify",
                "--train",
                &tr,
                "--dev",
                &b,
                "--out",
                &o2,
                "--epochs",
                "1",
            ],
            None,
        );
        assert_eq!(code, 2, "{text:?}: {err}");
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(!d.join("never/last").exists());
        let _ = std::fs::remove_dir_all(d.join("never"));
    }
    let (code, _, err) = wgrnn(&["classify", "--checkpoint", &out], Some("fine\n\nmore\n"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 2"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}
