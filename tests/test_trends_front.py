"""The windows the trend and forecast front ends choose, and the panel's sparkline: small
hand-checkable cases (no database)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from api.domain.trends.analysis import (
    AreaRef,
    complete_end,
    first_full_start,
    profile_payload,
    trends_payload,
)
from api.domain.trends.panel import (
    SVG_HEIGHT,
    daily_chart,
    hour_grid,
    render_panel,
    render_profile,
    sparkline,
)

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


def _profile_calls() -> pd.DataFrame:
    """Two weeks from Monday 18 March 2024 (Pakistan time, given as UTC): one call every day
    at 09:xx, three more on each Friday at 21:xx, and one on Sunday 31 March at 23:30."""
    local = [pd.Timestamp("2024-03-18 09:10") + pd.Timedelta(days=d) for d in range(14)]
    local += [pd.Timestamp(f"2024-03-{day} 21:{m:02d}") for day in (22, 29) for m in (1, 2, 3)]
    local += [pd.Timestamp("2024-03-31 23:30"),
              pd.Timestamp("2024-04-01 00:10")]  # after the window: not counted
    utc = pd.Series(local).dt.tz_localize("Asia/Karachi").dt.tz_convert("UTC")
    return pd.DataFrame({"received_at": utc, "category": "murder"})


def test_profile_counts_days_and_hours_in_local_time() -> None:
    answer = profile_payload(_profile_calls(), area=AreaRef("district", "D", "Dee"),
                             until=pd.Timestamp("2024-04-01"), categories=["murder"], days=14)
    assert answer["from"] == "2024-03-18"
    assert answer["calls"] == 14 + 6 + 1
    daily = answer["daily"]
    assert daily["dates"][0] == "2024-03-18"
    assert daily["dates"][-1] == "2024-03-31"
    assert daily["counts"] == [1, 1, 1, 1, 4, 1, 1, 1, 1, 1, 1, 4, 1, 2]
    assert daily["same_weekday_mean"][4] == 4.0
    assert daily["same_weekday_mean"][6] == 1.5
    assert answer["latest_day"] == {"date": "2024-03-31", "weekday": "Sun", "count": 2,
                                    "earlier_same_weekdays": 1, "same_weekday_mean": 1.0}
    table = answer["hour_weekday"]["count"]  # rows hours, columns Monday..Sunday
    assert len(table) == 24
    assert all(len(row) == 7 for row in table)
    assert table[9] == [2] * 7
    assert table[21][4] == 6
    assert table[23][6] == 1
    assert sum(map(sum, table)) == answer["calls"]
    assert answer["hour_weekday"]["per_weekday"][4] == 8


def test_profile_charts_state_their_numbers() -> None:
    answer = profile_payload(_profile_calls(), area=AreaRef("district", "D", "Dee"),
                             until=pd.Timestamp("2024-04-01"), categories=["murder"], days=14)
    daily = daily_chart(answer)
    assert len(daily.bars) == 14
    assert daily.bars[-1]["latest"]
    assert [text for _, text in daily.gridlines] == ["0", "2", "4"]  # the scale's top: 4 calls
    assert daily.bars[4]["h"] > daily.bars[0]["h"] > 0
    assert [text for _, text, _ in daily.dates] == ["18 Mar", "25 Mar"]
    assert daily.weeks == [("2024-03-18", [1, 1, 1, 1, 4, 1, 1]), ("2024-03-25", [1, 1, 1, 1, 4, 1, 2])]
    assert "21 calls over 14 days, 2024-03-18 to 2024-03-31" in daily.description
    assert "Sunday 2024-03-31: 2, against a mean of 1.0 on the 1 Sundays before it" in daily.description
    grid = hour_grid(answer)
    assert len(grid.cells) == 7 * 24
    assert grid.high == 6
    busiest = next(c for c in grid.cells if c["title"].startswith("Fri 21:00"))
    assert busiest["fill"] == grid.high_colour == "#08306b"
    assert next(c for c in grid.cells if c["title"].startswith("Mon 00:00"))["fill"] == "#f4f3ef"
    assert "busiest hour Fri 21:00 with 6 calls" in grid.label
    assert "0 to 6. Busiest: Fri 21:00–22:00 (6)" in grid.description
    html = render_profile(answer, None)
    assert 'aria-labelledby="daily-title"' in html
    assert ">Daily calls</h3>" in html
    assert ">Calls by hour and weekday</h3>" in html
    assert len(re.findall(r'<rect x="[0-9.]+%"', html)) == 14 + 7 * 24  # a bar a day, a cell an hour


def test_profile_of_an_area_without_calls_is_zeros() -> None:
    empty = pd.DataFrame({"received_at": pd.Series([], dtype="datetime64[ns, UTC]"), "category": []})
    answer = profile_payload(empty, area=AreaRef("district", "D", "Dee"), until=pd.Timestamp("2024-04-01"),
                             categories=["murder"], days=7)
    assert answer["calls"] == 0
    assert answer["daily"]["counts"] == [0] * 7
    assert answer["latest_day"]["same_weekday_mean"] is None
    assert "0 to 0" in hour_grid(answer).description
    assert "No daily or hourly profile: workers busy" in render_profile(None, "workers busy")
