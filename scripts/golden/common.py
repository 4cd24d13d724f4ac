"""Shared helpers for the golden-file generators (onnx_forward.py, jax_grads.py).

Contents:
  * deterministic case data (weights in PyTorch state_dict layout, inputs, upstream grads);
  * the PyTorch -> ONNX weight conversion (gate reordering) and an ONNX Runtime runner that
    builds one graph with one LSTM/GRU/RNN operator per layer;
  * an independent float64 numpy implementation of PyTorch's semantics (packed ragged
    sequences, bidirectional stacks), used to cross-check ORT and JAX;
  * writing a case directory in the `wgrnn run` golden format.

Nothing here is imported from the wgrnn crate; the numpy reference is written from the PyTorch
documentation's equations only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")

# PyTorch block order -> ONNX block order, as indices of PyTorch blocks.
#   LSTM: PyTorch (i, f, g, o)  -> ONNX (i, o, f, c)
#   GRU:  PyTorch (r, z, n)     -> ONNX (z, r, h)
#   RNN:  one block, unchanged.
ONNX_GATE_PERM = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN_TANH": [0], "RNN_RELU": [0]}

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOLDEN_DIR = os.path.join(REPO_ROOT, "tests", "golden")


@dataclass
class Case:
    name: str
    mode: str
    T: int
    B: int
    I: int
    H: int
    L: int = 1
    D: int = 1  # 1 = unidirectional, 2 = bidirectional
    bias: bool = True
    initial_state: bool = False  # h0 (and c0 for LSTM) present in input.safetensors
    lengths: list | None = None  # ragged lengths, each in 1..=T; None = all T (no tensor written)
    grads: tuple = ()  # subset of ("output", "h_n", "c_n"): upstream grads present in the file
    seed: int = 0
    note: str = ""
    data: dict = field(default_factory=dict, repr=False)

    @property
    def G(self) -> int:
        return GATES[self.mode]

    def describe(self) -> str:
        parts = [
            f"mode={self.mode}",
            f"T={self.T} B={self.B} I={self.I} H={self.H} L={self.L} D={self.D}",
            f"bias={'yes' if self.bias else 'no'}",
            f"h0/c0={'yes' if self.initial_state else 'no'}",
            f"lengths={self.lengths if self.lengths is not None else 'full'}",
        ]
        if self.grads:
            parts.append("upstream=" + ",".join("grad_" + g for g in self.grads))
        return "  ".join(parts)


def param_names(case: Case) -> list[str]:
    names = []
    for k in range(case.L):
        for d in range(case.D):
            sfx = f"_l{k}" + ("_reverse" if d == 1 else "")
            names += ["weight_ih" + sfx, "weight_hh" + sfx]
            if case.bias:
                names += ["bias_ih" + sfx, "bias_hh" + sfx]
    return names


def make_data(case: Case) -> dict:
    """Deterministic float32 weights/inputs (and int64 lengths) for a case, keyed by file name."""
    rng = np.random.default_rng(case.seed)
    G, H, L, D, T, B, I = case.G, case.H, case.L, case.D, case.T, case.B, case.I
    bound = 1.0 / np.sqrt(H)
    weights = {}
    for k in range(L):
        in_k = I if k == 0 else D * H
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d == 1 else "")
            weights["weight_ih" + sfx] = rng.uniform(-bound, bound, (G * H, in_k)).astype(np.float32)
            weights["weight_hh" + sfx] = rng.uniform(-bound, bound, (G * H, H)).astype(np.float32)
            b_ih = rng.uniform(-bound, bound, (G * H,)).astype(np.float32)
            b_hh = rng.uniform(-bound, bound, (G * H,)).astype(np.float32)
            if case.bias:
                weights["bias_ih" + sfx] = b_ih
                weights["bias_hh" + sfx] = b_hh
    inputs = {"input": rng.uniform(-1, 1, (T, B, I)).astype(np.float32)}
    if case.initial_state:
        inputs["h0"] = rng.uniform(-1, 1, (L * D, B, H)).astype(np.float32)
        if case.mode == "LSTM":
            inputs["c0"] = rng.uniform(-1, 1, (L * D, B, H)).astype(np.float32)
    if case.lengths is not None:
        lengths = np.asarray(case.lengths, dtype=np.int64)
        assert lengths.shape == (B,) and lengths.min() >= 1 and lengths.max() <= T
        inputs["lengths"] = lengths
    for g in case.grads:
        if g == "output":
            inputs["grad_output"] = rng.uniform(-1, 1, (T, B, D * H)).astype(np.float32)
        elif g == "h_n":
            inputs["grad_h_n"] = rng.uniform(-1, 1, (L * D, B, H)).astype(np.float32)
        elif g == "c_n":
            assert case.mode == "LSTM"
            inputs["grad_c_n"] = rng.uniform(-1, 1, (L * D, B, H)).astype(np.float32)
        else:
            raise ValueError(g)
    return {"weights": weights, "input": inputs}


def lengths_of(case: Case, inputs: dict) -> np.ndarray:
    if "lengths" in inputs:
        return inputs["lengths"].astype(np.int64)
    return np.full((case.B,), case.T, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# float64 numpy reference (PyTorch equations, PyTorch weight layout)
# --------------------------------------------------------------------------------------------

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_cell(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step for a batch; x [B, I], h/c [B, H]. Returns (h', c')."""
    gi = x @ w_ih.T + b_ih
    gh = h @ w_hh.T + b_hh
    H = h.shape[1]
    if mode == "LSTM":
        g = gi + gh
        i = _sigmoid(g[:, 0:H])
        f = _sigmoid(g[:, H:2 * H])
        gg = np.tanh(g[:, 2 * H:3 * H])
        o = _sigmoid(g[:, 3 * H:4 * H])
        c2 = f * c + i * gg
        return o * np.tanh(c2), c2
    if mode == "GRU":
        r = _sigmoid(gi[:, 0:H] + gh[:, 0:H])
        z = _sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1.0 - z) * n + z * h, c
    pre = gi + gh
    if mode == "RNN_TANH":
        return np.tanh(pre), c
    if mode == "RNN_RELU":
        return np.maximum(pre, 0.0), c
    raise ValueError(mode)


