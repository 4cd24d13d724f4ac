//! The attentional encoder-decoder (`models::nmt::model`): its whole gradient against central
//! differences of an f64 reference of the model (every attention, LSTM and GRU, ragged
//! sources); a reversal task learned to exact greedy output with attention and not without;
//! train-nmt's resume, translate and their errors.

use std::collections::HashMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::gpu;
use wgrnn::models::nmt::model::{IGNORE, Seq2Seq, Seq2SeqConfig, Seq2SeqTrainer};
use wgrnn::models::nmt::text::{BOS_ID, EOS_ID};
use wgrnn::reference::attention::AttentionRef;
use wgrnn::reference::embedding::embedding_forward;
use wgrnn::reference::linear::linear_forward;
use wgrnn::reference::loss::softmax_ce_forward;
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_forward};

/// f64 central differences of the reference are exact to ~1e-9; the GPU computes in f32
/// through two RNNs, attention and two softmaxes: a few 1e-6 relative.
const GRAD_TOL: f64 = 1e-4;

fn tiny(mode: &str, attention: &str) -> Seq2SeqConfig {
    Seq2SeqConfig {
        mode: mode.into(),
        layers: 1,
        hidden: 3,
        embed: 2,
        attention: attention.into(),
        attention_rank: 2,
        dropout: 0.0,
        seed: 7,
        input_feeding: false,
        frozen_src_embedding: false,
    }
}

/// The mean target cross-entropy of `pairs` in f64, from the parameters by name.
fn reference_loss(
    p: &HashMap<String, Vec<f64>>,
    enc: &RefParams,
    dec: &RefParams,
    c: &Seq2SeqConfig,
    pairs: &[(Vec<u32>, Vec<u32>)],
    vs: usize,
    vt: usize,
) -> f64 {
    let (h, e, l) = (c.hidden, c.embed, c.layers);
    let b = pairs.len();
    let s = pairs.iter().map(|(x, _)| x.len() + 1).max().unwrap();
    let t = pairs.iter().map(|(_, y)| y.len() + 1).max().unwrap();
    let mut src = vec![0u32; s * b];
    let mut tin = vec![0u32; t * b];
    let mut tout = vec![IGNORE; b * t];
    for (j, (x, y)) in pairs.iter().enumerate() {
        for (i, &id) in x.iter().chain(&[EOS_ID]).enumerate() {
            src[i * b + j] = id;
        }
        for (i, &id) in [BOS_ID].iter().chain(y.iter()).enumerate() {
            tin[i * b + j] = id;
        }
        for (i, &id) in y.iter().chain(&[EOS_ID]).enumerate() {
            tout[j * t + i] = id;
        }
    }
    let lens: Vec<usize> = pairs.iter().map(|(x, _)| x.len() + 1).collect();
    let with = |r: &RefParams, prefix: &str| {
        let mut r = r.clone();
        for (n, v) in r.named_mut() {
            *v = p[&format!("{prefix}.{n}")].clone();
        }
        r
    };
    let (enc, dec) = (with(enc, "encoder"), with(dec, "decoder"));
    let x = embedding_forward(&p["src_embedding.weight"], &src, vs, e);
    let fe = rnn_forward(
        &enc,
        &RefInputs {
            x,
            seq: s,
            batch: b,
            lengths: Some(lens.clone()),
            ..Default::default()
        },
    );
    let bridge = |states: &[f64], name: &str| -> Vec<f64> {
        let mut input = Vec::new();
        for k in 0..l {
            for j in 0..b {
                for d in [2 * k, 2 * k + 1] {
                    input.extend_from_slice(&states[(d * b + j) * h..(d * b + j + 1) * h]);
                }
            }
        }
        let w = &p[&format!("{name}.weight")];
        let bias = &p[&format!("{name}.bias")];
        linear_forward(&input, w, Some(bias), l * b, 2 * h, h)
            .iter()
            .map(|v| v.tanh())
            .collect()
    };
    let h0 = bridge(&fe.h_n, "bridge_h");
    let c0 = fe.c_n.as_ref().map(|cn| bridge(cn, "bridge_c"));
    let y = embedding_forward(&p["tgt_embedding.weight"], &tin, vt, e);
    let bm = |v: &[f64], n: usize, w: usize| -> Vec<f64> {
        (0..b)
            .flat_map(|j| {
                (0..n).flat_map(move |i| v[(i * b + j) * w..(i * b + j + 1) * w].to_vec())
            })
            .collect()
    };
    // tanh(combine [attention; s]) of batch-major decoder states [B*n, H].
    let head = |decb: &[f64], n: usize| -> Vec<f64> {
        let cat: Vec<f64> = match c.score().unwrap() {
            None => decb.to_vec(),
            Some(score) => {
                let get = |n: &str| p.get(&format!("attention.{n}.weight")).cloned();
                let att = AttentionRef {
                    score,
                    enc: 2 * h,
                    hidden: h,
                    key: get("key").unwrap(),
                    value: get("value").unwrap(),
                    query: get("query"),
                    key_proj: get("key_proj"),
                    energy: get("energy"),
                };
                let encb = bm(&fe.output, s, 2 * h);
                let (ctx, _) = att.forward(&encb, &lens, decb, n);
                (0..b * n)
                    .flat_map(|r| {
                        let mut row = ctx[r * h..(r + 1) * h].to_vec();
                        row.extend_from_slice(&decb[r * h..(r + 1) * h]);
                        row
                    })
                    .collect()
            }
        };
        let width = cat.len() / (b * n);
        linear_forward(
            &cat,
            &p["combine.weight"],
            Some(&p["combine.bias"]),
            b * n,
            width,
            h,
        )
        .iter()
        .map(|v| v.tanh())
        .collect()
    };
    let hid = if c.input_feeding {
        // Step by step: step i's input is [y_i; o_{i-1}], o_{-1} = 0.
        let (mut hs, mut cs) = (h0, c0);
        let mut feed = vec![0.0; b * h];
        let mut outs = Vec::new();
        for i in 0..t {
            let x: Vec<f64> = (0..b)
                .flat_map(|j| {
                    let mut row = y[(i * b + j) * e..(i * b + j + 1) * e].to_vec();
                    row.extend_from_slice(&feed[j * h..(j + 1) * h]);
                    row
                })
                .collect();
            let fd = rnn_forward(
                &dec,
                &RefInputs {
                    x,
                    seq: 1,
                    batch: b,
                    h0: Some(hs),
                    c0: cs,
                    ..Default::default()
                },
            );
            feed = head(&fd.output, 1);
            outs.extend_from_slice(&feed);
            (hs, cs) = (fd.h_n, fd.c_n);
        }
        bm(&outs, t, h)
    } else {
        let fd = rnn_forward(
            &dec,
            &RefInputs {
                x: y.clone(),
                seq: t,
                batch: b,
                h0: Some(h0),
                c0,
                ..Default::default()
            },
        );
        head(&bm(&fd.output, t, h), t)
    };
    let logits = linear_forward(
        &hid,
        &p["output.weight"],
        Some(&p["output.bias"]),
        b * t,
        h,
        vt,
    );
    softmax_ce_forward(&logits, &tout, vt, Some(IGNORE)).loss
}

