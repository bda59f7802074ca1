#!/usr/bin/env bash
# The GPU check: CUDA-marked tests and the train-step, fused-EMU, evaluation and scale benchmarks on `cuda`,
# in under five minutes on one GPU. Run it from the repository root when a GPU machine is lent:
#   bash benchmarks/gpu_check.sh [DATA_DIR]
# Results go to $OUT (the device tool's output folder) or benchmarks/results/gpu/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR="${1:-../shared/datasets}"
OUT="${OUT:-benchmarks/results/gpu}"
mkdir -p "$OUT"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" \
    | tee "$OUT/device.txt"
timeout 120 python -m pytest -q -m cuda tests/test_cuda.py 2>&1 | tee "$OUT/tests.txt"
timeout 120 python -m benchmarks speed train-step --data-dir "$DATA_DIR" --device cuda --no-save \
    | tail -1 > "$OUT/train-step.json"
timeout 120 python -m benchmarks speed fused --device cuda --repeats 5 --no-save \
    | tail -1 > "$OUT/fused.json"   # EMU's compiled engine (Triton) against the formed path, compile time apart
timeout 60 python -m benchmarks speed eval --data-dir "$DATA_DIR" --device cuda --baseline-triples 0 --no-save \
    | tail -1 > "$OUT/eval.json"
timeout 150 python -m benchmarks speed scale --entities 15000 --entities 1000000 --steps 10 --device cuda --no-save \
    | tail -1 > "$OUT/scale.json"
echo "GPU check done: $OUT"