def np_forward(case: Case, weights: dict, inputs: dict, relu_margin: list | None = None):
    """float64 forward with packed-sequence semantics. Returns dict(output, h_n[, c_n]).

    If `relu_margin` is a list (RNN_RELU only), the smallest |pre-activation| over all valid
    (unmasked) steps is appended to it: gradients are only well defined away from the kink."""
    T, B, H, L, D = case.T, case.B, case.H, case.L, case.D
    lengths = lengths_of(case, inputs)
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    x = inputs["input"].astype(np.float64)
    h0 = inputs["h0"].astype(np.float64) if "h0" in inputs else np.zeros((L * D, B, H))
    c0 = inputs["c0"].astype(np.float64) if "c0" in inputs else np.zeros((L * D, B, H))
    h_n = np.zeros((L * D, B, H))
    c_n = np.zeros((L * D, B, H))
    layer_in = x
    for k in range(L):
        out = np.zeros((T, B, D * H))
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d == 1 else "")
            G = case.G
            b_ih = w.get("bias_ih" + sfx, np.zeros(G * H))
            b_hh = w.get("bias_hh" + sfx, np.zeros(G * H))
            h = h0[k * D + d].copy()
            c = c0[k * D + d].copy()
            steps = range(T) if d == 0 else range(T - 1, -1, -1)
            for t in steps:
                hn, cn = np_cell(case.mode, layer_in[t], h, c, w["weight_ih" + sfx],
                                 w["weight_hh" + sfx], b_ih, b_hh)
                m = (t < lengths)[:, None]
                if relu_margin is not None and case.mode == "RNN_RELU":
                    pre = layer_in[t] @ w["weight_ih" + sfx].T + b_ih + h @ w["weight_hh" + sfx].T + b_hh
                    relu_margin.append(float(np.min(np.where(m, np.abs(pre), np.inf))))
                h = np.where(m, hn, h)
                c = np.where(m, cn, c)
                out[t, :, d * H:(d + 1) * H] = np.where(m, hn, 0.0)
            h_n[k * D + d] = h
            c_n[k * D + d] = c
        layer_in = out
    res = {"output": layer_in, "h_n": h_n}
    if case.mode == "LSTM":
        res["c_n"] = c_n
    return res


