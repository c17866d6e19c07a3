#!/usr/bin/env bash
# Build llama.cpp's own HTTP server (`llama-server`) for the batched serving mode
# (llm.backend=batched) and print the binary's path on the last line of stdout.
#
# The source is the llama.cpp that the llama-cpp-python sdist vendors, at the version
# scripts/install.sh builds, so the server and the in-process library decode alike. Nothing
# of it is kept in this repository. The binary is cached under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/domain-assistant/llama-server/<key>/llama-server
# keyed by version, flags, CMAKE_ARGS and machine: a second run takes well under a second.
#   scripts/build-llama-server.sh            build if needed, print the path
#   CMAKE_ARGS="-DGGML_CUDA=on" scripts/build-llama-server.sh   a CUDA build (another key)
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_VERSION="0.3.36"  # keep in step with scripts/install.sh
# AMX off on x86_64, as in install.sh: llama.cpp's AMX kernels crash at the first token on
# Sapphire Rapids VMs (llama.cpp issue 20824). -mno-amx-* wins over -march=native.
cflags=""
[[ "$(uname -m)" == "x86_64" ]] && cflags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
key="$(printf '%s|%s|%s|%s|%s' "$LLAMA_CPP_VERSION" "$cflags" "${CMAKE_ARGS:-}" "$(uname -m)" \
    "$(grep -m1 -o 'model name.*' /proc/cpuinfo 2>/dev/null || true)" | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/domain-assistant/llama-server/${key}"
if [[ -x "${cache}/llama-server" ]]; then
    echo "${cache}/llama-server"
    exit 0
fi

python_bin="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] && python_bin=".venv/bin/python"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "Building llama-server ${LLAMA_CPP_VERSION} (compiles llama.cpp: 5-15 minutes)..." >&2
"$python_bin" -m pip download --quiet --no-deps --no-binary :all: \
    "llama-cpp-python==${LLAMA_CPP_VERSION}" -d "$work" >&2
tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
src="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"

# Static libraries: one self-contained file to cache. No web UI (its assets would be
# downloaded), no OpenSSL, no tests or examples: only what the server needs.
# shellcheck disable=SC2086  # CMAKE_ARGS holds several flags on purpose
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_OPENSSL=OFF -DCMAKE_C_FLAGS="$cflags ${CFLAGS:-}" \
    -DCMAKE_CXX_FLAGS="$cflags ${CXXFLAGS:-}" ${CMAKE_ARGS:-} >&2
cmake --build "$work/build" --target llama-server --parallel "$(nproc)" >&2

mkdir -p "${cache}.tmp"
install -m 0755 "$work/build/bin/llama-server" "${cache}.tmp/llama-server"
rm -rf "$cache" && mv "${cache}.tmp" "$cache"
echo "${cache}/llama-server"
