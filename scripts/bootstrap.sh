#!/usr/bin/env bash
# Install what safecity needs on a fresh Debian machine, skipping what is already there.
#   scripts/bootstrap.sh           runtime: SpatiaLite, the virtualenv, the package
#   scripts/bootstrap.sh --dev     also PostGIS, Redis, Chromium and the dev tools
# Quiet unless something fails: each step's output goes to .safecity/bootstrap.log and is
# shown only when the step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1
APT_LOCK_WAIT_S=${APT_LOCK_WAIT_S:-300}
mkdir -p .safecity
LOG=.safecity/bootstrap.log
: > "$LOG"

# run a step quietly; on failure print what it said and stop
step() {
  local what=$1; shift
  if ! "$@" >>"$LOG" 2>&1; then
    echo "bootstrap: $what failed; its output:" >&2
    tail -n 60 "$LOG" >&2
    exit 1
  fi
}

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
have_pkg libsqlite3-mod-spatialite || need+=(libsqlite3-mod-spatialite)
if (( DEV )); then
  if command -v pg_config >/dev/null 2>&1 || ls /usr/lib/postgresql >/dev/null 2>&1; then
    pg_major=$(ls /usr/lib/postgresql | sort -n | tail -1)
    have_pkg "postgresql-${pg_major}-postgis-3" || need+=("postgresql-${pg_major}-postgis-3")
  else
    need+=(postgresql postgresql-15-postgis-3)
  fi
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
if (( ${#need[@]} )); then
  echo "bootstrap: installing system packages: ${need[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  # another apt (unattended upgrades, a second shell) holds the lock: apt waits for it,
  # up to APT_LOCK_WAIT_S seconds, instead of failing at once
  apt_wait=(-o "DPkg::Lock::Timeout=${APT_LOCK_WAIT_S}")
  step "apt-get update" $SUDO apt-get "${apt_wait[@]}" update -qq
  step "apt-get install ${need[*]}" env DEBIAN_FRONTEND=noninteractive \
    $SUDO apt-get "${apt_wait[@]}" install -y -qq "${need[@]}"
fi

PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || step "creating .venv" "$PY" -m venv .venv
stamp=".venv/.safecity-installed-$(( DEV ))"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  echo "bootstrap: installing Python packages into .venv (a few minutes the first time)" >&2
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_WARN_SCRIPT_LOCATION=1
  step "pip upgrade" .venv/bin/python -m pip install -q --upgrade pip
  # --no-compile: pip would byte-compile every file of every package (the service's
  # install took 43 s with it, 20 s without, measured here); Python compiles what is
  # imported, once, when it is first imported
  if (( DEV )); then
    step "pip install -e .[dev]" .venv/bin/python -m pip install -q --no-compile -e ".[dev]"
  else
    step "pip install -e ." .venv/bin/python -m pip install -q --no-compile -e .
  fi
  touch "$stamp"
fi
