//! Goldens from implementations nobody here wrote (tests/golden, made by scripts/golden):
//! ONNX Runtime's LSTM/GRU/RNN operators for forwards (`onnx_*`), JAX autodiff in f64 for
//! gradients (`jax_*`). Each case runs through `wgrnn run`'s library entry on the GPU and on the
//! CPU reference.

use std::path::Path;

use crate::common::{assert_close, gpu};
use wgrnn::interop::{Backend, FileData, read_safetensors, run_files};

/// ONNX Runtime computes in f32: its outputs carry ~4e-7 relative rounding (measured by
/// scripts/golden), ours similar; 1e-5 over whole tensors (T <= 16) is the bound.
const ONNX_TOL: f64 = 1e-5;
/// JAX's values are f64-exact; ours are f32 forwards and backwards: same bound as the backward
/// conformance tests (measured worst 3.8e-6, docs/NUMERICS.md).
const JAX_TOL: f64 = 1e-4;

fn floats(d: &FileData) -> Vec<f32> {
    match d {
        FileData::Float(v) => v.clone(),
        FileData::Int(v) => v.iter().map(|&x| x as f32).collect(),
        FileData::F64(v) => v.iter().map(|&x| x as f32).collect(),
    }
}

#[test]
fn goldens() {
    if gpu().is_none() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 15,
        "expected the committed golden cases in {root:?}"
    );
    let out_dir = std::env::temp_dir().join(format!("wgrnn-golden-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut checked = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let tol = if name.starts_with("onnx") {
            ONNX_TOL
        } else {
            JAX_TOL
        };
        let expected = read_safetensors(case.join("expected.safetensors")).unwrap();
        for (backend, tag) in [(Backend::Gpu, "gpu"), (Backend::Cpu, "cpu")] {
            let out = out_dir.join(format!("{name}-{tag}.safetensors"));
            run_files(
                &case.join("weights.safetensors"),
                &case.join("input.safetensors"),
                &out,
                backend,
                false,
            )
            .unwrap_or_else(|e| panic!("{name} ({tag}): {e}"));
            let got = read_safetensors(&out).unwrap();
            for (tname, want) in &expected.tensors {
                let g = got
                    .tensors
                    .iter()
                    .find(|(n, _)| n == tname)
                    .unwrap_or_else(|| panic!("{name} ({tag}): {tname} missing from the output"));
                assert_eq!(g.1.shape, want.shape, "{name} ({tag}) {tname} shape");
                let w: Vec<f64> = match &want.data {
                    FileData::Float(v) => v.iter().map(|&x| x as f64).collect(),
                    FileData::Int(v) => v.iter().map(|&x| x as f64).collect(),
                    FileData::F64(v) => v.clone(),
                };
                assert_close(
                    &format!("{name} ({tag}) {tname}"),
                    0,
                    &floats(&g.1.data),
                    &w,
                    tol,
                );
                checked += 1;
            }
            // Nothing extra either: the output holds exactly the expected tensors.
            assert_eq!(
                got.tensors.len(),
                expected.tensors.len(),
                "{name} ({tag}): tensor count"
            );
        }
    }
    eprintln!("goldens: {} cases, {checked} tensors compared", cases.len());
}
