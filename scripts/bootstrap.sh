#!/usr/bin/env bash
# Install what safecity needs on a fresh Debian machine, skipping what is already there.
#   scripts/bootstrap.sh           runtime: SpatiaLite, the virtualenv, the package
#   scripts/bootstrap.sh --dev     also PostGIS, Redis, Chromium and the dev tools
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1

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
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
stamp=".venv/.safecity-installed-$(( DEV ))"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
  echo "bootstrap: installing Python packages into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  if (( DEV )); then
    .venv/bin/python -m pip install -q -e ".[dev]"
  else
    .venv/bin/python -m pip install -q -e .
  fi
  touch "$stamp"
fi
