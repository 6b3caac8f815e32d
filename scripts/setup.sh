#!/usr/bin/env bash
# Create .venv (if needed) and install probekit with its test extras, from scratch.
# torch: a bare `torch` requirement would pull a multi-GB CUDA build on a machine without
# a GPU, so torch is installed first, pinned to PROBEKIT_TORCH (default 2.13.0, the CPU
# build that lies on this project's machines); pyproject.toml only asks torch>=2.2, which
# the installed one then satisfies. On a GPU box set PROBEKIT_TORCH to the build you want,
# or install torch yourself first: an importable torch is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
# pip's and setuptools' chatter (the editable-install notice) goes to a log, shown on failure
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }; }
quiet python -m pip install -q --upgrade pip || echo "note: pip not upgraded (offline?)"
if ! python -c "import torch" >/dev/null 2>&1; then
  quiet python -m pip install -q "torch==${PROBEKIT_TORCH:-2.13.0}"
fi
quiet python -m pip install -q -e ".[${PROBEKIT_EXTRAS:-dev}]"
python -c "import probekit, torch; print(f'probekit {probekit.__version__} ready (torch {torch.__version__})')"
