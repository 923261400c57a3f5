#!/usr/bin/env bash
# The photo model's training campaign (issue 23): one run at 256 px with a constant learning rate and a
# moving average of the weights, continued in every session that has CPU time to spare.
#
#   [RES=512] recipes/bsds_cnn/campaign.sh INIT_WEIGHTS SEED [RUN_DIR]
#
# RES=512 runs it at the bundled model's 512 px with the paper's 11 rounds (4 images x 4 masks, lr 2e-4,
# a checkpoint every 25 steps, average decay 0.998); the default is the 256 px, 4-round step.
# - RUN_DIR (default /work/runs/campaign/seed$SEED) holding checkpoint.pt: the run resumes from it.
# - Otherwise it starts from INIT_WEIGHTS (the bundled model's, or the last committed campaign weights),
#   with a new SEED per session (new photos crops and scenes).
# It writes a checkpoint every 100 steps (about 2.5 min on 2 cores) and weights_ema.pt with it, so a
# session that ends loses at most 100 steps. Run it under `nice` and pause it (kill -STOP / -CONT) while
# measuring; evaluate weights_ema.pt at 512 px with
#   samwidgets evaluate --model recipes/bsds_cnn/cnn_512.json --weights RUN_DIR/weights_ema.pt --bsds ...
set -euo pipefail
cd "$(dirname "$0")/../.."
INIT=${1:?initial weights (a state dict of the cnn_256/cnn_512 model)}
SEED=${2:?a seed not used by an earlier session of the campaign}
RUN=${3:-/work/runs/campaign/seed$SEED}
BSDS=${BSDS:-../shared/datasets/bsds500}
RESUME=()
[ -f "$RUN/checkpoint.pt" ] && RESUME=(--resume)
if [ "${RES:-256}" = 512 ]; then
    # The bundled model's own size and the paper's 11 rounds: its moving average is evaluated as it is.
    STEP=(--model recipes/bsds_cnn/cnn_512.json --rounds 11 --images-per-step 4 --masks-per-image 4
          --warmup 25 --lr 2e-4 --ema 0.998 --save-every 25)
else
    STEP=(--model recipes/bsds_cnn/cnn_256.json --rounds 4 --images-per-step 8 --masks-per-image 4
          --warmup 200 --lr 4e-4 --ema 0.999 --save-every 100)
fi
exec python -m samwidgets train "${STEP[@]}" --weights "$INIT" \
    --bsds "$BSDS" --bsds-fraction 0.75 --steps 1000000 --schedule constant --loss-at-low-res --seed "$SEED" \
    --threads 2 --no-progress --out "$RUN" "${RESUME[@]}"
