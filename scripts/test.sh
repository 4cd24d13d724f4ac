#!/usr/bin/env bash
# The test command (README, CI): installs a Vulkan driver if none is present, then formatting,
# lints, docs and every test. GPU tests fail when no adapter is found (they skip only with
# WGRNN_SKIP_GPU_TESTS=1, and never when CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Mesa's Vulkan drivers complain on every start when this is unset (headless machines, CI).
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
# Tests run on the shipped kernel configurations, never on a local tuning cache (wgrnn tune).
export WGRNN_TUNE_CACHE=off
cargo test --quiet
# The conformance suite again with wgpu's runtime checks in every shader module (the default
# build is trusted, unchecked: src/shaders.rs): the kernels must agree either way.
WGRNN_SHADER_CHECKS=1 cargo test --quiet --lib -- kernels::
# The subgroup step blocks stay out of this pass: checked, llvmpipe ran their bit-for-bit test
# in 508 s (trusted: 17 s); their indices follow the blocks' clamps (docs/PERFORMANCE.md).
WGRNN_SHADER_CHECKS=1 WGRNN_CPU_SUBGROUPS=0 cargo test --quiet --test gpu -- forward:: backward:: variants:: ops:: layers:: loss::
