"""geo.trends on small hand-made series: counts with zeros, honest comparisons, trends,
seasons, change points and the ranking of rising areas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.trends import (
    MIN_CALLS,
    TrendDataError,
    change_points,
    conditional_poisson_p,
    count_series,
    rank_rising,
    trend_report,
)

pytestmark = pytest.mark.unit


def _events(counts_per_day: list[int], first: str = "2024-01-01", **columns: list[str]) -> pd.DataFrame:
    days = pd.date_range(first, periods=len(counts_per_day), freq="D")
    times = np.repeat(days.to_numpy(), counts_per_day) + np.timedelta64(12, "h")
    return pd.DataFrame({"received_at": times, **columns})


def test_weekly_counts_are_complete_and_local() -> None:
    # a UTC time late on Sunday is Monday in Pakistan (UTC+5): it counts in the next week
    frame = pd.DataFrame({"received_at": pd.to_datetime(
        ["2024-01-01T10:00Z", "2024-01-07T20:00Z", "2024-01-24T09:00Z"], utc=True)})
    table = count_series(frame, period="week")
    assert table.index.tolist() == [pd.Timestamp(d) for d in ("2024-01-01", "2024-01-08", "2024-01-15",
                                                               "2024-01-22")]
    assert table["all"].tolist() == [1, 1, 0, 1]


def test_counts_by_area_keep_zero_groups_and_periods() -> None:
    frame = _events([2, 0, 3], area=["a", "a", "b", "b", "b"])
    table = count_series(frame, period="day", by=["area"], end="2024-01-05")
    assert list(table.columns) == ["a", "b"]
    assert table["a"].tolist() == [2, 0, 0, 0]
    assert table["b"].tolist() == [0, 0, 3, 0]
    with pytest.raises(TrendDataError, match="no column"):
        count_series(frame, by=["district"])


def test_conditional_test_matches_the_binomial_by_hand() -> None:
    # 10 now against 10 over 4 periods: P(X >= 10 | n = 20, p = 1/5)
    from scipy.stats import binom

    assert conditional_poisson_p(10, 10, 4, "greater") == pytest.approx(binom.sf(9, 20, 0.2))
    assert conditional_poisson_p(0, 0, 4) == 1.0


def test_summary_claims_significance_only_when_the_test_gives_it() -> None:
    weeks = pd.date_range("2024-01-01", periods=5, freq="W-MON")
    rising = pd.Series([20, 22, 19, 21, 60], index=weeks)
    report = trend_report(rising, period="week", label="robbery in Lahore City")
    assert report.vs_recent.significant
    assert report.vs_recent.change == pytest.approx(60 / 20.5 - 1)
    assert "robbery in Lahore City" in report.summary
    assert f"up {round((60 / 20.5 - 1) * 100)} % on the 4-week average" in report.summary
    assert "significant (p =" in report.summary
    assert "not significant" not in report.summary.split(";")[1]

    flat = pd.Series([20, 22, 19, 21, 23], index=weeks)
    quiet = trend_report(flat, period="week")
    assert not quiet.vs_recent.significant
    assert "not significant" in quiet.summary.split(";")[1]


def test_too_few_calls_are_said_and_not_tested() -> None:
    few = pd.Series([1, 0, 2, 1, 5], index=pd.date_range("2024-01-01", periods=5, freq="W-MON"))
    report = trend_report(few, period="week")
    assert not report.vs_recent.enough_calls
    assert report.vs_recent.p_value is None
    expected = f"too few calls to compare with the 4-week average (9 in all, {MIN_CALLS} needed)"
    assert expected in report.summary
    assert report.vs_last_year is None
    assert "no data for the same week last year" in report.summary
    assert report.trend is None
    assert report.decomposition is None
    assert "STL needs two cycles (104 weeks)" in report.decomposition_note


def test_same_week_last_year_and_the_counts_it_rests_on() -> None:
    rng = np.random.default_rng(3)
    counts = rng.poisson(30, 60)
    counts[-1], counts[-53] = 90, 30
    series = pd.Series(counts, index=pd.date_range("2023-01-02", periods=60, freq="W-MON"))
    report = trend_report(series, period="week")
    assert report.vs_last_year is not None
    assert report.vs_last_year.baseline == [30]
    assert report.vs_last_year.current == 90
    assert report.vs_last_year.significant
    assert report.counts == counts.tolist()
    assert report.current == 90


def test_trend_sen_slope_and_stl_on_a_rising_seasonal_series() -> None:
    weeks = np.arange(110)
    y = np.round(50 + 0.5 * weeks + 10 * np.sin(2 * np.pi * weeks / 52)).astype(int)
    series = pd.Series(y, index=pd.date_range("2022-01-03", periods=110, freq="W-MON"))
    report = trend_report(series, period="week")
    assert report.trend is not None
    assert report.trend.significant
    assert report.trend.tau > 0
    assert 0.3 < report.trend.slope_low <= report.trend.sen_slope <= report.trend.slope_high < 0.7
    assert report.decomposition is not None
    assert report.decomposition.season_length == 52
    assert report.decomposition.seasonal_strength > 0.5
    assert "rising trend over 110 weeks" in report.summary


def test_change_point_found_where_the_level_jumps() -> None:
    rng = np.random.default_rng(5)
    y = np.r_[rng.poisson(10, 30), rng.poisson(30, 30)]  # a tripling
    cuts, penalty = change_points(y)
    assert penalty is not None
    assert penalty > 0
    assert len(cuts) == 1
    assert abs(cuts[0] - 30) <= 2
    flat, _ = change_points(rng.poisson(10, 60))
    assert flat == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=1, max_size=30))
def test_summary_never_calls_an_insignificant_comparison_significant(values: list[int]) -> None:
    series = pd.Series(values, index=pd.date_range("2024-01-01", periods=len(values), freq="D"))
    report = trend_report(series, period="day")
    recent_text = report.summary.split("; ")[1]
    if report.vs_recent.significant:
        assert report.vs_recent.p_value is not None
        assert report.vs_recent.p_value < 0.05
        assert ", significant" in recent_text
    else:
        assert ", significant" not in recent_text


def test_ranking_corrects_within_each_region() -> None:
    rng = np.random.default_rng(9)
    rows = []
    for region, area, last in [("R1", "a", 60), ("R1", "b", 20), ("R2", "c", 21), ("R2", "d", 2)]:
        for week in range(5):
            n = last if week == 4 else int(rng.poisson(20 if area != "d" else 2))
            day = pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=week, hours=10)
            rows += [(day, region, area)] * n
    frame = pd.DataFrame(rows, columns=["received_at", "region", "station"])
    ranked = rank_rising(frame, area="station", within="region")
    first = ranked[ranked["rank"] == 1].set_index("region")
    assert first.loc["R1", "area"] == "a"
    assert bool(first.loc["R1", "significant"])
    d = ranked.set_index("area").loc["d"]
    assert np.isnan(d["p"])
    assert not d["significant"]
    assert (ranked["q"].dropna() >= ranked["p"].dropna().loc[ranked["q"].dropna().index]).all()


def test_change_point_penalty_keeps_false_alarms_rare() -> None:
    """The documented rates: spurious changes in about 5 % of flat series, a doubled
    level found almost always (200 simulated series of 60 periods each)."""
    false_alarms = found = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        false_alarms += bool(change_points(rng.poisson(10, 60))[0])
        cuts, _ = change_points(np.r_[rng.poisson(10, 30), rng.poisson(20, 30)])
        found += len(cuts) == 1 and abs(cuts[0] - 30) <= 2
    assert false_alarms / 200 <= 0.08
    assert found / 200 >= 0.9
