"""Helpers for the call-service tests: real uvicorn processes on loopback, real tokens.

Not a fixture module: each test module starts what it needs through these functions,
against the session's PostGIS database (``loaded_postgis``) and the machine's Redis.
"""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from api.auth import mint_token
from bench._common import (
    Server,
    free_port,  # noqa: F401  (re-exported for the test modules)
    start_uvicorn,
)

SECRET = "safecity-test-secret-0123456789-abcdefghij"
REDIS_URL = os.environ.get("SAFECITY_TEST_REDIS", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[1]

# areas of the stand-in Punjab set used across tests (Lahore and Attock)
LAHORE_STATION = "PK61701-007"
LAHORE_POINT = (31.5204, 74.3587)  # inside LAHORE_STATION
LAHORE_PATH = {"station": "PK61701-007", "tehsil": "PK61701", "district": "PK617",
               "region": "LHR", "province": "PK6"}
ATTOCK_POINT = (33.7667, 72.3600)  # Attock city, district PK601, region RWP


def start_server(database_url: str | None, *, redis_url: str | None = None,
                 extra_env: dict[str, str] | None = None, timeout_s: float = 180.0) -> Server:
    """The call service (``api.app:app_factory``) on a free loopback port, once ready.

    ``database_url`` ``None`` runs on the embedded SQLite file (``SAFECITY_SQLITE_PATH``
    in ``extra_env``); without ``redis_url`` the channels are in memory.
    """
    env: dict[str, str | None] = {"SAFECITY_JWT_SECRET": SECRET, "DATABASE_URL": database_url,
                                  "REDIS_URL": redis_url or None, **(extra_env or {})}
    return start_uvicorn("api.app:app_factory", env=env, timeout_s=timeout_s)


def token(role: str, scope: str = "PK6", level: str | None = None) -> str:
    """A bearer token; the level defaults from the code's shape in the stand-in set."""
    return mint_token(SECRET, role, scope, level or level_of(scope), subject=f"test-{role}")


def headers(role: str, scope: str = "PK6", level: str | None = None, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, scope, level)}", **extra}


def level_of(code: str) -> str:
    """Level of a code of the stand-in Punjab set (PK6, LHR, PK617, PK61701, PK61701-007)."""
    if code == "PK6":
        return "province"
    if "-" in code:
        return "station"
    if code.isalpha():
        return "region"
    return "district" if len(code) == 5 else "tehsil"


_slots = itertools.count()
_BASE = datetime(2025, 1, 1, tzinfo=UTC)


def fresh_time() -> datetime:
    """A received_at no other test uses (days apart), so duplicates never link across tests."""
    return _BASE + timedelta(days=next(_slots) * 2, hours=os.getpid() % 24)


_keys = itertools.count()


def new_key(prefix: str = "t") -> str:
    return f"{prefix}-{os.getpid()}-{time.time_ns()}-{next(_keys)}"


def post_call(client: httpx.Client, body: dict[str, Any], *, key: str | None = None,
              role: str = "call_taker", scope: str = "PK6") -> httpx.Response:
    return client.post("/api/v1/calls", json=body,
                       headers=headers(role, scope, **{"Idempotency-Key": key or new_key()}))


def call_body(lat: float, lon: float, category: str = "other_crime", *,
              at: datetime | None = None, **extra: Any) -> dict[str, Any]:
    return {"lat": lat, "lon": lon, "category": category,
            "received_at": (at or fresh_time()).isoformat(), **extra}
