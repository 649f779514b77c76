#!/usr/bin/env bash
# The GPU path, proven (issue 12), in about 8 minutes on one GPU:
#   1. the CUDA tests (determinism, TF32 off by default, CUDA against CPU);
#   2. `specbias run E4b --profile paper --device cuda --seeds 1` end to end, its runs' seconds
#      beside the cost model's estimate;
#   3. one paper-scale natural-image run (512², MLP-4×512, batch 8,192) for a few epochs with every
#      probe: seconds per epoch, probe seconds, peak GPU memory, each beside the estimate.
# Usage, from anywhere: bash benchmarks/gpu_check.sh [OUT]   (PYTHON=... picks the interpreter;
# the package is read from src/, so nothing is installed). Figures land in OUT (default: a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${1:-${OUT:-$(mktemp -d)}}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
start=$SECONDS
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('torch', torch.__version__, 'on', torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== 1/3 CUDA tests"
timeout 150 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -k "cuda" \
    tests/test_backend.py tests/test_geometry.py 2>&1 | tee "$OUT/cuda_tests.log"

echo "== 2/3 specbias run E4b --profile paper --device cuda --seeds 1   ($((SECONDS - start)) s so far)"
"$PY" -m specbias run E4b --profile paper --device cuda --seeds 1 --out "$OUT/e4b" --dry-run
t0=$SECONDS
timeout 300 "$PY" -m specbias run E4b --profile paper --device cuda --seeds 1 --workers 3 --yes \
    --no-progress --out "$OUT/e4b" 2>&1 | tee "$OUT/e4b.log"
echo "E4b end to end: $((SECONDS - t0)) s wall (3 runs on 3 workers sharing the GPU)"
"$PY" benchmarks/gpu_check.py --e4b "$OUT/e4b"

echo "== 3/3 one paper-scale natural-image run with every probe   ($((SECONDS - start)) s so far)"
timeout 180 "$PY" benchmarks/gpu_check.py --epochs 3 --json "$OUT/natural_512.json" 2>&1 | tee "$OUT/natural_512.log"
echo "gpu_check: done in $((SECONDS - start)) s; figures in $OUT"