# --------------------------------------------------------------------------------------------
# ONNX Runtime
# --------------------------------------------------------------------------------------------

def onnx_layer_weights(case: Case, weights: dict, k: int):
    """(W [D, G*H, I_k], R [D, G*H, H], B [D, 2*G*H] or None) in ONNX gate order."""
    H, perm = case.H, ONNX_GATE_PERM[case.mode]

    def reorder(a):
        blocks = [a[j * H:(j + 1) * H] for j in range(case.G)]
        return np.concatenate([blocks[j] for j in perm], axis=0)

    Ws, Rs, Bs = [], [], []
    for d in range(case.D):
        sfx = f"_l{k}" + ("_reverse" if d == 1 else "")
        Ws.append(reorder(weights["weight_ih" + sfx]))
        Rs.append(reorder(weights["weight_hh" + sfx]))
        if case.bias:
            Bs.append(np.concatenate([reorder(weights["bias_ih" + sfx]),
                                      reorder(weights["bias_hh" + sfx])]))
    W = np.stack(Ws).astype(np.float32)
    R = np.stack(Rs).astype(np.float32)
    Bm = np.stack(Bs).astype(np.float32) if case.bias else None
    return W, R, Bm


OPSET = 14


def build_onnx_model(case: Case, weights: dict, with_initial: bool, with_lengths: bool):
    """One ONNX graph: a LSTM/GRU/RNN node per layer, Y [T,D,B,H] -> Transpose -> Reshape
    [T,B,D*H] between layers, Y_h / Y_c of all layers concatenated to [L*D,B,H]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    T, B, I, H, L, D = case.T, case.B, case.I, case.H, case.L, case.D
    op = {"LSTM": "LSTM", "GRU": "GRU", "RNN_TANH": "RNN", "RNN_RELU": "RNN"}[case.mode]
    direction = "forward" if D == 1 else "bidirectional"
    nodes, inits = [], []
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I])]
    if with_lengths:
        graph_inputs.append(helper.make_tensor_value_info("seq_lens", TensorProto.INT32, [B]))
    inits.append(numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), "reshape_shape"))
    layer_in = "X"
    yh_names, yc_names = [], []
    for k in range(L):
        W, R, Bm = onnx_layer_weights(case, weights, k)
        inits.append(numpy_helper.from_array(W, f"W{k}"))
        inits.append(numpy_helper.from_array(R, f"R{k}"))
        ins = [layer_in, f"W{k}", f"R{k}"]
        if Bm is not None:
            inits.append(numpy_helper.from_array(Bm, f"B{k}"))
            ins.append(f"B{k}")
        else:
            ins.append("")
        ins.append("seq_lens" if with_lengths else "")
        if with_initial:
            graph_inputs.append(helper.make_tensor_value_info(f"h0_{k}", TensorProto.FLOAT, [D, B, H]))
            ins.append(f"h0_{k}")
            if case.mode == "LSTM":
                graph_inputs.append(
                    helper.make_tensor_value_info(f"c0_{k}", TensorProto.FLOAT, [D, B, H]))
                ins.append(f"c0_{k}")
        # Trim trailing empty optional inputs (ORT accepts "" but keep graphs tidy).
        while ins and ins[-1] == "":
            ins.pop()
        outs = [f"Y{k}", f"Yh{k}"] + ([f"Yc{k}"] if case.mode == "LSTM" else [])
        attrs = {"hidden_size": H, "direction": direction}
        if case.mode == "GRU":
            attrs["linear_before_reset"] = 1
        if case.mode in ("RNN_TANH", "RNN_RELU"):
            act = "Tanh" if case.mode == "RNN_TANH" else "Relu"
            attrs["activations"] = [act] * D
        nodes.append(helper.make_node(op, ins, outs, name=f"rnn{k}", **attrs))
        nodes.append(helper.make_node("Transpose", [f"Y{k}"], [f"Yt{k}"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"Yt{k}", "reshape_shape"], [f"O{k}"]))
        layer_in = f"O{k}"
        yh_names.append(f"Yh{k}")
        if case.mode == "LSTM":
            yc_names.append(f"Yc{k}")
    nodes.append(helper.make_node("Identity", [layer_in], ["output"]))
    nodes.append(helper.make_node("Concat", yh_names, ["h_n"], axis=0))
    outputs = [
        helper.make_tensor_value_info("output", TensorProto.FLOAT, [T, B, D * H]),
        helper.make_tensor_value_info("h_n", TensorProto.FLOAT, [L * D, B, H]),
    ]
    if case.mode == "LSTM":
        nodes.append(helper.make_node("Concat", yc_names, ["c_n"], axis=0))
        outputs.append(helper.make_tensor_value_info("c_n", TensorProto.FLOAT, [L * D, B, H]))
    graph = helper.make_graph(nodes, f"wgrnn_{case.name}", graph_inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="wgrnn-golden")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def ort_forward(case: Case, weights: dict, inputs: dict, force_lengths: bool = False):
    """Runs the case through ONNX Runtime (CPU, float32, 1 thread). Returns float32 outputs."""
    import onnxruntime as ort

    with_initial = "h0" in inputs
    with_lengths = "lengths" in inputs or force_lengths
    model = build_onnx_model(case, weights, with_initial, with_lengths)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feeds = {"X": inputs["input"]}
    if with_lengths:
        feeds["seq_lens"] = lengths_of(case, inputs).astype(np.int32)
    if with_initial:
        D = case.D
        for k in range(case.L):
            feeds[f"h0_{k}"] = np.ascontiguousarray(inputs["h0"][k * D:(k + 1) * D])
            if case.mode == "LSTM":
                feeds[f"c0_{k}"] = np.ascontiguousarray(inputs["c0"][k * D:(k + 1) * D])
    names = ["output", "h_n"] + (["c_n"] if case.mode == "LSTM" else [])
    outs = sess.run(names, feeds)
    return dict(zip(names, outs))


# --------------------------------------------------------------------------------------------
# comparison and writing
# --------------------------------------------------------------------------------------------

def rel_err(a, b) -> float:
    """Whole-tensor relative error: max|a-b| / max|b| (max over the tensor)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.max(np.abs(b))
    if denom == 0.0:
        return float(np.max(np.abs(a)))
    return float(np.max(np.abs(a - b)) / denom)


