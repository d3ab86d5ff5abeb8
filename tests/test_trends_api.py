"""``GET /api/v1/trends``, ``GET /api/v1/forecast`` and ``safecity trends`` on PostGIS with
a small generated history (the analytics tests' three months): the same fields from the
API and the CLI, scoped like every analytics read, the forecast with its scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.callservice import ServiceClient, headers, service_settings

pytestmark = pytest.mark.integration

DISTRICT = "PK633"  # Sheikhupura (Lahore region): tehsils PK63301 … PK63305
PLANNER = headers("planner")
TREND_KEYS = {"area", "period", "categories", "from", "until", "calls", "summary", "report",
              "by_category", "rising"}
CLI = [sys.executable, "-m", "api.cli"]


@pytest.fixture(scope="module")
def client(history_postgis: str) -> Iterator[Any]:
    from api.container import Container

    with ServiceClient(Container(service_settings(history_postgis))) as test_client:
        yield test_client


def test_trends_fields_and_summary(client: Any) -> None:
    answer = client.get("/api/v1/trends", params={"level": "district", "code": DISTRICT},
                        headers=PLANNER)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == TREND_KEYS
    assert body["area"] == {"level": "district", "code": DISTRICT, "name": "Sheikhupura"}
    report = body["report"]
    assert body["calls"] == sum(report["counts"]) > 0
    # the generated history is Jan–Mar 2024: the last complete week ends on 1 April
    assert body["until"].startswith("2024-04-01")
    assert report["current_start"] == "2024-03-25"
    assert body["summary"].startswith("dispatched cases in Sheikhupura: ")
    assert body["summary"] == report["summary"]
    assert report["vs_last_year"] is None
    assert "no data for the same week last year" in body["summary"]
    # the busiest categories come one by one, each with its own sentence
    first = body["by_category"][0]
    assert first["summary"].startswith(f"{first['label'][:1].lower()}{first['label'][1:]} in Sheikhupura: ")
    assert {c["category"] for c in body["by_category"]} <= set(body["categories"])
    assert sum(c["calls"] for c in body["by_category"]) <= body["calls"]
    # the tehsils of the district, ranked, with BH-adjusted q where tested
    rising = body["rising"]
    assert rising["level"] == "tehsil"
    assert {r["code"][:5] for r in rising["areas"]} == {DISTRICT}
    assert [r["rank"] for r in rising["areas"]] == list(range(1, len(rising["areas"]) + 1))
    assert all((r["p"] is None) == (r["q"] is None) for r in rising["areas"])
    assert all(r["q"] is None or r["q"] >= r["p"] for r in rising["areas"])


def test_trends_category_group_and_period(client: Any) -> None:
    answer = client.get("/api/v1/trends", params={"level": "district", "code": DISTRICT,
                                                  "category": "violent", "period": "month"},
                        headers=PLANNER)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["categories"]) == {"murder", "dacoity_robbery", "kidnapping", "terrorism"}
    assert body["period"] == "month"
    assert body["report"]["period_starts"] == ["2024-01-01", "2024-02-01", "2024-03-01"]


def test_rising_districts_within_each_region(client: Any) -> None:
    """The province's districts ranked within each region: ranks restart, BH per region."""
    answer = client.get("/api/v1/trends", params={"level": "province", "rising_within": "region"},
                        headers=headers("ig"))
    assert answer.status_code == 200, answer.text
    rising = answer.json()["rising"]
    assert rising["level"] == "district"
    assert rising["within"] == "region"
    regions = {r["group"] for r in rising["areas"]}
    assert len(regions) == 9
    for region in regions:
        rows = [r for r in rising["areas"] if r["group"] == region]
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
        tested = sorted(r["p"] for r in rows if r["p"] is not None)
        if tested:  # BH: the smallest q is the smallest p times the number tested, at most 1
            smallest = min(r["q"] for r in rows if r["q"] is not None)
            stepped = [p * len(tested) / (i + 1) for i, p in enumerate(tested)]
            assert smallest == pytest.approx(min(1.0, *stepped))


