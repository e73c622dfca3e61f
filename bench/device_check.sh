#!/usr/bin/env bash
# The device check (bench/device_check.py): run it whenever a GPU is available; it finishes in under
# 8 minutes on one GPU and writes OUT/device_check.json (default runs/device_check).
#
#   bench/device_check.sh [OUT] [more device_check.py options]
#   bench/device_check.sh runs/device_check --precisions fp32 bf16 fp16
#
# On a machine without a GPU it checks the code at tiny sizes on the CPU instead (--device cpu --tiny).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-runs/device_check}"
shift || true
python="${PYTHON:-python}"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$here/../src${PYTHONPATH:+:$PYTHONPATH}"
if "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    device_args=(--device cuda)
else
    echo "device_check: no CUDA device; checking the code at tiny size on the CPU" >&2
    device_args=(--device cpu --tiny)
fi
# 8 minutes for the whole check: a stuck section must not hold the GPU beyond it.
exec timeout --signal=INT --kill-after=20 480 "$python" "$here/device_check.py" "${device_args[@]}" --out "$out" "$@"
