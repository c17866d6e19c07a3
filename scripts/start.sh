#!/usr/bin/env bash
# The first command: install, create the database, ingest the default corpus once, and start
# the web server, the worker and the scheduler on the embedded defaults. Arguments go to
# `assistant serve` (for example --host 0.0.0.0 --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/assistant serve "$@"
