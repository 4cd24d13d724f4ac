//! Part-of-speech tagging (issue 17): a tiny tagger's gradient (with character features)
//! against finite differences of the reference composition, the character encoder against the
//! reference on ragged words, a task that needs the reverse direction, exact resume, the
//! CoNLL-U round trip through `wgrnn tag`, and the error cases.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{gpu, wgrnn_bytes as wgrnn};
use wgrnn::models::conllu::Word;
use wgrnn::models::corpus::Vocab;
use wgrnn::models::tagger::{
    Budget, Tagger, TaggerConfig, TaggerTrainer, TrainOptions, char_ids, train,
};
use wgrnn::reference::embedding::embedding_forward;
use wgrnn::reference::linear::linear_forward;
use wgrnn::reference::loss::softmax_ce_forward;
use wgrnn::reference::ops::{concat, pool_last_forward};
use wgrnn::reference::rnn::{RefInputs, RefParams, rnn_forward};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrnn-tag-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn f64v(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn sent(s: &str) -> Vec<Word> {
    s.split_whitespace()
        .map(|p| {
            let (f, t) = p.split_once('/').unwrap();
            Word {
                form: f.into(),
                upos: t.into(),
            }
        })
        .collect()
}

fn tiny() -> TaggerConfig {
    TaggerConfig {
        mode: "lstm".into(),
        layers: 1,
        hidden: 4,
        embed: 3,
        char_features: true,
        char_embed: 2,
        char_hidden: 3,
        dropout: 0.0,
        word_dropout: 0.0,
        min_count: 1,
        batch: 4,
        lr: 1e-2,
        clip: 0.0,
        seed: 2,
    }
}

fn vocabs(train: &[Vec<Word>]) -> (Vocab, Vocab, Vocab) {
    let words = Vocab::from_counts(
        train.iter().flatten().map(|w| w.form.as_str()),
        1,
        &["<pad>", "<unk>"],
    )
    .unwrap();
    let cs: Vec<String> = train
        .iter()
        .flatten()
        .flat_map(|w| w.form.chars().map(String::from))
        .collect();
    let chars = Vocab::from_counts(cs.iter().map(String::as_str), 1, &["<pad>", "<unk>"]).unwrap();
    let mut tags: Vec<String> = train.iter().flatten().map(|w| w.upos.clone()).collect();
    tags.sort();
    tags.dedup();
    (words, chars, Vocab::new(tags).unwrap())
}

/// The tagger's loss in f64 through the reference of every layer: the character BiRNN over
/// each word alone (a batch of one, so the reference needs no padding), its last-step
/// features concatenated to the word embedding, the word BiRNN with lengths, the output layer
/// and the cross-entropy over valid positions.
struct Ref {
    emb: Vec<f64>,
    cemb: Vec<f64>,
    crnn: RefParams,
    rnn: RefParams,
    w: Vec<f64>,
    b: Vec<f64>,
}

fn ref_loss(r: &Ref, m: &Tagger, sents: &[Vec<Word>]) -> f64 {
    let c = &m.config;
    let t = sents.iter().map(Vec::len).max().unwrap();
    let bs = sents.len();
    let f2 = 2 * c.char_hidden;
    let mut x = vec![0.0; t * bs * (c.embed + f2)];
    let mut targets = Vec::new();
    let mut rows = Vec::new();
    for i in 0..t {
        for (j, s) in sents.iter().enumerate() {
            let row = &mut x[(i * bs + j) * (c.embed + f2)..(i * bs + j + 1) * (c.embed + f2)];
            match s.get(i) {
                Some(w) => {
                    let id = m.words.id(&w.form).unwrap_or(1);
                    let e = embedding_forward(&r.emb, &[id], m.words.len(), c.embed);
                    let cids = char_ids(&m.chars, &w.form);
                    let ce = embedding_forward(&r.cemb, &cids, m.chars.len(), c.char_embed);
                    let f = rnn_forward(
                        &r.crnn,
                        &RefInputs {
                            x: ce,
                            seq: cids.len(),
                            batch: 1,
                            ..Default::default()
                        },
                    );
                    let feat = pool_last_forward(&f.output, 1, f2, &[cids.len()], c.char_hidden);
                    row.copy_from_slice(&concat(&[&e, &feat], &[c.embed, f2]));
                    targets.push(m.tags.id(&w.upos).unwrap());
                    rows.push(i * bs + j);
                }
                None => row.fill(0.0),
            }
        }
    }
    let lens: Vec<usize> = sents.iter().map(Vec::len).collect();
    let f = rnn_forward(
        &r.rnn,
        &RefInputs {
            x,
            seq: t,
            batch: bs,
            lengths: Some(lens),
            ..Default::default()
        },
    );
    let k = m.tags.len();
    let logits = linear_forward(&f.output, &r.w, Some(&r.b), t * bs, 2 * c.hidden, k);
    let picked: Vec<f64> = rows
        .iter()
        .flat_map(|&p| logits[p * k..(p + 1) * k].to_vec())
        .collect();
    softmax_ce_forward(&picked, &targets, k, None).loss
}

#[test]
fn tiny_tagger_gradient_matches_finite_differences() {
    let Some(ctx) = gpu() else { return };
    // Ragged sentences, a one-character word, a word seen twice in the batch.
    let train_s = vec![
        sent("a/DET cat/NOUN sat/VERB"),
        sent("I/PRON sat/VERB"),
        sent("dogs/NOUN"),
    ];
    let (words, chars, tags) = vocabs(&train_s);
    let c = tiny();
    let m = Tagger::new(ctx, words, chars, tags, &c).unwrap();
    let r = Ref {
        emb: f64v(&m.embedding.weight.to_vec(ctx).unwrap()),
        cemb: f64v(
            &m.char_embedding
                .as_ref()
                .unwrap()
                .weight
                .to_vec(ctx)
                .unwrap(),
        ),
        crnn: RefParams::from_params(&m.char_rnn.as_ref().unwrap().params(ctx).unwrap()),
        rnn: RefParams::from_params(&m.rnn.params(ctx).unwrap()),
        w: f64v(&m.tagger.weight.to_vec(ctx).unwrap()),
        b: f64v(&m.tagger.bias.as_ref().unwrap().to_vec(ctx).unwrap()),
    };
    let mut tr = TaggerTrainer::new(ctx, m, &train_s).unwrap();
    let (loss, grads) = tr.gradients(ctx, &train_s).unwrap();
    let m = &tr.model;
    let l0 = ref_loss(&r, m, &train_s);
    assert!(
        (loss as f64 - l0).abs() < 1e-5,
        "loss {loss} vs reference {l0}"
    );
    let eps = 1e-6;
    for (name, g) in &grads {
        let numeric: Vec<f64> = (0..g.data.len())
            .map(|i| {
                let d = |e: f64| {
                    let mut p = Ref {
                        emb: r.emb.clone(),
                        cemb: r.cemb.clone(),
                        crnn: r.crnn.clone(),
                        rnn: r.rnn.clone(),
                        w: r.w.clone(),
                        b: r.b.clone(),
                    };
                    match name.as_str() {
                        "embedding.weight" => p.emb[i] += e,
                        "char_embedding.weight" => p.cemb[i] += e,
                        "tagger.weight" => p.w[i] += e,
                        "tagger.bias" => p.b[i] += e,
                        n => {
                            let (net, short) = match n.strip_prefix("char_rnn.") {
                                Some(s) => (&mut p.crnn, s),
                                None => (&mut p.rnn, n.strip_prefix("rnn.").unwrap()),
                            };
                            for (pn, t) in net.named_mut() {
                                if pn == short {
                                    t[i] += e;
                                }
                            }
                        }
                    }
                    ref_loss(&p, m, &train_s)
                };
                (d(eps) - d(-eps)) / (2.0 * eps)
            })
            .collect();
        // Padding rows of the embeddings get no gradient, by definition.
        let mut numeric = numeric;
        if name == "embedding.weight" {
            numeric[..c.embed].fill(0.0);
        }
        if name == "char_embedding.weight" {
            numeric[..c.char_embed].fill(0.0);
        }
        let num: f64 = numeric
            .iter()
            .zip(&g.data)
            .map(|(n, &a)| (n - a as f64).powi(2))
            .sum();
        let den: f64 = numeric.iter().map(|n| n * n).sum();
        let rel = (num / den.max(1e-300)).sqrt();
        assert!(
            rel < 1e-4 || num.sqrt() < 1e-7,
            "{name}: relative error {rel:.3e}"
        );
    }
}

/// Padding and batching change nothing: a sentence tagged alone, in a batch with longer ones,
/// and as a batch with a single one-word sentence, gives the same tags; long words are capped.
#[test]
fn character_encoder_is_ragged_and_capped() {
    let Some(ctx) = gpu() else { return };
    let train_s = vec![
        sent("x/A yy/B zzz/A"),
        sent("w/B supercalifragilisticexpialidocious/A x/B yy/A"),
    ];
    let (words, chars, tags) = vocabs(&train_s);
    let m = Tagger::new(
        ctx,
        words,
        chars,
        tags,
        &TaggerConfig {
            hidden: 8,
            char_hidden: 4,
            ..tiny()
        },
    )
    .unwrap();
    let long = char_ids(&m.chars, "supercalifragilisticexpialidocious");
    assert_eq!(long.len(), 20);
    assert_eq!(long[..10], char_ids(&m.chars, "supercalif")[..]);
    assert_eq!(long[10..], char_ids(&m.chars, "xpialidocious")[3..]);
    let alone = m.predict(ctx, &train_s[..1]).unwrap();
    let together = m.predict(ctx, &train_s).unwrap();
    assert_eq!(alone[0], together[0]);
    let single = m.predict(ctx, &[sent("w/B")]).unwrap();
    assert_eq!(single[0].len(), 1);
}

/// Writes a CoNLL-U file where each token's tag is the group of the token to its right (END
/// for the last): only a model that reads rightwards can tag it.
fn right_neighbour_data(path: &Path, n: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = String::new();
    for k in 0..n {
        let len = rng.random_range(2..9usize);
        let toks: Vec<u32> = (0..len).map(|_| rng.random_range(0..12u32)).collect();
        s.push_str(&format!("# sent_id = {k}\n"));
        for i in 0..len {
            let tag = match toks.get(i + 1) {
                Some(&v) if v < 6 => "LOW",
                Some(_) => "HIGH",
                None => "END",
            };
            s.push_str(&format!(
                "{}\tt{}\t_\t{tag}\t_\t_\t_\t_\t_\t_\n",
                i + 1,
                toks[i]
            ));
        }
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

fn options(d: &Path, out: &str, config: TaggerConfig, epochs: u64, resume: bool) -> TrainOptions {
    TrainOptions {
        train: d.join("train.conllu"),
        dev: d.join("dev.conllu"),
        out: d.join(out),
        config,
        budget: Budget::Epochs(epochs),
        resume,
    }
}

#[test]
fn right_neighbour_task_needs_the_reverse_direction() {
    if gpu().is_none() {
        return;
    }
    let d = scratch("right");
    right_neighbour_data(&d.join("train.conllu"), 400, 1);
    right_neighbour_data(&d.join("dev.conllu"), 100, 2);
    let c = TaggerConfig {
        hidden: 16,
        embed: 16,
        char_features: false,
        dropout: 0.0,
        word_dropout: 0.0,
        min_count: 1,
        batch: 16,
        lr: 1e-2,
        ..TaggerConfig::default()
    };
    let stop = AtomicBool::new(false);
    let s = train(
        &options(&d, "bi", c, 8, false),
        &stop,
        &mut |_, _, _, _| {},
        &mut |_| {},
    )
    .unwrap();
    assert!(
        s.best >= 0.98,
        "bidirectional tagger: dev accuracy {}",
        s.best
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn resume_is_exact() {
    if gpu().is_none() {
        return;
    }
    let d = scratch("resume");
    right_neighbour_data(&d.join("train.conllu"), 60, 3);
    right_neighbour_data(&d.join("dev.conllu"), 20, 4);
    let c = TaggerConfig {
        hidden: 8,
        embed: 8,
        char_hidden: 4,
        char_embed: 4,
        batch: 16,
        min_count: 1,
        ..TaggerConfig::default()
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
            "char_rnn.safetensors",
            "model.safetensors",
            "optimizer.safetensors",
        ],
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn tag_round_trip_and_errors() {
    if gpu().is_none() {
        return;
    }
    let d = scratch("cli");
    right_neighbour_data(&d.join("train.conllu"), 40, 5);
    right_neighbour_data(&d.join("dev.conllu"), 10, 6);
    let s = |p: PathBuf| p.display().to_string();
    let (tr, dev, out) = (
        s(d.join("train.conllu")),
        s(d.join("dev.conllu")),
        s(d.join("run")),
    );
    let (code, _, err) = wgrnn(
        &[
            "train-tagger",
            "--train",
            &tr,
            "--dev",
            &dev,
            "--out",
            &out,
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--embed",
            "8",
            "--char-hidden",
            "4",
            "--min-count",
            "1",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    // A file with comments, a range, an empty node and CRLF endings: every byte outside column
    // 4 of word lines comes back unchanged, gzip input too.
    let input = "# text = t1 t2\r\n1-2\tt1t2\t_\t_\t_\t_\t_\t_\t_\t_\r\n1\tt1\tl\tOLD\tx\t_\t0\troot\t_\t_\r\n2\tt2\tl\tOLD\tx\t_\t1\tdep\t_\tSpaceAfter=No\r\n2.1\tgap\t_\t_\t_\t_\t_\t_\t_\t_\r\n\r\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(input.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    for bytes in [input.as_bytes().to_vec(), gz] {
        let (code, o, err) = wgrnn(&["tag", "--checkpoint", &out], Some(&bytes));
        assert_eq!(code, 0, "{err}");
        let o = String::from_utf8(o).unwrap();
        assert_eq!(o.lines().count(), input.lines().count());
        for (a, b) in input.split_inclusive('\n').zip(o.split_inclusive('\n')) {
            if a.contains("\tOLD\t") {
                let (ca, cb): (Vec<&str>, Vec<&str>) =
                    (a.split('\t').collect(), b.split('\t').collect());
                assert_ne!(cb[3], "OLD", "tagged");
                for i in [0, 1, 2, 4, 5, 6, 7, 8, 9] {
                    assert_eq!(ca[i], cb[i], "column {i} of {a:?}");
                }
            } else {
                assert_eq!(a, b);
            }
        }
    }
    let (code, o, err) = wgrnn(
        &[
            "eval-tagger",
            "--checkpoint",
            &out,
            "--data",
            &dev,
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o).unwrap();
    for k in ["accuracy", "n", "accuracy_oov", "baseline_accuracy"] {
        assert!(v.get(k).is_some(), "{k}: {v}");
    }
    // Malformed lines: the line number, exit 2, nothing written.
    let bad = d.join("bad.conllu");
    for (text, want) in [
        ("1\tx\t_\tA\t_\t_\t_\t_\t_\t_\n2\ty\t_\tB\n", "line 2"),
        ("# c\nq\tx\t_\tA\t_\t_\t_\t_\t_\t_\n", "line 2"),
    ] {
        std::fs::write(&bad, text).unwrap();
        let b = s(bad.clone());
        let (code, _, err) = wgrnn(&["eval-tagger", "--checkpoint", &out, "--data", &b], None);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("bad.conllu") && err.contains(want), "{err}");
        let o2 = s(d.join("never"));
        let (code, _, err) = wgrnn(
            &[
                "train-tagger",
                "--train",
                &b,
                "--dev",
                &dev,
                "--out",
                &o2,
                "--epochs",
                "1",
            ],
            None,
        );
        assert_eq!(code, 2, "{err}");
        assert!(!d.join("never/last").exists());
        let (code, _, err) = wgrnn(&["tag", "--checkpoint", &out], Some(text.as_bytes()));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(want), "{err}");
    }
    let _ = std::fs::remove_dir_all(&d);
}