@pytest.mark.parametrize(("role", "scope", "area", "status"), [
    ("dpo", DISTRICT, ("district", DISTRICT), 200),
    ("dpo", DISTRICT, ("district", "PK617"), 403),
    ("dpo", DISTRICT, ("province", None), 403),
    ("call_taker", "PK6", ("district", DISTRICT), 403),
])
def test_trends_scope(client: Any, role: str, scope: str, area: tuple[str, str | None],
                      status: int) -> None:
    params = {"level": area[0], **({"code": area[1]} if area[1] else {})}
    answer = client.get("/api/v1/trends", params=params, headers=headers(role, scope))
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize(("params", "status"), [
    ({"level": "district", "code": DISTRICT, "period": "fortnight"}, 400),
    ({"level": "district", "code": "PK999"}, 404),
    ({"level": "district", "code": DISTRICT, "category": "nonsense"}, 400),
    ({"level": "district"}, 400),
    ({"level": "district", "code": DISTRICT, "rising_level": "region"}, 400),
    ({"level": "district", "code": DISTRICT, "rising_within": "region"}, 400),
])
def test_trends_bad_requests(client: Any, params: dict[str, str], status: int) -> None:
    assert client.get("/api/v1/trends", params=params, headers=PLANNER).status_code == status


def test_profile_counts_the_calls_the_daily_trend_counts(client: Any) -> None:
    """``/trends/profile``: the last 56 complete days, per day and per hour × weekday, the
    same calls (dispatched cases by default) as ``/trends?period=day``, day for day."""
    params = {"level": "district", "code": DISTRICT}
    answer = client.get("/api/v1/trends/profile", params=params, headers=PLANNER)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["area"] == {"level": "district", "code": DISTRICT, "name": "Sheikhupura"}
    assert (body["from"], body["until"], body["days"]) == ("2024-02-05", "2024-04-01", 56)
    daily = body["daily"]
    assert len(daily["dates"]) == len(daily["counts"]) == 56
    grid = body["hour_weekday"]["count"]
    assert body["calls"] == sum(daily["counts"]) == sum(map(sum, grid)) > 0
    assert body["latest_day"]["date"] == "2024-03-31"
    assert body["latest_day"]["earlier_same_weekdays"] == 7
    trend = client.get("/api/v1/trends", params={**params, "period": "day"}, headers=PLANNER).json()
    by_day = dict(zip(trend["report"]["period_starts"], trend["report"]["counts"], strict=True))
    # the daily trend ends with the district's last call (29 March), the profile with the
    # store's last day: the days after are zeros
    assert sum(d in by_day for d in daily["dates"]) >= 50
    assert daily["counts"] == [by_day.get(d, 0) for d in daily["dates"]]
    # a category narrows both the same way
    one = client.get("/api/v1/trends/profile", params={**params, "category": "fire"}, headers=PLANNER).json()
    assert one["categories"] == ["fire"]
    assert one["calls"] < body["calls"]


@pytest.mark.parametrize(("role", "scope", "params", "status"), [
    ("dpo", DISTRICT, {"level": "district", "code": DISTRICT, "days": "28"}, 200),
    ("dpo", DISTRICT, {"level": "district", "code": "PK617"}, 403),
    ("call_taker", "PK6", {"level": "district", "code": DISTRICT}, 403),
    ("planner", "PK6", {"level": "district", "code": DISTRICT, "days": "3"}, 400),
    ("planner", "PK6", {"level": "district", "code": "PK999"}, 404),
])
def test_profile_scope_and_checks(client: Any, role: str, scope: str, params: dict[str, str],
                                  status: int) -> None:
    answer = client.get("/api/v1/trends/profile", params=params, headers=headers(role, scope))
    assert answer.status_code == status, answer.text


