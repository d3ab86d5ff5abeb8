"""geo.forecast on small hand-checkable cases: events, the grid, each method, the
metrics, the no-peeking guarantee, the backtest's JSON contract and the selection rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo import h3cells
from geo.forecast.backtest import Backtest, MethodResult, rolling_origins, run_backtest
from geo.forecast.calendar import festival_days
from geo.forecast.events import EventDataError, Events, FutureEventsError, events_from_frame
from geo.forecast.grid import Grid
from geo.forecast.methods import (
    Forecaster,
    HistoricalAverage,
    LaggedLightGBM,
    Naive,
    ProspectiveHotSpots,
    SelfExcitingPointProcess,
    TimeDecayedKDE,
    default_methods,
)
from geo.forecast.metrics import captured, score_forecast
from geo.forecast.riskmap import risk_map
from geo.forecast.select import select_method

pytestmark = pytest.mark.unit

SQUARE = shapely.box(74.30, 31.50, 74.34, 31.54)  # about 4 km a side in Lahore


@pytest.fixture(scope="module")
def grid() -> Grid:
    return Grid.from_polygon(SQUARE, 9)


def _frame(times: list[str], lat: list[float] | None = None, lon: list[float] | None = None) -> pd.DataFrame:
    n = len(times)
    return pd.DataFrame({"lat": lat or [31.52] * n, "lon": lon or [74.32] * n,
                         "received_at": times})


def _random_events(seed: int, n: int = 3000, days: int = 120) -> Events:
    rng = np.random.default_rng(seed)
    hot = rng.random(n) < 0.4
    lat = np.where(hot, 31.515 + rng.normal(0, 0.002, n), rng.uniform(31.50, 31.54, n))
    lon = np.where(hot, 74.315 + rng.normal(0, 0.002, n), rng.uniform(74.30, 74.34, n))
    t = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, days * 86_400, n), unit="s")
    return events_from_frame(pd.DataFrame({"lat": lat, "lon": lon, "t": t,
                                           "cat": rng.choice(["robbery", "theft"], n)}),
                             time="t", category="cat")


# ----------------------------------------------------------------------------- events


def test_events_are_checked_once_with_clear_errors() -> None:
    with pytest.raises(EventDataError, match="no column time='when'"):
        events_from_frame(_frame(["2024-01-01"]), time="when")
    bad = _frame(["2024-01-01", "2024-01-02"], lat=[31.5, 95.0])
    with pytest.raises(EventDataError, match="1 row\\(s\\) with 'lat' not a latitude"):
        events_from_frame(bad)
    kept = events_from_frame(bad, drop_invalid=True)
    assert len(kept) == 1
    unordered = events_from_frame(_frame(["2024-01-03", "2024-01-01T15:00", "2024-01-02"]))
    assert (np.diff(unordered.time.astype(np.int64)) >= 0).all()
    aware = events_from_frame(_frame(["2024-01-01T10:00+00:00", "2024-01-01T23:00+00:00"]))
    assert pd.Timestamp(aware.time[0]) == pd.Timestamp("2024-01-01 15:00")  # UTC → Pakistan
    assert pd.Timestamp(aware.start) == pd.Timestamp("2024-01-01")
    assert pd.Timestamp(unordered.start) == pd.Timestamp("2024-01-01")
    assert len(unordered.before("2024-01-02")) == 1
    assert len(unordered.between("2024-01-02", "2024-01-04")) == 2


# ----------------------------------------------------------------------------- grid


def test_grid_is_any_polygon_in_metres(grid: Grid) -> None:
    triangle = shapely.Polygon([(74.30, 31.50), (74.34, 31.50), (74.32, 31.54)])
    small = Grid.from_polygon(triangle, 9)
    assert 0 < len(small) < len(grid)
    assert grid.epsg == 32643
    assert grid.area_m2.sum() == pytest.approx(4.0e3 * 4.4e3, rel=0.15)
    rows = grid.locate([31.52, 10.0], [74.32, 10.0])
    assert rows[0] >= 0
    assert rows[1] == -1
    assert grid.cells[rows[0]] == h3cells.latlng_to_cell(31.52, 74.32, 9)


@settings(max_examples=15, deadline=None)
@given(st.floats(50.0, 900.0), st.integers(0, 2**31 - 1))
def test_near_pairs_find_exactly_the_cells_within_the_radius(radius: float, seed: int) -> None:
    grid = Grid.from_polygon(SQUARE, 9)
    rng = np.random.default_rng(seed)
    lat, lon = rng.uniform(31.505, 31.535, 20), rng.uniform(74.305, 74.335, 20)
    x, y = grid.project(lat, lon)
    cell = grid.locate(lat, lon)
    point, row, dist = grid.near_pairs(x, y, cell, radius)
    brute = np.hypot(grid.x[None, :] - x[:, None], grid.y[None, :] - y[:, None]) <= radius
    expected = set(zip(*np.nonzero(brute), strict=True))
    assert set(zip(point.tolist(), row.tolist(), strict=True)) == {(int(a), int(b)) for a, b in expected}
    assert np.allclose(dist, np.hypot(grid.x[row] - x[point], grid.y[row] - y[point]))


# ----------------------------------------------------------------------------- metrics


def test_pai_of_a_perfect_forecast_is_one_over_the_area_share() -> None:
    area = np.ones(100)
    counts = np.zeros(100)
    counts[[3, 7, 42]] = [5, 2, 1]  # all events in 3 % of the area
    scores = score_forecast(counts, counts, area, (0.05, 0.1, 0.2))
    assert scores.hit_rate.tolist() == [1.0, 1.0, 1.0]
    assert scores.pai == pytest.approx([1 / 0.05, 1 / 0.1, 1 / 0.2])
    assert scores.pei.tolist() == [1.0, 1.0, 1.0]


def test_ties_score_as_random_and_a_half_cell_counts_half() -> None:
    area = np.ones(100)
    counts = np.arange(100, dtype=float)
    flat = score_forecast(np.zeros(100), counts, area, (0.01, 0.05, 0.2))
    assert flat.hit_rate == pytest.approx([0.01, 0.05, 0.2])
    assert flat.pai == pytest.approx([1.0, 1.0, 1.0])
    # the best cell and, at 1.5 % of the area, half of the next one
    risk = counts.copy()
    assert captured(risk, counts, area, (0.015,))[0] == pytest.approx(99 + 98 / 2)


def test_no_events_means_no_score() -> None:
    scores = score_forecast(np.ones(5), np.zeros(5), np.ones(5), (0.2,))
    assert scores.events == 0
    assert np.isnan(scores.hit_rate).all()


# ----------------------------------------------------------------------------- methods


def test_naive_and_historical_average_by_hand(grid: Grid) -> None:
    times = ["2024-01-01T10:00", "2024-01-09T10:00", "2024-01-10T10:00", "2024-01-20T10:00"]
    events = events_from_frame(_frame(times, lat=[31.52, 31.52, 31.52, 31.51],
                                      lon=[74.32, 74.32, 74.32, 74.33]))
    here, there = grid.locate([31.52, 31.51], [74.32, 74.33])
    naive = Naive().fit(events.before("2024-01-15"), grid, "2024-01-15", "week")
    assert naive[here] == 2
    assert naive.sum() == 2
    ha = HistoricalAverage().fit(events.before("2024-01-22"), grid, "2024-01-22", "week")
    assert ha[here] == pytest.approx(3 / 3)
    assert ha[there] == pytest.approx(1 / 3)


def test_a_forecast_from_the_future_is_impossible(grid: Grid) -> None:
    events = _random_events(1)
    for method in default_methods().values():
        with pytest.raises(FutureEventsError, match="not before the origin"):
            method.fit(events, grid, "2024-03-01", "week")


class _Spy(Forecaster):
    """Records the latest event it was handed at each origin."""

    name = "spy"
    citation = "a test double"

    def __init__(self) -> None:
        self.seen: list[tuple[np.datetime64, np.datetime64 | None]] = []

    def risk(self, events: Events, grid: Grid, origin: np.datetime64, length: np.timedelta64) -> np.ndarray:
        self.seen.append((origin, events.end))
        return np.zeros(len(grid))


def test_the_backtest_never_shows_a_method_what_followed(grid: Grid) -> None:
    events = _random_events(2)  # the whole history, later events included
    spy = _Spy()
    result = run_backtest(events, grid, [Naive(), HistoricalAverage(), spy], period="day", origins=10)
    assert len(spy.seen) == 10
    for origin, latest in spy.seen:
        assert latest is not None
        assert latest < origin
        assert latest >= origin - np.timedelta64(1, "D")  # it did get the past
    assert result.methods["spy"].mean("pai") == pytest.approx(np.ones(5))  # all ties: random


def test_kde_is_the_exact_kernel_sum(grid: Grid) -> None:
    events = _random_events(3, n=300).on(grid)
    origin = np.datetime64("2024-04-20")
    kde = TimeDecayedKDE(bandwidth_m=200.0, decay_days=10.0, lookback_days=30.0)
    risk = kde.fit(events.before(origin), grid, origin, "week")
    recent = events.between(origin - np.timedelta64(30, "D"), origin).inside()
    age = (origin - recent.time).astype(np.int64) / 86_400e9
    d = np.hypot(grid.x[:, None] - recent.x[None, :], grid.y[:, None] - recent.y[None, :])
    k = np.where(d <= 600.0, np.exp(-0.5 * (d / 200.0) ** 2), 0.0)
    slow = (k * np.exp(-age / 10.0)[None, :]).sum(axis=1)
    expected = slow / slow.sum() * len(recent) * 7 / 30
    assert risk == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_prospective_weights_by_hand(grid: Grid) -> None:
    events = events_from_frame(_frame(["2024-03-01T12:00", "2024-03-12T12:00"])).on(grid)
    risk = ProspectiveHotSpots(bandwidth_m=400.0, weeks=8).fit(events, grid, "2024-03-15", "week")
    # two events at one place, 13.5 days old (week 1) and 2.5 days old (week 0)
    d = np.hypot(grid.x - events.x[0], grid.y - events.y[0])
    raw = np.where(d <= 400.0, 1 / (1 + d / grid.spacing_m), 0.0) * (1 / (1 + 1) + 1 / (1 + 0))
    expected = raw / raw.sum() * 2 * 7 / 56  # scaled to the window's mean count per week
    assert risk == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert int(events.cell[0]) == int(np.argmax(risk))


def test_point_process_forecast_is_background_plus_fresh_triggering(grid: Grid) -> None:
    events = _random_events(4)
    origin = "2024-04-25"
    sepp = SelfExcitingPointProcess(window_days=60)
    risk = sepp.fit(events.before(origin), grid, origin, "day")
    fit = sepp.fitted
    assert fit is not None
    assert fit.converged
    assert 0 <= fit.branching_ratio < 1
    assert fit.events == len(events.on(grid).between("2024-02-25", origin).inside())
    assert risk.sum() == pytest.approx(fit.events / 60 * 1, rel=0.35)  # about one day's events


def test_lightgbm_is_deterministic_and_learns_the_hot_cell(grid: Grid) -> None:
    events = _random_events(5, n=4000)
    origin = "2024-04-22"
    one = LaggedLightGBM(n_estimators=30).fit(events.before(origin), grid, origin, "week")
    two = LaggedLightGBM(n_estimators=30).fit(events.before(origin), grid, origin, "week")
    assert np.array_equal(one, two)
    hot = grid.locate([31.515], [74.315])[0]
    assert one[hot] > np.median(one) * 3


def test_lightgbm_forecasts_zero_when_no_training_period_had_an_event(grid: Grid) -> None:
    """Events only in the long history before the training periods (a quiet station):
    no label to learn from; the forecast is zero risk, not an error (it was a 500 on a
    station's trends panel)."""
    events = events_from_frame(_frame(["2024-01-02T10:00:00", "2024-01-03T11:00:00"]), time="received_at")
    origin = "2024-05-06"  # 8 training weeks back reach 2024-03-11; the long window reaches January
    risk = LaggedLightGBM(n_estimators=10).fit(events.before(origin), grid, origin, "week")
    assert risk.shape == (len(grid),)
    assert not risk.any()


def test_festival_days_by_hand() -> None:
    # Eid ul-Fitr 2024: 10 April; its window is 7–12 April
    days = festival_days(np.array(["2024-04-08", "2024-04-15", "2024-07-16"], dtype="datetime64[D]"), 7)
    assert days["eid_ul_fitr"].tolist() == [5, 0, 0]
    assert days["ashura"].tolist() == [0, 0, 2]  # 16–17 July 2024 (9–10 Muharram)
    with pytest.raises(ValueError, match="2019–2027"):
        festival_days(np.array(["2018-05-01"], dtype="datetime64[D]"), 7)


# ----------------------------------------------------------------------------- backtest


def test_rolling_origins_are_whole_periods_before_the_end() -> None:
    events = _random_events(6, days=70)  # 1 January to about 10 March 2024
    weeks = rolling_origins(events, "week", 3)
    assert [str(pd.Timestamp(w).date()) for w in weeks] == ["2024-02-19", "2024-02-26", "2024-03-04"]
    assert all(pd.Timestamp(w).day_of_week == 0 for w in weeks)
    days = rolling_origins(events, "day", 2, end="2024-03-01")
    assert [str(pd.Timestamp(d).date()) for d in days] == ["2024-02-28", "2024-02-29"]


def test_backtest_json_contract(grid: Grid) -> None:
    events = _random_events(7)
    result = run_backtest(events, grid, default_methods(), period="week", origins=4,
                          coverages=(0.01, 0.05, 0.1))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["origins"] == 4
    assert data["cells"] == len(grid)
    last_end = result.origins[-1] + np.timedelta64(7, "D")
    assert data["events"] == len(events.on(grid).inside().before(last_end))
    for name in ("naive", "historical_average", "kde", "prospective", "sepp", "lightgbm"):
        method = data["methods"][name]
        assert set(method["hit_rate"]) == {"0.01", "0.05", "0.1"} == set(method["pai"])
        for key, hit in method["hit_rate"].items():
            assert method["pai"][key] == pytest.approx(hit / float(key))
        assert method["citation"]
    assert set(data["methods"]["kde"]["beats"]) == {"naive", "historical_average"}


def _fake_backtest(gains: dict[str, float], origins: int = 12) -> Backtest:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.05, 0.08, (origins, 1))
    methods = {}
    for name, gain in gains.items():
        hit = base + gain + rng.normal(0, 0.002, (origins, 1))
        methods[name] = MethodResult(name, "x", {}, hit, hit / 0.05, hit, 0.0)
    result = Backtest("week", (0.05,), [np.datetime64("2024-01-01")] * origins,
                      np.full(origins, 100), 5000, 50, 9, methods)
    from geo.forecast.backtest import paired_p

    for name, m in methods.items():
        for b in ("naive", "historical_average"):
            if b != name:
                m.p_vs[b] = np.array([paired_p(m.hit_rate[:, 0], methods[b].hit_rate[:, 0])])
    return result


