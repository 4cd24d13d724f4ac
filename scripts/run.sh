#!/usr/bin/env bash
# The main job on a fresh machine: installs a Vulkan driver if none is present, builds wgrnn,
# trains a character-level LSTM language model on Tiny Shakespeare on the GPU for a bounded
# time (8 minutes unless --minutes M or --steps N is given), then prints its validation
# perplexity next to the Kneser-Ney n-gram baselines (orders 3, 5, 7) and a generated sample.
# Every argument goes to `wgrnn train-lm` (e.g. `--minutes 30 --hidden 512 --layers 2`); the
# run's folder (checkpoints, metrics.csv, loss.png) is out/lm-<date> unless WGRNN_OUT names one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Mesa's Vulkan drivers complain on every start when this is unset (headless machines, CI).
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export LC_NUMERIC=C
cargo build --release --quiet
bin=./target/release/wgrnn
out="${WGRNN_OUT:-out/lm-$(date +%Y%m%d-%H%M%S)}"
budget=(--minutes 8)
data=()
prev=""
for a in "$@"; do
  case "$a" in --minutes|--minutes=*|--steps|--steps=*) budget=() ;; esac
  case "$a" in --data=*) data=("$a") ;; esac
  [ "$prev" = "--data" ] && data=(--data "$a")
  prev="$a"
done
"$bin" train-lm --out "$out" "${budget[@]}" "$@"

field() { sed -E "s/.*\"$1\":([-0-9.eE+]+).*/\1/" <<<"$2"; }
row() {
  printf '%-34s %12.4f %12.4f %12.3f\n' "$1" "$(field loss_nats "$2")" "$(field bits_per_char "$2")" "$(field perplexity "$2")"
}
echo
printf '%-34s %12s %12s %12s\n' "model (Tiny Shakespeare validation)" "nats/char" "bits/char" "perplexity"
for n in 3 5 7; do
  row "Kneser-Ney ${n}-gram" "$("$bin" ngram "${data[@]}" --order "$n" --json)"
done
row "this run's LSTM ($out/best)" "$("$bin" eval-lm --checkpoint "$out" --json)"
echo
echo "sample (temperature 0.8):"
"$bin" sample --checkpoint "$out" --prime "ROMEO:" --length 400 --temperature 0.8 --seed 1
echo
echo "curves: $out/loss.png, $out/metrics.csv; more: $bin sample --checkpoint $out --help"
