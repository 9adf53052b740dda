#!/usr/bin/env bash
# Build and install llama-cpp-python for this CPU without llama.cpp's AMX kernels.
#
# llama.cpp's AMX matrix-multiply path segfaults on Q4_K weights (upstream llama.cpp
# issue #20824), and a native build on an Intel CPU with AMX compiles it in. We keep the
# native build (AVX2/AVX-512 and the fast repacked CPU path) and compile AMX out with
# -mno-amx-*; GCC applies explicit -mno-* flags whatever -march=native says.
#
# The wheel is keyed on the version, the build flags and the CPU (a native build is only
# good for the CPU it was compiled on), kept under ~/.cache/qa/wheels/<key>/, and built
# with pip's wheel cache off, so a wheel built with other flags is never reused silently.
# After installing, the library's own system info is read back: AMX must be absent.
#   scripts/build_llama.sh PYTHON      (the virtualenv's python)
set -euo pipefail
PY=${1:?usage: scripts/build_llama.sh PYTHON}
VERSION=0.3.36
NO_AMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
CMAKE_ARGS_QA="-DGGML_NATIVE=ON"
cpu_id=$({ grep -m1 '^model name' /proc/cpuinfo || true; grep -m1 '^flags' /proc/cpuinfo || true; } | sha256sum | cut -c1-16)
key=$(printf '%s|%s|%s|%s' "$VERSION" "$NO_AMX" "$CMAKE_ARGS_QA" "$cpu_id" | sha256sum | cut -c1-16)
stamp=.venv/qa-llama-build.txt
cache=${QA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qa/wheels}/llama-cpp-python-$key

installed=$($PY -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null || true)
if [ "$installed" = "$VERSION" ] && [ -f "$stamp" ] && grep -qx "key=$key" "$stamp"; then
  echo "llama-cpp-python $VERSION already built for this CPU without AMX (build $key)"
  exit 0
fi
if ! ls "$cache"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "compiling llama-cpp-python $VERSION for this CPU, AMX kernels off (about 6 minutes on 2 cores)"
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
  CFLAGS="$NO_AMX" CXXFLAGS="$NO_AMX" CMAKE_ARGS="$CMAKE_ARGS_QA" \
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    $PY -m pip wheel -q --no-cache-dir --no-deps --no-binary llama-cpp-python \
      "llama-cpp-python==$VERSION" -w "$cache.tmp"
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
$PY -m pip install -q --force-reinstall --no-deps "$cache"/llama_cpp_python-"$VERSION"-*.whl
# Its small pure-Python dependencies (the rest of the stack comes with the qa package).
$PY -m pip install -q "diskcache>=5.6.1" "typing-extensions>=4.5.0" "numpy>=1.20.0" "jinja2>=2.11.3"
info=$($PY -c 'import llama_cpp; print(llama_cpp.llama_print_system_info().decode())')
if printf '%s' "$info" | grep -Eq 'AMX[A-Z_0-9]* = 1'; then
  echo "error: the llama-cpp-python build still has AMX kernels: $info" >&2
  echo "Delete $cache and run scripts/setup.sh again." >&2
  exit 1
fi
printf 'key=%s\nversion=%s\ncflags=%s\ncmake_args=%s\nsystem_info=%s\n' \
  "$key" "$VERSION" "$NO_AMX" "$CMAKE_ARGS_QA" "$info" > "$stamp"
echo "llama-cpp-python $VERSION installed without AMX (build $key): $info"
