#!/usr/bin/env bash
# The main job on a fresh machine: installs a Vulkan driver if none is present, builds wgrnn and
# runs a forward pass of a 2-layer LSTM (I=H=256, B=32, T=100) on the GPU, printing its speed and
# its agreement with the CPU reference. Extra arguments go to `wgrnn forward`
# (e.g. `--mode gru --hidden 512 --bidirectional`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Mesa's Vulkan drivers complain on every start when this is unset (headless machines, CI).
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo build --release --quiet
exec ./target/release/wgrnn forward "$@"
