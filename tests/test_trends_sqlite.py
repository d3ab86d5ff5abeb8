"""``safecity trends`` and ``safecity forecast`` on the embedded SQLite/SpatiaLite store:
the same query and the same answer as on PostGIS (the small generated history)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DISTRICT = "PK633"


@pytest.fixture(scope="module")
def sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from api.cli.synth import load_history
    from api.db.engine import create_sync_engine
    from api.db.migrate import upgrade
    from api.settings import DatabaseSettings
    from api.shipped import generate_calls

    path = tmp_path_factory.mktemp("trends-sqlite") / "safecity.sqlite"
    engine = create_sync_engine(DatabaseSettings(sqlite_path=path))
    try:
        upgrade(engine)
        calls, _ = generate_calls(3, 11, 0.003, "2024-01")
        load_history(calls, engine)
    finally:
        engine.dispose()
    return path


def run(sqlite_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "api.cli", *args],
                          env={**env, "SAFECITY_SQLITE_PATH": str(sqlite_path)}, capture_output=True,
                          text=True, timeout=240, check=False)


def test_trends_and_backtest_from_sqlite(sqlite_path: Path, tmp_path: Path) -> None:
    trends = tmp_path / "trends.json"
    done = run(sqlite_path, "trends", "--level", "district", "--code", DISTRICT, "--json", str(trends))
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(trends.read_text())
    assert answer["until"].startswith("2024-04-01")
    assert answer["summary"].startswith("dispatched cases in Sheikhupura: ")
    assert answer["calls"] == sum(answer["report"]["counts"]) > 0
    backtest = tmp_path / "backtest.json"
    done = run(sqlite_path, "forecast", "backtest", "--events", "db", "--area", f"district:{DISTRICT}",
               "--res", "8", "--origins", "8", "--methods", "kde", "--json", str(backtest))
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(backtest.read_text())
    assert data["origins"] == 8
    assert set(data["methods"]["kde"]["pai"]) == {"0.01", "0.02", "0.05", "0.1", "0.2"}
