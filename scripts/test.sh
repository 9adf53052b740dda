#!/usr/bin/env bash
# Set up (if needed, with chromium for the browser tests), then lint, type-check and run
# the whole test suite: unit, integration (real models) and browser tests.
# Extra arguments go to pytest (e.g. -m "not integration and not browser" for the fast ones).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
.venv/bin/ruff check qa tests
.venv/bin/mypy
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
