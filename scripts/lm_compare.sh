#!/usr/bin/env bash
# Issue 15's comparison on Tiny Shakespeare (docs/RESULTS.md): Kneser-Ney orders 2..7, the
# window model at two context sizes, Elman, GRU and LSTM (1 and 2 layers), at character and
# word level, each trained for MINUTES (default 4); then the two longer runs (LONG=0 skips
# them). Run on an otherwise idle machine: the budgets are wall time. Results are appended to
# $OUT/log.txt, one line per model; the runs are $OUT/<name>/.
#   bash scripts/lm_compare.sh            # OUT=out/lm-compare MINUTES=4 LONG=1
set -u
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo build --release --quiet
B=target/release/wgrnn
OUT=${OUT:-out/lm-compare}
mkdir -p "$OUT"
L=$OUT/log.txt
M=${MINUTES:-4}
echo "start $(date -u +%FT%TZ) minutes=$M commit=$(git rev-parse --short HEAD)" >> "$L"
for u in char word; do
  for o in 2 3 4 5 6 7; do
    echo "ngram $u $o $($B ngram --unit $u --order $o --json)" >> "$L"
  done
done
run() { # name train-lm-flags...
  local name=$1; shift
  rm -rf "${OUT:?}/$name"
  $B train-lm --out "$OUT/$name" --minutes "$M" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
  echo "run $name rc=$? $(grep -h 'parameters' "$OUT/$name.err" | head -1) | $(grep -h stopped "$OUT/$name.out") | $($B eval-lm --checkpoint "$OUT/$name" --json)" >> "$L"
}
for u in char word; do
  if [ $u = char ]; then c1=5; c2=10; else c1=3; c2=6; fi
  run $u-window$c1 --unit $u --model window --context $c1
  run $u-window$c2 --unit $u --model window --context $c2
  run $u-elman --unit $u --mode rnn_tanh
  run $u-gru --unit $u --mode gru
  run $u-lstm --unit $u --mode lstm
  run $u-lstm2 --unit $u --mode lstm --layers 2
done
echo "comparison done $(date -u +%FT%TZ)" >> "$L"
if [ "${LONG:-1}" = 1 ]; then
  M=20 run long-char-lstm256 --mode lstm --hidden 256 --batch 64 --lr 5e-3
  M=15 run long-word-lstm --unit word --mode lstm --dropout 0.2
  # The character run continued: 32 minutes of training in all.
  $B train-lm --out "$OUT/long-char-lstm256" --resume --minutes 12 > "$OUT/resume.out" 2> "$OUT/resume.err"
  echo "resume long-char-lstm256 rc=$? $(grep -h stopped "$OUT/resume.out") | $($B eval-lm --checkpoint "$OUT/long-char-lstm256" --json)" >> "$L"
fi
$B grad-flow --mode rnn_tanh --hidden 128 --input 32 --mode gru --hidden 128 --input 32 \
  --mode lstm --hidden 128 --input 32 --checkpoint "$OUT/char-elman" \
  --checkpoint "$OUT/char-gru" --checkpoint "$OUT/char-lstm" --seq-len 100 --seed 1 \
  --out "$OUT/grad-flow.png" >> "$L"
echo "all done $(date -u +%FT%TZ)" >> "$L"
