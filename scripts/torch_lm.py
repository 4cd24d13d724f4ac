#!/usr/bin/env python3
"""Loads a `wgrnn train-lm` checkpoint into torch.nn.Embedding, nn.LSTM / nn.GRU / nn.RNN and
nn.Linear, and scores the validation split as `wgrnn eval-lm` does (one stream from a zero state,
every validation character after the first predicted), printing the same JSON keys.

    pip install torch safetensors
    python3 scripts/torch_lm.py --checkpoint out/lm-RUN [--data FILE]

The checkpoint folder: rnn.safetensors holds nn.LSTM's state_dict() exactly (weight_ih_l0, ...);
model.safetensors holds embedding.weight [V, E], decoder.weight [V, H], decoder.bias [V];
config.json holds the sizes ("model") and the vocabulary ("vocab", token strings in id order).
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
    V, E, H, L = len(vocab), m["embed"], m["hidden"], m["layers"]
    cell = {
        "lstm": lambda: torch.nn.LSTM(E, H, L, dropout=m["dropout"]),
        "gru": lambda: torch.nn.GRU(E, H, L, dropout=m["dropout"]),
        "rnn_tanh": lambda: torch.nn.RNN(E, H, L, nonlinearity="tanh", dropout=m["dropout"]),
        "rnn_relu": lambda: torch.nn.RNN(E, H, L, nonlinearity="relu", dropout=m["dropout"]),
    }[m["mode"]]
    emb, rnn, dec = torch.nn.Embedding(V, E), cell(), torch.nn.Linear(H, V)
    rnn.load_state_dict(load_file(os.path.join(ck, "rnn.safetensors")))
    t = load_file(os.path.join(ck, "model.safetensors"))
    emb.load_state_dict({"weight": t["embedding.weight"]})
    dec.load_state_dict({"weight": t["decoder.weight"], "bias": t["decoder.bias"]})
    for mod in (emb, rnn, dec):
        mod.eval()

    data = args.data or cfg["data"]
    text = open(data, encoding="utf-8").read()
    index = {c: i for i, c in enumerate(vocab)}
    ids = [index[c] for c in text]
    split = math.floor(0.95 * len(ids))
    val = torch.tensor(ids[split:], dtype=torch.long)
    n = len(val) - 1
    total, state = 0.0, None
    with torch.no_grad():
        for s in range(0, n, args.chunk):
            x = val[s : min(s + args.chunk, n)].unsqueeze(1)  # [T, 1]
            y = val[s + 1 : min(s + args.chunk, n) + 1]
            out, state = rnn(emb(x), state)
            logits = dec(out).squeeze(1)
            total += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
    loss = total / n
    print(json.dumps({
        "loss_nats": loss,
        "bits_per_char": loss / math.log(2),
        "perplexity": math.exp(loss),
        "tokens": n,
    }))


if __name__ == "__main__":
    main()
