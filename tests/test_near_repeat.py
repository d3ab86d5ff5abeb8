"""Near repeats: the generator plants them with known parameters, and the self-exciting
point process finds those parameters again and forecasts better than last week's map.

Stated tolerance of the recovery (EM with a kernel background absorbs a little of the
clustering, so θ and 1/ω come out slightly low): branching ratio and mean delay within
25 % of the planted values, σ within 15 %.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import shapely

from geo.forecast.backtest import run_backtest
from geo.forecast.events import Events, events_from_frame
from geo.forecast.grid import Grid
from geo.forecast.methods import HistoricalAverage, Naive, SelfExcitingPointProcess
from geo.synth.near_repeat import NearRepeatPlan, plant_near_repeats

PLAN = NearRepeatPlan(branching_ratio=0.3, sigma_m=150.0, decay_days=3.0)
TOLERANCE = {"branching_ratio": 0.25, "decay_days": 0.25, "sigma_m": 0.15}
START = pd.Timestamp("2024-01-01")
DAYS = 120


def _assert_recovered(fit: Any, plan: NearRepeatPlan) -> None:
    assert fit.converged
    assert not fit.at_cutoff
    for name, tol in TOLERANCE.items():
        planted, found = getattr(plan, name), getattr(fit, name)
        assert abs(found - planted) <= tol * planted, f"{name}: planted {planted}, fitted {found:.3f}"


def _towns_history(seed: int) -> tuple[Events, Grid, int]:
    """A 20 km square: calls around six towns and spread over the land, Poisson in
    time, with near repeats planted on top."""
    rng = np.random.default_rng(seed)
    lat0, lon0, size = 31.40, 74.20, 0.2
    n = 14_000
    town = rng.integers(0, 7, n)  # 6 towns and the countryside (town 6)
    centres = rng.uniform([lat0 + 0.03, lon0 + 0.03], [lat0 + size - 0.03, lon0 + size - 0.03], (6, 2))
    lat = np.where(town < 6, centres[np.minimum(town, 5), 0] + rng.normal(0, 0.012, n),
                   rng.uniform(lat0, lat0 + size, n))
    lon = np.where(town < 6, centres[np.minimum(town, 5), 1] + rng.normal(0, 0.012, n),
                   rng.uniform(lon0, lon0 + size, n))
    seconds = np.sort(rng.uniform(0, DAYS * 86_400, n))
    near = plant_near_repeats(seconds, lat, lon, np.ones(n, dtype=bool), plan=PLAN, rng=rng,
                              end_seconds=DAYS * 86_400.0)
    frame = pd.DataFrame({"lat": np.r_[lat, near.lat], "lon": np.r_[lon, near.lon],
                          "t": START + pd.to_timedelta(np.r_[seconds, near.seconds], unit="s")})
    grid = Grid.from_polygon(shapely.box(lon0, lat0, lon0 + size, lat0 + size), 9)
    return events_from_frame(frame, time="t"), grid, len(near)


@pytest.mark.unit
def test_cascades_follow_the_plan() -> None:
    rng = np.random.default_rng(2)
    n = 50_000
    seconds = rng.uniform(0, 365 * 86_400, n)
    lat, lon = np.full(n, 31.5), np.full(n, 74.3)
    near = plant_near_repeats(seconds, lat, lon, np.ones(n, dtype=bool), plan=PLAN, rng=rng,
                              end_seconds=1e12)
    # a cascade has 1/(1-θ) calls: θ/(1-θ) offspring per call
    assert len(near) / n == pytest.approx(0.3 / 0.7, rel=0.03)
    first = near.generation == 1
    assert first.sum() / n == pytest.approx(0.3, rel=0.03)
    all_seconds = np.r_[seconds, near.seconds]
    delay_days = (near.seconds - all_seconds[near.parent]) / 86_400
    assert delay_days.min() > 0
    assert delay_days.mean() == pytest.approx(3.0, rel=0.03)
    dy_m = (near.lat - np.r_[lat, near.lat][near.parent]) * 110_574.0
    assert dy_m.std() == pytest.approx(150.0, rel=0.03)
    assert (near.parent < n + np.arange(len(near))).all()  # parents are listed before children
    inherited = near.inherit(np.arange(n) % 3)
    assert (inherited[n:] == inherited[near.parent]).all()


@pytest.mark.unit
def test_no_offspring_without_branching_or_after_the_end() -> None:
    rng = np.random.default_rng(1)
    seconds = np.linspace(0, 1000, 100)
    nothing = plant_near_repeats(seconds, np.full(100, 31.5), np.full(100, 74.3), np.ones(100, bool),
                                 plan=NearRepeatPlan(branching_ratio=0.0), rng=rng, end_seconds=1e9)
    assert len(nothing) == 0
    late = plant_near_repeats(seconds, np.full(100, 31.5), np.full(100, 74.3), np.ones(100, bool),
                              plan=PLAN, rng=rng, end_seconds=1000.0)
    assert (late.seconds < 1000.0).all()
    with pytest.raises(ValueError, match="branching_ratio"):
        NearRepeatPlan(branching_ratio=1.0).validate(["other_crime", "dacoity_robbery"])
    with pytest.raises(ValueError, match="not in the category table"):
        NearRepeatPlan(categories=("burglary",)).validate(["other_crime"])


@pytest.mark.slow
def test_point_process_recovers_planted_parameters_and_beats_naive() -> None:
    events, grid, planted = _towns_history(4)
    assert planted > 4000
    sepp = SelfExcitingPointProcess(window_days=DAYS)
    sepp.fit(events, grid, START + pd.Timedelta(days=DAYS), "week")
    assert sepp.fitted is not None
    _assert_recovered(sepp.fitted, PLAN)

    result = run_backtest(events, grid, [Naive(), HistoricalAverage(), SelfExcitingPointProcess()],
                          period="week", origins=8)
    j = result.coverages.index(0.05)
    sepp_result = result.methods["sepp"]
    assert sepp_result.mean("pai")[j] > result.methods["naive"].mean("pai")[j]
    assert sepp_result.p_vs["naive"][j] < 0.05  # paired over the 8 origins


@pytest.mark.slow
def test_generator_plants_near_repeats_the_forecaster_finds(punjab_set: Any) -> None:
    from api.shipped import generate_calls
    from geo.aggregate import area_geometry
    from geo.synth import SynthConfig

    # follow-up calls (the same incident minutes later) are duplicates, not repeats: off here
    calls, truth = generate_calls(4, 3, 0.25, start="2024-01", near_repeat=PLAN,
                                  config=SynthConfig(follow_up_share=0.0))
    record = truth["near_repeat"]
    assert record["branching_ratio"] == 0.3
    assert record["sigma_m"] == 150.0
    assert record["decay_days"] == 3.0
    assert record["offspring_calls"] == len(record["call_ids"]) > 1000
    by_id = calls.set_index("call_id")
    child = by_id.loc[record["call_ids"][:500]]
    parent = by_id.loc[record["parent_call_ids"][:500]]
    assert (child["category"].to_numpy() == parent["category"].to_numpy()).all()
    assert (child["received_at"].to_numpy() > parent["received_at"].to_numpy()).all()

    lahore = calls[calls["category"].isin(PLAN.categories) & (calls["district_code"] == "PK617")]
    events = events_from_frame(lahore, category="category")
    grid = Grid.from_polygon(area_geometry("district:PK617", punjab_set), 9)
    sepp = SelfExcitingPointProcess()
    sepp.fit(events, grid, pd.Timestamp("2024-05-01"), "week")
    assert sepp.fitted is not None
    _assert_recovered(sepp.fitted, PLAN)
    result = run_backtest(events, grid, [Naive(), HistoricalAverage(), sepp], period="week", origins=8)
    assert (result.methods["sepp"].p_vs["naive"] < 0.05).all()
