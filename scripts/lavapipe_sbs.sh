#!/usr/bin/env bash
# Old binary against new, alternated on one machine (docs/PERFORMANCE.md, issue 21): the
# reference LSTM (2 layers, I = H = 256, B = 32, T = 100) for inference and a train pass, the
# LM's training step, and `wgrnn info`'s GEMM figures.
#
#   bash scripts/lavapipe_sbs.sh OLD_BINARY NEW_BINARY [PAIRS]
#
# An old binary without `train-lm` prints nothing for it. Each binary first runs every command
# once untimed: llvmpipe compiles a pipeline's kernel with LLVM the first time it runs on a
# machine (then from Mesa's shader cache, ~/.cache/mesa_shader_cache), and the large
# register-blocked kernels take seconds to compile, which would otherwise land in the first
# pair's figures (`train-lm` counts its first step in chars/s).
set -u
old=${1:?old binary} new=${2:?new binary} pairs=${3:-2}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-$UID} WGRNN_TUNE_CACHE=off
mkdir -p "$XDG_RUNTIME_DIR"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for b in old new; do
  bin=${!b}
  "$bin" bench --reps 1 --warmup 0 >/dev/null 2>&1
  "$bin" bench --reps 1 --warmup 0 --pass train >/dev/null 2>&1
  rm -rf "$out/lm"
  "$bin" train-lm --steps 2 --out "$out/lm" >/dev/null 2>&1
  "$bin" info >/dev/null 2>&1
done
for i in $(seq "$pairs"); do
  for b in old new; do
    bin=${!b}
    echo "$b inference $("$bin" bench --reps 3 --warmup 1 2>&1 | tail -1)"
    echo "$b train $("$bin" bench --reps 3 --warmup 1 --pass train 2>&1 | tail -1)"
    rm -rf "$out/lm"
    echo "$b train-lm $("$bin" train-lm --steps 120 --out "$out/lm" 2>&1 | grep chars/s | tail -1)"
    "$bin" info 2>&1 | grep "^GEMM" | sed "s/^/$b /"
  done
done
