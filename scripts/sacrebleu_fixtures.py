#!/usr/bin/env python3
"""Writes tests/fixtures/bleu/: hypothesis and reference files and what sacreBLEU itself says of
them, so `wgrnn bleu` is tested against sacreBLEU without Python in CI.

    pip install sacrebleu==2.6.0 && python3 scripts/sacrebleu_fixtures.py

Systems (each a hyp file scored against a ref file, line by line):
- val_noisy: the first 400 Multi30k validation references, each perturbed (words dropped,
  swapped, replaced, recased, punctuation added) with a fixed seed: a realistic score.
- val_short: the same references cut to their first 1-3 words: no 4-grams at all (the
  precision loop stops early) and a strong brevity penalty.
- val_reversed: 60 references with their words in reverse order: unigrams match, longer
  n-grams (almost) never, so the exponential smoothing acts.
- val_one: 30 references cut to their first word: no bigrams, the loop stops at n = 2.
- edge: hand-written lines for the 13a tokenizer (numbers with commas and periods, hyphens
  after digits, HTML entities, <skipped>, Unicode, control whitespace, empty lines).
- empty: every hypothesis empty (BLEU 0, brevity penalty 0).
For each, expected.json has the score, counts, totals, precisions, BP and lengths, case
sensitive and lowercased, and tokens.json the 13a tokenization of every line of every file.
"""
import gzip
import json
import random
from pathlib import Path

import sacrebleu
from sacrebleu.metrics import BLEU
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "bleu"


def lines_of(path):
    """The lines of a file as `wgrnn bleu` reads them: split on LF, a final LF ends the last line."""
    text = path.read_bytes().decode("utf-8")
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n")


def write(name, lines):
    (OUT / name).write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def perturb(rng, line):
    words = line.split()
    out = []
    for w in words:
        r = rng.random()
        if r < 0.12:
            continue  # dropped
        if r < 0.20:
            out.append(rng.choice(["the", "a", "man", "is", "in", "of"]))
            continue
        if r < 0.25:
            w = w.lower() if w[:1].isupper() else w.capitalize()
        out.append(w)
    for i in range(len(out) - 1):
        if rng.random() < 0.08:
            out[i], out[i + 1] = out[i + 1], out[i]
    s = " ".join(out)
    if rng.random() < 0.3:
        s = s.rstrip(".") + "."
    if rng.random() < 0.1:
        s = s + " ,"
    return s


EDGE_REFS = [
    "It costs 1,000.50 dollars, or 3-4 euros.",
    "The U.S. team won 2-1 in the e-mail cup.",
    "She said &quot;hello&quot; &amp; left &lt;quickly&gt;.",
    "A man <skipped> sits on a bench.",
    "Müller trinkt Café – sehr gut… oder?",
    "Tabs\tand  double  spaces   here.",
    "",
    "Numbers: 3.14, 2,718 and 1.000.000!",
    "A dog's ball; the cats' toys (two of them) [really] {yes}.",
    "Ends with a hyphen-",
    "x\x1cy\x1fz and a\u00a0non-breaking space",
    "ÉCOLE Straße İstanbul ΣΊΣΥΦΟΣ",
    "a.b.c d,e,f 1.a a.1 1,a a,1 -5 5- 5-5",
    "Wait... what?! Really?!?",
    "$100 @home #tag %50 ^up ~tilde `tick` |pipe| \\back/slash",
]
EDGE_HYPS = [
    "It costs 1,000.50 dollars , or 3 - 4 euros.",
    "The US team won 2-1 in the email cup.",
    'She said "hello" & left <quickly>.',
    "A man sits on a <skipped> bench.",
    "Müller trinkt Cafe - sehr gut... oder?",
    "Tabs and double spaces here .",
    "Something where the reference is empty.",
    "Numbers: 3.14 , 2,718 and 1.000.000 !",
    "A dog's ball; the cats ' toys ( two of them ) [ really ] { yes }.",
    "Ends with a hyphen -",
    "x\x1cy z and a non-breaking space",
    "école strasse istanbul σίσυφος",
    "a.b.c d,e,f 1.a a.1 1,a a,1 -5 5- 5-5",
    "",
    "$100 @home #tag %50 ^up ~tilde `tick` |pipe| \\back/slash",
]


def score(hyps, refs, lowercase):
    s = BLEU(lowercase=lowercase).corpus_score(hyps, [refs])
    # The module-level call the issue names gives the same thing.
    assert abs(sacrebleu.corpus_bleu(hyps, [refs], lowercase=lowercase).score - s.score) == 0
    return {
        "score": s.score,
        "formatted": f"{s.score:.2f}",
        "counts": list(s.counts),
        "totals": list(s.totals),
        "precisions": list(s.precisions),
        "bp": s.bp,
        "sys_len": s.sys_len,
        "ref_len": s.ref_len,
        "verbose": s.format(),
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    val = gzip.open(ROOT / "data" / "multi30k" / "val.en.gz", "rt", encoding="utf-8").read()
    val = val.split("\n")[:400]
    rng = random.Random(20261201)
    systems = {
        "val_noisy": ([perturb(rng, l) for l in val], val),
        "val_short": ([" ".join(l.split()[: 1 + i % 3]) for i, l in enumerate(val)], val),
        "val_reversed": ([" ".join(reversed(l.split())) for l in val[:60]], val[:60]),
        "val_one": ([l.split()[0] for l in val[:30]], val[:30]),
        "edge": (EDGE_HYPS, EDGE_REFS),
        "empty": ([""] * 20, val[:20]),
    }
    expected = {}
    tokens = {}
    tok = Tokenizer13a()
    for name, (hyps, refs) in systems.items():
        write(f"{name}.hyp", hyps)
        write(f"{name}.ref", refs)
        # Score what the files hold, read back the way wgrnn reads them.
        hyps, refs = lines_of(OUT / f"{name}.hyp"), lines_of(OUT / f"{name}.ref")
        expected[name] = {
            "cased": score(hyps, refs, False),
            "lowercase": score(hyps, refs, True),
        }
        for kind, ls in (("hyp", hyps), ("ref", refs)):
            tokens[f"{name}.{kind}"] = [tok(l.rstrip()) for l in ls]
    meta = {"sacrebleu": sacrebleu.__version__, "systems": expected}
    (OUT / "expected.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    (OUT / "tokens.json").write_text(json.dumps(tokens, indent=0, ensure_ascii=False) + "\n")
    for name, e in expected.items():
        print(name, e["cased"]["verbose"], "| lowercase", e["lowercase"]["formatted"])


if __name__ == "__main__":
    main()
