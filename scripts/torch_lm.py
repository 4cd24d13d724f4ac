#!/usr/bin/env python3
"""Loads a `wgrnn train-lm` checkpoint into PyTorch and scores the validation split as
`wgrnn eval-lm` does (one stream from a zero state, every validation token after the first
predicted), printing the same JSON keys. Recurrent models are nn.Embedding, nn.LSTM / nn.GRU /
nn.RNN and nn.Linear; the fixed-window model is nn.Embedding, nn.Linear + tanh and nn.Linear.
Word-level checkpoints are tokenised by this script's own tokeniser, written from the rules in
the README (not from wgrnn's code).

    pip install torch safetensors
    python3 scripts/torch_lm.py --checkpoint out/lm-RUN [--data FILE]

The checkpoint folder: rnn.safetensors holds nn.LSTM's state_dict() exactly (weight_ih_l0, ...);
model.safetensors holds embedding.weight [V, E], decoder.weight [V, H], decoder.bias [V] (and
the window model's hidden.weight [H, N E], hidden.bias [H]); config.json holds the sizes
("model") and the vocabulary ("vocab", token strings in id order).
"""
import argparse
import json
import math
import os

import torch
from safetensors.torch import load_file


def resolve(d):
    """A training output's best/ (as `--checkpoint` resolves it), else the folder itself."""
    for sub in ("best", "best.old"):
        if os.path.isfile(os.path.join(d, sub, "config.json")):
            return os.path.join(d, sub)
    return d


def words(text):
    """Whitespace-split; each character that is neither alphanumeric nor whitespace is a token;
    each line end is <eos>."""
    out, cur = [], []
    for c in text:
        if c.isalnum():
            cur.append(c)
            continue
        if cur:
            out.append("".join(cur))
            cur = []
        if c == "\n":
            out.append("<eos>")
        elif not c.isspace():
            out.append(c)
    if cur:
        out.append("".join(cur))
    return out


def validation_ids(text, unit, vocab):
    index = {t: i for i, t in enumerate(vocab)}
    k = math.floor(0.95 * len(text))
    if unit == "char":
        return [index[c] for c in text[k:]]
    # Word level: the split moves forward to the next line start.
    if k > 0 and text[k - 1] != "\n":
        nl = text.find("\n", k)
        k = len(text) if nl < 0 else nl + 1
    unk = index["<unk>"]
    return [index.get(t, unk) for t in words(text[k:])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", help="text file (default: the one recorded in the checkpoint)")
    ap.add_argument("--chunk", type=int, default=256)
    args = ap.parse_args()
    ck = resolve(args.checkpoint)
    cfg = json.load(open(os.path.join(ck, "config.json")))
    m = cfg["model"]
    vocab = cfg["vocab"]
    unit = cfg.get("unit", "char")
    V, E, H, L = len(vocab), m["embed"], m["hidden"], m["layers"]
    t = load_file(os.path.join(ck, "model.safetensors"))
    emb, dec = torch.nn.Embedding(V, E), torch.nn.Linear(H, V)
    emb.load_state_dict({"weight": t["embedding.weight"]})
    dec.load_state_dict({"weight": t["decoder.weight"], "bias": t["decoder.bias"]})
    window = m.get("model", "rnn") == "window"
    if window:
        N = m["context"]
        hid = torch.nn.Linear(N * E, H)
        hid.load_state_dict({"weight": t["hidden.weight"], "bias": t["hidden.bias"]})
        mods = (emb, hid, dec)
    else:
        rnn = {
            "lstm": lambda: torch.nn.LSTM(E, H, L, dropout=m["dropout"]),
            "gru": lambda: torch.nn.GRU(E, H, L, dropout=m["dropout"]),
            "rnn_tanh": lambda: torch.nn.RNN(E, H, L, nonlinearity="tanh", dropout=m["dropout"]),
            "rnn_relu": lambda: torch.nn.RNN(E, H, L, nonlinearity="relu", dropout=m["dropout"]),
        }[m["mode"]]()
        rnn.load_state_dict(load_file(os.path.join(ck, "rnn.safetensors")))
        mods = (emb, rnn, dec)
    for mod in mods:
        mod.eval()

    data = args.data or cfg["data"]
    text = open(data, encoding="utf-8").read()
    val = torch.tensor(validation_ids(text, unit, vocab), dtype=torch.long)
    total, state, scored = 0.0, None, 0
    with torch.no_grad():
        if window:
            # Token i from the N before it; before the stream, the line-end token.
            pad = vocab.index("\n" if unit == "char" else "<eos>")
            padded = torch.cat([torch.full((N,), pad, dtype=torch.long), val])
            for i in range(1, len(val)):
                ctx = padded[i : i + N]
                h = torch.tanh(hid(emb(ctx).reshape(1, N * E)))
                total -= torch.log_softmax(dec(h), dim=-1)[0, val[i]].item()
                scored += 1
        else:
            n = len(val) - 1
            for s in range(0, n, args.chunk):
                x = val[s : min(s + args.chunk, n)].unsqueeze(1)  # [T, 1]
                y = val[s + 1 : min(s + args.chunk, n) + 1]
                out, state = rnn(emb(x), state)
                logits = dec(out).squeeze(1)
                total += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
            scored = n
    loss = total / scored
    out = {
        "loss_nats": loss,
        "bits_per_token": loss / math.log(2),
        "perplexity": math.exp(loss),
        "tokens": scored,
    }
    if unit == "char":
        out["bits_per_char"] = out["bits_per_token"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
