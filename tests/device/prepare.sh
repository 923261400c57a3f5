#!/usr/bin/env bash
# Run HERE (not on the GPU machine) before a lent call runs tests/device/run.sh or lent.sh:
#   tests/device/prepare.sh
# It fills .device-tests/ (git-ignored; the call carries it) with site.tar.xz: the test tools that the GPU
# image lacks, installed for its python 3.12 and packed small. They are nbval and the Jupyter kernel it starts
# for each notebook, the widget packages and pycocotools that samwidgets imports, and platformdirs. The image has
# torch, pytest, numpy, pillow, matplotlib, scipy, scikit-image, psutil, pygments and python-dateutil (the
# device tool's KINDS.md lists its packages). run.sh unpacks it where an import is missing.
#
# The versions below install together with --no-deps for python 3.12 (pip resolved them once, without the
# image's packages). Left out on purpose, optional where they are imported: debugpy (ipykernel's debugger),
# jedi and parso (IPython's completion), widgetsnbextension and jupyterlab_widgets (the widgets' JavaScript,
# which only a browser loads): 12 MB of wheels that no test runs.
#
# The photo recipe's .device/ (recipes/bsds_cnn/device/prepare.sh) is a sibling that this script leaves alone;
# the size printed counts both, as tests/device/lent.sh's call carries both (the tool's limit: 64 MiB in all).
set -euo pipefail
cd "$(dirname "$0")/../.."
WHEELS=(
  nbval==0.11.0 ipykernel==7.4.0 jupyter_client==8.10.0 jupyter_core==5.9.1 nbformat==5.11.1
  ipython==9.19.1 ipython_pygments_lexers==1.1.1 traitlets==5.16.1 comm==0.2.3
  matplotlib_inline==0.2.2 nest_asyncio2==1.7.4 pyzmq==27.3.0 tornado==6.6.1
  prompt_toolkit==3.0.53 wcwidth==0.9.5 pexpect==4.9.0 ptyprocess==0.7.0
  stack_data==0.6.3 asttokens==3.0.2 executing==2.3.0 pure_eval==0.2.4
  fastjsonschema==2.22.3 jsonschema==4.26.0 jsonschema_specifications==2025.9.1 referencing==0.37.0
  rpds_py==2026.9.1
  ipywidgets==8.1.9 ipycanvas==0.14.3
  pycocotools==2.0.11 platformdirs==4.14.9
)
FOR_312=(--python-version 3.12 --implementation cp --only-binary=:all: --platform manylinux_2_28_x86_64
         --platform manylinux_2_27_x86_64 --platform manylinux_2_26_x86_64 --platform manylinux_2_17_x86_64
         --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip install -q --no-deps --no-compile --target "$work/site" "${FOR_312[@]}" "${WHEELS[@]}"
rm -rf "$work/site/bin" "$work/site/share"  # console scripts and Jupyter's front-end files: nothing runs them
rm -rf .device-tests && mkdir -p .device-tests
tar -C "$work/site" -cf - . | xz -9 >.device-tests/site.tar.xz
echo "${#WHEELS[@]} packages, $(du -sm "$work/site" | cut -f1) MB installed, in .device-tests/site.tar.xz"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
mine=$(du -sb .device-tests | cut -f1)
recipe=$(du -sb .device 2>/dev/null | cut -f1 || true)
tracked=$(git ls-files -z | xargs -0 du -bc 2>/dev/null | tail -1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -bc | tail -1 | cut -f1)
total=$((mine + ${recipe:-0} + tracked + ${untracked:-0}))
echo ".device-tests $(mib "$mine") MiB + .device $(mib "${recipe:-0}") MiB + tracked $(mib "$tracked") MiB +" \
     "untracked $(mib "${untracked:-0}") MiB = $(mib "$total") MiB of 64"
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo "too big for the device tool's call with both carries: carry less" >&2
  exit 1
fi
