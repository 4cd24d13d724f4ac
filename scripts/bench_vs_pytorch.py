#!/usr/bin/env python3
"""Side-by-side benchmark: PyTorch's nn.LSTM / nn.GRU / nn.RNN (cuDNN) against `wgrnn bench` on
the same GPU, the same shapes, in one run.

For every shape and pass it times PyTorch in three precisions with CUDA events (warm-up, then the
median of --reps >= 20 runs):
  fp32  float32 with TF32 off (torch.backends.cuda.matmul.allow_tf32 = False and
        torch.backends.cudnn.allow_tf32 = False; the cuDNN one defaults to on)
  tf32  float32 with TF32 on (both flags True)
  fp16  module and input in float16
then runs `wgrnn bench --json` on the same shapes, checks that both compute the same function
(the PyTorch module's weights exported with safetensors and run through `wgrnn run` on a short
input; outputs compared with PyTorch fp32/TF32-off), and prints one table:
  shape, pass, PyTorch ms per precision, wgrnn ms, ratio PyTorch-fp32 / wgrnn (> 1: wgrnn faster),
  and the relative error of the check.

Passes: inference = forward under torch.no_grad(); train = forward + backward w.r.t. the input
and every parameter (torch.autograd.grad with a random upstream gradient of the output).

wgrnn needs a Vulkan loader (libvulkan.so.1) and the GPU's Vulkan driver. On a machine without
the loader: `apt-get download libvulkan1` elsewhere, `dpkg -x libvulkan1_*.deb /` there, then
`ldconfig`; if no driver manifest is found, point the loader at NVIDIA's, e.g.
`export VK_DRIVER_FILES=/usr/share/vulkan/icd.d/nvidia_icd.json` (path varies by install).

Usage:
  python3 scripts/bench_vs_pytorch.py --wgrnn target/release/wgrnn --suite core \
      [--passes inference,train] [--reps 20] [--json-out results.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

MODES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU"}


def make_module(s, dtype):
    common = dict(num_layers=s["layers"], bidirectional=s["bidirectional"])
    if s["mode"] == "lstm":
        m = torch.nn.LSTM(s["input"], s["hidden"], **common)
    elif s["mode"] == "gru":
        m = torch.nn.GRU(s["input"], s["hidden"], **common)
    else:
        nl = "tanh" if s["mode"] == "rnn_tanh" else "relu"
        m = torch.nn.RNN(s["input"], s["hidden"], nonlinearity=nl, **common)
    return m.cuda().to(dtype)


def set_precision(p):
    tf32 = p == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return torch.float16 if p == "fp16" else torch.float32


def time_torch(s, pass_, precision, reps, warmup):
    dtype = set_precision(precision)
    torch.manual_seed(0)
    m = make_module(s, dtype)
    d = 2 if s["bidirectional"] else 1
    x = torch.rand(s["seq"], s["batch"], s["input"], device="cuda", dtype=dtype) * 2 - 1
    if pass_ == "inference":
        m.eval()

        def fn():
            with torch.no_grad():
                m(x)
    else:
        m.train()
        x.requires_grad_(True)
        dy = torch.rand(s["seq"], s["batch"], d * s["hidden"], device="cuda", dtype=dtype) * 2 - 1
        params = [x] + list(m.parameters())

        def fn():
            out, _ = m(x)
            torch.autograd.grad(out, params, dy)
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    del m, x
    torch.cuda.empty_cache()
    return statistics.median(times)


def check_same_function(wgrnn, s, tmp, seq=8):
    """Exports a PyTorch module's weights, runs them through `wgrnn run` on a short input and
    returns the relative error of wgrnn's output against PyTorch fp32 (TF32 off)."""
    set_precision("fp32")
    torch.manual_seed(1)
    m = make_module(s, torch.float32).eval()
    t = min(seq, s["seq"])
    x = torch.rand(t, s["batch"], s["input"], device="cuda") * 2 - 1
    with torch.no_grad():
        want, _ = m(x)
    w = os.path.join(tmp, "w.safetensors")
    i = os.path.join(tmp, "in.safetensors")
    o = os.path.join(tmp, "out.safetensors")
    sd = {k: v.detach().float().cpu().contiguous() for k, v in m.state_dict().items()}
    save_file(sd, w, metadata={"mode": MODES[s["mode"]]})
    save_file({"input": x.cpu().contiguous()}, i)
    r = subprocess.run([wgrnn, "run", "--weights", w, "--input", i, "--output", o],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return float("nan"), r.stderr.strip()
    got = load_file(o)["output"].double()
    ref = want.double().cpu()
    return float((got - ref).norm() / ref.norm()), ""


def wgrnn_bench(wgrnn, args_list, reps):
    cmd = [wgrnn, "bench", "--json", "--reps", str(reps)] + args_list
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"wgrnn bench failed ({' '.join(cmd)}): {r.stderr.strip()}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wgrnn", default="target/release/wgrnn")
    ap.add_argument("--suite", default="core")
    ap.add_argument("--passes", default="inference,train")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precisions", default="fp32,tf32,fp16")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    if args.reps < 20:
        sys.exit("--reps must be at least 20 (median of at least 20 runs)")
    passes = args.passes.split(",")
    precisions = args.precisions.split(",")

    shapes = wgrnn_bench(args.wgrnn, ["--suite", args.suite, "--list"], args.reps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in shapes:
            err, msg = (float("nan"), "skipped")
            if not args.no_check:
                err, msg = check_same_function(args.wgrnn, s, tmp)
            for p in passes:
                torch_ms = {pr: time_torch(s, p, pr, args.reps, args.warmup) for pr in precisions}
                w = wgrnn_bench(args.wgrnn, ["--suite", args.suite, "--only", s["label"], "--pass", p], args.reps)[0]
                wms = w["gpu_ms"] if w["gpu_ms"] is not None else w["wall_ms"]
                row = dict(shape=s, pass_=p, torch=torch_ms, wgrnn=w, wgrnn_ms=wms,
                           ratio_fp32=torch_ms.get("fp32", float("nan")) / wms, check=err, check_msg=msg)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "shape"} | {"label": s["label"]}),
                      file=sys.stderr, flush=True)
    dev = torch.cuda.get_device_name(0)
    print(f"\nDevice: {dev}; torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}; "
          f"wgrnn adapter: {rows[0]['wgrnn']['adapter'] if rows else '?'}")
    hdr = "| shape | mode | I | H | B | T | L | D | pass | " + " | ".join(f"torch {p} ms" for p in precisions) + \
          " | wgrnn ms | wgrnn dispatches | torch-fp32 / wgrnn | check rel. err |"
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    ratios = {p: [] for p in passes}
    for r in rows:
        s = r["shape"]
        ratios[r["pass_"]].append(r["ratio_fp32"])
        print(f"| {s['label']} | {s['mode']} | {s['input']} | {s['hidden']} | {s['batch']} | {s['seq']} | "
              f"{s['layers']} | {2 if s['bidirectional'] else 1} | {r['pass_']} | "
              + " | ".join(f"{r['torch'][p]:.3f}" for p in precisions)
              + f" | {r['wgrnn_ms']:.3f} | {r['wgrnn']['dispatches']} | {r['ratio_fp32']:.2f} | {r['check']:.1e} |")
    print()
    for p, v in ratios.items():
        v = [x for x in v if x == x]
        if v:
            g = statistics.geometric_mean(v)
            print(f"- {p}: geometric mean torch-fp32 / wgrnn = {g:.3f} (min {min(v):.3f}, max {max(v):.3f})")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(dict(device=dev, torch=torch.__version__, cudnn=torch.backends.cudnn.version(),
                           rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
