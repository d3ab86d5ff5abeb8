"""Shared fixtures: real PostGIS (a throw-away database per test session), real data.

PostGIS runs on the machine's PostgreSQL (``SAFECITY_TEST_PG``, default
``postgresql://postgres@127.0.0.1:5432/postgres``); the test command installs the
extension when missing. Nothing here mocks a database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

ADMIN_URL = os.environ.get("SAFECITY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def scratch_postgis(prefix: str) -> Iterator[str]:
    """A new database with PostGIS on the local server, dropped afterwards.

    Fails (never skips) when the server or the extension is missing.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True)
    except psycopg.OperationalError as exc:  # a clear failure, never a skip
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            except psycopg.Error as exc:
                pytest.fail(f"PostGIS is not installed on this server ({exc}); "
                            "run scripts/test.sh, which installs it")
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgis_url() -> Iterator[str]:
    """URL of a fresh database with PostGIS, dropped when the session ends."""
    with scratch_postgis("safecity_test") as url:
        yield url


@pytest.fixture(scope="session")
def punjab_set():  # type: ignore[no-untyped-def]
    """The shipped Punjab boundary set with its stand-in stations (cached build)."""
    from jurisdictions.catalog import punjab_boundary_set

    return punjab_boundary_set()


@pytest.fixture(scope="session")
def punjab_router(punjab_set):  # type: ignore[no-untyped-def]
    """A router compiled from the shipped set (cached on disk by version)."""
    from jurisdictions.catalog import load_index
    from jurisdictions.router import Router

    return Router(load_index(punjab_set))


def load_jurisdictions(url: str) -> str:
    """Run ``safecity jurisdictions load`` (the real CLI) into the database at ``url``."""
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-m", "api.cli", "jurisdictions", "load"],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"safecity jurisdictions load failed:\n{done.stdout}\n{done.stderr}")
    return url


@pytest.fixture(scope="session")
def loaded_postgis(postgis_url: str) -> str:
    """The session PostGIS database after ``safecity jurisdictions load``."""
    return load_jurisdictions(postgis_url)


@pytest.fixture
def fresh_postgis_url() -> Iterator[str]:
    """URL of a new, empty database with PostGIS for one test (dropped after it).

    For tests that migrate, write and supersede sets without disturbing the session
    database others read.
    """
    with scratch_postgis("safecity_fresh") as url:
        yield url


@pytest.fixture(scope="module")
def client(loaded_postgis: str):  # type: ignore[no-untyped-def]
    """The call service in this process on PostGIS (Litestar's test client, no uvicorn),
    one per test module; modules that need another database override it."""
    from api.container import Container
    from tests.callservice import ServiceClient, service_settings

    with ServiceClient(Container(service_settings(loaded_postgis))) as started:
        yield started


@pytest.fixture(scope="module")
def server(loaded_postgis: str):  # type: ignore[no-untyped-def]
    """The call service in its own uvicorn process on PostGIS, one per test module, for
    what needs a real server: endless streams, a fuzzer or a browser over HTTP."""
    from tests.callservice import start_server

    started = start_server(loaded_postgis)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def history_postgis() -> Iterator[str]:
    """A database holding the boundaries and only the analytics tests' small generated
    history (three months of 2024), for tests that read "the last complete week" of the
    store: calls that other tests post today into the session database would move it."""
    from tests.test_analytics_api import load_small_history

    with scratch_postgis("safecity_history") as url:
        load_jurisdictions(url)
        load_small_history(url)
        yield url
