#!/usr/bin/env bash
# The second command: install what the tests need and run the whole suite, including the
# production configuration (PostgreSQL and Redis on 127.0.0.1) when those servers run here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --dev
# llama.cpp's server, for the batched backend's tests (cached: seconds after the first build).
scripts/build-llama-server.sh >/dev/null
# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download cannot work on these machines): install it when it is missing.
if ! command -v chromium >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
    elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
    else
        echo "note: chromium is missing and apt-get is not usable; the browser tests will fail" >&2
    fi
fi
scripts/ensure-services.sh || echo "note: PostgreSQL/Redis not available; their tests will be skipped"
# The static checks first: style, formatting and types of the product packages.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy assistant retrieval safety training web
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when no test was collected: that is a failure of the suite, not a pass.
if [[ $status -eq 5 ]]; then
    echo "no tests were collected" >&2
    exit 1
fi
exit $status
