#!/usr/bin/env bash
# Run HERE (not on the GPU machine) before lending time to recipes/bsds_cnn/device/train.sh:
#   recipes/bsds_cnn/device/prepare.sh [INIT_WEIGHTS] [BSDS_ROOT]
# It fills .device/ (git-ignored), which the device tool's call carries: the BSDS500 *train* split
# (never val), the initial weights when they are not the bundled model's (those travel with the
# working tree: samwidgets/weights/default_cnn.pt), and the wheels the GPU machine's image lacks
# (platformdirs), then prints the size that will travel (the tool's limit: 64 MiB in all).
set -euo pipefail
cd "$(dirname "$0")/../../.."
INIT=${1:-}
BSDS=${2:-../shared/datasets/bsds500}
rm -rf .device && mkdir -p .device/bsds500/images .device/bsds500/groundTruth .device/whl
cp -r "$BSDS/images/train" .device/bsds500/images/train
# the ground truth in the official layout, but only what training reads (each annotator's Segmentation,
# not the Boundaries) and compressed: 42% of the original size
python - "$BSDS/groundTruth/train" .device/bsds500/groundTruth/train <<'PY'
import sys
from pathlib import Path

import numpy as np
from scipy.io import loadmat, savemat

source, target = Path(sys.argv[1]), Path(sys.argv[2])
target.mkdir(parents=True)
for path in sorted(source.glob("*.mat")):
    truth = loadmat(str(path))["groundTruth"]
    cells = np.empty((1, truth.shape[1]), dtype=object)
    for j in range(truth.shape[1]):
        struct = np.empty((1, 1), dtype=[("Segmentation", object)])
        struct[0, 0]["Segmentation"] = truth[0, j]["Segmentation"][0, 0]
        cells[0, j] = struct
    savemat(target / path.name, {"groundTruth": cells}, do_compression=True)
PY
if [ -n "$INIT" ]; then
  python - "$INIT" .device/init.pt <<'PY'
import sys, torch  # fp16 to travel light; training converts back to fp32
from samwidgets.hub.build import load_state_dict_file
state = load_state_dict_file(sys.argv[1])
torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, sys.argv[2])
PY
fi
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .device/whl "platformdirs>=3"
carried=$(du -sb .device | cut -f1)
tracked=$(git ls-files -z | xargs -0 du -bc | tail -1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -bc | tail -1 | cut -f1)
awk -v c="$carried" -v t="$tracked" -v u="${untracked:-0}" 'BEGIN {
  total = (c + t + u) / 1048576
  printf ".device %.1f MiB + tracked %.1f MiB + untracked %.1f MiB = %.1f MiB of 64\n", c / 1048576, t / 1048576, u / 1048576, total
  if (total > 63) { print "too big for the device tool: carry less"; exit 1 } }'
