#!/usr/bin/env bash
# The second command: install what the tests need and run the whole suite, including the
# production configuration (PostgreSQL and Redis on 127.0.0.1) when those servers run here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --dev
scripts/ensure-services.sh || echo "note: PostgreSQL/Redis not available; their tests will be skipped"
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
