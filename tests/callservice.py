"""Helpers for the call-service tests: the service in this process (Litestar's test
client) or in real uvicorn processes on loopback, and real tokens.

Not a fixture module: each test module starts what it needs through these functions,
against the session's PostGIS database (``loaded_postgis``) and the machine's Redis.
Most tests run the app in this process (:class:`ServiceClient`); the ones about several
processes, a server going away, or a browser start uvicorn (:func:`start_server`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from api.app import create_app
from api.auth import mint_token
from api.container import Container
from api.settings import DatabaseSettings, Settings
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


def service_settings(database_url: str | None, *, sqlite_path: Path | None = None,
                     redis_url: str | None = None, **groups: Any) -> Settings:
    """The settings :func:`start_server` gives a server through its environment, for an app
    in this process (``groups``: other setting groups, such as ``alerts``)."""
    database = (DatabaseSettings(url=database_url) if sqlite_path is None
                else DatabaseSettings(sqlite_path=sqlite_path))
    return Settings(database=database, jwt_secret=SECRET, redis_url=redis_url, **groups)


class ServiceClient(TestClient[Litestar]):
    """The service in this process on ``container``'s parts, which the tests may reach (its
    engine, its clock); entering the client starts the app, leaving it stops the app."""

    def __init__(self, container: Container) -> None:
        super().__init__(create_app(container), base_url="http://127.0.0.1", timeout=60)
        self.container = container

    def stream_status(self, path: str, headers: Mapping[str, str]) -> int:
        """The status of ``GET path`` when the answer may never end (an SSE feed; the test
        client would wait for its end): the app is called on its own loop and left, as a
        client that goes away, once it has started answering."""
        async def status() -> int:
            answered: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            asked = False

            async def receive() -> dict[str, Any]:
                nonlocal asked
                if not asked:
                    asked = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                await answered
                return {"type": "http.disconnect"}

            async def send(message: Mapping[str, Any]) -> None:
                if message["type"] == "http.response.start" and not answered.done():
                    answered.set_result(int(message["status"]))

            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                     "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                     "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
                     "server": ("127.0.0.1", 80),
                     "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
            call = asyncio.ensure_future(self.app(scope, receive, send))
            try:
                return await asyncio.wait_for(asyncio.shield(answered), 60)
            finally:
                await asyncio.wait_for(call, 60)

        return self.blocking_portal.call(status)


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
