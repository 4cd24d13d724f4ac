#!/usr/bin/env bash
# Issue 22's pipeline and table (docs/RESULTS.md): the protocol's halves, skip-gram vectors,
# the map, the word-by-word baseline, unsupervised models (denoising only; with
# back-translation) and the supervised model on the same half, each scored on test 2016 in
# both directions with `wgrnn bleu`. Budgets are wall time: run on an otherwise idle machine.
#   bash scripts/unmt.sh                 # OUT=out/unmt DENOISE=12 BT=25 BT_START=150 SUP_EPOCHS=2
set -u
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo build --release --quiet
B=target/release/wgrnn
D=data/multi30k
OUT=${OUT:-out/unmt}
mkdir -p "$OUT"
L=$OUT/log.txt
echo "start $(date -u +%FT%TZ) commit=$(git rev-parse --short HEAD)" >> "$L"
$B split-monolingual --data-dir $D --out "$OUT/mono"
for l in de en; do
  $B train-embeddings --text "$OUT/mono/train.$l" --out "$OUT/$l.vec" 2>> "$L"
done
$B map-embeddings --src "$OUT/de.vec" --tgt "$OUT/en.vec" --out "$OUT/de-en.vec" 2>> "$L"
score() { # name translate-command...
  local name=$1; shift
  for dir in de-en en-de; do
    local s=${dir%-*} t=${dir#*-}
    zcat $D/test_2016_flickr.$s.gz | "$@" --direction $dir > "$OUT/$name.$dir.txt"
    echo "$name $dir $($B bleu --ref $D/test_2016_flickr.$t.gz --hyp "$OUT/$name.$dir.txt" | tr '\n' ' ')" >> "$L"
  done
}
score word-by-word $B word-by-word --embeddings "$OUT/de-en.vec"
rm -rf "$OUT/denoise" "$OUT/backtranslate"
$B train-unmt --data-dir $D --embeddings "$OUT/de-en.vec" --out "$OUT/denoise" \
  --no-back-translation --minutes "${DENOISE:-12}" 2>> "$L"
score denoise $B translate --checkpoint "$OUT/denoise"
$B train-unmt --data-dir $D --embeddings "$OUT/de-en.vec" --out "$OUT/backtranslate" \
  --back-translation-start "${BT_START:-150}" --minutes "${BT:-25}" 2>> "$L"
score backtranslate $B translate --checkpoint "$OUT/backtranslate"
# The supervised model on the same half: the first half's pairs, German and English.
mkdir -p "$OUT/half"
for l in de en; do
  zcat $D/train.$l.gz | head -n "$(wc -l < "$OUT/mono/train.de")" | gzip > "$OUT/half/train.$l.gz"
  cp $D/val.$l.gz "$OUT/half/"
done
for dir in de-en en-de; do
  s=${dir%-*} t=${dir#*-}
  rm -rf "$OUT/supervised-$dir"
  $B train-nmt --data-dir "$OUT/half" --src $s --tgt $t --out "$OUT/supervised-$dir" \
    --epochs "${SUP_EPOCHS:-2}" 2>> "$L"
  zcat $D/test_2016_flickr.$s.gz | $B translate --checkpoint "$OUT/supervised-$dir" > "$OUT/supervised.$dir.txt"
  echo "supervised $dir $($B bleu --ref $D/test_2016_flickr.$t.gz --hyp "$OUT/supervised.$dir.txt" | tr '\n' ' ')" >> "$L"
done
echo "done $(date -u +%FT%TZ)" >> "$L"
