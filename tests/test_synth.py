"""The call-history generator: its distributions match their configuration, its truth is
really planted, it is deterministic, and the replay client is bounded and loopback-only.

Histories are generated at small ``scale`` (the shipped boundary set and router come from
the on-disk cache). Replay runs against a real Litestar app served by uvicorn on
127.0.0.1 inside the test, which records what it receives.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from api.shipped import CATEGORIES_FILE, load_categories
from geo.categories import CategoryTableError, read_categories, validate_categories
from geo.synth.config import LOCAL_UTC_OFFSET_HOURS, SynthConfig, SynthConfigError, hour_profile
from geo.synth.timing import Period, draw_times, hourly_intensity

SEED = 11
MONTHS = 4
SCALE = 0.03
START = "2024-01"


def _local_hour(times: pd.Series) -> np.ndarray:
    return ((times.dt.hour.to_numpy() + LOCAL_UTC_OFFSET_HOURS) % 24).astype(np.int64)


@pytest.fixture(scope="module")
def history() -> tuple[Any, dict[str, Any]]:
    from api.shipped import generate_calls

    return generate_calls(MONTHS, SEED, SCALE, start=START)


@pytest.fixture(scope="module")
def categories() -> pd.DataFrame:
    return load_categories()


# ----------------------------------------------------------------------------- table
@pytest.mark.unit
def test_category_table_matches_the_issue_and_pucar(categories: pd.DataFrame) -> None:
    codes = set(categories["code"])
    assert {"murder", "dacoity_robbery", "kidnapping", "rape", "terrorism", "other_crime",
            "traffic_accident", "fire", "domestic_violence", "harassment", "information",
            "hoax", "dropped"} <= codes
    serious = categories[categories["serious"]]
    assert set(serious["code"]) == {"murder", "dacoity_robbery", "kidnapping", "rape", "terrorism"}
    assert (serious["sla_urban_min"] == 10).all()
    assert (serious["sla_rural_min"] == 20).all()
    by = categories.set_index("code")["basis_calls"]
    assert by.sum() == 1_879_001
    assert by["hoax"] == 1_073_445
    assert by["dropped"] == 562_738
    assert by[categories.loc[categories["call_class"] == "case", "code"]].sum() == 124_136
    genuine = categories[categories["call_class"].isin(["case", "information"])]
    assert genuine["share"].sum() == pytest.approx(1.0, abs=1e-4)
    assert categories.loc[categories["code"].isin(["hoax", "dropped"]), "share"].isna().all()
    # every profile key is one the generator knows
    for key in categories["peak_profile"]:
        assert hour_profile(key).sum() == pytest.approx(1.0)


@pytest.mark.unit
def test_category_loader_returns_copies(categories: pd.DataFrame) -> None:
    mine = load_categories()
    mine.loc[0, "label"] = "changed"
    assert load_categories().loc[0, "label"] != "changed"


@pytest.mark.unit
def test_category_reader_reads_the_file_it_is_given(tmp_path: Path) -> None:
    """``geo.categories`` reads the table its caller names, and says so when it is absent."""
    raw = pd.read_csv(CATEGORIES_FILE, dtype=str, keep_default_na=False, na_values=[""])
    mine = tmp_path / "categories.csv"
    raw.assign(label=raw["label"].where(raw["code"] != "fire", "Fire (copy)")).to_csv(mine, index=False)
    table = read_categories(mine)
    assert table.set_index("code").loc["fire", "label"] == "Fire (copy)"
    assert load_categories().set_index("code").loc["fire", "label"] != "Fire (copy)"
    with pytest.raises(CategoryTableError, match="not found"):
        read_categories(tmp_path / "absent.csv")


@pytest.mark.unit
@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.assign(sla_urban_min=f["sla_urban_min"].where(f["code"] != "murder", "")), "SLA"),
    (lambda f: pd.concat([f, f.iloc[[0]]]), "duplicate"),
    (lambda f: f.assign(serious=f["serious"].where(f["code"] != "hoax", "true")), "serious"),
    (lambda f: f.assign(share=f["share"].where(f["code"] != "fire", "0.5")), "share"),
    (lambda f: f.assign(code=f["code"].where(f["code"] != "fire", "Fire!")), "snake_case"),
    (lambda f: f.drop(columns="related_group"), "related_group"),
])
def test_category_validation_names_the_broken_rule(change: Any, message: str) -> None:
    raw = pd.read_csv(CATEGORIES_FILE, dtype=str, keep_default_na=False, na_values=[""])
    validate_categories(raw)  # the shipped table passes
    broken = change(raw.fillna(""))
    broken = broken.replace("", np.nan)
    with pytest.raises(CategoryTableError, match=message):
        validate_categories(broken)


# ----------------------------------------------------------------------------- timing
@pytest.mark.unit
def test_time_draws_follow_each_hour_profile(categories: pd.DataFrame) -> None:
    """Chi-square of local hour counts against the configured profile, every category."""
    config = SynthConfig()
    period = Period.parse("2024-03", 2)  # includes Eid ul-Fitr (10 April 2024)
    lam = hourly_intensity(categories, period, config, scale=1.0)
    lam *= 24_000 / lam.sum(axis=1, keepdims=True)  # rare categories too: ~1,000 per hour bin
    cat, seconds = draw_times(lam, np.random.default_rng(5))
    hour = (seconds // 3600).astype(np.int64) % 24
    for c, row in categories.iterrows():
        observed = np.bincount(hour[cat == c], minlength=24)
        expected = hour_profile(row["peak_profile"]) * observed.sum()
        assert observed.sum() > 20_000, row["code"]
        chi2 = stats.chisquare(observed, expected)
        assert chi2.pvalue > 1e-3, (row["code"], chi2)
    # volume: a 30-day month at full scale is PUCAR-15's April 2020 volume (seasonal ±8 %)
    month = hourly_intensity(categories, Period.parse("2020-04", 1), config, scale=1.0).sum()
    assert month == pytest.approx(1_879_001, rel=0.1)


@pytest.mark.unit
def test_surges_raise_their_categories_on_their_days(categories: pd.DataFrame) -> None:
    config = SynthConfig()
    period = Period.parse("2024-04", 1)
    lam = hourly_intensity(categories, period, config, scale=1.0)
    codes = categories["code"].tolist()
    per_day = lam.reshape(len(codes), period.days, 24).sum(axis=2)
    robbery, murder = codes.index("dacoity_robbery"), codes.index("murder")
    eid = 9  # 10 April 2024, 0-based day index
    ratio = per_day[robbery, eid] / per_day[robbery, eid + 14]
    assert ratio == pytest.approx(1.4, rel=0.06)  # weekday and season differ slightly
    assert per_day[murder, eid] / per_day[murder, eid + 14] == pytest.approx(1.0, rel=0.06)


@pytest.mark.unit
def test_bad_settings_are_refused(categories: pd.DataFrame) -> None:
    from geo.synth.config import Surge

    with pytest.raises(SynthConfigError, match="unknown categories"):
        SynthConfig(surges=(Surge("x", Period.parse("2024-01", 1).start, 2.0, ("burglary",)),)
                    ).validate(categories["code"].tolist())
    with pytest.raises(SynthConfigError, match="max_out_of_coverage_share"):
        SynthConfig(max_out_of_coverage_share=0.7).validate(categories["code"].tolist())
    with pytest.raises(ValueError, match="months"):
        Period.parse("2024-01", 0)
    with pytest.raises(ValueError, match="YYYY-MM"):
        Period.parse("January", 1)


# ----------------------------------------------------------------------------- history
@pytest.mark.slow
def test_deterministic_for_a_seed() -> None:
    from api.shipped import generate_calls, synth_world
    from geo import synth
    from jurisdictions.sources import cache_dir

    a, truth_a = generate_calls(1, 5, 0.004, start="2024-02")
    # the same history from the world saved on disk, read back by the library
    world = synth_world(SynthConfig())
    saved = synth.load_world(synth.world_file(cache_dir(), world.router.index.version, SynthConfig()),
                             world.router, SynthConfig())
    assert saved is not None
    b, truth_b = synth.generate_calls(1, 5, 0.004, "2024-02", world=saved, categories=load_categories())
    c, _ = generate_calls(1, 6, 0.004, start="2024-02")
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
    assert a.geometry.geom_equals_exact(b.geometry, 0).all()
    assert json.dumps(truth_a) == json.dumps(truth_b)
    assert len(a) != len(c) or not np.array_equal(a["lat"], c["lat"])


@pytest.mark.slow
def test_a_world_serves_only_the_settlement_settings_it_was_built_for() -> None:
    from dataclasses import replace

    from api.shipped import synth_world
    from geo import synth

    world = synth_world(SynthConfig())
    other = replace(SynthConfig(), persons_per_village=2 * SynthConfig().persons_per_village)
    with pytest.raises(ValueError, match="settlement settings"):
        synth.generate_calls(1, 1, 0.001, "2024-01", other, world=world, categories=load_categories())


@pytest.mark.slow
def test_columns_and_truth_kept_apart(history: tuple[Any, dict[str, Any]]) -> None:
    from geo.synth import COLUMNS

    calls, truth = history
    assert tuple(calls.columns) == COLUMNS
    assert calls.crs.to_epsg() == 4326
    assert str(calls["received_at"].dt.tz) == "UTC"
    assert calls["call_id"].is_unique
    assert calls["received_at"].is_monotonic_increasing
    period = Period.parse(START, MONTHS)
    assert calls["received_at"].min() >= period.start_utc
    assert calls["received_at"].max() < period.end_utc
    # no truth in the columns: nothing names hotspots, slow stations or faults
    for word in ("hotspot", "slow", "fault", "truth", "planted"):
        assert not [c for c in calls.columns if word in c]
    assert {"hotspots", "slow_stations", "faults"} <= set(truth)
    # phones are synthetic: 039 + 8 digits
    assert calls["caller_phone"].str.fullmatch(r"039\d{8}").all()


@pytest.mark.slow
def test_every_call_routed_and_coverage_bounded(history: tuple[Any, dict[str, Any]]) -> None:
    from api.shipped import synth_world

    calls, _ = history
    world = synth_world(SynthConfig())
    stations = world.router.index.stations.set_index("code")
    assert calls["station_code"].astype(str).isin(stations.index).all()
    st = stations.loc[calls["station_code"].astype(str)]
    for level in ("tehsil_code", "district_code", "region_code"):
        assert (st[level].to_numpy() == calls[level].astype(str).to_numpy()).all()
    share = calls["out_of_coverage"].mean()
    assert share <= SynthConfig().max_out_of_coverage_share
    inside = ~calls["out_of_coverage"].to_numpy()
    rows, _ = world.router.station_rows(calls["lat"].to_numpy()[inside], calls["lon"].to_numpy()[inside])
    assert (world.router.codes[rows] == calls["station_code"].astype(str).to_numpy()[inside]).all()
    # the urban flag is the station's, the same for every call it gets
    assert (calls.groupby("station_code", observed=True)["urban"].nunique() == 1).all()
    assert 0.2 < calls["urban"].mean() < 0.95


@pytest.mark.slow
def test_hour_of_day_shape_in_the_history(history: tuple[Any, dict[str, Any]],
                                          categories: pd.DataFrame) -> None:
    calls, truth = history
    planted = {i for h in truth["hotspots"] for i in h["call_ids"]}
    base = calls[~calls["call_id"].isin(planted)]
    hours = _local_hour(base["received_at"])
    checked = 0
    for _, row in categories.iterrows():
        mine = hours[(base["category"] == row["code"]).to_numpy()]
        if mine.size < 3_000:
            continue
        shares = np.bincount(mine, minlength=24) / mine.size
        profile = hour_profile(row["peak_profile"])
        assert np.corrcoef(shares, profile)[0, 1] > 0.97, row["code"]
        assert np.abs(shares - profile).max() < 0.012, row["code"]
        checked += 1
    assert checked >= 4
    # the peaks the issue names: street crime in the evening, traffic at rush hours
    street = hours[(base["category"] == "other_crime").to_numpy()]
    assert 18 <= np.bincount(street, minlength=24).argmax() <= 22


@pytest.mark.slow
def test_category_shares_match_the_table(history: tuple[Any, dict[str, Any]],
                                         categories: pd.DataFrame) -> None:
    calls, truth = history
    planted = {i for h in truth["hotspots"] for i in h["call_ids"]}
    base = calls[~calls["call_id"].isin(planted)]
    counts = base["category"].value_counts()
    table = categories.set_index("code")
    basis = {str(k): float(v) for k, v in table["basis_calls"].items()}
    for cls in ("hoax", "dropped"):
        assert counts[cls] / len(base) == pytest.approx(basis[cls] / sum(basis.values()), abs=0.01)
    genuine = base[base["category"].isin(table.index[table["share"].notna()])]
    n = len(genuine)
    for code, share in table["share"].dropna().items():
        expected = share * n
        if expected < 100:
            continue
        # Poisson noise plus the festival surges in April (Eid ul-Fitr)
        assert abs(counts[code] - expected) <= 4 * np.sqrt(expected) + 0.05 * expected, code


@pytest.mark.slow
def test_response_medians_match_configuration(history: tuple[Any, dict[str, Any]]) -> None:
    calls, truth = history
    model = SynthConfig().response
    slow = {s["station_code"] for s in truth["slow_stations"]}
    faulty = set(truth["faults"]["missing_on_scene"]["call_ids"]) | set(
        truth["faults"]["on_scene_before_dispatched"]["call_ids"])
    case = calls[calls["dispatched_at"].notna() & ~calls["call_id"].isin(faulty)
                 & ~calls["station_code"].astype(str).isin(slow)]
    hour = _local_hour(case["received_at"])
    prio = np.where(case["serious"], model.serious_factor, 1.0)
    ack = (case["acknowledged_at"] - case["received_at"]).dt.total_seconds().to_numpy()
    travel = (case["on_scene_at"] - case["dispatched_at"]).dt.total_seconds().to_numpy()
    ack_n = ack / np.asarray(model.ack_hour_factor)[hour]
    travel_n = travel / (np.asarray(model.travel_hour_factor)[hour] * prio)
    urban = case["urban"].to_numpy()
    for k, where in enumerate((urban, ~urban)):
        assert where.sum() > 1_000
        assert np.median(ack_n[where]) == pytest.approx(model.ack_median_s[k], rel=0.06)
        assert np.median(travel_n[where]) == pytest.approx(model.travel_median_s[k], rel=0.05)
    response = (case["on_scene_at"] - case["received_at"]).dt.total_seconds() / 60
    med_u, med_r = response[urban].median(), response[~urban].median()
    assert 5 < med_u < 10 < med_r < 20  # inside the serious SLAs on median, rural slower
    # calls that are not dispatched: only closed, by the call taker
    other = calls[~calls["category"].isin(case["category"].unique())
                  | calls["dispatched_at"].isna()]
    assert other["acknowledged_at"].isna().all()
    assert (other["closed_at"] >= other["received_at"]).all()


@pytest.mark.slow
def test_fault_rates_and_their_truth(history: tuple[Any, dict[str, Any]]) -> None:
    calls, truth = history
    config = SynthConfig()
    case = calls[calls["dispatched_at"].notna()]
    n = len(case)
    missing = case["on_scene_at"].isna()
    early = case["on_scene_at"] < case["dispatched_at"]
    for observed, rate in ((missing, config.missing_on_scene_rate),
                           (early, config.on_scene_before_dispatch_rate)):
        sd = np.sqrt(n * rate * (1 - rate))
        assert abs(observed.sum() - n * rate) <= 4 * sd + 1
    assert sorted(case.loc[missing, "call_id"]) == truth["faults"]["missing_on_scene"]["call_ids"]
    assert sorted(case.loc[early, "call_id"]) == truth["faults"]["on_scene_before_dispatched"]["call_ids"]
    assert (case["closed_at"].notna()).all()
    # every other record is in order
    good = case[~missing & ~early]
    assert (good["received_at"] <= good["acknowledged_at"]).all()
    assert (good["acknowledged_at"] <= good["dispatched_at"]).all()
    assert (good["dispatched_at"] <= good["on_scene_at"]).all()
    assert (good["on_scene_at"] <= good["closed_at"]).all()


@pytest.mark.slow
def test_slow_stations_are_slow(history: tuple[Any, dict[str, Any]]) -> None:
    calls, truth = history
    config = SynthConfig()
    slow = truth["slow_stations"]
    assert len(slow) == config.slow_stations
    assert {s["urban"] for s in slow} == {True, False}
    case = calls[calls["on_scene_at"].notna() & (calls["on_scene_at"] >= calls["dispatched_at"])]
    response = (case["on_scene_at"] - case["received_at"]).dt.total_seconds()
    is_slow = case["station_code"].astype(str).isin({s["station_code"] for s in slow})
    for urban in (True, False):
        mine = (case["urban"] == urban).to_numpy()
        ratio = response[mine & is_slow].median() / response[mine & ~is_slow].median()
        assert ratio == pytest.approx(config.slow_factor, rel=0.25)


@pytest.mark.slow
def test_planted_hotspots_are_in_the_data(history: tuple[Any, dict[str, Any]]) -> None:
    from geo import h3cells

    calls, truth = history
    labels = Period.parse(START, MONTHS).labels()
    genuine = calls[~calls["category"].isin(["hoax", "dropped", "information"])]
    res = truth["hotspots"][0]["res"]
    cells = h3cells.latlng_to_cells(genuine["lat"].to_numpy(), genuine["lon"].to_numpy(), res)
    local = genuine["received_at"] + pd.Timedelta(hours=LOCAL_UTC_OFFSET_HOURS)
    table = pd.DataFrame({"cell": cells, "month": local.dt.strftime("%Y-%m").to_numpy()})
    counts = table.groupby(["cell", "month"]).size().unstack(fill_value=0).reindex(
        columns=labels, fill_value=0)
    typical = counts[counts > 0].stack().quantile(0.99)
    classes = {h["class"] for h in truth["hotspots"]}
    assert classes == {"persistent", "new", "intensifying", "diminishing"}
    for spot in truth["hotspots"]:
        cell = int(spot["h3"], 16)
        assert spot["station_code"]
        row = counts.loc[cell] if cell in counts.index else pd.Series(0, index=labels)
        for month in labels:
            expected = spot["expected_extra_calls"][month]
            if expected > 0:
                # clearly elevated: above nearly every other cell-month, near its plan
                assert row[month] > typical, (spot["id"], month, row[month], typical)
                assert row[month] >= round(expected), (spot["id"], month)
            else:
                assert row[month] <= typical, (spot["id"], month)
        if spot["class"] == "intensifying":
            assert stats.spearmanr(np.arange(MONTHS), row.to_numpy()).statistic > 0
        if spot["class"] == "diminishing":
            assert stats.spearmanr(np.arange(MONTHS), row.to_numpy()).statistic < 0
    # hotspots are apart from each other (no two within the separation distance)
    spots = np.array([int(s["h3"], 16) for s in truth["hotspots"]], dtype=np.uint64)
    origin, near = h3cells.grid_disk_pairs(spots, SynthConfig().hotspots.separation_k - 1)
    assert not (np.isin(near, spots) & (near != spots[origin])).any()


@pytest.mark.slow
def test_cli_writes_geoparquet_and_a_separate_truth(tmp_path: Path) -> None:
    import geopandas as gpd
    from typer.testing import CliRunner

    from api.cli import app
    from geo.synth import COLUMNS

    out, truth = tmp_path / "calls.parquet", tmp_path / "truth.json"
    result = CliRunner().invoke(app, ["synth", "calls", "--months", "1", "--seed", "2", "--scale",
                                      "0.003", "--start", "2024-05", "--out", str(out),
                                      "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    frame = gpd.read_parquet(out)
    assert tuple(frame.columns) == COLUMNS
    assert frame.crs.to_epsg() == 4326
    facts = json.loads(truth.read_text())
    assert facts["counts"]["calls"] == len(frame)
    assert facts["hotspots"]
    assert facts["slow_stations"]
    assert not set(facts) & set(frame.columns)
    same = CliRunner().invoke(app, ["synth", "calls", "--months", "1", "--seed", "2",
                                    "--out", str(out), "--truth", str(out)])
    assert same.exit_code != 0


@pytest.mark.slow
def test_full_scale_month_within_a_minute(history: tuple[Any, dict[str, Any]]) -> None:
    """The issue's budget: one month at full scale in ≤ 60 s (router and towns cached)."""
    from api.shipped import generate_calls

    began = time.perf_counter()
    calls, _ = generate_calls(1, 1, 1.0, start="2024-04")
    seconds = time.perf_counter() - began
    print(f"\nfull-scale month: {len(calls):,} calls generated in {seconds:.1f} s")
    assert len(calls) > 1_700_000
    assert seconds <= 60


