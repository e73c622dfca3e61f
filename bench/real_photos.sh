#!/usr/bin/env bash
# The real-photo benchmark (docs/benchmarks.md, "Real photos"): a paper-size pix2pix teacher (ResNet-9blocks,
# ngf 64) trained on real photographs, then every method at >= 10x fewer paper MACs within a time budget
# each, then one benchmark run that scores every student at 256 px on the held-out photos beside
# copying the input and measures its speed against the teacher.
#
#   bench/real_photos.sh [OUT] [BUDGET] [STEP...]
#   bench/real_photos.sh runs/photos 45m              # everything
#   bench/real_photos.sh runs/photos 45m methods      # only the compress runs (data and teacher exist)
#
# STEP is any of data, teacher, methods, bench, int8 (default: all, in that order). The compress runs
# start together, one thread each (on a 2-core CPU: two runs share each core; every run's time planner
# measures its step time under that load). Needs opencv-doc (apt-get install opencv-doc) for the photos.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-runs/photos}"
budget="${2:-45m}"
shift 2 || shift $# || true
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(data teacher methods bench int8)
gc="${GANCOMPRESS:-gancompress}"
recipes="$here/../src/gancompress/configs"
methods=(fast-gan-compression gan-compression gan-slimming coronet)
short=(fgc gc gs coronet)
load() { cut -d' ' -f1-3 /proc/loadavg; }
has() { local s; for s in "${steps[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
mkdir -p "$out"

if has data && [ ! -f "$out/data/gancompress_dataset.json" ]; then
    "$gc" data prepare photos --out "$out/data"
fi
if has teacher; then
    echo "teacher: start $(date -u +%FT%TZ) load $(load)"
    "$gc" train --task pix2pix --recipe "$recipes/train/pix2pix_photos.yaml" --data "$out/data" \
        --out "$out/teacher" --threads 2 --no-progress
    echo "teacher: end $(date -u +%FT%TZ) load $(load)"
fi
if has methods; then
    pids=()
    for i in "${!methods[@]}"; do
        m="${methods[$i]}"
        folder="${m//-/_}"
        (
            echo "start $(date -u +%FT%TZ) load $(load)"
            rc=0
            "$gc" compress --method "$m" --teacher "$out/teacher/generator" --data "$out/data" \
                --out "$out/${short[$i]}" --recipe "$recipes/methods/$folder/photos.yaml" \
                --time-budget "$budget" --threads 1 || rc=$?
            echo "rc $rc"
            echo "end $(date -u +%FT%TZ) load $(load)"
        ) >"$out/${short[$i]}.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    grep -H "^start\|^end\|^rc" "$out"/*.log
fi
if has bench; then
    students=()
    for s in "${short[@]}"; do
        for d in student student.failed; do
            [ -d "$out/$s/$d" ] && students+=(--student "$s=$out/$s/$d") && break
        done
    done
    echo "bench: load $(load)"
    python "$here/vs_teacher.py" --teacher "$out/teacher/generator" "${students[@]}" --data "$out/data" \
        --size 256 --out "$out/bench/vs_teacher.json"
    "$gc" benchmark --teacher "$out/teacher/generator" "${students[@]}" --data "$out/data" \
        --out "$out/bench" --size 256 --threads 1
fi
if has int8; then
    "$gc" export "$out/teacher/generator" --out "$out/teacher-export" --data "$out/data" --calibration-size 256
fi
