#!/usr/bin/env bash
# Fetch the wheels that bench/gpu_check.sh and bench/gpu.py need on a bare CUDA machine
# (one with Python 3.12, torch, torchvision, transformers, accelerate, numpy, pandas,
# pillow, psutil, pyyaml, tqdm and nvidia-ml-py, as a CUDA image has): evalcore's own
# needs that such an image lacks, at the versions constraints.txt pins. Run it where the
# package registry is reachable; carry the folder to the GPU machine (gpu_check.sh
# installs it there with `pip install --no-index --target`, no network).
#
#   bench/gpu_wheels.sh [DIR]     # default .whl (git-ignored); prints the total size
#   PYTHON_VERSION=3.11 bench/gpu_wheels.sh DIR   # for another Python (default 3.12)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
mkdir -p "$dest"
pin() { grep -iE "^$1==" constraints.txt | head -1; }
wanted=(
  "$(pin av)" "$(pin decord)" "$(pin pebble)" "$(pin qwen-vl-utils)"
  "$(pin pydantic)" "$(pin pydantic_core)" "$(pin annotated-types)" "$(pin typing-inspection)"
  "$(pin typing_extensions)"  # pydantic needs a newer one than an image may have
)
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$dest" \
  --python-version "${PYTHON_VERSION:-3.12}" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
  "${wanted[@]}"
ls -1 "$dest"
echo "$(ls "$dest"/*.whl | wc -l) wheels, $(du -cm "$dest"/*.whl | tail -1 | cut -f1) MB in $dest"