def test_cli_gives_the_api_fields(client: Any, history_postgis: str, tmp_path: Path) -> None:
    out = tmp_path / "trends.json"
    done = subprocess.run([*CLI, "trends", "--level", "district", "--code", DISTRICT, "--json", str(out)],
                          env={**os.environ, "DATABASE_URL": history_postgis}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    from_cli = json.loads(out.read_text())
    from_api = client.get("/api/v1/trends", params={"level": "district", "code": DISTRICT},
                          headers=PLANNER).json()
    assert set(from_cli) == TREND_KEYS
    assert from_cli == from_api
    printed = " ".join((done.stdout + done.stderr).split())
    assert "dispatched cases in Sheikhupura:" in printed
    assert "Rising tehsils" in printed


def test_forecast_with_scores_and_cache(client: Any) -> None:
    params = {"level": "district", "code": DISTRICT, "res": 8, "origins": 8,
              "methods": ["kde", "prospective"]}
    began = time.perf_counter()
    answer = client.get("/api/v1/forecast", params=params, headers=PLANNER)
    first_s = time.perf_counter() - began
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["area"]["code"] == DISTRICT
    assert body["origin"].startswith("2024-04-01")
    assert body["until"].startswith("2024-04-08")
    selection = body["selection"]
    assert body["method"] == selection["method"] == selection["score"]["method"]
    assert selection["baseline"]["method"] in {"naive", "historical_average"}
    assert selection["origins"] == body["backtest"]["scored_origins"] <= 8
    assert body["beats_baselines"] == (not selection["is_baseline"])
    if selection["is_baseline"]:
        assert "showing the baseline" in body["reason"]
    backtest = body["backtest"]
    assert set(backtest["methods"]) == {"naive", "historical_average", "kde", "prospective"}
    for scores in backtest["methods"].values():
        assert set(scores["hit_rate"]) == set(scores["pai"]) == {"0.01", "0.02", "0.05", "0.1", "0.2"}
    assert backtest["origins"] == 8
    assert backtest["events"] > 0
    assert backtest["cells"] == body["cells"] > 100
    cells = body["top_cells"]
    assert cells
    assert [c["rank"] for c in cells] == sorted(c["rank"] for c in cells)
    assert all(set(c) == {"h3", "risk", "rank", "top_0.01", "top_0.05", "top_0.1"} for c in cells[:3])
    # the day's forecast is kept: the same request is answered without refitting
    began = time.perf_counter()
    again = client.get("/api/v1/forecast", params=params, headers=PLANNER)
    assert again.json() == body
    assert time.perf_counter() - began < max(0.5, first_s / 2)


@pytest.mark.parametrize(("role", "scope", "code", "status"), [
    ("dpo", "PK617", DISTRICT, 403),
    ("call_taker", "PK6", DISTRICT, 403),
])
def test_forecast_scope(client: Any, role: str, scope: str, code: str, status: int) -> None:
    answer = client.get("/api/v1/forecast", params={"level": "district", "code": code},
                        headers=headers(role, scope))
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize("params", [
    {"level": "district", "code": DISTRICT, "period": "month"},
    {"level": "district", "code": DISTRICT, "methods": "astrology"},
    {"level": "district", "code": DISTRICT, "origins": 1},
])
def test_forecast_bad_requests(client: Any, params: dict[str, Any]) -> None:
    assert client.get("/api/v1/forecast", params=params, headers=PLANNER).status_code == 400


def test_forecast_cli_reads_the_calls_store(client: Any, history_postgis: str, tmp_path: Path) -> None:
    """``--events db``: the same calls the API reads; the backtest JSON's contract keys."""
    out = tmp_path / "backtest.json"
    done = subprocess.run([*CLI, "forecast", "backtest", "--events", "db", "--area", f"district:{DISTRICT}",
                           "--res", "8", "--period", "week", "--origins", "8", "--coverage", "0.01,0.05,0.1",
                           "--methods", "kde", "--json", str(out)],
                          env={**os.environ, "DATABASE_URL": history_postgis}, capture_output=True,
                          text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(out.read_text())
    assert data["origins"] == 8
    assert set(data["methods"]) == {"naive", "historical_average", "kde"}
    assert all(set(m["hit_rate"]) == set(m["pai"]) == {"0.01", "0.05", "0.1"}
               for m in data["methods"].values())
    api = client.get("/api/v1/forecast", params={"level": "district", "code": DISTRICT, "res": 8,
                                                  "origins": 8, "methods": "kde"}, headers=PLANNER).json()
    assert api["backtest"]["events"] == data["events"]
    assert api["backtest"]["cells"] == data["cells"]
    api_pai = api["backtest"]["methods"]["kde"]["pai"]  # the API scores all five coverages
    assert {k: api_pai[k] for k in data["methods"]["kde"]["pai"]} == data["methods"]["kde"]["pai"]