#[test]
fn tiny_model_gradient_matches_finite_differences() {
    let Some(ctx) = gpu() else { return };
    let (vs, vt) = (7, 6);
    // Ragged sources (1 to 3 tokens), targets of 0 to 3 tokens.
    let pairs: Vec<(Vec<u32>, Vec<u32>)> = vec![
        (vec![4, 5, 6], vec![4, 5]),
        (vec![5], vec![]),
        (vec![6, 4], vec![5, 5, 4]),
    ];
    let refs: Vec<(&[u32], &[u32])> = pairs
        .iter()
        .map(|(x, y)| (x.as_slice(), y.as_slice()))
        .collect();
    for (mode, attention, input_feeding) in [
        ("lstm", "dot", false),
        ("lstm", "additive", false),
        ("gru", "multiplicative", false),
        ("gru", "low-rank", false),
        ("lstm", "none", false),
        ("lstm", "dot", true),
        ("gru", "additive", true),
        ("lstm", "none", true),
    ] {
        let c = Seq2SeqConfig {
            input_feeding,
            ..tiny(mode, attention)
        };
        let model = Seq2Seq::new(ctx, vs, vt, &c).unwrap();
        let enc = RefParams::from_params(&model.encoder.params(ctx).unwrap());
        let dec = RefParams::from_params(&model.decoder.params(ctx).unwrap());
        let mut tr = Seq2SeqTrainer::new(ctx, model, 1e-3, 0.0).unwrap();
        let mut p: HashMap<String, Vec<f64>> = HashMap::new();
        for np in tr.store().params() {
            let v = tr.store().param_to_host(ctx, &np.name).unwrap();
            p.insert(np.name.clone(), v.data.iter().map(|&x| x as f64).collect());
        }
        let (loss, grads) = tr.gradients(ctx, &refs).unwrap();
        let f = |p: &HashMap<String, Vec<f64>>| reference_loss(p, &enc, &dec, &c, &pairs, vs, vt);
        let l0 = f(&p);
        assert!(
            (loss as f64 - l0).abs() < 1e-5,
            "{mode} {attention} feeding {input_feeding}: loss {loss} vs {l0}"
        );
        let eps = 1e-6;
        for (name, g) in &grads {
            let mut q = p.clone();
            let numeric: Vec<f64> = (0..g.data.len())
                .map(|i| {
                    let x0 = q[name][i];
                    q.get_mut(name).unwrap()[i] = x0 + eps;
                    let up = f(&q);
                    q.get_mut(name).unwrap()[i] = x0 - eps;
                    let down = f(&q);
                    q.get_mut(name).unwrap()[i] = x0;
                    (up - down) / (2.0 * eps)
                })
                .collect();
            // Padding rows of the embeddings get no gradient, by definition.
            let numeric = if name.ends_with("embedding.weight") {
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
                "{mode} {attention} feeding {input_feeding} {name}: relative error {rel:.3e} (seed {})",
                c.seed
            );
        }
    }
}

