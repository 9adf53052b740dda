#!/usr/bin/env bash
# Set up (if needed), build or update the index over seeds/, and open the chat UI
# on http://127.0.0.1:7860 . Extra arguments go to `qa serve` (e.g. --port 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/qa index
exec .venv/bin/qa serve "$@"
