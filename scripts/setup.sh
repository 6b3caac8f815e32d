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
python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
if ! python -c "import torch" >/dev/null 2>&1; then
  python -m pip install -q "torch==${PROBEKIT_TORCH:-2.13.0}" 2>&1 | grep -v "^WARNING: Location" || true
fi
python -m pip install -q -e ".[${PROBEKIT_EXTRAS:-dev}]" 2>&1 | grep -v "^WARNING: Location" || true
python -c "import probekit, torch; print(f'probekit {probekit.__version__} ready (torch {torch.__version__})')"
