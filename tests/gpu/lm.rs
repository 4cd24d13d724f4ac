//! The character language model (issue 14): the whole model's gradient against finite
//! differences of the f64 reference composition, learning below the unigram entropy, exact
//! resume, sampling, and the commands' error cases.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::common::{gpu, wgrnn};
use wgrnn::RnnParams;
use wgrnn::models::corpus::Corpus;
use wgrnn::models::lm::{
    Budget, LanguageModel, LmConfig, SampleOptions, TrainOptions, Trainer, train,
};
use wgrnn::reference::embedding::embedding_forward;
use wgrnn::reference::linear::linear_forward;
use wgrnn::reference::loss::softmax_ce_forward;
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_forward};

/// A scratch folder of this test process.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrnn-lm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The first `n` characters of the shipped Tiny Shakespeare.
pub(crate) fn shakespeare(n: usize) -> String {
    let t = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/tinyshakespeare/input.txt"
    ))
    .unwrap();
    t.chars().take(n).collect()
}

fn tiny(mode: &str) -> LmConfig {
    LmConfig {
        mode: mode.into(),
        layers: 2,
        hidden: 4,
        embed: 3,
        dropout: 0.0,
        seq_len: 3,
        batch: 2,
        lr: 1e-2,
        clip: 0.0,
        seed: 7,
        ..LmConfig::default()
    }
}

/// f64 central differences of the reference composition embedding -> RNN -> decoder ->
/// cross-entropy are exact to ~1e-9; the GPU computes in f32 (a few 1e-7 relative).
const GRAD_TOL: f64 = 1e-4;

/// The loss of the model's first training step in f64: the reference forward of every layer.
#[allow(clippy::too_many_arguments)]
fn reference_loss(
    emb: &[f64],
    rnn: &RefParams,
    dec_w: &[f64],
    dec_b: &[f64],
    x: &[u32],
    y: &[u32],
    c: &LmConfig,
    vocab: usize,
) -> f64 {
    let e = embedding_forward(emb, x, vocab, c.embed);
    let f = rnn_forward(
        rnn,
        &RefInputs {
            x: e,
            seq: c.seq_len,
            batch: c.batch,
            ..Default::default()
        },
    );
    let logits = linear_forward(
        &f.output,
        dec_w,
        Some(dec_b),
        c.seq_len * c.batch,
        c.hidden,
        vocab,
    );
    softmax_ce_forward(&logits, y, vocab, None).loss
}

