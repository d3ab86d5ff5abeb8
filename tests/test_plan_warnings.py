"""A plan on too little demand says so: a tehsil with one call must not report "0 → 100 %"
silently — in the library's summary, the CLI's output and the API's plan answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest

from geo import coverage
from tests.callservice import ServiceClient, headers, service_settings
from tests.test_coverage import LAHORE_CITY, lahore_calls

ONE_CALL = pd.DataFrame({"lat": [31.4697], "lon": [74.2728], "category": ["murder"],
                         "tehsil_code": [LAHORE_CITY]})


@pytest.mark.unit
def test_one_call_plans_but_warns_and_enough_calls_do_not(punjab_set: Any) -> None:
    from api.shipped import load_categories

    none = coverage.site_frame([], [], [], existing=True, stand_in=False, source="none")
    plan = coverage.plan_sites(ONE_CALL, LAHORE_CITY, new_sites=1, radius_m=500, existing=none,
                               categories=load_categories(), boundaries=punjab_set)
    s = plan.summary
    assert (s["covered_share_before"], s["covered_share_after"]) == (0.0, 1.0)  # the silent "0 → 100 %"
    assert s["min_calls"] == coverage.MIN_PLAN_CALLS == 30
    assert len(s["warnings"]) == 2
    assert s["warnings"][0].startswith("too little demand to plan: 1 call in Lahore City (PK61702) "
                                       "(minimum 30)")
    assert "only 1 cell" in s["warnings"][1]
    plenty = coverage.plan_sites(lahore_calls(), LAHORE_CITY, new_sites=2, radius_m=500, existing=none,
                                 categories=load_categories(), boundaries=punjab_set)
    assert plenty.summary["calls"] >= coverage.MIN_PLAN_CALLS
    assert plenty.summary["warnings"] == []


@pytest.mark.unit
def test_the_cli_prints_the_warning(tmp_path: Path) -> None:
    import subprocess
    import sys

    calls = tmp_path / "one.csv"
    ONE_CALL.to_csv(calls, index=False)
    out = tmp_path / "plan.geojson"
    done = subprocess.run([sys.executable, "-m", "api.cli", "plan", "sites", "--tehsil", LAHORE_CITY,
                           "--sites", "1", "--calls", str(calls), "--out", str(out)],
                          capture_output=True, text=True, check=False, env={
                              **__import__("os").environ, "COLUMNS": "200"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "warning: too little demand to plan: 1 call in Lahore City" in said
    import json

    assert json.loads(out.read_text())["summary"]["warnings"]


@pytest.fixture(scope="module")
def client(loaded_postgis: str) -> Iterator[ServiceClient]:
    from api.container import Container
    from tests.test_analytics_api import load_small_history

    load_small_history(loaded_postgis)
    with ServiceClient(Container(service_settings(loaded_postgis))) as started:
        yield started


@pytest.mark.integration
def test_the_plan_answer_carries_the_warnings(client: ServiceClient, loaded_postgis: str) -> None:
    from api.domain.plans.services import weighted_categories

    with psycopg.connect(loaded_postgis) as conn:
        first = conn.execute("SELECT received_at FROM calls WHERE tehsil_code = %s AND category = ANY(%s) "
                             "ORDER BY received_at LIMIT 2", (LAHORE_CITY, list(weighted_categories()))
                             ).fetchall()
    assert len(first) == 2
    assert first[0][0] < first[1][0]
    window = {"from": first[0][0].isoformat(), "until": (first[0][0] + timedelta(microseconds=1)).isoformat()}
    planner = headers("planner")
    answer = client.post("/api/v1/plans", json={"tehsil": LAHORE_CITY, "sites": 1, **window},
                         headers=planner)
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 240
    while True:
        plan = client.get(answer.headers["location"], headers=planner).json()
        if plan["state"] in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline, plan
        time.sleep(0.1)
    assert plan["state"] == "succeeded", plan
    assert plan["summary"]["calls"] == 1
    assert plan["warnings"] == plan["summary"]["warnings"]
    assert plan["warnings"][0].startswith("too little demand to plan: 1 call in Lahore City")
    listed = client.get("/api/v1/plans", headers=planner).json()
    mine = next(p for p in listed["items"] if p["id"] == plan["id"])
    assert mine["warnings"] == plan["warnings"]
