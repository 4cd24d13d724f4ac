"""Gradient golden files for wgrnn, computed by JAX autodiff in float64 (an implementation nobody
on the wgrnn team wrote).

For every case below this script
  1. makes deterministic float32 weights (PyTorch nn.LSTM/GRU/RNN state_dict names and layout),
     inputs and upstream gradients (seeded numpy RNG: weights U(-1/sqrt(H), 1/sqrt(H)),
     everything else U(-1, 1));
  2. runs a JAX implementation of PyTorch's LSTM / GRU (reset after the matmul) / RNN tanh|relu
     cells and stacks (multi-layer, bidirectional, ragged lengths by masking = packed-sequence
     semantics, optional h0/c0) with jax_enable_x64 and all math in float64, on the stored
     float32 values widened to float64;
  3. differentiates the scalar loss
         sum(output * grad_output) + sum(h_n * grad_h_n) + sum(c_n * grad_c_n)
     (absent upstream tensors count as zeros) with jax.vjp-based jax.grad, w.r.t. the input,
     h0, c0 (zeros when absent from the input file) and every parameter;
  4. checks the JAX forward against ONNX Runtime (float32) and the independent float64 numpy
     reference of common.py, and checks JAX's gradients against central finite differences in
     float64 (random directions over all parameters plus individual coordinates of every
     gradient tensor) -- both as assertions;
  5. writes tests/golden/jax_*/ with float64 `expected` tensors: output, h_n, [c_n], grad_input,
     grad_h0, [grad_c0], grad.<param> for every parameter.

Usage: python scripts/golden/jax_grads.py   (re-runnable; output is byte-identical)
"""

from __future__ import annotations

import os
import sys

import numpy as np

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")
import jax.numpy as jnp  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    Case, lengths_of, make_data, max_rel_err, np_forward, ort_forward, param_names,
    shapes_line, write_case,
)

# JAX(f64) vs numpy(f64) must agree to rounding; vs ORT(f32) to float32 accuracy.
JAX_VS_NUMPY_TOL = 1e-12
JAX_VS_ORT_TOL = 1e-5
# JAX gradient vs central finite differences (float64, eps below), relative.
FD_TOL = 1e-6
FD_EPS = 1e-5
# Smallest |pre-activation| allowed in RNN_RELU gradient cases (no kink near float32 noise).
RELU_MARGIN = 1e-4


def cases() -> list[Case]:
    all_grads = {"LSTM": ("output", "h_n", "c_n")}
    cs = []
    bi = {
        "LSTM": dict(T=9, B=4, I=5, H=7, lengths=[9, 1, 5, 8]),
        "GRU": dict(T=10, B=3, I=3, H=6, lengths=[3, 10, 1]),
        "RNN_TANH": dict(T=7, B=4, I=6, H=5, lengths=[2, 7, 1, 6]),
        "RNN_RELU": dict(T=12, B=3, I=7, H=9, lengths=[1, 12, 8]),
    }
    for i, (mode, kw) in enumerate(bi.items()):
        cs.append(Case(name=f"jax_{mode.lower()}_bi2_ragged", mode=mode, L=2, D=2,
                       initial_state=True, grads=all_grads.get(mode, ("output", "h_n")),
                       seed=400 + i, **kw))
    cs.append(Case(name="jax_lstm_uni", mode="LSTM", T=8, B=3, I=5, H=11, grads=("output",),
                   seed=500, note="only grad_output upstream; no h0/c0"))
    cs.append(Case(name="jax_gru_uni3", mode="GRU", T=6, B=3, I=7, H=5, L=3, D=1,
                   grads=("output", "h_n"), seed=501, note="3 layers, no initial state"))
    return cs


# --------------------------------------------------------------------------------------------
# JAX model (written independently of common.np_forward)
# --------------------------------------------------------------------------------------------

def jax_cell(mode, x, h, c, p):
    """x [B, I], h/c [B, H]; p: dict with w_ih [G*H, I], w_hh [G*H, H], b_ih, b_hh [G*H]."""
    gi = x @ p["w_ih"].T + p["b_ih"]
    gh = h @ p["w_hh"].T + p["b_hh"]
    if mode == "LSTM":
        i, f, g, o = jnp.split(gi + gh, 4, axis=1)
        c2 = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return jax.nn.sigmoid(o) * jnp.tanh(c2), c2
    if mode == "GRU":
        ir, iz, in_ = jnp.split(gi, 3, axis=1)
        hr, hz, hn = jnp.split(gh, 3, axis=1)
        r = jax.nn.sigmoid(ir + hr)
        z = jax.nn.sigmoid(iz + hz)
        n = jnp.tanh(in_ + r * hn)
        return (1.0 - z) * n + z * h, c
    if mode == "RNN_TANH":
        return jnp.tanh(gi + gh), c
    if mode == "RNN_RELU":
        return jax.nn.relu(gi + gh), c
    raise ValueError(mode)