def test_selection_prefers_a_method_only_when_it_beats_both_baselines() -> None:
    winner = select_method(_fake_backtest({"naive": 0.0, "historical_average": 0.01, "kde": 0.03,
                                           "sepp": 0.02}))
    assert winner.method == "kde"
    assert not winner.is_baseline
    assert winner.baseline.method == "historical_average"
    assert winner.score.pai > winner.baseline.pai
    assert max(winner.p_values.values()) < 0.05

    none = select_method(_fake_backtest({"naive": 0.0, "historical_average": 0.01, "kde": 0.0}))
    assert none.method == "historical_average"
    assert none.is_baseline
    assert "no method beat both baselines significantly" in none.reason

    short = select_method(_fake_backtest({"naive": 0.0, "historical_average": 0.0, "kde": 0.05}, origins=5))
    assert short.is_baseline
    assert "only 5 scored origins" in short.reason


def test_risk_map_shows_the_selected_method_and_its_scores(grid: Grid) -> None:
    events = _random_events(8)
    methods = default_methods()
    result = run_backtest(events, grid, methods, period="week", origins=3)
    choice = select_method(result, min_origins=3)
    shown = risk_map(events, grid, "2024-04-29", "week", selection=choice, methods=methods)
    frame = shown.frame()
    assert list(frame.columns[:3]) == ["h3", "risk", "rank"]
    assert frame["top_0.05"].sum() >= 1
    assert frame["rank"].min() == 1
    summary = json.loads(json.dumps(shown.to_dict()))
    assert summary["method"] == choice.method
    assert summary["selection"]["score"]["pai"] == pytest.approx(choice.score.pai)
    assert summary["selection"]["baseline"]["method"] in ("naive", "historical_average")
