#!/usr/bin/env bash
# The first command: install, create the database, ingest the default corpus once, and start
# the web server, the worker and the scheduler on the embedded defaults. Arguments go to
# `assistant serve` (for example --host 0.0.0.0 --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
# The batched backend runs llama.cpp's server: build it once (cached) when it is chosen.
if [[ "${ASSISTANT_LLM__BACKEND:-}" == "batched" && -z "${ASSISTANT_LLM__SERVER_BINARY:-}" ]]; then
    scripts/build-llama-server.sh >/dev/null
fi
exec .venv/bin/assistant serve "$@"