def jax_direction(mode, xs, h0, c0, p, lengths, reverse):
    """Runs one direction over xs [T, B, I] with masks. Returns (out [T,B,H], h_T, c_T)."""
    T = xs.shape[0]
    ts = jnp.arange(T)
    if reverse:
        ts = ts[::-1]
        xs = xs[::-1]

    def step(carry, inp):
        h, c = carry
        t, x = inp
        hn, cn = jax_cell(mode, x, h, c, p)
        m = (t < lengths)[:, None]
        h = jnp.where(m, hn, h)
        c = jnp.where(m, cn, c)
        return (h, c), jnp.where(m, hn, 0.0)

    (h, c), out = jax.lax.scan(step, (h0, c0), (ts, xs))
    if reverse:
        out = out[::-1]
    return out, h, c


def jax_forward(case: Case, params: dict, x, h0, c0, lengths):
    G, H = case.G, case.H
    layer_in = x
    hs, cs = [], []
    for k in range(case.L):
        outs = []
        for d in range(case.D):
            sfx = f"_l{k}" + ("_reverse" if d == 1 else "")
            p = {
                "w_ih": params["weight_ih" + sfx],
                "w_hh": params["weight_hh" + sfx],
                "b_ih": params.get("bias_ih" + sfx, jnp.zeros((G * H,), jnp.float64)),
                "b_hh": params.get("bias_hh" + sfx, jnp.zeros((G * H,), jnp.float64)),
            }
            idx = k * case.D + d
            out, h, c = jax_direction(case.mode, layer_in, h0[idx], c0[idx], p, lengths, d == 1)
            outs.append(out)
            hs.append(h)
            cs.append(c)
        layer_in = jnp.concatenate(outs, axis=2)
    return layer_in, jnp.stack(hs), jnp.stack(cs)


def to64(a):
    return jnp.asarray(np.asarray(a, dtype=np.float64))


def prepare(case: Case, weights: dict, inputs: dict):
    L, D, B, H, T = case.L, case.D, case.B, case.H, case.T
    params = {k: to64(v) for k, v in weights.items()}
    x = to64(inputs["input"])
    h0 = to64(inputs["h0"]) if "h0" in inputs else jnp.zeros((L * D, B, H), jnp.float64)
    c0 = to64(inputs["c0"]) if "c0" in inputs else jnp.zeros((L * D, B, H), jnp.float64)
    lengths = jnp.asarray(lengths_of(case, inputs))
    zeros_out = np.zeros((T, B, D * H))
    zeros_st = np.zeros((L * D, B, H))
    g_out = to64(inputs.get("grad_output", zeros_out))
    g_h = to64(inputs.get("grad_h_n", zeros_st))
    g_c = to64(inputs.get("grad_c_n", zeros_st))
    return params, x, h0, c0, lengths, (g_out, g_h, g_c)


def make_loss(case: Case, lengths, upstream):
    g_out, g_h, g_c = upstream

    def loss(params, x, h0, c0):
        out, h_n, c_n = jax_forward(case, params, x, h0, c0, lengths)
        total = jnp.sum(out * g_out) + jnp.sum(h_n * g_h)
        if case.mode == "LSTM":
            total = total + jnp.sum(c_n * g_c)
        return total

    return loss


