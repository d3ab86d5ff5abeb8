#!/usr/bin/env bash
# Install safecity and run it on the embedded default (SQLite + SpatiaLite, no server)
# with the real Punjab boundaries, on http://127.0.0.1:8000, in a world that is NOW:
#   - six months of generated calls ending this minute (regenerated, and the embedded
#     database rebuilt, when the last history is more than an hour old);
#   - a stand-in roster for every station with shifts around now (regenerated each run);
#   - recent calls left open and unacknowledged, so alerts are live from the start, and a
#     steady trickle of new calls through the API (`--no-live` turns the trickle off);
#   - a ready-to-use token per role, signed with the local secret .safecity/jwt-secret
#     (created once, mode 0600), which `safecity token` also uses from any shell.
# Options: --no-live (no trickle of new calls); DEMO_MONTHS, DEMO_SCALE, PORT override.
set -euo pipefail
cd "$(dirname "$0")/.."

LIVE=1
for arg in "$@"; do
  case $arg in
    --no-live) LIVE=0 ;;
    *) echo "demo.sh: unknown option $arg (only --no-live)" >&2; exit 2 ;;
  esac
done
PORT=${PORT:-8000}
MONTHS=${DEMO_MONTHS:-6}
SCALE=${DEMO_SCALE:-0.004}   # 0.4 % of PUCAR-15's volume: about 45,000 calls in six months

bash scripts/bootstrap.sh
unset DATABASE_URL SAFECITY_SQLITE_PATH
mkdir -p .safecity
SC=.venv/bin/safecity
HISTORY=.safecity/demo-calls.parquet

$SC jurisdictions build      # stand-in stations + routing index (cached)
# the history ends now: made again (and the demo database with it) once it is an hour old
if [[ -z "$(find "$HISTORY" -mmin -60 2>/dev/null)" ]]; then
  rm -f .safecity/safecity.sqlite .safecity/safecity.sqlite-wal .safecity/safecity.sqlite-shm
  $SC synth calls --months "$MONTHS" --seed 2026 --scale "$SCALE" --end now \
    --out "$HISTORY" --truth .safecity/demo-truth.json
fi
$SC jurisdictions load       # into the embedded database (nothing to do when loaded)
$SC synth load "$HISTORY"    # skips calls already loaded
$SC roster generate --out .safecity/demo-roster.csv   # every station, shifts around now
# every endpoint needs a token; a map page takes it once in its URL (then from a cookie)
echo "hot spots of the Lahore region, as its RPO: http://127.0.0.1:${PORT}/maps/hotspots?level=region&code=LHR&token=$($SC token --role rpo --scope LHR)"
exec $SC serve --host 127.0.0.1 --port "$PORT"
