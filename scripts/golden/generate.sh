#!/usr/bin/env bash
# Regenerates every golden case under tests/golden/ (forwards from ONNX Runtime, gradients from
# JAX). Re-runnable: with the versions in requirements.txt the files come out byte-identical.
# Needs Python 3 with the packages of scripts/golden/requirements.txt; no GPU, no network.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
python3 "$here/onnx_forward.py"
python3 "$here/jax_grads.py"