def fd_check(case: Case, loss, args, grads, rng) -> float:
    """Central finite differences in float64; returns the worst relative error seen."""
    loss_j = jax.jit(loss)
    worst = 0.0

    def fd(direction):
        plus = jax.tree_util.tree_map(lambda a, v: a + FD_EPS * v, args, direction)
        minus = jax.tree_util.tree_map(lambda a, v: a - FD_EPS * v, args, direction)
        return (float(loss_j(*plus)) - float(loss_j(*minus))) / (2 * FD_EPS)

    zeros = jax.tree_util.tree_map(jnp.zeros_like, args)
    # (1) random directions over everything at once.
    for _ in range(3):
        v = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), args)
        pairs = list(zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(v)))
        analytic = float(sum(jnp.vdot(g, vv) for g, vv in pairs))
        # Scale without cancellation: a small <grad, v> is not itself a precision target.
        scale = float(sum(jnp.sum(jnp.abs(g * vv)) for g, vv in pairs))
        num = fd(v)
        err = abs(num - analytic) / max(abs(analytic), 1e-3 * scale, 1e-3)
        worst = max(worst, err)
        assert err < FD_TOL, f"{case.name}: directional FD {num} vs grad {analytic}"
    # (2) three coordinates of every gradient tensor (params, input, h0, c0).
    flat_args, treedef = jax.tree_util.tree_flatten(args)
    flat_grads = jax.tree_util.tree_leaves(grads)
    for li, (a, g) in enumerate(zip(flat_args, flat_grads)):
        for _ in range(3):
            j = int(rng.integers(a.size))
            e = np.zeros(a.size)
            e[j] = 1.0
            leaves = [jnp.zeros_like(z) for z in jax.tree_util.tree_leaves(zeros)]
            leaves[li] = jnp.asarray(e.reshape(a.shape))
            num = fd(jax.tree_util.tree_unflatten(treedef, leaves))
            analytic = float(np.asarray(g).reshape(-1)[j])
            err = abs(num - analytic) / max(abs(analytic), 1e-3)
            worst = max(worst, err)
            assert err < FD_TOL, f"{case.name}: FD leaf {li} idx {j}: {num} vs {analytic}"
    return worst


def main() -> int:
    print("jax_grads.py: JAX (float64 autodiff) gradient goldens")
    print(f"  jax {jax.__version__}, x64={jax.config.jax_enable_x64}")
    fd_rng = np.random.default_rng(12345)
    for case in cases():
        data = make_data(case)
        weights, inputs = data["weights"], data["input"]
        params, x, h0, c0, lengths, upstream = prepare(case, weights, inputs)
        loss = make_loss(case, lengths, upstream)
        args = (params, x, h0, c0)

        out, h_n, c_n = jax.jit(lambda p, x, h, c: jax_forward(case, p, x, h, c, lengths))(*args)
        fwd = {"output": np.asarray(out, np.float64), "h_n": np.asarray(h_n, np.float64)}
        if case.mode == "LSTM":
            fwd["c_n"] = np.asarray(c_n, np.float64)
        assert fwd["output"].dtype == np.float64

        # Cross-checks of the forward.
        margins = []
        ref = np_forward(case, weights, inputs, relu_margin=margins)
        if case.mode == "RNN_RELU":
            # A float32 implementation must see the same ReLU derivative mask as float64.
            assert min(margins) > RELU_MARGIN, f"{case.name}: ReLU pre-activation {min(margins)}"
        e_np, w_np = max_rel_err(fwd, ref)
        assert e_np < JAX_VS_NUMPY_TOL, f"{case.name}: JAX vs numpy {e_np:.3e} ({w_np})"
        ort_out = ort_forward(case, weights, inputs)
        e_ort, w_ort = max_rel_err(ort_out, fwd)
        assert e_ort < JAX_VS_ORT_TOL, f"{case.name}: ORT vs JAX {e_ort:.3e} ({w_ort})"
        if "lengths" in inputs:
            for b, n in enumerate(inputs["lengths"]):
                assert np.all(fwd["output"][n:, b, :] == 0.0)

        # Gradients.
        grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))(*args)
        g_params, g_x, g_h0, g_c0 = grads
        fd_worst = fd_check(case, loss, args, grads, fd_rng)

        expected = dict(fwd)
        expected["grad_input"] = np.asarray(g_x, np.float64)
        expected["grad_h0"] = np.asarray(g_h0, np.float64)
        if case.mode == "LSTM":
            expected["grad_c0"] = np.asarray(g_c0, np.float64)
        for name in param_names(case):
            expected["grad." + name] = np.asarray(g_params[name], np.float64)
        assert set(g_params) == set(param_names(case))

        out_dir = write_case(case, weights, inputs, expected)
        print(f"  {os.path.relpath(out_dir, os.getcwd())}")
        print(f"      {case.describe()}" + (f"  ({case.note})" if case.note else ""))
        print(f"      weights:  {shapes_line(weights)}")
        print(f"      input:    {shapes_line(inputs)}")
        print(f"      expected: {shapes_line(expected)}")
        print(f"      forward: JAX(f64) vs numpy(f64) {e_np:.3e}; ORT(f32) vs JAX(f64) "
              f"{e_ort:.3e} ({w_ort}); grads vs central FD: worst rel {fd_worst:.3e}")
        if case.mode == "RNN_RELU":
            print(f"      smallest |ReLU pre-activation| on valid steps: {min(margins):.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
