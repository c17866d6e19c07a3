#!/usr/bin/env bash
# The second command: install what the tests need and run the whole suite, including the
# production configuration (PostgreSQL and Redis on 127.0.0.1) when those servers run here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --dev
# llama.cpp's server, for the batched backend's and the model server's tests (cached:
# seconds after the first build).
scripts/build-llama-server.sh >/dev/null
# Debian packages the tests use, installed when missing:
# - the browser tests drive Debian's Chromium through Playwright (Playwright's own browser
#   download cannot work on these machines);
# - the deployment tests (tests/deploy) run HAProxy and OpenSSH's sshd as real hosts.
apt_install() {
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
    elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
    else
        echo "note: $* missing and apt-get is not usable; their tests will fail or be skipped" >&2
    fi
}
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}"
fi
scripts/ensure-services.sh || echo "note: PostgreSQL/Redis not available; their tests will be skipped"
# The static checks first: style, formatting and types of the product packages.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy assistant retrieval safety training web deploy
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
