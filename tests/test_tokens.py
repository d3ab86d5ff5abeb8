"""Tokens from a new shell: the local signing secret shared by the service and
``safecity token``, and a token command that does not load the application."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from api.container import Container
from api.settings import DatabaseSettings, Settings
from api.tokens import SecretFileError, signing_secret, stored_area_level
from tests.callservice import LAHORE_STATION, ROOT, ServiceClient


def test_the_local_secret_is_made_once_private_and_the_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "jwt-secret"
    first = signing_secret(None, path)
    assert len(first) >= 43  # at least 32 random bytes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_secret(None, path) == first == signing_secret("", path)
    assert signing_secret("from-the-environment", path) == "from-the-environment"
    assert signing_secret(None, tmp_path / "other") != first  # random, not a constant
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    with pytest.raises(SecretFileError, match="SAFECITY_JWT_SECRET"):
        signing_secret(None, blocked / "jwt-secret")


def test_scope_levels_come_from_the_current_tables_of_the_embedded_file(tmp_path: Path) -> None:
    path = tmp_path / "safecity.sqlite"
    with pytest.raises(LookupError):
        stored_area_level("LHR", None, path)  # no file at all
    with sqlite3.connect(path) as conn:
        for table in ("provinces", "regions", "districts", "tehsils", "stations"):
            conn.execute(f"CREATE TABLE {table} (code TEXT PRIMARY KEY)")
    with pytest.raises(LookupError, match="no boundary set"):
        stored_area_level("LHR", None, path)  # schema, but never loaded
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO provinces VALUES (?)", [("PK6",)])
        conn.executemany("INSERT INTO regions VALUES (?)", [("LHR",)])
        conn.executemany("INSERT INTO stations VALUES (?)", [(LAHORE_STATION,)])
    assert stored_area_level("LHR", None, path) == "region"
    assert stored_area_level(LAHORE_STATION, None, path) == "station"
    assert stored_area_level("PK6", None, path) == "province"
    assert stored_area_level("NOWHERE", None, path) is None


def _new_shell(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m api.cli`` with only what a new login shell would have, plus ``env``."""
    base = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
            "SAFECITY_CACHE_DIR": os.environ.get("SAFECITY_CACHE_DIR", ""),
            "SAFECITY_DATA_DIR": os.environ.get("SAFECITY_DATA_DIR", "")}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.integration
def test_a_token_from_a_new_shell_is_accepted_by_the_service(loaded_postgis: str,
                                                             tmp_path: Path) -> None:
    secret_file = tmp_path / "jwt-secret"
    env = {"DATABASE_URL": loaded_postgis, "SAFECITY_JWT_SECRET_FILE": str(secret_file)}
    made = _new_shell("-X", "importtime", "-m", "api.cli", "token", "--role", "rpo",
                      "--scope", "LHR", **env)
    assert made.returncode == 0, made.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0]
                for line in made.stderr.splitlines() if line.startswith("import time:")}
    assert {"litestar", "geopandas", "shapely", "sqlalchemy", "numpy"}.isdisjoint(imported), \
        sorted(imported & {"litestar", "geopandas", "shapely", "sqlalchemy", "numpy"})
    token = made.stdout.strip()
    assert jwt.decode(token, secret_file.read_text().strip(), algorithms=["HS256"])["lvl"] == "region"
    assert _new_shell("-m", "api.cli", "token", "--role", "rpo", "--scope", "PK617",
                      **env).returncode == 2  # a district is no region

    settings = Settings(database=DatabaseSettings(url=loaded_postgis), jwt_secret=None,
                        jwt_secret_file=secret_file)
    with ServiceClient(Container(settings)) as client:
        answer = client.get("/api/v1/calls", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        forged = jwt.encode({**jwt.decode(token, options={"verify_signature": False})},
                            "another-secret-of-at-least-32-bytes!!", algorithm="HS256")
        assert client.get("/api/v1/calls",
                          headers={"Authorization": f"Bearer {forged}"}).status_code == 401


@pytest.mark.slow
def test_a_fresh_embedded_load_exits_cleanly_now_that_settings_are_light(tmp_path: Path) -> None:
    """Settings no longer import the router (numpy, shapely, pyproj), so SpatiaLite could
    load the system's PROJ before pyproj's own, and the process aborted at exit (134)."""
    env = {**os.environ, "SAFECITY_SQLITE_PATH": str(tmp_path / "fresh.sqlite")}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "api.cli", "jurisdictions", "load"], cwd=ROOT,
                          env=env, capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    level = _new_shell("-m", "api.cli", "token", "--role", "sho", "--scope", LAHORE_STATION,
                       SAFECITY_SQLITE_PATH=env["SAFECITY_SQLITE_PATH"],
                       SAFECITY_JWT_SECRET_FILE=str(tmp_path / "secret"))
    assert level.returncode == 0, level.stderr[-2000:]
    assert jwt.decode(level.stdout.strip(), options={"verify_signature": False})["lvl"] == "station"
