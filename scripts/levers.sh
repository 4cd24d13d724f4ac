#!/usr/bin/env bash
# Times the performance issue's levers on this machine's adapter, one JSON line per run (its
# `pass`, `schedule`, `weights`, `variant` and `narrow_batch` keys say what ran):
#   1. wavefront over layers on / off       (WGRNN_WAVEFRONT; inference, training forward)
#   2. single-workgroup kernel on / off     (WGRNN_PERSISTENT)
#   3. matrix-vector steps for B <= 4       (WGRNN_NARROW_BATCH, tiled variant; inference, train)
#   4. f16 recurrent weights                (--weights f16, checked against the reference)
# Usage: bash scripts/levers.sh [reps] [extra wgrnn bench arguments, e.g. --quick]
# LEVERS_LIGHT=1 skips the large core shapes (S2-S4: minutes per run on a CPU driver).
set -euo pipefail
cd "$(dirname "$0")/.."
W="${WGRNN:-target/release/wgrnn}"
REPS="${1:-20}"
shift || true
B=("$W" bench --reps "$REPS" --json "$@")
core() { "${B[@]}" --suite core --only "$1" --pass "${PASS:-inference}" "${@:2}"; }
heavy() { [ "${LEVERS_LIGHT:-0}" = 1 ] || core "$@"; }
for wf in 1 0; do
  export WGRNN_WAVEFRONT=$wf WGRNN_PERSISTENT=never
  for pass in inference forward; do
    "${B[@]}" --pass $pass --layers 2 --input 256 --hidden 256 --batch 32 --seq 100
    PASS=$pass heavy S2
  done
done
unset WGRNN_WAVEFRONT
for p in always never; do
  export WGRNN_PERSISTENT=$p
  core S1
  "${B[@]}" --pass inference --layers 2 --input 32 --hidden 32 --batch 4 --seq 100
done
for nb in 4 0; do
  WGRNN_KERNELS=tiled WGRNN_NARROW_BATCH=$nb core S1
  WGRNN_KERNELS=tiled WGRNN_NARROW_BATCH=$nb PASS=train core S1
done
unset WGRNN_PERSISTENT
for w in f32 f16; do
  core S1 --weights "$w" --check
  heavy S3,S4 --weights "$w" --check
done
