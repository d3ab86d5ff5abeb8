#!/usr/bin/env bash
# Install safecity and run it on the embedded default (SQLite + SpatiaLite, no server)
# with the real Punjab boundaries and a small generated call history, on
# http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
unset DATABASE_URL
export SAFECITY_JWT_SECRET="${SAFECITY_JWT_SECRET:-demo-secret-change-me}"
mkdir -p .safecity
.venv/bin/safecity jurisdictions build      # stand-in stations + routing index (cached)
.venv/bin/safecity jurisdictions load       # into the embedded database
if [[ ! -f .safecity/demo-calls.parquet ]]; then
  # one month at 1 % of PUCAR-15's volume (about 19,000 calls), routed and timed
  .venv/bin/safecity synth calls --months 1 --seed 2026 --scale 0.01 \
    --out .safecity/demo-calls.parquet --truth .safecity/demo-truth.json
fi
.venv/bin/safecity synth load .safecity/demo-calls.parquet   # skips calls already loaded
.venv/bin/safecity roster load data/roster_sample.csv
# every endpoint needs a token; a map page takes it once in its URL (then from a cookie)
echo "hot spots of the Lahore region, as its RPO: http://127.0.0.1:${PORT:-8000}/maps/hotspots?level=region&code=LHR&token=$(.venv/bin/safecity token --role rpo --scope LHR)"
exec .venv/bin/safecity serve --host 127.0.0.1 --port "${PORT:-8000}"