/// Random sources of 3 to `max` tokens over ids 4..4+k, and their reversals.
fn reversal(rng: &mut ChaCha8Rng, n: usize, k: u32, max: usize) -> Vec<(Vec<u32>, Vec<u32>)> {
    (0..n)
        .map(|_| {
            let len = rng.random_range(3..=max);
            let x: Vec<u32> = (0..len).map(|_| 4 + rng.random_range(0..k)).collect();
            let y = x.iter().rev().copied().collect();
            (x, y)
        })
        .collect()
}

/// A model of `c` over `k` symbols trained `steps` steps on reversals of 3 to `max` tokens
/// (Adam 1e-2, clip 5, batches of 32); `before` sees it untrained.
fn train_reversal(
    ctx: &wgrnn::Context,
    c: &Seq2SeqConfig,
    k: u32,
    max: usize,
    steps: usize,
    rng: &mut ChaCha8Rng,
    before: impl FnOnce(&Seq2SeqTrainer),
) -> Seq2SeqTrainer {
    let v = 4 + k as usize;
    let model = Seq2Seq::new(ctx, v, v, c).unwrap();
    let mut tr = Seq2SeqTrainer::new(ctx, model, 1e-2, 5.0).unwrap();
    before(&tr);
    for _ in 0..steps {
        let batch = reversal(rng, 32, k, max);
        let refs: Vec<(&[u32], &[u32])> = batch
            .iter()
            .map(|(x, y)| (x.as_slice(), y.as_slice()))
            .collect();
        tr.train_step(ctx, &refs).unwrap();
    }
    tr
}

