#!/usr/bin/env bash
# Set up from scratch (scripts/setup.sh) and run the main job on the embedded default model
# (all-MiniLM-L6-v2, offline): extract every layer of the built-in demo task, probe it, and
# print the few dimensions that carry the task. Extra arguments go to `probekit run`, e.g.
#   bash scripts/demo.sh --task sst2 --glue-dir ../shared/glue --limit 4000
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
probekit run --model minilm --out runs/demo "$@"
