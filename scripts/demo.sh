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
# web sign-in accounts per role (the dashboard, the SHO console, the planner pages), one
# password for all, made once and kept in .safecity/demo-password (0600)
PASSFILE=.safecity/demo-password
if [[ ! -s "$PASSFILE" ]]; then
  (umask 077; .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(12))" > "$PASSFILE")
fi
DEMO_PASSWORD=$(cat "$PASSFILE")
EXISTING=$($SC users list | cut -f1)
while read -r user role scope; do
  grep -qx "$user" <<<"$EXISTING" || \
    $SC users add "$user" --role "$role" --scope "$scope" --password-stdin <<<"$DEMO_PASSWORD" >/dev/null
done <<'ACCOUNTS'
demo-rpo rpo LHR
demo-cpo cpo PK617
demo-sho sho PK61701-007
demo-planner planner PK6
demo-ig ig PK6
ACCOUNTS
# ready-to-use tokens, one per role (12 h; `safecity token` makes more from any shell)
BASE="http://127.0.0.1:${PORT}"
TOKENS=.safecity/demo-tokens.env
{
  echo "# demo tokens of $(date -u +%FT%TZ); source this file, then: curl -H \"Authorization: Bearer \$RPO_TOKEN\" ..."
  echo "CALL_TAKER_TOKEN=$($SC token --role call_taker --scope PK6 --subject demo-call-taker)"
  echo "SHO_TOKEN=$($SC token --role sho --scope PK61701-007 --subject demo-sho)"
  echo "DPO_TOKEN=$($SC token --role dpo --scope PK601 --subject demo-dpo)"
  echo "CPO_TOKEN=$($SC token --role cpo --scope PK617 --subject demo-cpo)"
  echo "RPO_TOKEN=$($SC token --role rpo --scope LHR --subject demo-rpo)"
  echo "PLANNER_TOKEN=$($SC token --role planner --scope PK6 --subject demo-planner)"
  echo "ADMIN_TOKEN=$($SC token --role admin --scope PK6 --subject demo-admin)"
} > "$TOKENS"
chmod 600 "$TOKENS"
# shellcheck disable=SC1090
source "$TOKENS"
cat <<TEXT

safecity demo on $BASE: history to $(.venv/bin/python -c "import json; print(json.load(open('.safecity/demo-truth.json'))['end_utc'])"), every station staffed
Sign in at $BASE/login (password: $DEMO_PASSWORD, kept in $PASSFILE) as
  demo-rpo (Lahore region), demo-cpo (Lahore city), demo-sho (station PK61701-007, the SHO
  console), demo-planner (Safe City plans) or demo-ig (all Punjab).
Tokens per role are in $TOKENS (source it). From any shell, 'safecity token' makes more:
  .venv/bin/safecity token --role rpo --scope LHR
  call taker (Punjab)        $CALL_TAKER_TOKEN
  SHO (station PK61701-007)  $SHO_TOKEN
  DPO (district Attock)      $DPO_TOKEN
  CPO (Lahore city)          $CPO_TOKEN
  RPO (Lahore region)        $RPO_TOKEN
  planner (Punjab)           $PLANNER_TOKEN
  admin                      $ADMIN_TOKEN
Try:
  curl -H "Authorization: Bearer \$RPO_TOKEN" "$BASE/api/v1/stats/response?level=region&code=LHR"
  hot spots of the Lahore region, as its RPO (a map page takes the token once in its URL):
  $BASE/maps/hotspots?level=region&code=LHR&token=$RPO_TOKEN
TEXT
if (( LIVE )); then
  # recent open calls first (alerts from the start), then a new call every ~10 s, until the
  # service stops (the service keeps this script's process id through exec)
  SAFECITY_TOKEN="$ADMIN_TOKEN" $SC synth live --url "$BASE" --calls "$HISTORY" --while-pid $$ \
    > .safecity/demo-live.log 2>&1 &
  echo "live calls: on (a new call every ~10 s; log .safecity/demo-live.log; --no-live turns it off)"
fi
exec $SC serve --host 127.0.0.1 --port "$PORT"
