#!/usr/bin/env bash
# The GPU check: the demo on CUDA with automatic mixed precision, images per second and peak GPU
# memory per approach, then a run launched by torchrun with one process. From the repository
# root, after `make weights`:
#
#   benchmarks/gpu_check.sh [OUT_DIR]          # default OUT_DIR: /tmp/emotion_tl_gpu_check
#
# DEVICE, EPOCHS and IMAGES (per category) override cuda, 5 and all, e.g. for a smoke run of the
# script itself on a machine without a GPU: DEVICE=cpu EPOCHS=1 IMAGES=10 benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/emotion_tl_gpu_check}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-5}
PY=${PY:-.venv/bin/python}
LIMIT=()
if [ -n "${IMAGES:-}" ]; then LIMIT=(--max_images_per_category "$IMAGES"); fi
mkdir -p "$OUT"

"$PY" - "$DEVICE" <<'PYEOF'
import sys
import torch
print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print(f"GPU: {torch.cuda.get_device_name(0)}, capability {torch.cuda.get_device_capability(0)}, bf16: {torch.cuda.is_bf16_supported()}")
elif sys.argv[1] == "cuda":
    sys.exit("DEVICE=cuda but PyTorch sees no GPU: nothing to check here.")
PYEOF

echo "== the demo: both approaches, device $DEVICE, precision auto, $EPOCHS epochs"
start=$(date +%s)
"$PY" -m emotion_tl --approach both --device "$DEVICE" --precision auto --epochs "$EPOCHS" \
    --checkpoint_dir "$OUT/demo" "${LIMIT[@]}"
echo "demo wall time: $(( $(date +%s) - start )) s"

"$PY" - "$OUT/demo" <<'PYEOF'
import sys
from pathlib import Path
import pandas as pd
out = Path(sys.argv[1])
split = pd.read_csv(out / "split.csv")
train = int((split["split"] == "train").sum())
table = pd.read_csv(out / "comparison.csv").set_index("model")
for model in ("frozen_weights", "finetuning"):
    row = table.loc[model]
    rate = train / row["seconds_per_epoch"]
    print(f"{model}: {row['seconds_per_epoch']:.2f} s per epoch ({train} training images, "
          f"validation included: {rate:.0f} images/s), before epoch 1 {row['setup_seconds']:.1f} s, "
          f"peak memory {row['peak_memory_mb']:.0f} MB, test accuracy {row['accuracy']:.3f}")
PYEOF

echo "== torchrun, one process"
start=$(date +%s)
"$PY" -m torch.distributed.run --standalone --nproc_per_node 1 -m emotion_tl --approach both \
    --device "$DEVICE" --precision auto --epochs 1 --checkpoint_dir "$OUT/torchrun" "${LIMIT[@]}"
echo "torchrun wall time: $(( $(date +%s) - start )) s"
ls "$OUT/torchrun"/*_best.pt
