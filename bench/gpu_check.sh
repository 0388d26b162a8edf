#!/usr/bin/env bash
# The GPU paths run once, then the GPU benchmark: one line per check (PASS / FAIL), the
# benchmark's tables last. Under 8 minutes on one H100 or H200 (docs/models.md, "On a GPU").
#
#   bench/gpu_check.sh      # in an environment with `pip install -e '.[local]'`
#   bench/gpu_check.sh      # on a bare CUDA machine, with the .whl/ folder that
#                           # bench/gpu_wheels.sh filled on a machine with the registry
#
# GPU_BENCH_ARGS: bench/gpu.py's arguments (default: 3 videos x 2 questions, both
# models, both frame modes). GPU_CHECK_OUT: where gpu.json and the logs go ($OUT if set).
# PYTHON: the interpreter with torch and transformers (default python3; a GPU image's).
# GPU_CHECK_DEVICE=cpu GPU_BENCH_ARGS=--tiny PYTHON=.venv/bin/python: a dry run of this
# script on a CPU (9 checks and the tiny benchmark in ~40 s here).
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
out=${GPU_CHECK_OUT:-${OUT:-/tmp/gpu-check}}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then  # carried wheels: no registry needed
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/evalcore-wheels .whl/*.whl || { echo "FAIL wheels: install"; exit 1; }
  export PYTHONPATH="/tmp/evalcore-wheels${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD:$PWD/bench${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

device=${GPU_CHECK_DEVICE:-cuda:0}
started=$SECONDS
[ "$device" = cpu ] || "$py" - <<'PY' || exit 1
import platform, torch, transformers
ok = torch.cuda.is_available()
name = torch.cuda.get_device_name(0) if ok else "no CUDA device"
print(f"{'PASS' if ok else 'FAIL'} cuda: {name}; torch {torch.__version__}, transformers "
      f"{transformers.__version__}, Python {platform.python_version()}", flush=True)
raise SystemExit(0 if ok else 1)
PY
timeout 180 "$py" bench/gpu_check.py --device "$device" 2>"$out/gpu_check.err"
checks=$?
[ $checks -eq 124 ] && echo "FAIL checks: over 180 s (see $out/gpu_check.err)"
# shellcheck disable=SC2086  # GPU_BENCH_ARGS is a list of arguments
timeout 300 "$py" bench/gpu.py ${GPU_BENCH_ARGS:---videos 3} --device "$device" \
  --json "$out/gpu.json" \
  2>"$out/gpu_bench.err"
bench=$?
[ $bench -eq 124 ] && echo "FAIL bench: over 300 s (see $out/gpu_bench.err)"
echo "gpu_check.sh: checks rc $checks, bench rc $bench, $((SECONDS - started)) s"
[ $checks -eq 0 ] && [ $bench -eq 0 ]
