#!/usr/bin/env bash
# Install safecity and run it on the embedded default (SQLite + SpatiaLite, no server)
# with the real Punjab boundaries, on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
unset DATABASE_URL
.venv/bin/safecity jurisdictions build      # stand-in stations + routing index (cached)
.venv/bin/safecity jurisdictions load       # into the embedded database
exec .venv/bin/safecity serve --host 127.0.0.1 --port "${PORT:-8000}"