#[test]
fn whole_model_gradient_matches_finite_differences() {
    let Some(ctx) = gpu() else { return };
    let text = "to be, or not to be: that is the question";
    let corpus = Corpus::chars("text", text).unwrap();
    let v = corpus.vocab.len();
    for mode in ["lstm", "gru", "rnn_tanh"] {
        let c = tiny(mode);
        let model = LanguageModel::new(ctx, &corpus.vocab, &c).unwrap();
        let emb: Vec<f64> = model
            .embedding
            .weight
            .to_vec(ctx)
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect();
        let dec_w: Vec<f64> = model
            .decoder
            .weight
            .to_vec(ctx)
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect();
        let dec_b: Vec<f64> = model
            .decoder
            .bias
            .as_ref()
            .unwrap()
            .to_vec(ctx)
            .unwrap()
            .iter()
            .map(|&x| x as f64)
            .collect();
        let params: RnnParams = model.rnn().unwrap().params(ctx).unwrap();
        let rnn = RefParams::from_params(&params);
        let mut trainer = Trainer::new(ctx, model, &corpus.train).unwrap();
        let (loss, grads) = trainer.gradients(ctx).unwrap();
        // Step 0 reads rows 0..T of the time-major streams: stream b is train[b * per ..].
        let per = corpus.train.len() / c.batch;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for t in 0..c.seq_len {
            for b in 0..c.batch {
                x.push(corpus.train[b * per + t]);
                y.push(corpus.train[b * per + t + 1]);
            }
        }
        let f = |emb: &[f64], rnn: &RefParams, w: &[f64], bias: &[f64]| {
            reference_loss(emb, rnn, w, bias, &x, &y, &c, v)
        };
        let l0 = f(&emb, &rnn, &dec_w, &dec_b);
        assert!(
            (loss as f64 - l0).abs() < 1e-5,
            "{mode}: loss {loss} vs reference {l0}"
        );
        let eps = 1e-6;
        let fd = |perturb: &dyn Fn(f64) -> f64| (perturb(eps) - perturb(-eps)) / (2.0 * eps);
        let mut checked = 0;
        for (name, g) in &grads {
            let numeric: Vec<f64> = (0..g.data.len())
                .map(|i| match name.as_str() {
                    "embedding.weight" => fd(&|e| {
                        let mut p = emb.clone();
                        p[i] += e;
                        f(&p, &rnn, &dec_w, &dec_b)
                    }),
                    "decoder.weight" => fd(&|e| {
                        let mut p = dec_w.clone();
                        p[i] += e;
                        f(&emb, &rnn, &p, &dec_b)
                    }),
                    "decoder.bias" => fd(&|e| {
                        let mut p = dec_b.clone();
                        p[i] += e;
                        f(&emb, &rnn, &dec_w, &p)
                    }),
                    rnn_name => {
                        let short = rnn_name.strip_prefix("rnn.").unwrap();
                        fd(&|e| {
                            let mut p = rnn.clone();
                            for (n, t) in p.named_mut() {
                                if n == short {
                                    t[i] += e;
                                }
                            }
                            f(&emb, &p, &dec_w, &dec_b)
                        })
                    }
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
                rel < GRAD_TOL || num.sqrt() < 1e-7,
                "{mode} {name}: GPU gradient vs finite differences: relative error {rel:.3e}"
            );
            checked += 1;
        }
        assert_eq!(checked, 3 + 8, "{mode}: every parameter checked");
    }
}

pub(crate) fn options(
    data: &Path,
    out: &Path,
    config: LmConfig,
    steps: u64,
    resume: bool,
) -> TrainOptions {
    TrainOptions {
        data: Some(data.to_path_buf()),
        out: out.to_path_buf(),
        config,
        budget: Budget::Steps(steps),
        resume,
        eval_every: Some(1000),
        eval_prefix: 200,
    }
}

fn small() -> LmConfig {
    LmConfig {
        mode: "lstm".into(),
        layers: 2,
        hidden: 24,
        embed: 8,
        dropout: 0.1,
        seq_len: 8,
        batch: 4,
        lr: 1e-2,
        clip: 1.0,
        seed: 3,
        ..LmConfig::default()
    }
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `--steps 3` then `--resume --steps 6` ends with the weights, optimiser state and carried
/// state of `--steps 6` in one go, bit for bit (dropout masks keyed by the step).
#[test]
fn resume_is_exact() {
    if gpu().is_none() {
        return;
    }
    let d = scratch("resume");
    let data = d.join("text.txt");
    std::fs::write(&data, shakespeare(3000)).unwrap();
    let stop = AtomicBool::new(false);
    let (a, b) = (d.join("a"), d.join("b"));
    train(&options(&data, &a, small(), 3, false), &stop, &mut |_| {}).unwrap();
    // A new run into a non-empty folder is refused; --resume continues it.
    assert!(train(&options(&data, &a, small(), 6, false), &stop, &mut |_| {}).is_err());
    let s = train(&options(&data, &a, small(), 6, true), &stop, &mut |_| {}).unwrap();
    assert_eq!(s.steps, 6);
    train(&options(&data, &b, small(), 6, false), &stop, &mut |_| {}).unwrap();
    for f in [
        "rnn.safetensors",
        "model.safetensors",
        "optimizer.safetensors",
        "state.safetensors",
    ] {
        assert!(
            bytes(&a.join("last").join(f)) == bytes(&b.join("last").join(f)),
            "{f} differs between the resumed and the one-go run"
        );
    }
    let csv = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    assert!(
        csv.starts_with("step,train_loss,val_loss,chars_per_s\n"),
        "{csv}"
    );
    assert!(a.join("loss.png").is_file() && a.join("best/config.json").is_file());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn training_falls_below_the_unigram_entropy() {
    let Some(ctx) = gpu() else { return };
    let d = scratch("learn");
    let data = d.join("text.txt");
    std::fs::write(&data, shakespeare(40_000)).unwrap();
    let corpus = Corpus::read_chars(&data).unwrap();
    let mut counts = vec![0usize; corpus.vocab.len()];
    for &t in &corpus.train {
        counts[t as usize] += 1;
    }
    let n = corpus.train.len() as f64;
    let unigram: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| -(c as f64 / n) * (c as f64 / n).ln())
        .sum();
    let config = LmConfig {
        mode: "gru".into(),
        layers: 1,
        hidden: 48,
        embed: 16,
        dropout: 0.0,
        seq_len: 16,
        batch: 16,
        lr: 1e-2,
        clip: 5.0,
        seed: 1,
        ..LmConfig::default()
    };
    let s = train(
        &options(&data, &d.join("out"), config, 150, false),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    assert!(
        s.final_score.loss_nats < unigram - 0.2,
        "validation {:.3} nats/char, unigram entropy {unigram:.3}",
        s.final_score.loss_nats
    );
    // eval-lm's number is the final one, through the checkpoint.
    let (model, _) = LanguageModel::load(ctx, &d.join("out").join("last")).unwrap();
    let again = model.evaluate(ctx, &corpus.valid, None).unwrap();
    assert!((again.loss_nats - s.final_score.loss_nats).abs() < 1e-9);
    let _ = std::fs::remove_dir_all(&d);
}

/// Greedy sampling equals arg-max through the step API, token by token; a seed repeats a
/// draw; a different seed gives another text.
#[test]
fn sampling_is_reproducible_and_greedy_is_argmax() {
    let Some(ctx) = gpu() else { return };
    let corpus = Corpus::chars("t", &shakespeare(2000)).unwrap();
    let mut c = small();
    c.dropout = 0.0;
    let model = LanguageModel::new(ctx, &corpus.vocab, &c).unwrap();
    let prime = corpus.vocab.encode_chars("prime", "First").unwrap();
    let greedy = SampleOptions {
        length: 40,
        temperature: 0.0,
        top_k: 0,
        seed: 0,
    };
    let got = model.sample(ctx, &prime, &greedy, &mut |_| {}).unwrap();
    // The same through Rnn::step, the decoder and a host arg-max.
    let mut state = None;
    let mut want = Vec::new();
    let mut next = prime[0];
    for i in 0..prime.len() + greedy.length - 1 {
        let id = if i < prime.len() { prime[i] } else { next };
        let ids = model.embedding.ids(ctx, &[1], &[id]).unwrap();
        let x = model.embedding.forward(ctx, &ids).unwrap();
        let (h, st) = model.rnn().unwrap().step(ctx, &x, state.as_ref()).unwrap();
        state = Some(st);
        let logits = model.decoder.forward(ctx, &h).unwrap().to_vec(ctx).unwrap();
        let best = (0..logits.len()).fold(0, |b, j| if logits[j] > logits[b] { j } else { b });
        next = best as u32;
        if i + 1 >= prime.len() {
            want.push(next);
        }
    }
    assert_eq!(got, want, "greedy sampling vs step-by-step arg-max");
    let draw = |seed| {
        let o = SampleOptions {
            length: 300,
            temperature: 1.0,
            top_k: 0,
            seed,
        };
        model.sample(ctx, &prime, &o, &mut |_| {}).unwrap()
    };
    assert_eq!(draw(5), draw(5));
    assert_ne!(draw(5), draw(6));
    // Chunks arrive in order and add up to the whole text.
    let mut seen = Vec::new();
    let o = SampleOptions {
        length: 300,
        temperature: 0.8,
        top_k: 5,
        seed: 9,
    };
    let all = model
        .sample(ctx, &prime, &o, &mut |c| seen.extend_from_slice(c))
        .unwrap();
    assert_eq!(seen, all);
}

/// Bad input gets one line naming the problem and exit status 2, and writes nothing.
#[test]
fn commands_refuse_bad_input() {
    if gpu().is_none() {
        return;
    }
    let d = scratch("cli");
    let s = |p: &Path| p.display().to_string();
    let empty = d.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let short = d.join("short.txt");
    std::fs::write(&short, shakespeare(300)).unwrap();
    let small_args = [
        "--hidden",
        "8",
        "--embed",
        "4",
        "--seq-len",
        "8",
        "--batch",
        "4",
    ];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "train-lm".into(),
                "--data".into(),
                s(&d.join("missing.txt")),
                "--out".into(),
                s(&d.join("o1")),
                "--steps".into(),
                "1".into(),
            ],
            "missing.txt",
        ),
        (
            vec![
                "train-lm".into(),
                "--data".into(),
                s(&empty),
                "--out".into(),
                s(&d.join("o2")),
                "--steps".into(),
                "1".into(),
            ],
            "empty",
        ),
        (
            vec![
                "train-lm".into(),
                "--data".into(),
                s(&short),
                "--out".into(),
                s(&d.join("o3")),
                "--steps".into(),
                "1".into(),
                "--batch".into(),
                "64".into(),
            ],
            "shorter than one batch",
        ),
        (
            vec!["eval-lm".into(), "--checkpoint".into(), s(&d)],
            "not a checkpoint",
        ),
        (
            vec![
                "ngram".into(),
                "--data".into(),
                s(&short),
                "--order".into(),
                "0".into(),
            ],
            "order",
        ),
    ];
    for (args, want) in cases {
        let a: Vec<&str> = args.iter().map(|x| x.as_str()).collect();
        let (code, _, err) = wgrnn(&a);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert!(!d.join("o1").join("last").exists() && !d.join("o3").join("last").exists());
    // A checkpoint, then a prime it cannot read and data of another vocabulary.
    let good = d.join("good.txt");
    std::fs::write(&good, shakespeare(4000)).unwrap();
    let out = d.join("run");
    let (g, o) = (s(&good), s(&out));
    let mut a = vec!["train-lm", "--data", &g, "--out", &o, "--steps", "2"];
    a.extend(small_args);
    let (code, _, err) = wgrnn(&a);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = wgrnn(&["sample", "--checkpoint", &o, "--prime", "é"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'é'"), "{err}");
    let other = d.join("other.txt");
    std::fs::write(&other, "zzzz qqqq xxxx ".repeat(100)).unwrap();
    let (code, _, err) = wgrnn(&["eval-lm", "--checkpoint", &o, "--data", &s(&other)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("vocabulary"), "{err}");
    // A checkpoint whose tensors do not match its config.json.
    let bad = d.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    for f in ["config.json", "model.safetensors", "optimizer.safetensors"] {
        std::fs::copy(out.join("last").join(f), bad.join(f)).unwrap();
    }
    let rnn2 = d.join("run2");
    let r2 = s(&rnn2);
    let a2 = [
        "train-lm",
        "--data",
        &g,
        "--out",
        &r2,
        "--steps",
        "1",
        "--hidden",
        "12",
        "--embed",
        "4",
        "--seq-len",
        "8",
        "--batch",
        "4",
    ];
    assert_eq!(wgrnn(&a2).0, 0);
    std::fs::copy(
        rnn2.join("last/rnn.safetensors"),
        bad.join("rnn.safetensors"),
    )
    .unwrap();
    let (code, _, err) = wgrnn(&["eval-lm", "--checkpoint", &s(&bad)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rnn.safetensors"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}
