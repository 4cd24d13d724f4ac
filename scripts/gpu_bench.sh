#!/usr/bin/env bash
# Runs the GPU benchmark session on a machine with an NVIDIA GPU, PyTorch and a prebuilt
# target/release/wgrnn: provides the Vulkan loader if the machine lacks one (from .gl/*.deb,
# fetched elsewhere with `apt-get download libvulkan1`), then runs the side-by-side comparison
# with cuDNN. Results go to ${OUT:-out}/.
#   bash scripts/gpu_bench.sh [suite] [passes]
# Then the levers of the performance issue (scripts/levers.sh) into levers.jsonl.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out}"; mkdir -p "$OUT"
SUITE="${1:-core}"; PASSES="${2:-inference,train}"
# NVIDIA's Vulkan driver lives in libGLX_nvidia and needs the loader plus glvnd's dispatch
# libraries; unpack them when the machine lacks them.
if [ -d .gl ] && ! ldconfig -p | grep -q 'libGLdispatch\.so\.0'; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
if [ -z "${VK_DRIVER_FILES:-}" ]; then
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    [ -e "$f" ] && export VK_DRIVER_FILES="$f" && break
  done
fi
export __EGL_VENDOR_LIBRARY_FILENAMES="${__EGL_VENDOR_LIBRARY_FILENAMES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
git rev-parse --short HEAD 2>/dev/null | tee -a "$OUT/gpu.txt" || true
./target/release/wgrnn forward --seq 20 --batch 8 2>&1 | tee "$OUT/forward.txt"
PYTHONUNBUFFERED=1 python3 scripts/bench_vs_pytorch.py --wgrnn target/release/wgrnn --suite "$SUITE" \
  --passes "$PASSES" --json-out "$OUT/compare-$SUITE.json" 2>"$OUT/compare-$SUITE.log" | tee "$OUT/compare-$SUITE.md"
# The performance issue's levers (wavefront, single workgroup, matrix-vector steps, f16 weights).
bash scripts/levers.sh 20 > "$OUT/levers.jsonl" 2> "$OUT/levers.log"
