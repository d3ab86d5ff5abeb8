"""Signing tokens without the application: the signing secret, the claims, the scope lookup.

``safecity token`` runs in a new shell, often many times in a row (one per demo role), so
this module imports only the JWT library and the standard library: no Litestar, no
geopandas, no boundary set. The service (``api.auth``) uses the same claims rules and the
same secret, so a token printed here is accepted there.

The secret is ``SAFECITY_JWT_SECRET`` when set; otherwise a random one kept in a local file
(``SAFECITY_JWT_SECRET_FILE``, default ``.safecity/jwt-secret``, mode 0600, outside git),
created once by whichever of the service or the CLI needs it first.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import time
import uuid
from pathlib import Path

import jwt

from jurisdictions.limits import PROVINCE_CODE

ROLES = ("call_taker", "sho", "dpo", "cpo", "rpo", "ig", "planner", "admin")
SCOPE_LEVELS = ("station", "tehsil", "district", "region", "province")
"""Area levels, fine to coarse; a scope at one level covers everything beneath it."""

ROLE_LEVEL: dict[str, str] = {
    "sho": "station", "dpo": "district", "cpo": "district", "rpo": "region", "ig": "province",
}
"""Roles bound to one command level; the others (call takers, planners, admins) take any."""

ALGORITHM = "HS256"
ISSUER = "safecity"
DEFAULT_TTL_S = 12 * 3600
MAX_TTL_S = 30 * 24 * 3600
"""The longest a token may live (``safecity token --ttl-hours`` allows 30 days)."""
_SCOPE_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SECRET_BYTES = 48
"""Random bytes of a generated secret (64 URL-safe characters, above HS256's 32-byte minimum)."""

_AREA_TABLES = {"station": "stations", "tehsil": "tehsils", "district": "districts",
                "region": "regions", "province": "provinces"}
_LEVEL_QUERY = " UNION ALL ".join(f"SELECT '{level}' FROM {table} WHERE code = {{p}}"
                                  for level, table in _AREA_TABLES.items())
"""One level per current table holding the code (codes are unique across levels)."""


class SecretFileError(RuntimeError):
    """The local secret file cannot be created or read."""


def check_claims(role: str, level: str, scope: str | None = None) -> None:
    """Refuse unknown roles and levels, a command role scoped at another level, a scope
    that is no area code, and a province level on any code but the province's (the
    province level covers everything)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if level not in SCOPE_LEVELS:
        raise ValueError(f"unknown scope level {level!r}; levels are {', '.join(SCOPE_LEVELS)}")
    expected = ROLE_LEVEL.get(role)
    if expected is not None and level != expected:
        raise ValueError(f"a {role} scope must be a {expected}, not a {level}")
    if scope is not None and not _SCOPE_CODE.match(scope):
        raise ValueError("a scope is an area code (letters, digits, '_', '.', '-')")
    if level == "province" and scope is not None and scope != PROVINCE_CODE:
        raise ValueError(f"a province scope is {PROVINCE_CODE}, not {scope!r}")


def mint_token(secret: str, role: str, scope: str, level: str, *, subject: str | None = None,
               ttl_s: int = DEFAULT_TTL_S, now: float | None = None) -> str:
    """A signed token; the claims are checked here as they are on decoding."""
    check_claims(role, level, scope)
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"a token lives at most {MAX_TTL_S // 3600} hours")
    issued = int(now if now is not None else time.time())
    claims = {"sub": subject or f"{role}:{scope}:{uuid.uuid4().hex[:8]}", "role": role,
              "scope": scope, "lvl": level, "iss": ISSUER, "iat": issued, "exp": issued + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def signing_secret(env_secret: str | None, secret_file: Path) -> str:
    """``env_secret`` when given, else the local file's secret (created once, mode 0600).

    Creation is exclusive (``O_EXCL``), so a service and a CLI starting together end up with
    the same secret: the loser of the race reads the winner's file.
    """
    if env_secret:
        return env_secret
    try:
        secret_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SecretFileError(f"cannot create the folder of the JWT secret file {secret_file}: "
                              f"{exc}; set SAFECITY_JWT_SECRET instead") from exc
    try:
        descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(secret_file)
    except OSError as exc:
        raise SecretFileError(f"cannot create the JWT secret file {secret_file}: {exc}; "
                              "set SAFECITY_JWT_SECRET instead") from exc
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(secrets.token_urlsafe(SECRET_BYTES) + "\n")
    return _read_secret(secret_file)


def _read_secret(secret_file: Path) -> str:
    for _ in range(50):  # a writer that just created the file may not have written it yet
        try:
            value = secret_file.read_text(encoding="ascii").strip()
        except OSError as exc:
            raise SecretFileError(f"cannot read the JWT secret file {secret_file}: {exc}; "
                                  "set SAFECITY_JWT_SECRET instead") from exc
        if value:
            return value
        time.sleep(0.02)
    raise SecretFileError(f"the JWT secret file {secret_file} is empty; delete it or set "
                          "SAFECITY_JWT_SECRET")


def stored_area_level(code: str, database_url: str | None, sqlite_path: Path) -> str | None:
    """The level of the area ``code`` in the database's current boundary set, read with one
    plain query (no ORM, no geometry).

    ``None`` when no current table holds it. Raises :class:`LookupError` when the database
    holds no boundary set at all (the caller then falls back to the shipped set).
    """
    if database_url:
        return _postgres_level(code, database_url)
    if not sqlite_path.is_file():
        raise LookupError(f"no embedded database at {sqlite_path}")
    try:
        with sqlite3.connect(f"{sqlite_path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            if conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'provinces'"
                            ).fetchone() == (0,) or not conn.execute(
                                "SELECT 1 FROM provinces LIMIT 1").fetchone():
                raise LookupError("the embedded database holds no boundary set")
            row = conn.execute(_LEVEL_QUERY.format(p="?"), [code] * len(_AREA_TABLES)).fetchone()
    except sqlite3.Error as exc:
        raise LookupError(f"cannot read the embedded database: {exc}") from exc
    return str(row[0]) if row else None


def _postgres_level(code: str, database_url: str) -> str | None:
    import psycopg  # noqa: PLC0415 - only with DATABASE_URL

    scheme, sep, rest = database_url.partition("://")
    conninfo = scheme.split("+", 1)[0] + sep + rest  # a driver suffix means nothing to libpq
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        if conn.execute("SELECT to_regclass('provinces') IS NOT NULL").fetchone() != (True,) or \
                not conn.execute("SELECT 1 FROM provinces LIMIT 1").fetchone():
            raise LookupError("the database holds no boundary set")
        row = conn.execute(_LEVEL_QUERY.format(p="%s"), [code] * len(_AREA_TABLES)).fetchone()
    return str(row[0]) if row else None
