"""Forward golden files for wgrnn, computed by ONNX Runtime (an implementation nobody on the
wgrnn team wrote).

For every case below this script
  1. makes deterministic float32 weights (PyTorch nn.LSTM/GRU/RNN state_dict names and layout)
     and inputs (seeded numpy RNG; weights U(-1/sqrt(H), 1/sqrt(H)), inputs U(-1, 1));
  2. converts the weights to ONNX layout (W [D,G*H,I], R [D,G*H,H], B [D,2*G*H] = Wb then Rb;
     gate blocks reordered LSTM i,f,g,o -> i,o,f,c and GRU r,z,n -> z,r,h; GRU with
     linear_before_reset=1; RNN activations Tanh or Relu) and builds ONE ONNX graph with one
     LSTM/GRU/RNN operator per layer, chained by Transpose(Y, [0,2,1,3]) + Reshape to
     [T, B, D*H]; ragged cases pass `sequence_lens` (int32), initial states go to
     initial_h / initial_c;
  3. runs it in ONNX Runtime (CPU execution provider, float32, one thread, graph optimisations
     off);
  4. cross-checks ORT against an independent float64 numpy implementation of PyTorch's
     semantics (common.np_forward) and asserts they agree to 1e-5 relative (measured: a few
     1e-7), and asserts that output rows at t >= lengths[b] are exactly zero in ORT's output;
  5. writes tests/golden/onnx_*/ with ORT's own float32 outputs converted to float64 as
     `expected` (the goldens mean "ONNX Runtime agrees").

Ragged / bidirectional behaviour of ORT (onnxruntime 1.32.0, checked by step 4 on every ragged
case, all bidirectional and two-layer): ORT follows PyTorch's packed-sequence semantics
exactly -- Y is zero at t >= len_b, the forward Y_h is the state after t = len_b-1, the reverse
direction starts at t = len_b-1 from initial_h and its Y_h is the state after t = 0. Lengths
need not be sorted. No ragged case had to be restricted.

Usage: python scripts/golden/onnx_forward.py   (re-runnable; output is byte-identical)
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Case, make_data, max_rel_err, np_forward, ort_forward, shapes_line, write_case  # noqa: E402

# Relative agreement required between ORT (float32) and the float64 numpy reference.
ORT_VS_F64_TOL = 1e-5


def cases() -> list[Case]:
    cs = []
    # (a) one layer, unidirectional, no initial state, full length.
    uni = {
        "LSTM": dict(T=9, B=3, I=5, H=7),
        "GRU": dict(T=16, B=5, I=3, H=11),
        "RNN_TANH": dict(T=12, B=3, I=7, H=13),
        "RNN_RELU": dict(T=10, B=4, I=6, H=5),
    }
    # (b) two layers, bidirectional, h0 (and c0), ragged lengths (unsorted, with 1 and T).
    bi = {
        "LSTM": dict(T=11, B=4, I=3, H=5, lengths=[11, 1, 6, 9]),
        "GRU": dict(T=13, B=5, I=5, H=7, lengths=[4, 13, 1, 12, 7]),
        "RNN_TANH": dict(T=8, B=3, I=2, H=9, lengths=[1, 5, 8]),
        "RNN_RELU": dict(T=14, B=4, I=6, H=11, lengths=[14, 3, 1, 10]),
    }
    for i, (mode, kw) in enumerate(uni.items()):
        cs.append(Case(name=f"onnx_{mode.lower()}_uni", mode=mode, seed=100 + i, **kw))
    for i, (mode, kw) in enumerate(bi.items()):
        cs.append(Case(name=f"onnx_{mode.lower()}_bi2_ragged", mode=mode, L=2, D=2,
                       initial_state=True, seed=200 + i, **kw))
    # (c) LSTM without biases: no bias tensors in weights.safetensors, ONNX B omitted.
    cs.append(Case(name="onnx_lstm_nobias", mode="LSTM", T=7, B=3, I=6, H=9, L=2, D=2,
                   bias=False, seed=300))
    return cs


def main() -> int:
    print("onnx_forward.py: ONNX Runtime forward goldens")
    worst_all = 0.0
    for case in cases():
        data = make_data(case)
        weights, inputs = data["weights"], data["input"]
        ort_out = ort_forward(case, weights, inputs)
        ref = np_forward(case, weights, inputs)
        err, which = max_rel_err(ort_out, ref)
        worst_all = max(worst_all, err)
        assert err < ORT_VS_F64_TOL, f"{case.name}: ORT vs float64 numpy {err:.3e} on {which}"
        if "lengths" in inputs:
            out = ort_out["output"]
            for b, n in enumerate(inputs["lengths"]):
                assert np.all(out[n:, b, :] == 0.0), f"{case.name}: ORT output not zero past len"
        expected = {k: v.astype(np.float64) for k, v in ort_out.items()}
        out_dir = write_case(case, weights, inputs, expected)
        print(f"  {os.path.relpath(out_dir, os.getcwd())}")
        print(f"      {case.describe()}")
        print(f"      weights:  {shapes_line(weights)}")
        print(f"      input:    {shapes_line(inputs)}")
        print(f"      expected: {shapes_line(expected)}")
        print(f"      ORT(f32) vs numpy(f64): max rel err {err:.3e} ({which})")
    print(f"worst ORT(f32) vs numpy(f64) relative error over all cases: {worst_all:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
