#!/usr/bin/env bash
# The photo recipe on a lent GPU, for at most 9 minutes of training, weights brought back in fp16.
# Prepared by recipes/bsds_cnn/device/prepare.sh (here); run with the device tool as
#   run(command="bash recipes/bsds_cnn/device/train.sh", carry=[".device"], timeout_s=600)
# then evaluate what comes back on the CPU:
#   samwidgets evaluate --model recipes/bsds_cnn/cnn_512.json --weights <files_at>/weights_ema.pt --bsds ...
#
# The same recipe as recipes/bsds_cnn/campaign.sh (256 px, constant learning rate, moving average), made
# for a GPU: bf16 autocast, 4x the images per step, a DataLoader with workers for the photo augmentation.
# SMOKE=1 runs 3 tiny steps on the CPU (what tests/test_device_recipe.py does), so that the script
# works the first time it meets a GPU. OUT defaults to ./device_out where no device tool sets it.
# TRAIN_SECONDS sets the training's time limit (540 s; 600 in the smoke run): tests/device/lent.sh gives it
# what the device tests left of the call.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${OUT:-device_out}
DATA=${DATA:-.device}
mkdir -p "$OUT"
if ls "$DATA"/whl/*.whl >/dev/null 2>&1 && ! python3 -c "import platformdirs" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site "$DATA"/whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1
if [ "${SMOKE:-0}" = 1 ]; then
  SETTINGS=(--device cpu --images-per-step 2 --masks-per-image 2 --steps 3 --workers 2 --save-every 2
            --time-limit "${TRAIN_SECONDS:-600}")
else
  python3 -c "import torch; assert torch.cuda.is_available(), 'no GPU here'; print(torch.cuda.get_device_name())"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  SETTINGS=(--device cuda --bf16 --images-per-step 32 --masks-per-image 4 --steps 1000000 --workers 14
            --save-every 500 --time-limit "${TRAIN_SECONDS:-540}")
fi
INIT="$DATA/init.pt"
[ -f "$INIT" ] || INIT=samwidgets/weights/default_cnn.pt  # the bundled model travels with the working tree
python3 -m samwidgets train --model recipes/bsds_cnn/cnn_256.json --weights "$INIT" \
    --bsds "$DATA/bsds500" --bsds-fraction 0.75 --warmup 200 --lr 8e-4 --schedule constant --ema 0.999 \
    --rounds 4 --loss-at-low-res --seed 21 --no-progress --out "$OUT/run" "${SETTINGS[@]}"
# what comes back: at most 16 MB a file, so the weights travel in fp16 (about 15 MB each)
python3 - "$OUT" <<'PY'
import shutil, sys, torch
out = sys.argv[1]
for name in ("weights", "weights_ema"):
    state = torch.load(f"{out}/run/{name}.pt", map_location="cpu", weights_only=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, f"{out}/{name}_fp16.pt")
for name in ("log.csv", "args.json"):
    shutil.copy(f"{out}/run/{name}", f"{out}/{name}")
shutil.rmtree(f"{out}/run")  # fp32 weights and the optimiser state stay behind
PY
ls -la "$OUT"
