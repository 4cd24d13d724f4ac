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
cargo test --quiet