/// Trains a GRU encoder-decoder with `attention` on reversal for 300 steps and returns the
/// fraction of 64 fresh sequences it reverses exactly by greedy decoding, and the loss
/// before and after.
fn reversal_accuracy(
    ctx: &wgrnn::Context,
    attention: &str,
    input_feeding: bool,
    max: usize,
) -> (f64, f32, f32) {
    let k = 8u32;
    let c = Seq2SeqConfig {
        hidden: 32,
        embed: 16,
        input_feeding,
        ..tiny("gru", attention)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let test = reversal(&mut rng, 64, k, max);
    let test_refs: Vec<(&[u32], &[u32])> = test
        .iter()
        .map(|(x, y)| (x.as_slice(), y.as_slice()))
        .collect();
    let mut before = 0.0;
    let tr = train_reversal(ctx, &c, k, max, 300, &mut rng, |tr| {
        before = tr.loss(ctx, &test_refs).unwrap();
    });
    let after = tr.loss(ctx, &test_refs).unwrap();
    let srcs: Vec<&[u32]> = test.iter().map(|(x, _)| x.as_slice()).collect();
    let out = tr.model.greedy(ctx, &srcs, 2 * max).unwrap();
    let exact = out.iter().zip(&test).filter(|(o, (_, y))| *o == y).count();
    (exact as f64 / test.len() as f64, before, after)
}

/// Sequences of 3 to 12 tokens: the bridge alone (`none`) cannot carry them through one
/// H = 32 state (about a quarter reversed exactly after 300 steps), attention can (all of
/// them, measured on lavapipe).
#[test]
fn attention_learns_to_reverse_where_the_bridge_alone_cannot() {
    let Some(ctx) = gpu() else { return };
    let (with, b1, a1) = reversal_accuracy(ctx, "dot", false, 12);
    let (without, b2, a2) = reversal_accuracy(ctx, "none", false, 12);
    assert!(
        with >= 0.9,
        "dot attention reversed {with:.2} exactly; loss {b1:.3} -> {a1:.3}"
    );
    assert!(
        without <= 0.5,
        "without attention {without:.2} reversed exactly (loss {b2:.3} -> {a2:.3}): the test no \
         longer shows what attention adds"
    );
}

/// Input feeding trains step by step and decodes feeding each step's attentional vector
/// back: it learns reversal (of 3 to 8 tokens, to keep the step-by-step run short), and
/// greedy decoding uses what training learned.
#[test]
fn input_feeding_learns_to_reverse() {
    let Some(ctx) = gpu() else { return };
    let (acc, before, after) = reversal_accuracy(ctx, "dot", true, 8);
    assert!(
        acc >= 0.9,
        "input feeding reversed {acc:.2} exactly; loss {before:.3} -> {after:.3}"
    );
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("wgrnn-nmt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A parallel folder whose "translation" reverses the words: train (n pairs) and val (20).
fn reversal_dir(d: &std::path::Path, n: usize) {
    let words = [
        "ein", "Hund", "läuft", "rot", "zwei", "Katzen", "im", "Park",
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (split, n) in [("train", n), ("val", 20)] {
        let (mut src, mut tgt) = (String::new(), String::new());
        for _ in 0..n {
            let len = rng.random_range(2..=5);
            let s: Vec<&str> = (0..len).map(|_| words[rng.random_range(0..8)]).collect();
            src.push_str(&format!("{}.\n", s.join(" ")));
            let r: Vec<String> = s.iter().rev().map(|w| w.to_uppercase()).collect();
            tgt.push_str(&format!("{}.\n", r.join(" ")));
        }
        std::fs::write(d.join(format!("{split}.de")), src).unwrap();
        std::fs::write(d.join(format!("{split}.en")), tgt).unwrap();
    }
}

#[test]
fn resume_is_exact() {
    use std::sync::atomic::AtomicBool;
    use wgrnn::models::epochs::Budget;
    use wgrnn::models::nmt::train::{NmtConfig, TrainOptions, train};
    if gpu().is_none() {
        return;
    }
    let d = scratch("resume");
    reversal_dir(&d, 48);
    let config = NmtConfig {
        model: Seq2SeqConfig {
            hidden: 8,
            embed: 8,
            dropout: 0.2,
            ..NmtConfig::default().model
        },
        batch: 16,
        min_count: 1,
        ..NmtConfig::default()
    };
    let opts = |out: &str, epochs: u64, resume: bool| TrainOptions {
        data_dir: d.clone(),
        src: "de".into(),
        tgt: "en".into(),
        out: d.join(out),
        config: config.clone(),
        budget: Budget::Epochs(epochs),
        resume,
    };
    let stop = AtomicBool::new(false);
    let run = |o: &TrainOptions| train(o, &stop, &mut |_, _, _, _| {}, &mut |_| {}).unwrap();
    run(&opts("a", 1, false));
    run(&opts("a", 2, true));
    run(&opts("b", 2, false));
    crate::common::assert_same_checkpoint(
        &d.join("a/last"),
        &d.join("b/last"),
        &[
            "encoder.safetensors",
            "decoder.safetensors",
            "model.safetensors",
            "optimizer.safetensors",
        ],
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn commands_train_translate_and_refuse_bad_input() {
    use crate::common::wgrnn_bytes;
    if gpu().is_none() {
        return;
    }
    let d = scratch("cli");
    reversal_dir(&d, 32);
    let dir = d.display().to_string();
    let out = d.join("run").display().to_string();
    let small = [
        "--hidden",
        "8",
        "--embed",
        "8",
        "--batch",
        "16",
        "--min-count",
        "1",
        "--epochs",
        "1",
    ];
    let mut args = vec!["train-nmt", "--data-dir", &dir, "--out", &out];
    args.extend(small);
    let (code, _, err) = wgrnn_bytes(&args, None);
    assert_eq!(code, 0, "{err}");
    let csv = std::fs::read_to_string(d.join("run/metrics.csv")).unwrap();
    assert!(
        csv.starts_with("step,train_loss,val_bleu,pairs_per_s"),
        "{csv}"
    );
    for f in ["best/config.json", "last/encoder.safetensors", "curves.png"] {
        assert!(d.join("run").join(f).is_file(), "{f}");
    }
    // One output line per input line, in order; an empty line stays empty.
    let (code, stdout, err) = wgrnn_bytes(
        &["translate", "--checkpoint", &out],
        Some("ein Hund.\n\nzwei Katzen im Park.\n".as_bytes()),
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<String> = String::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[1].is_empty() && !lines[0].is_empty(), "{lines:?}");
    // Beam search with heat maps: the same line layout, one PNG per non-empty line whose
    // size is the heat map's for its tokens.
    let png = d.join("maps");
    let png_s = png.display().to_string();
    let (code, stdout, err) = wgrnn_bytes(
        &[
            "translate",
            "--checkpoint",
            &out,
            "--beam",
            "3",
            "--attention-png",
            &png_s,
        ],
        Some("ein Hund.\n\nzwei Katzen im Park.\n".as_bytes()),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(String::from_utf8(stdout).unwrap().lines().count(), 3);
    let mut names: Vec<String> = std::fs::read_dir(&png)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["000001.png", "000003.png"]);
    for n in &names {
        let img = image::open(png.join(n)).unwrap();
        assert!(
            img.width() > 100 && img.height() > 50,
            "{n}: {}x{}",
            img.width(),
            img.height()
        );
    }
    for bad in ["--beam=0", "--beam=33", "--length-penalty=-1"] {
        let a = ["translate", "--checkpoint", &out, bad];
        let (code, _, err) = wgrnn_bytes(&a, Some(b"x\n"));
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    // The same --out again: refused, nothing changed.
    let (code, _, err) = wgrnn_bytes(&args, None);
    assert_eq!(code, 2, "{err}");
    // Mismatched line counts and a missing split: one line naming the file, status 2.
    std::fs::write(d.join("val.en"), "ONE.\n").unwrap();
    let out2 = d.join("run2").display().to_string();
    let mut args = vec!["train-nmt", "--data-dir", &dir, "--out", &out2];
    args.extend(small);
    let (code, _, err) = wgrnn_bytes(&args, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("val.en") && err.lines().count() == 1, "{err}");
    std::fs::remove_file(d.join("val.en")).unwrap();
    let (code, _, err) = wgrnn_bytes(&args, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("val.en"), "{err}");
    assert!(!d.join("run2/last").exists());
    let (code, _, err) = wgrnn_bytes(&["translate", "--checkpoint", &dir], Some(b"x\n"));
    assert_eq!(code, 2, "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

/// The model's log-probability of `y` (and `</s>`) given `x`, from the teacher-forced loss.
fn log_prob(ctx: &wgrnn::Context, tr: &Seq2SeqTrainer, x: &[u32], y: &[u32]) -> f64 {
    -(tr.loss(ctx, &[(x, y)]).unwrap() as f64) * (y.len() + 1) as f64
}

/// Checks the beam-search contracts on `tr`'s model over `srcs`: beam 1 is greedy (ids and
/// attention), beam `k` returns k distinct hypotheses best first whose scores (alpha = 0)
/// are the model's log-probabilities and whose best never scores below greedy's, and every
/// attention row sums to 1.
fn check_beam(ctx: &wgrnn::Context, tr: &Seq2SeqTrainer, srcs: &[&[u32]], k: usize, what: &str) {
    let m = &tr.model;
    let max_len = 14;
    let greedy = m.decode_greedy(ctx, srcs, max_len, true).unwrap();
    let one = m.beam_search(ctx, srcs, 1, 1.0, max_len, true).unwrap();
    for (i, (g, b)) in greedy.iter().zip(&one).enumerate() {
        assert_eq!(
            b.len(),
            1,
            "{what} sentence {i}: beam 1 returned {} hypotheses",
            b.len()
        );
        assert_eq!(
            b[0].ids, g.ids,
            "{what} sentence {i}: beam 1 differs from greedy"
        );
        assert_eq!(b[0].ended, g.ended, "{what} sentence {i}");
        assert_eq!(
            b[0].attention, g.attention,
            "{what} sentence {i}: attention"
        );
    }
    let beams = m.beam_search(ctx, srcs, k, 0.0, max_len, true).unwrap();
    for (i, (hyps, g)) in beams.iter().zip(&greedy).enumerate() {
        assert_eq!(
            hyps.len(),
            k,
            "{what} sentence {i}: {} hypotheses",
            hyps.len()
        );
        for a in 0..k {
            for b in 0..a {
                assert_ne!(
                    hyps[a].ids, hyps[b].ids,
                    "{what} sentence {i}: {b} and {a} equal"
                );
            }
            if a > 0 {
                assert!(
                    hyps[a - 1].score >= hyps[a].score,
                    "{what} sentence {i}: order"
                );
            }
        }
        for h in hyps.iter().chain(std::iter::once(g)) {
            for (t, row) in h.attention.iter().flatten().enumerate() {
                let sum: f32 = row.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-5,
                    "{what} sentence {i} row {t}: sum {sum}"
                );
                assert_eq!(row.len(), srcs[i].len() + 1, "{what} sentence {i} row {t}");
            }
        }
        let best = &hyps[0];
        if best.ended {
            // alpha = 0: the score is the sum of log-probabilities, </s> included.
            let lp = log_prob(ctx, tr, srcs[i], &best.ids);
            let score = best.score.unwrap() as f64;
            assert!(
                (score - lp).abs() < 1e-3 * lp.abs().max(1.0),
                "{what} sentence {i}: beam score {score} vs model {lp}"
            );
        }
        if g.ended && best.ended {
            let (gl, bl) = (
                log_prob(ctx, tr, srcs[i], &g.ids),
                log_prob(ctx, tr, srcs[i], &best.ids),
            );
            assert!(
                bl >= gl - 1e-4,
                "{what} sentence {i}: beam {bl} below greedy {gl}"
            );
        }
    }
}

#[test]
fn beam_search_on_a_trained_model() {
    let Some(ctx) = gpu() else { return };
    let c = Seq2SeqConfig {
        hidden: 32,
        embed: 16,
        ..tiny("gru", "dot")
    };
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let tr = train_reversal(ctx, &c, 8, 8, 120, &mut rng, |_| {});
    let test = reversal(&mut rng, 24, 8, 8);
    let srcs: Vec<&[u32]> = test.iter().map(|(x, _)| x.as_slice()).collect();
    check_beam(ctx, &tr, &srcs, 4, "trained GRU dot");
}

/// Untrained (so hypotheses also run to the length limit), input feeding, two layers and an
/// LSTM's cell state: every state the beams carry is reordered.
#[test]
fn beam_search_with_input_feeding_and_layers() {
    let Some(ctx) = gpu() else { return };
    let c = Seq2SeqConfig {
        hidden: 8,
        embed: 6,
        layers: 2,
        input_feeding: true,
        ..tiny("lstm", "additive")
    };
    let model = Seq2Seq::new(ctx, 11, 9, &c).unwrap();
    let tr = Seq2SeqTrainer::new(ctx, model, 1e-3, 0.0).unwrap();
    let srcs: Vec<Vec<u32>> = vec![vec![4, 5, 6, 7], vec![8], vec![9, 10, 4]];
    let refs: Vec<&[u32]> = srcs.iter().map(|s| s.as_slice()).collect();
    check_beam(ctx, &tr, &refs, 3, "untrained fed LSTM");
}

/// The same sources through each attention variant give different weights (the switch
/// selects the score), each row a distribution over the source.
#[test]
fn attention_variants_compute_different_weights() {
    let Some(ctx) = gpu() else { return };
    let srcs: Vec<Vec<u32>> = vec![vec![4, 5, 6, 7, 8], vec![6, 4]];
    let refs: Vec<&[u32]> = srcs.iter().map(|s| s.as_slice()).collect();
    let mut seen: Vec<(&str, Vec<Vec<f32>>)> = Vec::new();
    for variant in ["dot", "multiplicative", "low-rank", "additive"] {
        let model = Seq2Seq::new(ctx, 9, 9, &tiny("gru", variant)).unwrap();
        let out = model.decode_greedy(ctx, &refs, 4, true).unwrap();
        let w = out[0].attention.clone().expect("attention weights");
        for row in &w {
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "{variant}: a row sums to {sum}");
        }
        for (other, ow) in &seen {
            assert_ne!(&w, ow, "{variant} and {other} gave the same weights");
        }
        seen.push((variant, w));
    }
    let none = Seq2Seq::new(ctx, 9, 9, &tiny("gru", "none")).unwrap();
    assert!(
        none.decode_greedy(ctx, &refs, 4, true).unwrap()[0]
            .attention
            .is_none()
    );
}
