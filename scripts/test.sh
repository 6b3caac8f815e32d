#!/usr/bin/env bash
# Set up from scratch (scripts/setup.sh), lint, and run the whole test suite.
#   PROBEKIT_LINT=0   skip `ruff check .` and `ruff format --check .` (default 1: run them first)
#   PROBEKIT_MYPY=1   also type-check probekit/ with mypy (default 0; see pyproject [tool.mypy])
# Extra arguments go to pytest. Integration tests use ../shared/glue (or $PROBEKIT_GLUE_DIR)
# and skip when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
PROBEKIT_EXTRAS="${PROBEKIT_EXTRAS:-dev}" bash scripts/setup.sh
. .venv/bin/activate
if [ "${PROBEKIT_LINT:-1}" != "0" ]; then
  echo "lint: ruff check . && ruff format --check ."
  ruff check .
  ruff format --check .
fi
if [ "${PROBEKIT_MYPY:-0}" != "0" ]; then
  echo "types: mypy (probekit/)"
  mypy
fi
python -m pytest -q -p no:cacheprovider "$@"
