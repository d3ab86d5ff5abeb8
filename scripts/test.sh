#!/usr/bin/env bash
# Install everything (system packages included) and run the whole test suite:
# lint, types, unit and integration tests against real PostGIS and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh --dev

# PostgreSQL with PostGIS on 127.0.0.1:5432 (the machine's own server)
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "test: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -n | tail -1)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
# Redis on 127.0.0.1:6379 (real-time fan-out tests)
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "test: starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/safecity-test.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

.venv/bin/ruff check .
.venv/bin/mypy
# derived data (stand-in stations, routing index) is built once and cached outside git
.venv/bin/safecity jurisdictions build
# two processes (this machine's two cores), a test file's tests in one of them (its module
# fixtures: a server, a browser, a database are built once); each has its own session
# database. SAFECITY_TEST_WORKERS=0 runs everything in this process (a debugger, -x).
.venv/bin/python -m pytest -n "${SAFECITY_TEST_WORKERS:-2}" --dist loadfile "$@"
