"""``safecity dashboard refresh`` on PostGIS: a database loaded with a history (as
``safecity synth load`` leaves it) gets its dashboard projection filled by the real CLI,
in several batches, equal to the calls; a second run finds nothing to take in."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import load_jurisdictions

pytestmark = pytest.mark.integration


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", "dashboard", *args],
                          env={**os.environ, "DATABASE_URL": url}, capture_output=True,
                          text=True, check=False)


def test_refresh_fills_the_projection_of_a_loaded_history(fresh_postgis_url: str) -> None:
    from bench._common import load_generated_history

    url = load_jurisdictions(fresh_postgis_url)
    loaded = load_generated_history(url, 1, 11, 0.003, "2024-01")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as connection:
        events = connection.execute(text("SELECT count(*), max(id) FROM call_events")).one()
        assert connection.execute(text("SELECT count(*) FROM dashboard_calls")).scalar_one() == 0
    assert events[0] > 3 * 2_000  # several batches of --batch 2000

    done = _cli(url, "refresh", "--batch", "2000")
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join(done.stderr.split())
    found = re.search(r"dashboard projection: ([\d,]+) calls recomputed from ([\d,]+) call events "
                      r"in [\d.]+ s, [\d,]+ calls/s; up to call event ([\d,]+)", said)
    assert found, said
    calls, taken, mark = (int(found.group(i).replace(",", "")) for i in (1, 2, 3))
    assert calls >= loaded  # a call whose events straddle two batches is recomputed twice
    assert taken == events[0]
    assert mark == events[1]

    with engine.connect() as connection:
        assert connection.execute(text(
            "SELECT last_event_id FROM dashboard_refresh")).scalar_one() == events[1]
        assert connection.execute(text("SELECT count(*) FROM dashboard_calls")).scalar_one() == loaded
        # the projection's calls are the calls, by district, category and status
        projected = connection.execute(text(
            "SELECT district_code, category, status, count(*) FROM dashboard_calls "
            "GROUP BY 1, 2, 3")).all()
        direct = connection.execute(text(
            "SELECT district_code, category, status, count(*) FROM calls GROUP BY 1, 2, 3")).all()
        assert sorted(projected) == sorted(direct)
        # response times for the calls reached on scene (none for the others)
        answered = connection.execute(text(
            "SELECT count(*) FROM dashboard_calls WHERE response_s IS NOT NULL")).scalar_one()
        on_scene = connection.execute(text(
            "SELECT count(DISTINCT call_id) FROM call_events WHERE type = 'on_scene'")).scalar_one()
        assert 0 < answered <= on_scene
        assert answered >= 0.9 * on_scene
    engine.dispose()

    again = _cli(url, "refresh")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already up to date" in again.stderr
    assert f"call event {events[1]:,}" in " ".join(again.stderr.split())


def test_refresh_help_and_a_missing_schema(fresh_postgis_url: str) -> None:
    shown = _cli(fresh_postgis_url, "refresh", "--help")
    assert shown.returncode == 0
    assert "--batch" in shown.stdout
    assert "dashboard_calls" in shown.stdout
    # an empty database (no schema): one line, exit status 1, no traceback
    failed = _cli(fresh_postgis_url, "refresh")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr
    assert "database:" in failed.stderr
