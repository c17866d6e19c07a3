#!/usr/bin/env bash
# Start the local PostgreSQL and Redis used by the production-configuration tests, if they
# are installed here but stopped. The embedded defaults never need them.
set -uo pipefail
ok=0
if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    if command -v redis-server >/dev/null; then
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
            --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || ok=1
    fi
fi
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || ok=1
        for _ in $(seq 20); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
    fi
fi
exit $ok