# ----------------------------------------------------------------------------- replay
class _Recorder:
    """What the test server received: (Idempotency-Key, body, arrival time)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str | None, dict[str, Any], float]] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def call_server() -> Iterator[tuple[str, _Recorder]]:
    """A minimal real service on 127.0.0.1 that records ``POST /api/v1/calls``."""
    import uvicorn
    from litestar import Litestar, Request, post
    from litestar.params import JSONBody

    recorder = _Recorder()

    @post("/api/v1/calls", status_code=201)
    async def create_call(request: Request[Any, Any, Any],
                          data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        recorder.requests.append((request.headers.get("idempotency-key"), data, time.monotonic()))
        await asyncio.sleep(0.002)
        return {"id": len(recorder.requests)}

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(Litestar([create_call]), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "test server did not start"
    yield f"http://127.0.0.1:{port}", recorder
    server.should_exit = True
    thread.join(timeout=10)


def _little_history(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "call_id": np.arange(1, n + 1),
        "received_at": pd.Timestamp("2024-01-01T00:00:00Z") + pd.to_timedelta(np.arange(n) * 7, "s"),
        "lat": rng.uniform(31.4, 31.6, n), "lon": rng.uniform(74.2, 74.4, n),
        "category": pd.Categorical(rng.choice(["murder", "hoax", "fire"], n)),
        "caller_phone": [f"039{k:08d}" for k in range(n)],
    })


@pytest.mark.unit
def test_replay_is_rate_bounded_with_idempotency_keys(call_server: tuple[str, _Recorder]) -> None:
    from api.cli.synth import run_replay

    url, recorder = call_server
    recorder.requests.clear()
    calls = _little_history(500)
    report = asyncio.run(run_replay(calls, url, rate=40.0, duration=1.0, concurrency=8))
    got = list(recorder.requests)
    assert report.sent == len(got) <= 41
    assert report.succeeded == report.sent
    assert not report.errors
    assert report.achieved_rate <= 45
    assert report.latency_ms["p50"] > 0
    assert report.latency_ms["p99"] >= report.latency_ms["p50"]
    keys = [k for k, _, _ in got]
    assert all(k and k.startswith("synth-") for k in keys)
    assert len(set(keys)) == len(keys)
    span = got[-1][2] - got[0][2]
    assert span >= (len(got) - 1) / 40 * 0.5  # spread over the second, not a burst
    body = got[0][1]
    assert set(body) == {"lat", "lon", "category", "caller_phone", "received_at"}
    # the same calls again carry the same keys (the service answers them without duplicates)
    recorder.requests.clear()
    asyncio.run(run_replay(calls, url, rate=200.0, duration=5.0, max_calls=len(keys)))
    assert sorted(str(k) for k, _, _ in recorder.requests) == sorted(str(k) for k in keys)


@pytest.mark.unit
def test_replay_count_bound_and_errors(call_server: tuple[str, _Recorder]) -> None:
    from api.cli.synth import run_replay

    url, recorder = call_server
    recorder.requests.clear()
    report = asyncio.run(run_replay(_little_history(50), url, rate=500.0, duration=5.0,
                                    max_calls=7, restamp=True))
    assert report.sent == 7 == len(recorder.requests)
    assert report.elapsed_s < 2
    assert all("received_at" not in body for _, body, _ in recorder.requests)
    # restamped calls are new calls: another run of the same file sends other keys
    first = {str(k) for k, _, _ in recorder.requests}
    recorder.requests.clear()
    asyncio.run(run_replay(_little_history(50), url, rate=500.0, duration=5.0, max_calls=7,
                           restamp=True))
    again = {str(k) for k, _, _ in recorder.requests}
    assert len(again) == 7
    assert not first & again
    assert all("-live-" in k for k in first | again)
    wrong = asyncio.run(run_replay(_little_history(5), url + "/nowhere", rate=100.0, duration=1.0))
    assert wrong.succeeded == 0
    assert wrong.errors == {"404": 5}


@pytest.mark.unit
def test_replay_explains_refusals() -> None:
    from api.cli.synth import replay_hints

    assert replay_hints({}, token=None, restamp=False) == []
    [missing] = replay_hints({"401": 16}, token=None, restamp=False)
    assert "none was given" in missing
    assert "safecity token --role call_taker" in missing
    [refused] = replay_hints({"401": 3}, token="x.y.z", restamp=False)
    assert "refused this one" in refused
    [conflict] = replay_hints({"409": 5}, token="t", restamp=False)
    assert "--restamp" in conflict
    [conflict] = replay_hints({"409": 5}, token="t", restamp=True)
    assert "--restamp" not in conflict
    assert "scope" in replay_hints({"403": 1}, token="t", restamp=False)[0]


@pytest.mark.unit
@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "http://example.com", "https://8.8.8.8",
                                 "http://localhost.example.org:8000", "ftp://127.0.0.1/",
                                 "http://[2001:db8::1]:8000"])
def test_replay_refuses_non_loopback(url: str) -> None:
    from api.cli.synth import NonLoopbackTargetError, ensure_loopback, run_replay

    with pytest.raises(NonLoopbackTargetError):
        ensure_loopback(url)
    with pytest.raises(NonLoopbackTargetError):
        asyncio.run(run_replay(_little_history(3), url, rate=1.0, duration=1.0))


@pytest.mark.unit
@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://127.8.9.10:1/",
                                 "http://localhost:8000/", "http://[::1]:8000",
                                 "http://127.0.0.1:8000/api/v1/calls"])
def test_replay_accepts_loopback(url: str) -> None:
    from api.cli.synth import ensure_loopback

    assert ensure_loopback(url).endswith("/api/v1/calls")
    assert "/api/v1/calls/api/v1/calls" not in ensure_loopback(url)


@pytest.mark.unit
def test_replay_cli_end_to_end(call_server: tuple[str, _Recorder], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    url, recorder = call_server
    recorder.requests.clear()
    path = tmp_path / "calls.parquet"
    _little_history(30).to_parquet(path)
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["synth", "replay", str(path), "--url", url, "--rate", "50",
                                      "--duration", "2", "--max-calls", "12", "--json",
                                      str(report_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["sent"] == report["succeeded"] == 12 == len(recorder.requests)
    assert {"p50", "p90", "p99"} <= set(report["latency_ms"])
    refused = CliRunner().invoke(app, ["synth", "replay", str(path), "--url", "http://192.168.1.9:80",
                                       "--rate", "5", "--duration", "1"])
    assert refused.exit_code == 2
    assert "loopback" in refused.output
