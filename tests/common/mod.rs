//! Shared test helpers: one GPU context per test binary, the no-adapter policy, seeded random
//! data and tensor comparison with a useful failure report.

#![allow(dead_code)]

use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgrnn::Context;

static CTX: OnceLock<Option<Context>> = OnceLock::new();

/// The shared context. Without an adapter this fails the test, unless the user opted out with
/// `WGRNN_SKIP_GPU_TESTS=1` outside CI (`CI=true` never skips).
pub fn gpu() -> Option<&'static Context> {
    CTX.get_or_init(|| match Context::new() {
        Ok(c) => {
            eprintln!("adapter: {} ({})", c.adapter_name(), c.backend());
            Some(c)
        }
        Err(e) => {
            let ci = std::env::var("CI")
                .map(|v| v == "true" || v == "1")
                .unwrap_or(false);
            let skip = std::env::var("WGRNN_SKIP_GPU_TESTS")
                .map(|v| v == "1")
                .unwrap_or(false);
            if skip && !ci {
                eprintln!("WGRNN_SKIP_GPU_TESTS=1: skipping GPU tests ({e})");
                None
            } else {
                panic!("GPU tests need an adapter: {e}");
            }
        }
    })
    .as_ref()
}

/// Seeded uniform values in [lo, hi).
pub fn uniform(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            (lo + (hi - lo) * u) as f32
        })
        .collect()
}

pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Relative error ||got - want|| / ||want|| (absolute when `want` is all zeros) and the worst
/// element (index, got, want): the library's one comparison.
pub fn rel_err(got: &[f32], want: &[f64]) -> (f64, usize, f64, f64) {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let c = wgrnn::reference::compare::compare(got, want);
    (c.rel, c.worst, c.got, c.want)
}

/// Absolute floor for tensors whose norm is near zero (where a relative error means nothing):
/// an RMS difference of 1e-7 is f32 rounding of O(1) intermediate values.
pub const ABS_FLOOR_RMS: f64 = 1e-7;

/// Asserts `rel_err <= tol` (or an RMS difference under [`ABS_FLOOR_RMS`]), printing the seed,
/// the tensor, the worst element and both values. Returns the relative error.
pub fn assert_close(what: &str, seed: u64, got: &[f32], want: &[f64], tol: f64) -> f64 {
    let (r, i, g, w) = rel_err(got, want);
    let rms = (got
        .iter()
        .zip(want)
        .map(|(&a, &b)| (a as f64 - b).powi(2))
        .sum::<f64>()
        / got.len().max(1) as f64)
        .sqrt();
    if std::env::var_os("WGRNN_PRINT_ERRORS").is_some() {
        eprintln!("measured: {what}: relative error {r:.2e} (tolerance {tol:.0e})");
    }
    assert!(
        r <= tol || rms <= ABS_FLOOR_RMS,
        "{what} (seed {seed}): relative error {r:.3e} > {tol:.1e}; worst element [{i}]: gpu {g:.9e} vs reference {w:.9e}"
    );
    r
}

/// Runs the `wgrnn` binary with `args` and `stdin` (closed at once when absent): its exit
/// status (-1 when killed by a signal), stdout bytes and stderr text.
pub fn wgrnn_bytes(args: &[&str], stdin: Option<&[u8]>) -> (i32, Vec<u8>, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgrnn"))
        .args(args)
        // Tests run on the shipped kernel configurations, never on a local tuning cache.
        .env("WGRNN_TUNE_CACHE", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        // A command that refuses its flags exits before reading: a broken pipe is no error.
        let _ = child.stdin.take().unwrap().write_all(s);
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`wgrnn_bytes`] with no stdin and stdout as text.
pub fn wgrnn(args: &[&str]) -> (i32, String, String) {
    let (code, out, err) = wgrnn_bytes(args, None);
    (code, String::from_utf8_lossy(&out).into_owned(), err)
}

/// Asserts that checkpoint files `files` are byte-identical in folders `a` and `b` (a resumed
/// run against a one-go run).
pub fn assert_same_checkpoint(a: &std::path::Path, b: &std::path::Path, files: &[&str]) {
    for f in files {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(x == y, "{f} differs between the resumed and the one-go run");
    }
}
