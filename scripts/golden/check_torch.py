"""Optional third-party check of tests/golden/ against PyTorch itself (not run by generate.sh).

Loads every case, builds nn.LSTM / nn.GRU / nn.RNN in float64 from weights.safetensors
(load_state_dict(strict=True), so the tensor names are checked too), runs it (ragged cases via
pack_padded_sequence(enforce_sorted=False) / pad_packed_sequence), and for gradient cases takes
torch.autograd.grad of the same loss; prints the worst relative error per case.
Needs `pip install torch numpy safetensors` (large; kept out of requirements.txt).
Last run: torch 2.15.0 -- jax_* cases agree to < 1e-15, onnx_* to < 4e-7 (ORT's float32).

Usage: python scripts/golden/check_torch.py
"""
import glob, os, numpy as np, torch
from safetensors.numpy import load_file
from safetensors import safe_open
torch.set_default_dtype(torch.float64)
def rel(a, b): a=np.asarray(a,np.float64); b=np.asarray(b,np.float64); m=np.abs(b).max(); return np.abs(a-b).max()/m if m else np.abs(a).max()
for d in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "*"))):
    w = load_file(d+"/weights.safetensors"); inp = load_file(d+"/input.safetensors"); e = load_file(d+"/expected.safetensors")
    with safe_open(d+"/weights.safetensors","np") as f: mode = f.metadata()["mode"]
    T,B,I = inp["input"].shape
    L = 1+max(int(k.split("_l")[1].split("_")[0]) for k in w); D = 2 if any(k.endswith("_reverse") for k in w)else 1
    G = {"LSTM":4,"GRU":3}.get(mode,1); H = w["weight_hh_l0"].shape[1]; bias = "bias_ih_l0" in w
    kw = dict(input_size=I, hidden_size=H, num_layers=L, bidirectional=D==2, bias=bias)
    m = {"LSTM":lambda: torch.nn.LSTM(**kw), "GRU":lambda: torch.nn.GRU(**kw), "RNN_TANH":lambda: torch.nn.RNN(nonlinearity="tanh",**kw), "RNN_RELU":lambda: torch.nn.RNN(nonlinearity="relu",**kw)}[mode]()
    sd = {k: torch.tensor(v.astype(np.float64)) for k,v in w.items()}
    m.load_state_dict(sd, strict=True)
    x = torch.tensor(inp["input"].astype(np.float64), requires_grad=True)
    h0 = torch.tensor(inp["h0"].astype(np.float64)) if "h0" in inp else torch.zeros(L*D,B,H)
    c0 = torch.tensor(inp["c0"].astype(np.float64)) if "c0" in inp else torch.zeros(L*D,B,H)
    h0.requires_grad_(True); c0.requires_grad_(True)
    xin = x
    if "lengths" in inp:
        xin = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(inp["lengths"]), enforce_sorted=False)
    out, st = m(xin, (h0,c0) if mode=="LSTM" else h0)
    if "lengths" in inp: out,_ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    hn, cn = (st if mode=="LSTM" else (st, None))
    res = {"output": out, "h_n": hn}
    if mode=="LSTM": res["c_n"]=cn
    errs = {k: rel(v.detach().numpy(), e[k]) for k,v in res.items()}
    if "grad_output" in inp:
        loss = (out*torch.tensor(inp["grad_output"].astype(np.float64))).sum()
        if "grad_h_n" in inp: loss = loss + (hn*torch.tensor(inp["grad_h_n"].astype(np.float64))).sum()
        if "grad_c_n" in inp: loss = loss + (cn*torch.tensor(inp["grad_c_n"].astype(np.float64))).sum()
        params = dict(m.named_parameters())
        gs = torch.autograd.grad(loss, [x,h0,c0]+list(params.values()), allow_unused=True)
        gd = {"grad_input":gs[0], "grad_h0":gs[1]}
        if mode=="LSTM": gd["grad_c0"]=gs[2]
        for n,g in zip(params, gs[3:]): gd["grad."+n]=g
        assert set(gd)==set(k for k in e if k.startswith("grad")), (set(gd)^set(k for k in e if k.startswith("grad")))
        errs.update({k: rel(v.numpy(), e[k]) for k,v in gd.items()})
    worst = max(errs, key=errs.get)
    print(f"{os.path.basename(d):28s} torch(f64) vs golden: worst rel {errs[worst]:.3e} ({worst}); nonzero frac of output {np.mean(e['output']!=0):.2f}")
