"""Safe City siting and ranking: known optima, spopt agreement, fixed sites, curves, errors.

Golden values come from instances small enough to solve by hand or by enumeration; the
spopt comparisons solve spopt's own dense models on the same cost matrix.
"""

from __future__ import annotations

import doctest
import itertools
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pulp
import pytest
import shapely

from api.shipped import load_categories, load_planning_weights
from geo import coverage
from geo.coverage import (
    CoverageInputError,
    CoverageMatrix,
    InfeasiblePlanError,
    MaximalCoverage,
    NoDemandError,
    Reduction,
    SetCoverage,
    SiteFileError,
    TehsilRef,
    coverage_curve,
    demand_cells,
    greedy_coverage,
    read_sites,
)
from geo.planning import COMPONENTS, read_planning_weights, score_components

pytestmark = [
    # the spopt reference models build pulp variables the way pulp 3.3 deprecates, on pulp's
    # bundled CBC (also deprecated); both are spopt's and pulp's business, not this module's
    pytest.mark.filterwarnings("ignore:Constructing LpVariable:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:PULP_CBC_CMD is deprecated:DeprecationWarning"),
]

FAR = 10.0

# The greedy trap: S3 covers four points, so greedy takes it first and ends at 5 of 6 with
# two sites, while S1 + S2 cover all six.
TRAP_SETS = ({0, 1, 2}, {3, 4, 5}, {0, 1, 3, 4})


def trap_cost() -> np.ndarray:
    cost = np.full((6, 3), FAR)
    for j, members in enumerate(TRAP_SETS):
        cost[sorted(members), j] = 0.0
    return cost


