//! `wgrnn::models::bleu` and `wgrnn bleu` against sacreBLEU itself: tests/fixtures/bleu/ holds
//! fixture files and what sacreBLEU 2.6.0 computed for them (scripts/sacrebleu_fixtures.py):
//! the 13a tokens of every line, the n-gram statistics, the score and its printed form. No GPU.

use std::path::{Path, PathBuf};

#[path = "common/mod.rs"]
mod common;

use common::wgrnn;
use serde_json::Value;
use wgrnn::models::bleu::{self, BleuStats, tokenize_13a};

/// The score agrees to 1e-9 on the 0-100 scale: the same f64 operations in the same order,
/// only `ln` and `exp` of two libms may differ in the last bit.
const SCORE_TOL: f64 = 1e-9;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bleu")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

fn u64s(v: &Value) -> [u64; 4] {
    let a: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    a.try_into().unwrap()
}

#[test]
fn tokenizer_matches_sacrebleu_on_every_fixture_line() {
    let tokens = json("tokens.json");
    let mut checked = 0;
    for (file, expected) in tokens.as_object().unwrap() {
        let lines = bleu::read_lines(&dir().join(file)).unwrap();
        let expected = expected.as_array().unwrap();
        assert_eq!(lines.len(), expected.len(), "{file}: line count");
        for (i, (line, want)) in lines.iter().zip(expected).enumerate() {
            let got = tokenize_13a(line.trim_end());
            assert_eq!(
                got,
                want.as_str().unwrap(),
                "{file} line {}: {line:?}",
                i + 1
            );
            checked += 1;
        }
    }
    assert!(checked > 1500, "only {checked} lines checked");
}

#[test]
fn scores_match_sacrebleu() {
    let expected = json("expected.json");
    let systems = expected["systems"].as_object().unwrap();
    assert!(systems.len() >= 6);
    for (name, cases) in systems {
        for (case, lowercase) in [("cased", false), ("lowercase", true)] {
            let e = &cases[case];
            let b = bleu::bleu_files(
                &dir().join(format!("{name}.ref")),
                &dir().join(format!("{name}.hyp")),
                lowercase,
            )
            .unwrap();
            let want = BleuStats {
                correct: u64s(&e["counts"]),
                total: u64s(&e["totals"]),
                sys_len: e["sys_len"].as_u64().unwrap(),
                ref_len: e["ref_len"].as_u64().unwrap(),
            };
            assert_eq!(b.stats, want, "{name} {case}: statistics");
            let score = e["score"].as_f64().unwrap();
            assert!(
                (b.score - score).abs() <= SCORE_TOL,
                "{name} {case}: BLEU {} against sacreBLEU's {score}",
                b.score
            );
            for (n, p) in e["precisions"].as_array().unwrap().iter().enumerate() {
                let p = p.as_f64().unwrap();
                assert!(
                    (b.precisions[n] - p).abs() <= SCORE_TOL,
                    "{name} {case}: p{n}"
                );
            }
            assert!((b.bp - e["bp"].as_f64().unwrap()).abs() <= SCORE_TOL);
            // The printed form: sacreBLEU's `BLEU = 41.69 85.9/.../27.6 (BP = ...)` with the
            // score on a line of its own.
            let printed = b.to_string().replacen('\n', " ", 1);
            assert_eq!(printed, e["verbose"].as_str().unwrap(), "{name} {case}");
        }
    }
}

#[test]
fn command_prints_the_score_first_and_refuses_bad_files() {
    let d = dir();
    let path = |f: &str| d.join(f).display().to_string();
    let (code, out, _) = wgrnn(&[
        "bleu",
        "--ref",
        &path("val_noisy.ref"),
        "--hyp",
        &path("val_noisy.hyp"),
    ]);
    assert_eq!(code, 0);
    let want = json("expected.json")["systems"]["val_noisy"]["cased"]["formatted"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(out.lines().next().unwrap(), format!("BLEU = {want}"));
    assert!(out.lines().nth(1).unwrap().contains("BP = "), "{out}");

    // Line counts differ (400 against 20): one line naming both files, status 2.
    let (code, out, err) = wgrnn(&[
        "bleu",
        "--ref",
        &path("empty.ref"),
        "--hyp",
        &path("val_noisy.hyp"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("val_noisy.hyp") && err.contains("empty.ref") && err.contains("400"),
        "{err}"
    );

    let (code, _, err) = wgrnn(&[
        "bleu",
        "--ref",
        &path("nope.ref"),
        "--hyp",
        &path("edge.hyp"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("nope.ref"), "{err}");
}
