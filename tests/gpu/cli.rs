//! The command line's contracts that other tools rely on: `wgrnn bench --json` keys (run on the
//! smoke suite with --check, as CI's smoke test), `--list`, and the main job `wgrnn forward`.

use std::process::Command;

use crate::common::{gpu, wgrnn};

/// Keys the contract requires in every JSON line.
const KEYS: [&str; 16] = [
    "mode",
    "input",
    "hidden",
    "batch",
    "seq",
    "layers",
    "bidirectional",
    "pass",
    "gpu_ms",
    "wall_ms",
    "us_per_step",
    "tflops",
    "time_source",
    "dispatches",
    "submits",
    "adapter",
];

#[test]
fn bench_smoke_json() {
    if gpu().is_none() {
        return;
    }
    let (code, out, err) = wgrnn(&[
        "bench", "--suite", "smoke", "--json", "--check", "--reps", "2",
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // Two shapes x passes inference and train.
    assert_eq!(lines.len(), 4, "{out}");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object: {e}: {l}"));
        for k in KEYS {
            assert!(v.get(k).is_some(), "key {k} missing: {l}");
        }
        // Counted at the queue: one submission per call, nothing read back inside it.
        assert_eq!(v["submits"], 1, "one submit per call: {l}");
        assert_eq!(v["readbacks"], 0, "no readback inside a call: {l}");
        assert!(v["dispatches"].as_u64().unwrap() > 0, "{l}");
    }
    assert!(lines.iter().any(|l| l.contains("\"pass\":\"train\"")));
}

/// Every schedule and the f16 weights through the command line, checked against the reference;
/// the JSON says which ran.
#[test]
fn bench_schedules_and_f16_weights() {
    if gpu().is_none() {
        return;
    }
    let shape = [
        "bench", "--layers", "2", "--input", "9", "--hidden", "11", "--batch", "3", "--seq", "6",
        "--reps", "1", "--warmup", "0", "--json", "--check",
    ];
    for (wavefront, persistent, weights, schedule) in [
        ("1", "never", "f32", "wavefront"),
        ("0", "never", "f16", "per-layer"),
        ("1", "always", "f16", "single-workgroup"),
    ] {
        let env = (wavefront, persistent);
        let out = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
            .args(shape)
            .args(["--weights", weights])
            .env("WGRNN_WAVEFRONT", wavefront)
            .env("WGRNN_PERSISTENT", persistent)
            .env("WGRNN_TUNE_CACHE", "off")
            .output()
            .unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{env:?} {weights}: {e}");
        assert!(
            o.contains(&format!("\"schedule\":\"{schedule}\"")),
            "{env:?}: {o}"
        );
        assert!(o.contains(&format!("\"weights\":\"{weights}\"")), "{o}");
    }
}

#[test]
fn bench_list_needs_no_gpu() {
    let (code, out, err) = wgrnn(&["bench", "--suite", "deepbench-train", "--list"]);
    assert_eq!(code, 0, "{err}");
    // DeepBench's training set has 52 RNN problems (one commented out upstream).
    assert_eq!(out.lines().count(), 52);
    let (code, _, err) = wgrnn(&["bench", "--suite", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nope"));
}

#[test]
fn forward_main_job_agrees_with_reference() {
    if gpu().is_none() {
        return;
    }
    let (code, out, err) = wgrnn(&[
        "forward",
        "--mode",
        "gru",
        "--input",
        "5",
        "--hidden",
        "7",
        "--batch",
        "3",
        "--seq",
        "4",
        "--layers",
        "2",
        "--bidirectional",
        "--reps",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("agreement: relative error"), "{out}");
    // Every result of the call is compared, the cell state too (GRU has none).
    assert!(out.contains("output ") && out.contains("h_n "), "{out}");
    assert!(out.contains("1 submit and 0 readbacks per call"), "{out}");
    let (code, out, _) = wgrnn(&[
        "forward", "--input", "5", "--hidden", "7", "--batch", "2", "--seq", "3", "--reps", "1",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("c_n "), "LSTM cell state compared: {out}");
}

/// Bad flags and impossible sizes: one line, exit status 2, nothing allocated.
#[test]
fn refused_flags_and_sizes() {
    if gpu().is_none() {
        return;
    }
    let (code, _, err) = wgrnn(&["forward", "--reps", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--reps"), "{err}");
    // 409 GB of weights: refused by the adapter's limits before any host allocation.
    let (code, _, err) = wgrnn(&[
        "bench",
        "--mode",
        "lstm",
        "--input",
        "256",
        "--hidden",
        "100000000",
        "--batch",
        "1",
        "--seq",
        "1",
        "--layers",
        "1",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("weight_ih_l0") && err.contains("exceeds"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `wgrnn tune` writes a cache entry for this adapter per shape class of the suite; `bench`
/// then reports its configuration as coming from the cache, and a malformed cache is one line
/// naming the file and exit status 2.
#[test]
fn tune_writes_a_cache_that_bench_reads() {
    use std::process::Command;
    if crate::common::gpu().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("wgrnn-tune-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cache = dir.join("tune.json");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
            .args(args)
            .env("WGRNN_TUNE_CACHE", &cache)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["tune", "--suite", "smoke", "--reps", "1"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("h<=128,b<=4"), "{out}");
    let text = std::fs::read_to_string(&cache).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], "wgrnn-tune");
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    let (code, out, err) = run(&["bench", "--suite", "smoke", "--quick", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for line in out.lines() {
        let j: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(j["tuned"], "cache", "{line}");
        assert!(j["kernel_config"]["variant"].is_string(), "{line}");
    }
    std::fs::write(&cache, "{broken").unwrap();
    let (code, out, err) = run(&["bench", "--suite", "smoke", "--quick"]);
    assert_eq!(code, 2, "{out}\n{err}");
    let msgs: Vec<&str> = err.lines().filter(|l| l.starts_with("wgrnn:")).collect();
    assert!(msgs.len() == 1 && msgs[0].contains("tune.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The opt-in tensor-core precision: on an adapter with cooperative matrices, `bench --check`
/// passes against the f64 reference within the f16 bound (the conformance test of
/// `matmul_coop`, GEMMs and split recurrent products); elsewhere it is refused in one line
/// naming the setting, exit status 2.
#[test]
fn f16_precision_runs_checked_or_is_refused() {
    use std::process::Command;
    let Some(ctx) = crate::common::gpu() else {
        return;
    };
    let offered = ctx
        .compute_features()
        .iter()
        .any(|(n, on)| n.starts_with("cooperative-matrix") && *on);
    let out = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
        .args(["bench", "--suite", "smoke", "--quick", "--check"])
        .env("WGRNN_PRECISION", "f16")
        .env("WGRNN_TUNE_CACHE", "off")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    let msgs: Vec<&str> = err.lines().filter(|l| l.starts_with("wgrnn:")).collect();
    if offered && !msgs.iter().any(|m| m.contains("WGRNN_PRECISION")) {
        assert_eq!(code, 0, "{err}");
    } else {
        assert_eq!(code, 2, "{err}");
        assert!(
            msgs.len() == 1 && msgs[0].contains("WGRNN_PRECISION=f16"),
            "{err}"
        );
    }
}
