#!/usr/bin/env bash
# What one call does whenever the device tool lends this project a GPU: the device tests first
# (tests/device/run.sh, at most TEST_SECONDS = 240 s), then the photo recipe's training
# (recipes/bsds_cnn/device/train.sh) for the time the call has left. Prepared here by both prepare scripts:
#   recipes/bsds_cnn/device/prepare.sh && tests/device/prepare.sh
# then, with the device tool:
#   run(command="bash tests/device/lent.sh", carry=[".device", ".device-tests"], timeout_s=600)
# and record the outcome (summary.txt) in the notes.
#
# What comes back in $OUT (the tool returns 8 files at most): summary.txt (each part's verdict and time, the
# training's last), tests.log, train.log, and the training's args.json, log.csv, weights_fp16.pt and
# weights_ema_fp16.pt.
#
# Settings (environment), besides run.sh's (DEVICE, TESTS, NOTEBOOKS, TEST_SECONDS) which pass through:
#   CALL_SECONDS       the call's whole time (default 600, the tool's limit for one command)
#   TRAIN_OVERHEAD     what train.sh spends outside its training loop: starting, the data, the fp16 weights, and
#                      a margin (default 75 s); the training gets CALL_SECONDS - (time so far) - this
#   MIN_TRAIN_SECONDS  less than this left (default 60 s): no training (a few steps teach nothing)
#   TRAINER            the training script (default recipes/bsds_cnn/device/train.sh; tests put a stub here)
#   DATA               the recipe's carried data (default .device): without DATA/bsds500, no training
# Exit status: run.sh's (0: the tests passed), whatever the training did; the training's own is in summary.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s)
export OUT=${OUT:-device_out}
CALL_SECONDS=${CALL_SECONDS:-600}
TRAIN_OVERHEAD=${TRAIN_OVERHEAD:-75}
MIN_TRAIN_SECONDS=${MIN_TRAIN_SECONDS:-60}
TRAINER=${TRAINER:-recipes/bsds_cnn/device/train.sh}
mkdir -p "$OUT"

bash tests/device/run.sh
tests=$?

begin=$(date +%s)
left=$((CALL_SECONDS - (begin - started) - TRAIN_OVERHEAD))
if [ ! -d "${DATA:-.device}/bsds500" ]; then
  # a call that carried only .device-tests (both carries may not fit in the tool's 64 MiB): the tests alone
  echo "train: skipped: ${DATA:-.device}/bsds500 was not carried (recipes/bsds_cnn/device/prepare.sh makes it)" \
    | tee -a "$OUT/summary.txt"
elif [ "$left" -lt "$MIN_TRAIN_SECONDS" ]; then
  echo "train: skipped: ${left} s left for training, under MIN_TRAIN_SECONDS=$MIN_TRAIN_SECONDS" | tee -a "$OUT/summary.txt"
else
  echo "train: $TRAINER with TRAIN_SECONDS=$left" | tee -a "$OUT/summary.txt"
  TRAIN_SECONDS=$left bash "$TRAINER" >"$OUT/train.log" 2>&1
  train=$?
  verdict=$([ "$train" = 0 ] && echo passed || echo "FAILED (exit status $train)")
  echo "train: $verdict in $(($(date +%s) - begin)) s: train.log has its output" | tee -a "$OUT/summary.txt"
fi
echo "lent.sh: tests exit status $tests, $(($(date +%s) - started)) s of $CALL_SECONDS" | tee -a "$OUT/summary.txt"
exit "$tests"