def max_rel_err(got: dict, ref: dict, keys=None) -> tuple[float, str]:
    worst, which = 0.0, ""
    for k in keys or ref.keys():
        e = rel_err(got[k], ref[k])
        if e >= worst:
            worst, which = e, k
    return worst, which


def write_case(case: Case, weights: dict, inputs: dict, expected: dict):
    from safetensors.numpy import save_file

    out_dir = os.path.join(GOLDEN_DIR, case.name)
    os.makedirs(out_dir, exist_ok=True)
    for v in weights.values():
        assert v.dtype == np.float32
    for k, v in inputs.items():
        assert v.dtype == (np.int64 if k == "lengths" else np.float32), k
    for v in expected.values():
        assert v.dtype == np.float64
    save_file({k: np.ascontiguousarray(v) for k, v in weights.items()},
              os.path.join(out_dir, "weights.safetensors"), metadata={"mode": case.mode})
    save_file({k: np.ascontiguousarray(v) for k, v in inputs.items()},
              os.path.join(out_dir, "input.safetensors"))
    save_file({k: np.ascontiguousarray(v) for k, v in expected.items()},
              os.path.join(out_dir, "expected.safetensors"))
    return out_dir


def shapes_line(d: dict) -> str:
    return ", ".join(f"{k}{list(v.shape)}" for k, v in d.items())
