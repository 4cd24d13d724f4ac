//! Both kernel variants on this adapter, whichever the context would pick by itself: the tiled
//! kernels (workgroup-memory tiles, chosen on GPUs) and the simple ones (chosen on CPU drivers),
//! over the matrix, the edge sizes and batches that select every tile height (RM = 1, 2, 4).

use std::sync::OnceLock;

use crate::backward::run_backward_case_on;
use crate::common::gpu;
use crate::forward::{Case, MODES, edge_cases, matrix, run_forward_case_on};
use wgrnn::{Context, KernelVariant};

/// Same bounds as the default-variant tests (docs/NUMERICS.md).
const TOL: f64 = 1e-4;

fn ctx_for(v: KernelVariant) -> Option<&'static Context> {
    static TILED: OnceLock<Context> = OnceLock::new();
    static SIMPLE: OnceLock<Context> = OnceLock::new();
    gpu()?; // applies the no-adapter policy
    let cell = if v == KernelVariant::Tiled {
        &TILED
    } else {
        &SIMPLE
    };
    Some(cell.get_or_init(|| {
        let c = Context::with_variant(v).expect("second context on the same adapter");
        // Tile heights then follow the batch alone, so every RM is exercised at small sizes.
        c.set_target_workgroups(1);
        c
    }))
}

/// Batches 20, 40 and 70 select 2, 3 and 4 rows per invocation in the tiled kernels; the last case is
/// large enough for the 128x128 GEMM tiles, with edges that are no multiple of anything.
fn tile_cases() -> Vec<Case> {
    let large = Case {
        mode: wgrnn::Mode::Lstm,
        layers: 2,
        bidir: true,
        ragged: true,
        init: true,
        seq: 7,
        batch: 41,
        input: 131,
        hidden: 133,
        bias: true,
    };
    MODES
        .iter()
        .enumerate()
        .flat_map(|(i, &mode)| {
            [20usize, 40, 70].map(|batch| Case {
                mode,
                layers: 2,
                bidir: i % 2 == 0,
                ragged: true,
                init: true,
                seq: 4,
                batch,
                input: 19,
                hidden: 37,
                bias: true,
            })
        })
        .chain([large])
        .collect()
}

fn run_all(v: KernelVariant) {
    let Some(ctx) = ctx_for(v) else { return };
    assert_eq!(ctx.variant(), v);
    let cases: Vec<Case> = matrix()
        .into_iter()
        .chain(edge_cases())
        .chain(tile_cases())
        .collect();
    for (i, c) in cases.iter().enumerate() {
        run_forward_case_on(ctx, c, 2000 + i as u64, TOL);
        run_backward_case_on(ctx, c, 3000 + i as u64, 0.0, TOL);
    }
}

#[test]
fn tiled_kernels_match_reference() {
    run_all(KernelVariant::Tiled);
}

#[test]
fn simple_kernels_match_reference() {
    run_all(KernelVariant::Simple);
}

/// Split-K GEMMs: the weight gradients of a small layer over many timesteps (C is a few tiles,
/// K = T*B is long), on a context that wants 64 workgroups, so the tiled GEMM splits K and
/// matmul_reduce sums the partials.
#[test]
fn split_k_weight_gradients_match_reference() {
    static SPLIT: OnceLock<Context> = OnceLock::new();
    if gpu().is_none() {
        return;
    }
    let ctx = SPLIT.get_or_init(|| {
        let c = Context::with_variant(KernelVariant::Tiled).expect("context");
        c.set_target_workgroups(64);
        c
    });
    for (i, mode) in MODES.into_iter().enumerate() {
        let c = Case {
            mode,
            layers: 2,
            bidir: i % 2 == 1,
            ragged: true,
            init: true,
            seq: 40,
            batch: 30,
            input: 7,
            hidden: 13,
            bias: true,
        };
        run_backward_case_on(ctx, &c, 4000 + i as u64, 0.0, TOL);
    }
}
