#!/usr/bin/env bash
# The several-machines deployment on this machine, one network namespace per host
# (deploy/topology.py says what runs where and why). Needs root.
#   scripts/topology.sh up [--set ASSISTANT_X=Y ...]   # takes an old one down first
#   scripts/topology.sh status
#   scripts/topology.sh down                            # idempotent, also after a crash
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
if [[ $# -eq 0 ]]; then
    set -- status
fi
case $1 in
    up | down | status) ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
exec "$python" -m deploy.topology "$@"