def random_instance(seed: int, n_clients: int = 60, n_sites: int = 40,
                    n_existing: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points in a 3 km square, integer weights, a few fixed sites."""
    rng = np.random.default_rng(seed)
    clients = rng.uniform(0, 3000, (n_clients, 2))
    sites = rng.uniform(0, 3000, (n_sites, 2))
    cost = np.hypot(clients[:, None, 0] - sites[None, :, 0], clients[:, None, 1] - sites[None, :, 1])
    weights = rng.integers(1, 20, n_clients).astype(float)
    predefined = np.zeros(n_sites, dtype=int)
    predefined[rng.choice(n_sites, n_existing, replace=False)] = 1
    return cost, weights, predefined


def brute_force_mclp(cost: np.ndarray, weights: np.ndarray, radius: float, predefined: np.ndarray,
                     new_sites: int) -> float:
    cover = cost <= radius
    fixed = predefined.astype(bool)
    free = np.flatnonzero(~fixed)
    best = 0.0
    for combo in itertools.combinations(free, new_sites):
        chosen = fixed.copy()
        chosen[list(combo)] = True
        best = max(best, float(weights[cover[:, chosen].any(axis=1)].sum()))
    return best


# --------------------------------------------------------------------------- known optima


@pytest.mark.unit
def test_known_optimum_beats_greedy_trap() -> None:
    cost, weights = trap_cost(), np.ones(6)
    model = MaximalCoverage.from_cost_matrix(cost, weights, 1.0, new_sites=2).solve()
    assert model.selected.tolist() == [True, True, False]
    assert model.objective == 6.0
    assert model.covered_share == 1.0
    assert model.report is not None
    assert model.report.status == "optimal"
    assert model.report.gap == 0.0
    greedy = greedy_coverage(model.matrix, 2)
    assert greedy.order.tolist()[0] == 2  # the trap
    assert greedy.covered_share == pytest.approx(5 / 6)


@pytest.mark.unit
def test_known_optimum_lscp_full_and_share() -> None:
    cost, weights = trap_cost(), np.ones(6)
    full = SetCoverage.from_cost_matrix(cost, weights, 1.0).solve()
    assert full.new_sites == 2
    assert full.selected.tolist() == [True, True, False]
    share = SetCoverage.from_cost_matrix(cost, weights, 1.0, target=0.6).solve()
    assert share.new_sites == 1
    assert share.selected.tolist() == [False, False, True]
    assert share.covered_share == pytest.approx(4 / 6)


@pytest.mark.unit
@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_both_solvers_find_the_optimum_and_report(solver: coverage.Solver) -> None:
    model = MaximalCoverage.from_cost_matrix(trap_cost(), np.ones(6), 1.0, new_sites=2).solve(solver)
    assert model.objective == 6.0
    assert model.report is not None
    assert model.report.gap == 0.0
    assert model.report.bound == pytest.approx(6.0)
    assert model.report.solver.startswith("HiGHS" if solver == "highs" else "CBC")


@pytest.mark.unit
def test_geodataframe_known_optimum_in_metres() -> None:
    """Points near Lahore 0, 400, 1000 and 1400 m east of a site; a 450 m radius."""
    lat, lon0 = 31.52, 74.35
    metres_per_degree = 111_320 * np.cos(np.radians(lat))
    offsets = np.array([0.0, 400.0, 1000.0, 1400.0])
    demand = gpd.GeoDataFrame({"w": [1.0, 1.0, 3.0, 3.0]},
                              geometry=gpd.points_from_xy(lon0 + offsets / metres_per_degree, [lat] * 4),
                              crs=4326)
    sites = gpd.GeoDataFrame({"existing": [True, False, False]},
                             geometry=gpd.points_from_xy(lon0 + np.array([0.0, 700.0, 1200.0])
                                                         / metres_per_degree, [lat] * 3), crs=4326)
    model = MaximalCoverage.from_geodataframe(demand, sites, "w", 450.0, new_sites=1,
                                              predefined_facility_col="existing").solve()
    assert model.selected.tolist() == [True, False, True]
    assert model.covered_share_before == pytest.approx(2 / 8)
    assert model.covered_share == 1.0


# --------------------------------------------------------------------------- agreement with spopt


@pytest.mark.unit
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mclp_objective_equals_spopt_on_the_same_matrix(seed: int) -> None:
    from spopt.locate import MCLP

    cost, weights, predefined = random_instance(seed)
    radius, new_sites = 450.0, 5
    reference = MCLP.from_cost_matrix(cost, weights, radius, p_facilities=int(predefined.sum()) + new_sites,
                                      predefined_facilities_arr=predefined)
    reference.solve(pulp.PULP_CBC_CMD(msg=False))
    expected = pulp.value(reference.problem.objective)
    ours = MaximalCoverage.from_cost_matrix(cost, weights, radius, new_sites=new_sites,
                                            predefined_facilities_arr=predefined).solve()
    assert ours.objective == pytest.approx(expected)
    spopt_sites = np.array([v.value() for v in reference.fac_vars]) > 0.5
    assert ours.matrix.covered_weight(spopt_sites) == pytest.approx(expected)


@pytest.mark.unit
def test_mclp_from_geodataframe_equals_spopt_from_geodataframe() -> None:
    from spopt.locate import MCLP

    rng = np.random.default_rng(7)
    dxy, fxy = rng.uniform(0, 3000, (50, 2)), rng.uniform(0, 3000, (30, 2))
    demand = gpd.GeoDataFrame({"w": rng.integers(1, 9, 50).astype(float)},
                              geometry=gpd.points_from_xy(dxy[:, 0] + 4.4e5, dxy[:, 1] + 3.49e6),
                              crs=32643)
    sites = gpd.GeoDataFrame({"fixed": np.isin(np.arange(30), [4, 9])},
                             geometry=gpd.points_from_xy(fxy[:, 0] + 4.4e5, fxy[:, 1] + 3.49e6),
                             crs=32643)
    reference = MCLP.from_geodataframe(demand, sites, "geometry", "geometry", "w", service_radius=500.0,
                                       p_facilities=6, predefined_facility_col="fixed")
    reference.solve(pulp.PULP_CBC_CMD(msg=False))
    ours = MaximalCoverage.from_geodataframe(demand, sites, "w", 500.0, new_sites=4,
                                             predefined_facility_col="fixed").solve()
    assert ours.objective == pytest.approx(pulp.value(reference.problem.objective))


@pytest.mark.unit
@pytest.mark.parametrize("seed", [4, 5])
def test_lscp_equals_spopt_lscp(seed: int) -> None:
    from spopt.locate import LSCP

    cost, weights, predefined = random_instance(seed, n_clients=40, n_sites=60)
    radius = 700.0
    cost[:, :40] = np.minimum(cost[:, :40], np.where(np.eye(40), 0.0, np.inf))  # every client coverable
    reference = LSCP.from_cost_matrix(cost, radius, predefined_facilities_arr=predefined)
    reference.solve(pulp.PULP_CBC_CMD(msg=False))
    ours = SetCoverage.from_cost_matrix(cost, weights, radius, predefined_facilities_arr=predefined).solve()
    assert ours.selected.sum() == pytest.approx(pulp.value(reference.problem.objective))
    assert ours.covered_share == 1.0


@pytest.mark.unit
@pytest.mark.parametrize("seed", range(6))
def test_reductions_keep_the_optimum(seed: int) -> None:
    """Reduced MILP against enumeration of every plan on a small instance."""
    cost, weights, predefined = random_instance(seed, n_clients=25, n_sites=11, n_existing=2)
    for new_sites in (1, 2, 3):
        ours = MaximalCoverage.from_cost_matrix(cost, weights, 700.0, new_sites=new_sites,
                                                predefined_facilities_arr=predefined).solve()
        assert ours.objective == pytest.approx(brute_force_mclp(cost, weights, 700.0, predefined, new_sites))


@pytest.mark.unit
def test_reduction_merges_and_drops_dominated_sites() -> None:
    # client 0 covered by the fixed site 0; clients 1 and 2 by the same sites {1, 2};
    # site 3 covers client 3 only, and site 2 covers {1, 2} like site 1 (a tie: 1 stays)
    cost = np.array([[0, 9, 9, 9], [9, 0, 0, 9], [9, 0, 0, 9], [9, 9, 9, 0]], dtype=float)
    matrix = CoverageMatrix.from_cost_matrix(cost, [5.0, 1.0, 2.0, 4.0], 1.0, [1, 0, 0, 0])
    red = Reduction.of(matrix)
    assert red.base_weight == 5.0
    assert red.group_weights.tolist() == [3.0, 4.0]
    assert red.kept.tolist() == [False, True, False, True]


@pytest.mark.unit
@pytest.mark.parametrize("seed", [8, 9])
def test_share_lscp_is_the_smallest_mclp_budget_reaching_the_target(seed: int) -> None:
    cost, weights, predefined = random_instance(seed, n_clients=50, n_sites=30)
    matrix = CoverageMatrix.from_cost_matrix(cost, weights, 600.0, predefined)
    target = 0.7
    lscp = SetCoverage(matrix, target).solve()
    curve = coverage_curve(matrix, lscp.new_sites)
    reaching = curve.loc[curve["covered_share"] >= target - 1e-9, "sites"]
    assert int(reaching.min()) == lscp.new_sites
    assert lscp.covered_share >= target - 1e-9


# --------------------------------------------------------------------------- invariants


@pytest.mark.unit
@pytest.mark.parametrize("seed", [10, 11])
def test_existing_sites_always_kept(seed: int) -> None:
    cost, weights, predefined = random_instance(seed)
    fixed = predefined.astype(bool)
    matrix = CoverageMatrix.from_cost_matrix(cost, weights, 400.0, predefined)
    for new_sites in (0, 1, 6):
        mclp = MaximalCoverage(matrix, new_sites).solve()
        assert mclp.selected[fixed].all()
        assert int(mclp.new_selected.sum()) <= new_sites
    for target in (0.3, 1.0):
        if matrix.weights[matrix.coverable].sum() / matrix.total_weight >= target:
            assert SetCoverage(matrix, target).solve().selected[fixed].all()
    assert greedy_coverage(matrix, 5).selected[fixed].all()


@pytest.mark.unit
@pytest.mark.parametrize("seed", [12, 13])
def test_curve_is_non_decreasing_and_at_least_greedy(seed: int) -> None:
    cost, weights, predefined = random_instance(seed)
    matrix = CoverageMatrix.from_cost_matrix(cost, weights, 450.0, predefined)
    curve = coverage_curve(matrix, 12)
    assert curve["sites"].tolist() == list(range(13))
    assert (np.diff(curve["covered_share"]) >= -1e-12).all()
    assert (np.diff(curve["greedy_share"]) >= -1e-12).all()
    assert (curve["covered_share"] >= curve["greedy_share"] - 1e-9).all()
    assert curve["covered_share"].iloc[0] == pytest.approx(matrix.covered_share(matrix.predefined))


@pytest.mark.unit
def test_curve_saturates_once_everything_is_covered() -> None:
    curve = coverage_curve(CoverageMatrix.from_cost_matrix(trap_cost(), np.ones(6), 1.0), 3)
    assert curve["covered_share"].tolist() == pytest.approx([0.0, 4 / 6, 1.0, 1.0])
    assert curve["status"].iloc[-1] == "saturated"


@pytest.mark.unit
def test_time_limited_solve_never_falls_below_its_greedy_start() -> None:
    cost, weights, predefined = random_instance(21, n_clients=400, n_sites=300)
    matrix = CoverageMatrix.from_cost_matrix(cost, weights, 500.0, predefined)
    model = MaximalCoverage(matrix, 25).solve(time_limit=1.0)
    assert model.objective >= matrix.covered_weight(greedy_coverage(matrix, 25).selected) - 1e-9
    assert model.report is not None
    assert model.report.gap >= 0.0


# --------------------------------------------------------------------------- errors


def square_tehsil() -> TehsilRef:
    return TehsilRef(code="PKTEST1", name="Test Tehsil", district_code="PKTEST", district="Test",
                     population_2023=100_000, geometry=shapely.box(74.30, 31.50, 74.40, 31.60))


@pytest.mark.unit
def test_tehsil_without_calls_is_a_clear_error() -> None:
    calls = pd.DataFrame({"lat": [31.55], "lon": [74.35], "category": ["murder"],
                          "tehsil_code": ["PKOTHER"]})
    with pytest.raises(NoDemandError, match=r"Test Tehsil \(PKTEST1\) has no calls"):
        demand_cells(calls, square_tehsil(), categories=load_categories())
    with pytest.raises(NoDemandError, match="no calls"):
        demand_cells(calls.iloc[:0], square_tehsil(), categories=load_categories())
    with pytest.raises(ValueError, match="no calls"):  # also a ValueError for generic callers
        demand_cells(calls, square_tehsil(), categories=load_categories())


@pytest.mark.unit
def test_only_unweighted_calls_and_unknown_categories() -> None:
    calls = pd.DataFrame({"lat": [31.55, 31.56], "lon": [74.35, 74.36],
                          "category": ["hoax", "information"]})
    with pytest.raises(NoDemandError, match="seriousness weight above zero"):
        demand_cells(calls, square_tehsil(), categories=load_categories())
    with pytest.raises(CoverageInputError, match="unknown category"):
        demand_cells(calls.assign(category=["hoax", "alien_landing"]), square_tehsil(),
                     categories=load_categories())


@pytest.mark.unit
def test_demand_cells_weights_and_position_filter() -> None:
    calls = pd.DataFrame({"lat": [31.55, 31.55, 31.58, 32.5], "lon": [74.35, 74.35, 74.31, 74.35],
                          "category": ["murder", "other_crime", "hoax", "murder"]})
    demand = demand_cells(calls, square_tehsil(), categories=load_categories())  # by position
    assert demand["demand"].sum() == 12.0  # murder 10 + other crime 2; hoax 0; one call outside
    assert demand["serious_calls"].sum() == 1
    assert len(demand) == 1


@pytest.mark.unit
def test_demand_is_weighted_by_the_category_table_it_is_given() -> None:
    calls = pd.DataFrame({"lat": [31.55, 31.55], "lon": [74.35, 74.35], "category": ["murder", "hoax"]})
    table = load_categories()
    table.loc[table["code"] == "hoax", "seriousness_weight"] = 1.0
    demand = demand_cells(calls, square_tehsil(), categories=table)
    assert demand["demand"].sum() == 11.0  # murder 10 + hoax 1 under this table


@pytest.mark.unit
def test_a_tehsil_named_by_code_needs_the_boundary_set() -> None:
    calls = pd.DataFrame({"lat": [31.55], "lon": [74.35], "category": ["murder"]})
    with pytest.raises(CoverageInputError, match="give the boundary set"):
        coverage.tehsil_instance(calls, "PK61702", existing=read_sites_frame([]),
                                 categories=load_categories())
    instance = coverage.tehsil_instance(calls, square_tehsil(), existing=read_sites_frame([]),
                                        categories=load_categories())
    assert instance.tehsil.code == "PKTEST1"
    assert instance.matrix.n_clients == 1


@pytest.mark.unit
def test_stand_in_cache_file_is_keyed_by_set_version_and_parameters(tmp_path: Path) -> None:
    one = coverage.stand_in_sites_file(tmp_path, "set-1")
    assert one.parent == tmp_path
    assert one == coverage.stand_in_sites_file(tmp_path, "set-1", coverage.ExistingSiteParameters())
    assert one != coverage.stand_in_sites_file(tmp_path, "set-2")
    assert one != coverage.stand_in_sites_file(tmp_path, "set-1",
                                               coverage.ExistingSiteParameters(spacing_m=250.0))


@pytest.mark.unit
def test_infeasible_requests_are_clear() -> None:
    matrix = CoverageMatrix.from_cost_matrix(trap_cost()[:, :1], np.ones(6), 1.0)
    with pytest.raises(InfeasiblePlanError, match=r"at most 50\.0%"):
        SetCoverage(matrix, 0.9)
    with pytest.raises(InfeasiblePlanError, match="only 1 candidate"):
        MaximalCoverage(matrix, 2)
    with pytest.raises(InfeasiblePlanError, match="more than 1 new sites"):
        SetCoverage(CoverageMatrix.from_cost_matrix(trap_cost(), np.ones(6), 1.0), 1.0, 1).solve()
    with pytest.raises(CoverageInputError, match="target share"):
        SetCoverage(matrix, 0.0)


# --------------------------------------------------------------------------- site files


@pytest.mark.unit
def test_read_sites_csv_and_geojson(tmp_path: Path) -> None:
    csv = tmp_path / "cams.csv"
    csv.write_text("site_id,name,lat,lon\nA,Mall Road,31.56,74.32\nB,Liberty,31.51,74.34\n")
    sites = read_sites(csv, existing=True)
    assert sites["site_id"].tolist() == ["A", "B"]
    assert sites["existing"].all()
    assert not sites["stand_in"].any()
    assert sites.crs.to_epsg() == 4326
    geojson = tmp_path / "cands.geojson"
    sites.to_file(geojson, driver="GeoJSON")
    again = read_sites(geojson, existing=False)
    assert again["site_id"].tolist() == ["A", "B"]
    assert not again["existing"].any()
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    with pytest.raises(SiteFileError, match="'lat' and 'lon'"):
        read_sites(bad, existing=True)
    dupes = tmp_path / "dupes.csv"
    dupes.write_text("id,lat,lon\nA,31.5,74.3\nA,31.6,74.3\n")
    with pytest.raises(SiteFileError, match="duplicate"):
        read_sites(dupes, existing=True)


# --------------------------------------------------------------------------- ranking


@pytest.mark.unit
def test_weights_table_is_valid_and_sums_to_one() -> None:
    weights = load_planning_weights()
    assert weights["component"].tolist() == list(COMPONENTS)
    assert weights["weight"].sum() == pytest.approx(1.0)
    assert set(weights["direction"]) <= {"higher", "lower"}
    assert weights.set_index("component").loc["covered_share", "direction"] == "lower"


@pytest.mark.unit
def test_bad_weights_table(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text("component,weight,direction\nserious_per_100k,1,higher\n")
    with pytest.raises(coverage.CoverageInputError, match="missing"):
        read_planning_weights(path)


@pytest.mark.unit
def test_score_is_the_sum_of_its_parts() -> None:
    rng = np.random.default_rng(3)
    metrics = pd.DataFrame({c: rng.uniform(0, 10, 30) for c in COMPONENTS})
    metrics.loc[4, "p90_response_min"] = np.nan
    weights = load_planning_weights()
    scored = score_components(metrics, weights)
    points = scored[[f"{c}_points" for c in COMPONENTS]]
    assert np.allclose(points.sum(axis=1), scored["score"])
    assert scored["score"].between(0, 100).all()
    for component, weight in zip(weights["component"], weights["weight"], strict=True):
        assert scored[f"{component}_points"].max() == pytest.approx(100 * float(weight))
    assert "p90_response_min missing" in str(scored.loc[4, "notes"])
    # direction: more serious calls → more points; more coverage → fewer
    order = metrics["serious_per_100k"].argsort().to_numpy()
    assert np.all(np.diff(scored["serious_per_100k_points"].to_numpy()[order]) >= 0)
    order = metrics["covered_share"].argsort().to_numpy()
    assert np.all(np.diff(scored["covered_share_points"].to_numpy()[order]) <= 0)


@pytest.mark.unit
def test_module_doctests() -> None:
    import importlib
    import pkgutil

    from geo import planning

    modules = [importlib.import_module(f"geo.coverage.{info.name}")
               for info in pkgutil.iter_modules(coverage.__path__)]
    attempted = 0
    for module in (*modules, planning):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= 6  # the models, matrix, greedy and demand examples, the score


# --------------------------------------------------------------------------- real tehsils (slow)

LAHORE_CITY = "PK61702"


def lahore_calls(n: int = 400, seed: int = 5) -> pd.DataFrame:
    """Calls clustered around three spots of Lahore City, over 60 days."""
    rng = np.random.default_rng(seed)
    centres = np.array([[31.4697, 74.2728], [31.50, 74.20], [31.42, 74.25]])  # inside Lahore City
    which = rng.integers(0, 3, n)
    lat = centres[which, 0] + rng.normal(0, 0.004, n)
    lon = centres[which, 1] + rng.normal(0, 0.004, n)
    received = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 60, n), unit="D")
    return pd.DataFrame({
        "lat": lat, "lon": lon,
        "category": rng.choice(["murder", "dacoity_robbery", "other_crime", "hoax"], n),
        "tehsil_code": LAHORE_CITY, "received_at": received,
        "on_scene_at": received + pd.to_timedelta(rng.uniform(5, 40, n), unit="min"),
    })


@pytest.mark.slow
def test_plan_sites_end_to_end(punjab_set, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    existing = pd.DataFrame({"site_id": ["cam-1", "cam-2"], "lat": [31.4697, 31.55], "lon": [74.2728, 74.25]})
    path = tmp_path / "existing.csv"
    existing.to_csv(path, index=False)
    sites = read_sites(path, existing=True)
    plan = coverage.plan_sites(lahore_calls(), LAHORE_CITY, new_sites=2, radius_m=500, existing=sites,
                               categories=load_categories(), boundaries=punjab_set)
    s = plan.summary
    assert s["tehsil"] == "Lahore City"
    assert s["epsg"] == 32643
    assert s["status"] == "optimal"
    assert s["existing_sites"] == 2
    assert not s["existing_sites_stand_in"]
    assert set(plan.sites.loc[plan.sites["existing"], "site_id"]) == {"cam-1", "cam-2"}
    assert int(plan.sites["new"].sum()) == 2
    assert s["covered_share_after"] >= s["covered_share_before"]
    assert s["covered_share_after"] >= s["greedy_covered_share"] - 1e-9
    assert plan.sites["demand_assigned"].sum() == pytest.approx(s["covered_share_after"] * s["demand_total"])
    collection = json.loads(json.dumps(plan.to_geojson(), default=str))
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 4
    lscp = coverage.plan_sites(lahore_calls(), LAHORE_CITY, model="lscp", target=0.5, radius_m=500,
                               existing=sites, categories=load_categories(), boundaries=punjab_set)
    assert lscp.summary["covered_share_after"] >= 0.5
    assert lscp.summary["new_sites"] <= lscp.summary["greedy_new_sites"]
    curve = coverage.plan_curve(lahore_calls(), LAHORE_CITY, max_sites=2, radius_m=500, existing=sites,
                                categories=load_categories(), boundaries=punjab_set)
    assert (curve.tehsil.code, curve.existing_sites, curve.radius_m) == (LAHORE_CITY, 2, 500.0)
    assert curve.table["sites"].tolist() == [0, 1, 2]
    assert curve.table["covered_share"].iloc[0] == pytest.approx(s["covered_share_before"])
    assert curve.table["covered_share"].iloc[2] == pytest.approx(s["covered_share_after"])


@pytest.mark.slow
def test_stand_in_existing_sites_are_deterministic_and_labelled(punjab_set) -> None:  # type: ignore[no-untyped-def]
    towns = pd.DataFrame({"name": ["Lahore", "Faisalabad"], "lon": [74.35071, 73.08969],
                          "lat": [31.55800, 31.41554], "population": [13_004_135, 3_800_193]})
    first = coverage.stand_in_existing_sites(punjab_set, towns)
    again = coverage.stand_in_existing_sites(punjab_set, towns)
    assert first["site_id"].tolist() == again["site_id"].tolist()
    assert first["stand_in"].all()
    assert first["existing"].all()
    assert (first["source"] == coverage.STAND_IN_SOURCE).all()
    assert first["tehsil_code"].notna().all()
    lahore = first[first["district_code"] == "PK617"]
    assert len(lahore) > 100  # a large urban core
    districts = punjab_set.districts.set_index("code").geometry
    assert shapely.contains(districts["PK617"], lahore.geometry.values).all()


@pytest.mark.slow
def test_rank_tehsils_components(punjab_set) -> None:  # type: ignore[no-untyped-def]
    from geo.planning import rank_tehsils

    calls = lahore_calls()
    sites = read_sites_frame([(31.4697, 74.2728)])
    ranking = rank_tehsils(calls, boundaries=punjab_set, existing=sites, weights=load_planning_weights(),
                           categories=load_categories())
    assert list(ranking.columns[:4]) == ["tehsil_code", "tehsil", "district", "score"]
    assert set(COMPONENTS) <= set(ranking.columns)
    assert len(ranking) == len(punjab_set.tehsils)
    points = ranking[[f"{c}_points" for c in COMPONENTS]].sum(axis=1)
    assert np.allclose(points, ranking["score"])
    row = ranking.set_index("tehsil_code").loc[LAHORE_CITY]
    serious = calls["category"].isin(["murder", "dacoity_robbery"]).sum()
    assert row["serious_per_100k"] == pytest.approx(serious / row["population_2023"] * 1e5)
    minutes = (calls["on_scene_at"] - calls["received_at"]).dt.total_seconds() / 60
    assert row["p90_response_min"] == pytest.approx(minutes.quantile(0.9))
    assert 0 < row["covered_share"] < 1
    assert ranking["score"].is_monotonic_decreasing
    assert ranking.loc[ranking["tehsil_code"] != LAHORE_CITY, "p90_response_min"].isna().all()


def read_sites_frame(points: list[tuple[float, float]]) -> gpd.GeoDataFrame:
    lat, lon = [p[0] for p in points], [p[1] for p in points]
    return coverage.site_frame([f"s{i}" for i in range(len(points))], [f"s{i}" for i in range(len(points))],
                               gpd.points_from_xy(lon, lat), existing=True, stand_in=False, source="test")


@pytest.mark.slow
def test_cli_plan_commands(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    calls = tmp_path / "calls.csv"
    lahore_calls().to_csv(calls, index=False)
    existing = tmp_path / "existing.csv"
    existing.write_text("site_id,lat,lon\ncam-1,31.4697,74.2728\n")
    runner = CliRunner()
    out = tmp_path / "plan.geojson"
    done = runner.invoke(app, ["plan", "sites", "--tehsil", LAHORE_CITY, "--sites", "2", "--radius-m", "500",
                               "--calls", str(calls), "--existing", str(existing), "--out", str(out)])
    assert done.exit_code == 0, done.output
    plan = json.loads(out.read_text())
    assert plan["summary"]["new_sites"] == 2
    assert plan["summary"]["gap"] == 0.0
    assert sum(f["properties"]["existing"] for f in plan["features"]) == 1
    curve = tmp_path / "curve.csv"
    done = runner.invoke(app, ["plan", "curve", "--tehsil", LAHORE_CITY, "--radius-m", "500", "--max-sites",
                               "4", "--calls", str(calls), "--existing", str(existing), "--out", str(curve)])
    assert done.exit_code == 0, done.output
    table = pd.read_csv(curve)
    assert list(table.columns[:2]) == ["sites", "covered_share"]
    assert table["covered_share"].is_monotonic_increasing
    ranking = tmp_path / "ranking.csv"
    done = runner.invoke(app, ["plan", "rank", "--calls", str(calls), "--existing", str(existing),
                               "--out", str(ranking)])
    assert done.exit_code == 0, done.output
    assert list(pd.read_csv(ranking).columns[:4]) == ["tehsil_code", "tehsil", "district", "score"]
    done = runner.invoke(app, ["plan", "sites", "--tehsil", "PK60101", "--sites", "2", "--radius-m", "500",
                               "--calls", str(calls), "--existing", str(existing), "--out", str(out)])
    assert done.exit_code == 2
    assert "Attock (PK60101) has no calls" in " ".join(done.output.split())
