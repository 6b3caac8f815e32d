#!/usr/bin/env bash
# Set up from scratch (scripts/setup.sh) and run the whole test suite.
# Integration tests use ../shared/glue (or $PROBEKIT_GLUE_DIR) and skip when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
PROBEKIT_EXTRAS="${PROBEKIT_EXTRAS:-dev}" bash scripts/setup.sh
. .venv/bin/activate
python -m pytest -q -p no:cacheprovider "$@"
