#!/usr/bin/env bash
# The device-aware tests and the notebook series on a lent GPU, within TEST_SECONDS (240 s by default).
# Prepared by tests/device/prepare.sh (here: the test tools the GPU image lacks, into .device-tests/); on a lent
# machine tests/device/lent.sh runs this script, then the photo recipe's training, in one call:
#   run(command="bash tests/device/lent.sh", carry=[".device", ".device-tests"], timeout_s=600)
# This script alone:
#   run(command="bash tests/device/run.sh", carry=[".device-tests"], timeout_s=300)
#
# What runs, all at once (one process each, the CPU threads shared out between them):
# - pytest on $TESTS with SAMWIDGETS_TEST_DEVICE=$DEVICE: the fast paths against the plain ones, the predictor,
#   the widget's session, the embedding cache, the interactive loss (tests/on_device.py says how they use it);
# - each notebook of $NOTEBOOKS under nbval, as the README's test command runs them; load_model(MODEL) picks
#   the GPU by itself when there is one, so with DEVICE=cuda the series runs its model on CUDA.
# Whatever is still running at the deadline is stopped and counts as failed ("timed out").
#
# Settings (environment):
#   DEVICE        cuda (default): stops at once, exit status 2, where torch sees no GPU; cpu: everything on the
#                 CPU, the GPU hidden (CUDA_VISIBLE_DEVICES=""), what tests/test_device_script.py runs
#   TESTS         the pytest selection, space-separated (default: the device-aware test files); "" runs none
#   NOTEBOOKS     the notebooks, space-separated (default: notebooks/*.ipynb); "" runs none
#   TEST_SECONDS  the time for all of it, from this script's start (default 240)
#   OUT           where summary.txt and tests.log go (default ./device_out); the device tool sets it
#   TOOLS         the test tools the image lacks, unpacked when an import is missing (default
#                 .device-tests/site.tar.xz, made by tests/device/prepare.sh)
#   PYTHON        the interpreter (default python3: on the GPU image, the one that holds torch)
# Exit status: 0 when every part passed, 1 when one failed or timed out, 2 when nothing could run.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
DEVICE=${DEVICE:-cuda}
TESTS=${TESTS-tests/test_fast_paths.py tests/test_sam2_fast.py tests/test_prompts.py tests/test_cache.py tests/test_widget_session.py tests/test_interactive.py tests/test_devices.py}
NOTEBOOKS=${NOTEBOOKS-$(echo notebooks/*.ipynb)}
TEST_SECONDS=${TEST_SECONDS:-240}
OUT=${OUT:-device_out}
TOOLS=${TOOLS:-.device-tests/site.tar.xz}
PYTHON=${PYTHON:-python3}
started=$(date +%s)
deadline=$((started + TEST_SECONDS))
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
LOG="$OUT/tests.log"
: >"$SUMMARY"
: >"$LOG"
say() { echo "$*" | tee -a "$SUMMARY"; }
stop() {  # stop CODE MESSAGE: nothing (more) can run
  echo "tests: not run: $2" >>"$SUMMARY"
  echo "run.sh: $2" >&2
  exit "$1"
}

read -r -a tests <<<"$TESTS"
read -r -a notebooks <<<"$NOTEBOOKS"
parts=$(( (${#tests[@]} > 0 ? 1 : 0) + ${#notebooks[@]} ))
[ "$parts" -gt 0 ] || stop 2 "TESTS and NOTEBOOKS are both empty"
case "$DEVICE" in
  cuda) ;;
  cpu) export CUDA_VISIBLE_DEVICES="" ;;  # the CPU run means the CPU: notebooks too, even on a GPU machine
  *) stop 2 "DEVICE must be cuda or cpu, not '$DEVICE'" ;;
esac
# the GPU first, in a few seconds: a GPU run without a GPU says so before it unpacks or runs anything
if [ "$DEVICE" = cpu ]; then
  say "device: cpu"
else
  device_line=$("$PYTHON" 2>&1 <<'PY'
import torch
if not torch.cuda.is_available():
    print(f"DEVICE=cuda but torch {torch.__version__} sees no CUDA GPU (torch.cuda.is_available() is False): "
          "nothing was run; DEVICE=cpu runs the same on the CPU")
    raise SystemExit(3)
print(f"cuda ({torch.cuda.get_device_name()}, {torch.cuda.device_count()} GPU), torch {torch.__version__}")
PY
  )
  case $? in
    0) say "device: $device_line" ;;
    3) stop 2 "$device_line" ;;
    *) stop 2 "$PYTHON could not import torch: $device_line" ;;
  esac
fi

# the test tools the GPU image lacks (it has pytest and torch), from the carried archive
SITE=${TMPDIR:-/tmp}/samwidgets-test-site
if ! "$PYTHON" -c "import nbval, ipykernel, ipywidgets, ipycanvas, pycocotools, platformdirs" 2>/dev/null; then
  [ -f "$TOOLS" ] || stop 2 "nbval or another test tool is missing here and $TOOLS was not carried (tests/device/prepare.sh makes it)"
  rm -rf "$SITE"
  "$PYTHON" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
      "$TOOLS" "$SITE" >>"$LOG" 2>&1 || stop 2 "$TOOLS did not unpack (see tests.log)"
  export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
  "$PYTHON" -c "import nbval, ipykernel, ipywidgets, ipycanvas, pycocotools, platformdirs" >>"$LOG" 2>&1 \
      || stop 2 "the test tools from $TOOLS do not import (see tests.log)"
fi
# samwidgets from this checkout, by an absolute path: nbval starts each kernel in notebooks/
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export SAMWIDGETS_TEST_DEVICE=$DEVICE
export SAMWIDGETS_OFFLINE=1  # as tests/conftest.py sets it for a whole test run: no result waits on the network
unset SAMWIDGETS_MODEL       # the series is tested with its own MODEL setting

cores=$(nproc)
threads=$(( cores / parts > 0 ? cores / parts : 1 ))
export OMP_NUM_THREADS=$threads  # torch's default is every core, in each of the $parts processes
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

part() {  # part NAME COMMAND...: COMMAND until the deadline; its output, exit status and seconds in $WORK
  local name=$1 begin left
  shift
  begin=$(date +%s)
  left=$((deadline - begin))
  if [ "$left" -le 0 ]; then
    echo "not started: no time left" >"$WORK/$name.log"
    echo 124 >"$WORK/$name.rc"
  else
    timeout -k 10 "$left" "$@" >"$WORK/$name.log" 2>&1
    echo $? >"$WORK/$name.rc"
  fi
  echo $(($(date +%s) - begin)) >"$WORK/$name.seconds"
}

# the repository's pytest configuration (nbval's options, the markers) whatever the paths given
PYTEST=("$PYTHON" -m pytest -c "$ROOT/pyproject.toml" --rootdir "$ROOT" -q -rfEs)
names=()
if [ "${#tests[@]}" -gt 0 ]; then
  names+=(pytest)
  part pytest "${PYTEST[@]}" "${tests[@]}" &
fi
for notebook in "${notebooks[@]}"; do
  name="notebook-$(basename "$notebook" .ipynb)"
  names+=("$name")
  part "$name" "${PYTEST[@]}" "$notebook" &
done
say "running ${#tests[@]} test paths on $DEVICE and ${#notebooks[@]} notebooks, $threads CPU threads each, within $TEST_SECONDS s"
wait

failed=0
for name in "${names[@]}"; do
  rc=$(cat "$WORK/$name.rc")
  seconds=$(cat "$WORK/$name.seconds")
  # pytest's closing line ("12 passed in 3.40s"), or the last line of whatever it printed
  last=$(grep -E '(passed|failed|errors?|skipped|no tests ran).* in [0-9.]+s' "$WORK/$name.log" | tail -n 1 | tr -d '=')
  [ -n "$last" ] || last=$(tail -n 1 "$WORK/$name.log")
  case $rc in
    0) verdict=passed ;;
    124 | 137) verdict="timed out"; failed=1 ;;
    5) verdict="failed (no test collected)"; failed=1 ;;
    *) verdict="failed (exit status $rc)"; failed=1 ;;
  esac
  say "$name: $verdict in $seconds s: $last"
  # which tests or cells failed, for the notes (the whole report is in tests.log)
  [ "$rc" = 0 ] || grep -E '^(FAILED|ERROR) ' "$WORK/$name.log" | head -n 10 | sed 's/^/    /' | tee -a "$SUMMARY"
  { echo "======== $name: $verdict in $seconds s"; cat "$WORK/$name.log"; echo; } >>"$LOG"
done
total=$(($(date +%s) - started))
if [ "$failed" = 0 ]; then
  say "tests: passed on $DEVICE in $total s (budget $TEST_SECONDS s)"
else
  say "tests: FAILED on $DEVICE in $total s (budget $TEST_SECONDS s): tests.log has each part's output"
fi
exit "$failed"
