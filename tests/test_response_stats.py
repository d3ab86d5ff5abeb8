"""Response-time intervals and statistics (geo.response) and the slow-station review on the
generated history, scored against its planted truth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.shipped import load_categories
from geo.response import (
    EXCLUDED,
    MISSING,
    VALID,
    SlaTable,
    SlowStationReview,
    call_intervals,
    call_sla_minutes,
    hour_weekday_table,
    interval_stats,
    response_report,
    urban_tehsils,
    within_sla,
)

T = pd.Timestamp("2026-03-02 09:00", tz="UTC")


def minutes(*values: float | None) -> list[Any]:
    return [T + pd.Timedelta(minutes=v) if v is not None else pd.NaT for v in values]


def test_intervals_are_valid_missing_or_excluded_as_cad_practice_says() -> None:
    frame = pd.DataFrame({
        "received_at": [T] * 4,
        "acknowledged_at": minutes(1, 1, 1, 1),
        "dispatched_at": minutes(3, 3, None, 6),
        "on_scene_at": minutes(9, None, 8, 4),  # last one: on scene before dispatch
        "closed_at": minutes(30, 20, 25, 30),
    })
    iv = call_intervals(frame)
    assert iv.state["response"].tolist() == [VALID, MISSING, VALID, EXCLUDED]
    assert iv.state["travel"].tolist() == [VALID, MISSING, MISSING, EXCLUDED]
    assert iv.state["queue"].tolist() == [VALID] * 4
    assert iv.seconds["response"].tolist()[:1] == [540.0]
    assert np.isnan(iv.seconds["response"].iloc[3])  # never averaged in
    stats = interval_stats(iv, np.array([10.0, 10.0, 10.0, 10.0]))
    assert stats["response"]["count"] == 2
    assert stats["response"]["excluded"] == 1
    assert stats["response"]["missing"] == 1
    assert stats["response"]["within_sla"] == 1.0
    assert stats["on_scene"]["excluded"] == 0  # on scene → closed is in order


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 600), min_size=1, max_size=40))
def test_percentiles_are_numpys_linear_interpolation(values: list[float]) -> None:
    frame = pd.DataFrame({"received_at": [T] * len(values),
                          "on_scene_at": [T + pd.Timedelta(seconds=v * 60) for v in values]})
    stats = interval_stats(call_intervals(frame))["response"]
    assert stats["count"] == len(values)
    assert stats["p50_min"] == pytest.approx(np.percentile(values, 50), abs=1e-6)
    assert stats["p90_min"] == pytest.approx(np.percentile(values, 90), abs=1e-6)
    assert stats["mean_min"] == pytest.approx(np.mean(values), abs=1e-6)


def test_hour_weekday_table_counts_in_pakistan_time() -> None:
    received = pd.Series([pd.Timestamp("2026-03-02 19:30", tz="UTC")] * 3)  # Tue 00:30 PKT
    seconds = pd.Series([60.0, 120.0, np.nan])
    table = hour_weekday_table(received, seconds)
    assert table["count"][0][1] == 2
    assert table["p50_min"][0][1] == 1.5
    assert sum(map(sum, table["count"])) == 2


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, dict[str, Any]]:
    from api.shipped import generate_calls

    calls, truth = generate_calls(1, 7, 0.1, "2024-03")
    path = tmp_path_factory.mktemp("history") / "calls.parquet"
    calls.to_parquet(path)
    return path, calls, truth


def test_planted_slow_stations_are_the_ones_flagged(history: Any, punjab_set: Any,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _, calls, truth = history
    iv = call_intervals(calls)
    review = SlowStationReview().review(calls["station_code"], calls["urban"],
                                        iv.seconds["response"])
    flagged = set(review.loc[review["flagged"], "station_code"])
    planted = {s["station_code"] for s in truth["slow_stations"]}
    hits = len(flagged & planted)
    precision = hits / len(flagged) if flagged else 0.0
    recall = hits / len(planted)
    with capsys.disabled():
        print(f"\nslow stations: {len(planted)} planted, {len(flagged)} flagged, "
              f"precision {precision:.2f}, recall {recall:.2f}")
    assert recall == 1.0
    assert precision >= 0.8
    # the SLA view agrees: planted stations breach far more often than their peers
    limits = call_sla_minutes(calls, SlaTable.from_categories(load_categories()),
                              urban_tehsils(punjab_set.layer("tehsil")))
    within = within_sla(iv, limits)
    slow_share = within[calls["station_code"].isin(planted)].mean()
    other_share = within[~calls["station_code"].isin(planted)].mean()
    assert slow_share < other_share - 0.2


def test_cli_on_a_calls_file_matches_the_frame_function(history: Any, punjab_set: Any) -> None:
    path, calls, _ = history
    district = str(calls["district_code"].value_counts().index[0])
    done = subprocess.run([sys.executable, "-m", "api.cli", "stats", "response", "--calls",
                           str(path), "--level", "district", "--code", district, "--serious",
                           "--by", "child", "--json"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    subset = calls[(calls["district_code"] == district) & calls["serious"]].reset_index(drop=True)
    limits = call_sla_minutes(subset, SlaTable.from_categories(load_categories()),
                              urban_tehsils(punjab_set.layer("tehsil")))
    expected = response_report(subset, limits, subset["tehsil_code"])
    assert body["calls"] == len(subset) > 0
    for name, stats in expected["intervals"].items():
        for key, value in stats.items():
            assert body["intervals"][name][key] == pytest.approx(value, nan_ok=True), (name, key)
    assert [c["code"] for c in body["children"]] == sorted(expected["children"])
    assert body["intervals"]["response"]["excluded"] > 0  # the generator's faults are counted
