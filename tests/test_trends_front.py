"""The windows the trend and forecast front ends choose, and the panel's sparkline: small
hand-checkable cases (no database)."""

from __future__ import annotations

import pandas as pd
import pytest

from api.domain.trends.analysis import AreaRef, complete_end, first_full_start, trends_payload
from api.domain.trends.panel import SVG_HEIGHT, render_panel, sparkline

pytestmark = pytest.mark.unit


def times(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), format="ISO8601"))


def test_a_finished_history_reports_its_last_week() -> None:
    # last call on Sunday 31 March 2024; "now" long after: the week of 25 March is complete
    end = complete_end(times("2024-01-03 10:00", "2024-03-31 22:00"), "week", pd.Timestamp("2026-12-06"))
    assert end == pd.Timestamp("2024-04-01")


def test_live_data_never_reports_the_running_week() -> None:
    # now is Wednesday 4 December 2024 and calls keep arriving: the current week is the last whole one
    now = pd.Timestamp("2024-12-04 15:00")
    end = complete_end(times("2024-11-01", "2024-12-04 14:59"), "week", now)
    assert end == pd.Timestamp("2024-12-02")
    assert complete_end(times("2024-11-01", "2024-12-04 14:59"), "day", now) == pd.Timestamp("2024-12-04")


def test_a_record_starting_mid_week_starts_at_the_next_monday() -> None:
    assert first_full_start(times("2024-01-03 10:00"), "week") == pd.Timestamp("2024-01-08")
    assert first_full_start(times("2024-01-01 00:10"), "week") == pd.Timestamp("2024-01-01")
    assert first_full_start(times("2024-02-15"), "month") == pd.Timestamp("2024-03-01")


def test_payload_counts_whole_weeks_and_ranks_children() -> None:
    # 10 calls in each of 6 weeks from Monday 1 Jan; tehsil B doubles in the last week
    rows = []
    for week in range(6):
        for i in range(10):
            rows.append((pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=week, hours=3 + i), "A"))
        extra = 12 if week == 5 else 6
        for i in range(extra):
            rows.append((pd.Timestamp("2024-01-02") + pd.Timedelta(weeks=week, hours=i), "B"))
    calls = pd.DataFrame(rows, columns=["received_at", "tehsil_code"]).assign(category="murder")
    answer = trends_payload(calls, area=AreaRef("district", "D", "Dee"), period="week",
                            until=pd.Timestamp("2024-02-12"), categories=["murder"],
                            labels={"murder": "Murder"}, rising_level="tehsil",
                            area_names={"A": "Ay", "B": "Bee"})
    assert answer["report"]["counts"] == [16, 16, 16, 16, 16, 22]
    assert answer["calls"] == 102
    assert answer["summary"].startswith("murder in Dee: 22 in the week from 2024-02-05; up 38 %")
    first = answer["rising"]["areas"][0]
    assert (first["code"], first["name"], first["current"], first["baseline_mean"]) == ("B", "Bee", 12, 6.0)
    assert first["change"] == pytest.approx(1.0)


def test_sparkline_scales_into_the_box_and_marks_changes() -> None:
    line = sparkline(["2024-01-01", "2024-01-08", "2024-01-15"], [0, 5, 10], ["2024-01-08"], "week")
    assert line is not None
    ys = [float(p.split(",")[1]) for p in line.points.split()]
    assert ys[0] == SVG_HEIGHT - 6  # zero at the bottom (inside the padding)
    assert ys[2] == 6  # the highest count at the top
    assert [start for _, start in line.changes] == ["2024-01-08"]
    assert "lowest 0, highest 10, latest 10" in line.label
    assert sparkline([], [], [], "week") is None


def test_panel_says_why_a_part_is_missing() -> None:
    html = render_panel(None, "no calls of the selection in Dee", None, "workers busy")
    assert "No trend: no calls of the selection in Dee" in html
    assert "No forecast: workers busy" in html
