"""Gi*, FDR bins, local Moran, space-time Gi*, Mann–Kendall and the 17 emerging classes."""

from __future__ import annotations

import doctest

import h3
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scipy.stats as st

from geo import h3cells
from geo.aggregate import SpaceTimeCube, study_area_cells
from geo.emerging import (
    EMERGING_CLASSES,
    EmergingHotSpots,
    classify_emerging,
    mann_kendall,
    space_time_gi_star,
)
from geo.hotspots import (
    GiStar,
    LocalMoran,
    confidence_bins,
    fdr_critical_p,
    kring_weights,
    two_sided_p,
)

LAHORE = (31.52, 74.35)


def disk(radius: int, res: int = 9, at: tuple[float, float] = LAHORE) -> np.ndarray:
    centre = h3cells.latlng_to_cells([at[0]], [at[1]], res)
    return np.sort(h3cells.grid_disk_pairs(centre, radius)[1])


def centre_of(cells: np.ndarray) -> int:
    """Index (in ascending ``cells``) of the disk's centre."""
    lat, lon = h3cells.cells_to_latlng(cells)
    middle = h3cells.latlng_to_cells([lat.mean()], [lon.mean()], int(h3cells.resolution_of(cells[:1])[0]))
    return int(np.searchsorted(cells, middle[0]))


# --------------------------------------------------------------------------- weights


@pytest.mark.unit
@pytest.mark.parametrize("k", [1, 2, 3])
def test_kring_weights_match_h3_grid_disk(k: int) -> None:
    cells = disk(5)
    w = kring_weights(cells, k)
    dense = w.matrix.toarray()
    assert np.array_equal(dense, dense.T)
    assert np.all(np.diag(dense) == 1)
    inside = set(cells.tolist())
    for i in range(0, len(cells), 7):
        expected = {h3.str_to_int(c) for c in h3.grid_disk(h3.int_to_str(int(cells[i])), k)} & inside
        assert set(cells[dense[i] == 1].tolist()) == expected
    plain = w.without_self()
    assert np.all(plain.matrix.diagonal() == 0)
    assert plain.matrix.nnz == w.matrix.nnz - len(cells)


# --------------------------------------------------------------------------- Gi* golden values


@pytest.mark.unit
def test_gi_star_golden_one_ring_disk() -> None:
    """Seven cells, all counts in the centre: ring cells z = √3/2; the centre's
    neighbourhood is the whole area, so its Gi* is undefined and reported as 0."""
    cells = disk(1)
    y = np.zeros(7)
    c = centre_of(cells)
    y[c] = 6
    gi = GiStar(y, kring_weights(cells, 1))
    ring = np.arange(7) != c
    np.testing.assert_allclose(gi.z[ring], np.sqrt(3) / 2, rtol=0, atol=1e-12)
    assert gi.z[c] == 0.0
    assert gi.p[c] == 1.0
    np.testing.assert_allclose(gi.p[ring], 2 * st.norm.sf(np.sqrt(3) / 2), atol=1e-12)


@pytest.mark.unit
def test_gi_star_golden_two_ring_disk() -> None:
    """19 cells, 19 calls in the centre (mean 1, s = √18): the centre and ring 1 have
    z = 12/√84; a ring-2 cell with W in-area neighbours has z = −√(W / (19 − W))."""
    cells = disk(2)
    c = centre_of(cells)
    y = np.zeros(19)
    y[c] = 19
    w = kring_weights(cells, 1)
    gi = GiStar(y, w)
    origin = h3.int_to_str(int(cells[c]))
    distance = np.array([h3.grid_distance(origin, h3.int_to_str(int(x))) for x in cells])
    np.testing.assert_allclose(gi.z[distance <= 1], 12 / np.sqrt(84), atol=1e-12)
    card = w.cardinalities[distance == 2]
    assert set(card.tolist()) == {4, 5}
    np.testing.assert_allclose(gi.z[distance == 2], -np.sqrt(card / (19 - card)), atol=1e-12)
    assert gi.bin.tolist() == [0] * 19  # |z| < 1.645 everywhere: nothing significant
    frame = gi.frame()
    assert list(frame.columns) == ["h3", "count", "z", "p", "bin"]
    assert frame["count"].dtype == np.int64
    assert frame.loc[c, "h3"] == h3.int_to_str(int(cells[c]))


@pytest.mark.unit
def test_gi_star_constant_counts_are_not_significant() -> None:
    gi = GiStar(np.full(37, 4.0), kring_weights(disk(3), 1))
    assert np.all(gi.z == 0)
    assert np.all(gi.bin == 0)


@pytest.mark.unit
@pytest.mark.parametrize(("k", "seed"), [(1, 42), (2, 7), (3, 2024)])
def test_gi_star_equals_esda_g_local_star_binary(k: int, seed: int) -> None:
    """Our z equals esda.G_Local(star=True, transform='B') on libpysal's H3 graph
    (built independently, without self: esda sets the diagonal to 1)."""
    import esda
    from libpysal.graph import Graph

    cells = disk(10)
    y = np.random.default_rng(seed).poisson(3, len(cells)).astype(float)
    ours = GiStar(y, kring_weights(cells, k))
    graph = Graph.build_h3(h3cells.to_hex(cells), order=k, weight="binary")
    theirs = esda.G_Local(y, graph, transform="B", star=True, permutations=0)
    np.testing.assert_allclose(ours.z, theirs.Zs, rtol=0, atol=1e-9)
    # the default row-standardised transform (self-weight 1, then rows scaled) is another statistic
    row = esda.G_Local(y, graph, transform="R", star=True, permutations=0)
    assert np.abs(row.Zs - ours.z).max() > 1e-3


# --------------------------------------------------------------------------- bins and FDR


@pytest.mark.unit
def test_bins_without_fdr_follow_the_confidence_levels() -> None:
    z = np.array([0.5, 1.7, -1.7, 2.0, -2.2, 2.6, -3.5])
    bins = confidence_bins(z, two_sided_p(z))
    assert bins.tolist() == [0, 1, -1, 2, -2, 3, -3]


@pytest.mark.unit
def test_benjamini_hochberg_critical_values() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    assert fdr_critical_p(p, 0.05) == 0.008  # only p(1), p(2) pass r·α/m
    assert fdr_critical_p(p, 0.10) == 0.06  # step-up: p(6) passes, so p(3..5) are in too
    assert fdr_critical_p(p, 0.01) == 0.001
    assert fdr_critical_p(np.array([0.5, 0.9]), 0.05) == -1.0
    z = st.norm.isf(p / 2)  # positive z with these two-sided p
    bins = confidence_bins(z, p, fdr=True)
    assert bins.tolist() == [3, 2, 1, 1, 1, 1, 0, 0, 0, 0]
    assert confidence_bins(z, p).tolist() == [3, 3, 2, 2, 2, 1, 1, 0, 0, 0]


@pytest.mark.unit
def test_fdr_shrinks_bins_never_changes_z_or_p() -> None:
    cells = disk(12)
    rng = np.random.default_rng(5)
    y = rng.poisson(2, len(cells)).astype(float)
    hot = np.isin(cells, disk(1, at=(31.53, 74.36)))
    y[hot] += 12
    plain, fdr = GiStar(y, kring_weights(cells, 1)), GiStar(y, kring_weights(cells, 1), fdr=True)
    np.testing.assert_array_equal(plain.z, fdr.z)
    np.testing.assert_array_equal(plain.p, fdr.p)
    assert np.all(np.abs(fdr.bin) <= np.abs(plain.bin))
    assert np.all(np.sign(fdr.bin[fdr.bin != 0]) == np.sign(plain.bin[fdr.bin != 0]))
    assert (np.abs(fdr.bin) > 0).sum() < (np.abs(plain.bin) > 0).sum()
    assert np.all(fdr.bin[hot] == 3)  # the planted cluster survives the correction
    # pure noise: uncorrected bins flag about 10 % of cells, FDR almost none
    noise = GiStar(rng.poisson(2, len(cells)).astype(float), kring_weights(cells, 1), fdr=True)
    assert (noise.bin != 0).mean() < 0.02


# --------------------------------------------------------------------------- local Moran


@pytest.mark.unit
def test_local_moran_finds_each_quadrant() -> None:
    cells = disk(12)
    y = np.random.default_rng(3).poisson(5, len(cells)).astype(float)
    centre = h3cells.latlng_to_cells([LAHORE[0]], [LAHORE[1]], 9)
    a, b, c, d = (int(x) for x in np.array([h3.str_to_int(s) for s in
                                            h3.grid_ring(h3.int_to_str(int(centre[0])), 7)])[[0, 10, 21, 31]])

    def ring(cell: int, k: int) -> np.ndarray:
        return np.isin(cells, np.array([h3.str_to_int(s) for s in h3.grid_disk(h3.int_to_str(cell), k)],
                                       dtype=np.uint64))

    at = {name: int(np.searchsorted(cells, np.uint64(x)))
          for name, x in zip("abcd", (a, b, c, d), strict=True)}
    y[ring(a, 1)] = 20  # HH cluster
    y[ring(b, 1)] = 0
    y[at["b"]] = 20  # HL outlier
    y[ring(c, 1)] = 20
    y[at["c"]] = 0  # LH outlier
    y[ring(d, 1)] = 0  # LL cluster
    moran = LocalMoran(y, kring_weights(cells, 1), permutations=999, seed=1)
    assert moran.label[at["a"]] == "HH"
    assert moran.label[at["b"]] == "HL"
    assert moran.label[at["c"]] == "LH"
    assert moran.label[at["d"]] == "LL"
    # esda's I_i = (n − 1) z_i Σ_j w_ij z_j / Σ_k z_k² with row-standardised w, no self
    z = (y - y.mean()) / y.std()
    w = kring_weights(cells, 1, self_included=False).matrix
    w = sp.diags(1 / np.asarray(w.sum(axis=1)).ravel()) @ w
    np.testing.assert_allclose(moran.I, (len(y) - 1) * z * (w @ z) / (z @ z), atol=1e-10)
    assert set(moran.frame().columns) == {"h3", "count", "I", "p", "quadrant", "label"}


# --------------------------------------------------------------------------- Mann-Kendall


@pytest.mark.unit
def test_mann_kendall_matches_scipy_kendalltau() -> None:
    rng = np.random.default_rng(8)
    series = rng.normal(size=(6, 14)) + np.linspace(0, 2, 14) * np.array([0, 0, 1, -1, 2, 0])[:, None]
    mk = mann_kendall(series)
    t = np.arange(14)
    for row in range(6):
        exact = st.kendalltau(t, series[row])  # no ties: exact tau
        asym = st.kendalltau(t, series[row], method="asymptotic")
        assert mk.tau[row] == pytest.approx(exact.statistic, abs=1e-12)
        assert mk.p[row] == pytest.approx(asym.pvalue, abs=1e-12)
    # with ties the tie-corrected variance and tau-b still agree
    tied = np.round(rng.normal(size=(4, 20)))
    mk = mann_kendall(tied)
    for row in range(4):
        ref = st.kendalltau(np.arange(20), tied[row], method="asymptotic")
        assert mk.tau[row] == pytest.approx(ref.statistic, abs=1e-12)
        assert mk.p[row] == pytest.approx(ref.pvalue, abs=1e-12)
    flat = mann_kendall(np.ones((1, 10)))
    assert flat.tau[0] == 0.0
    assert flat.p[0] == 1.0
    up = mann_kendall(np.arange(10.0), continuity=True)
    assert up.s[0] == 45
    assert up.z[0] == pytest.approx(44 / np.sqrt(125))


# --------------------------------------------------------------------------- space-time Gi*


@pytest.mark.unit
@pytest.mark.parametrize("time_k", [0, 1, 2])
def test_space_time_gi_star_equals_esda_on_the_cube(time_k: int) -> None:
    """Window "cube": Gi* on the space-time weights L ⊗ W (bins ordered step-major)."""
    import esda
    from libpysal.graph import Graph

    cells = disk(4)
    steps = 6
    w = kring_weights(cells, 1)
    y = np.random.default_rng(time_k).poisson(2, (len(cells), steps)).astype(float)
    z = space_time_gi_star(y, w, time_k=time_k)
    band = sp.diags([np.ones(steps - d) for d in range(time_k + 1)], [-d for d in range(time_k + 1)],
                    shape=(steps, steps))
    cube_weights = sp.kron(band, w.matrix).tocsr()
    ref = esda.G_Local(y.T.ravel(), Graph.from_sparse(cube_weights), transform="B", star=True, permutations=0)
    np.testing.assert_allclose(z.T.ravel(), ref.Zs, rtol=0, atol=1e-9)


@pytest.mark.unit
def test_space_time_step_window_without_time_lag_is_gi_star_per_step() -> None:
    cells = disk(4)
    w = kring_weights(cells, 1)
    y = np.random.default_rng(1).poisson(2, (len(cells), 5)).astype(float)
    z = space_time_gi_star(y, w, time_k=0, window="step")
    for t in range(5):
        np.testing.assert_allclose(z[:, t], GiStar(y[:, t], w).z, atol=1e-12)


# --------------------------------------------------------------------------- the 17 classes

H, C, Q = (3.0, True), (-3.0, True), (0.5, False)  # hot, cold, quiet (not significant)


def _series(*bins: tuple[float, bool]) -> tuple[list[float], list[bool]]:
    return [b[0] for b in bins], [b[1] for b in bins]


def _trend(start: float, stop: float) -> tuple[list[float], list[bool]]:
    values = np.linspace(start, stop, 10).tolist()
    return values, [True] * 10


CONSTRUCTED: dict[str, tuple[list[float], list[bool]]] = {
    "no pattern detected": ([0.1, -0.1] * 5, [False] * 10),
    "new hot spot": _series(*[Q] * 9, H),
    "consecutive hot spot": _series(*[Q] * 7, H, H, H),
    "intensifying hot spot": _trend(2.5, 4.3),
    "persistent hot spot": ([3.0, 3.2] * 5, [True] * 10),
    "diminishing hot spot": _trend(4.3, 2.5),
    "sporadic hot spot": _series(Q, H, Q, Q, H, Q, Q, Q, Q, Q),
    "oscillating hot spot": _series(C, Q, Q, Q, Q, Q, Q, Q, Q, H),
    "historical hot spot": _series(*[H] * 9, Q),
    "new cold spot": _series(*[Q] * 9, C),
    "consecutive cold spot": _series(*[Q] * 8, C, C),
    "intensifying cold spot": _trend(-2.5, -4.3),
    "persistent cold spot": ([-3.0, -3.2] * 5, [True] * 10),
    "diminishing cold spot": _trend(-4.3, -2.5),
    "sporadic cold spot": _series(C, Q, Q, C, Q, C, Q, Q, Q, Q),
    "oscillating cold spot": _series(Q, H, H, Q, Q, Q, Q, Q, Q, C),
    "historical cold spot": _series(C, C, C, C, C, C, C, C, C, Q),
}


@pytest.mark.unit
def test_each_of_the_17_emerging_classes_from_a_constructed_series() -> None:
    assert set(CONSTRUCTED) == set(EMERGING_CLASSES)
    assert len(EMERGING_CLASSES) == 17
    names = list(CONSTRUCTED)
    z = np.array([CONSTRUCTED[n][0] for n in names])
    sig = np.array([CONSTRUCTED[n][1] for n in names])
    trend = mann_kendall(z)
    codes = classify_emerging(z, sig, trend.tau, trend.p, trend_alpha=0.05)
    got = [EMERGING_CLASSES[c] for c in codes]
    assert got == names


@pytest.mark.unit
@pytest.mark.parametrize(("expected", "series"), [
    # one hot bin after a quiet history is new, not consecutive
    ("new hot spot", _series(*[Q] * 9, H)),
    # a cold bin just before the final hot run: oscillating, not consecutive
    ("oscillating hot spot", _series(*[Q] * 6, C, H, H, H)),
    # 9 of 10 hot with a quiet final step: historical (never persistent)
    ("historical hot spot", _series(*[H] * 9, Q)),
    # 8 of 10 hot in one final run: not "mostly", so consecutive
    ("consecutive hot spot", _series(Q, Q, *[H] * 8)),
    # 9 of 10 hot, final hot, no trend: persistent even with a gap
    ("persistent hot spot", _series(H, Q, *[H] * 8)),
    # final hot but the run is interrupted: sporadic
    ("sporadic hot spot", _series(*[Q] * 7, H, Q, H)),
    # hot and cold in the past, quiet now: no pattern
    ("no pattern detected", _series(H, Q, C, *[Q] * 7)),
    # mostly cold, hot now: oscillating hot wins over historical cold, and the mirror
    ("oscillating hot spot", _series(*[C] * 9, H)),
    ("oscillating cold spot", _series(*[H] * 9, C)),
])
def test_class_edges(expected: str, series: tuple[list[float], list[bool]]) -> None:
    z = np.array([series[0]])
    trend = mann_kendall(z)
    code = classify_emerging(z, np.array([series[1]]), trend.tau, trend.p)
    assert EMERGING_CLASSES[code[0]] == expected


def _planted_cube(seed: int) -> tuple[SpaceTimeCube, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Res-8 disk of 469 cells × 12 months, background Poisson(2), with 4 persistent
    clusters (rate 8 every month) and 4 new ones (rate 16 in the final month only);
    a cluster is a cell and its ring. Returns the cube, the planted cells per class
    and the cluster centres per class (boolean masks over the cells)."""
    rng = np.random.default_rng(seed)
    cells = disk(12, res=8)
    steps = 12
    counts = rng.poisson(2, (len(cells), steps))
    centre = h3cells.latlng_to_cells([LAHORE[0]], [LAHORE[1]], 8)
    ring = np.array([h3.str_to_int(s) for s in h3.grid_ring(h3.int_to_str(int(centre[0])), 7)], np.uint64)
    names = ("persistent hot spot", "new hot spot")
    truth = {name: np.zeros(len(cells), bool) for name in names}
    centres = {name: np.zeros(len(cells), bool) for name in names}
    for i, origin in enumerate(ring[::5][:8]):
        member = np.isin(cells, np.sort(h3cells.grid_disk_pairs(np.array([origin]), 1)[1]))
        name = names[i % 2]
        if name == "persistent hot spot":
            counts[member] = rng.poisson(8, (member.sum(), steps))
        else:
            counts[member, -1] = rng.poisson(16, member.sum())
        truth[name] |= member
        centres[name] |= cells == origin
    starts = pd.date_range("2024-01-01", periods=steps, freq="MS")
    return SpaceTimeCube(cells, pd.DatetimeIndex(starts), counts.astype(np.int64), "month"), truth, centres


def _within(cells: np.ndarray, planted: np.ndarray, k: int) -> np.ndarray:
    _, ring = h3cells.grid_disk_pairs(cells[planted], k)
    return np.isin(cells, ring)


@pytest.mark.unit
def test_emerging_recovers_planted_hot_spots(capsys: pytest.CaptureFixture[str]) -> None:
    """Five seeded histories: recall per class (planted cells, and cluster centres),
    false discoveries next to planted clusters (Gi* spills one ring outwards) and away
    from them (none expected)."""
    found_cells = {"persistent hot spot": [0, 0], "new hot spot": [0, 0]}
    found_centres = {"persistent hot spot": [0, 0], "new hot spot": [0, 0]}
    spill, far_flags, far_cells = {"persistent hot spot": 0, "new hot spot": 0}, 0, 0
    for seed in range(5):
        cube, truth, centres = _planted_cube(seed)
        ehsa = EmergingHotSpots(cube)
        category = ehsa.category
        planted_any = truth["persistent hot spot"] | truth["new hot spot"]
        far = ~_within(cube.cells, planted_any, 2)
        far_flags += int(((category != "no pattern detected") & far).sum())
        far_cells += int(far.sum())
        for name, planted in truth.items():
            hit = category == name
            found_cells[name][0] += int((hit & planted).sum())
            found_cells[name][1] += int(planted.sum())
            found_centres[name][0] += int((hit & centres[name]).sum())
            found_centres[name][1] += int(centres[name].sum())
            spill[name] += int((hit & ~planted).sum())
    lines = []
    for name in found_cells:
        cell_recall = found_cells[name][0] / found_cells[name][1]
        centre_recall = found_centres[name][0] / found_centres[name][1]
        lines.append(f"{name}: recall {cell_recall:.2f} of planted cells "
                     f"({found_cells[name][0]}/{found_cells[name][1]}), {centre_recall:.2f} of cluster "
                     f"centres; {spill[name]} unplanted cells in this class (all within 2 rings)")
        assert centre_recall >= 0.9, lines[-1]
        assert cell_recall >= (0.85 if name == "persistent hot spot" else 0.95), lines[-1]
    lines.append(f"cells > 2 rings from any planted cluster flagged: {far_flags}/{far_cells}")
    with capsys.disabled():
        print("\nemerging hot spots on 5 planted histories:\n  " + "\n  ".join(lines))
    assert far_flags == 0

    cube, truth, _ = _planted_cube(0)
    ehsa = EmergingHotSpots(cube)
    frame = ehsa.frame()
    assert list(frame.columns) == ["h3", "count", "z", "p", "bin", "category", "trend_tau", "trend_p"]
    assert (frame["category"] == "no pattern detected").mean() > 0.8
    alerts = ehsa.alerts()
    assert set(alerts["category"]) <= {"new hot spot", "intensifying hot spot"}
    assert set(frame.loc[truth["new hot spot"], "h3"]) <= set(alerts["h3"]) | set(
        frame.loc[truth["new hot spot"] & (frame["category"] != "new hot spot"), "h3"])
    with pytest.raises(ValueError, match="at least 3 time steps"):
        EmergingHotSpots(SpaceTimeCube(cube.cells, cube.starts[:2], cube.counts[:, :2], "month"))


@pytest.mark.unit
def test_module_doctests() -> None:
    import geo.aggregate
    import geo.hotspots

    for module in (geo.hotspots, geo.aggregate):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__


@pytest.mark.unit
def test_cli_gi_and_emerging_write_the_documented_columns(tmp_path, punjab_set) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from api.cli import app

    station = punjab_set.stations.iloc[100]
    cells = study_area_cells(station.geometry, 9)
    rng = np.random.default_rng(4)
    n = 3000
    pick = cells[rng.integers(0, len(cells), n)]
    lat, lon = h3cells.cells_to_latlng(pick)
    received = pd.Timestamp("2024-01-01T00:00+05:00") + pd.to_timedelta(rng.integers(0, 86400 * 300, n), "s")
    calls = pd.DataFrame({"lat": lat, "lon": lon, "received_at": received.astype(str),
                          "category": rng.choice(["theft", "fight"], n)})
    source = tmp_path / "calls.csv"
    calls.to_csv(source, index=False)
    runner = CliRunner()
    area = f"station:{station['code']}"
    gi_out = tmp_path / "gi.parquet"
    done = runner.invoke(app, ["hotspots", "gi", "--calls", str(source), "--res", "9", "--area", area,
                               "--fdr", "--all-calls", "--out", str(gi_out)])
    assert done.exit_code == 0, done.output
    frame = pd.read_parquet(gi_out)
    assert list(frame.columns) == ["h3", "count", "z", "p", "bin"]
    assert len(frame) == len(cells)
    assert frame["count"].sum() == n
    expected = GiStar(np.bincount(np.searchsorted(cells, pick), minlength=len(cells)).astype(float),
                      kring_weights(cells, 1), fdr=True)
    np.testing.assert_allclose(frame["z"], expected.z, atol=1e-12)
    em_out = tmp_path / "emerging.parquet"
    done = runner.invoke(app, ["hotspots", "emerging", "--calls", str(source), "--res", "9", "--area", area,
                               "--step", "month", "--category", "theft", "--out", str(em_out)])
    assert done.exit_code == 0, done.output
    emerging = pd.read_parquet(em_out)
    assert list(emerging.columns) == ["h3", "count", "z", "p", "bin", "category", "trend_tau", "trend_p"]
    assert emerging["count"].sum() == (calls["category"] == "theft").sum()
    assert set(emerging["category"].astype(str)) <= set(EMERGING_CLASSES)
    # clear errors, exit code 2
    bad = tmp_path / "bad.csv"
    bad.write_text("lat,lon\n31.5,74.3\n")
    done = runner.invoke(app, ["hotspots", "gi", "--calls", str(bad), "--res", "9", "--area", area,
                               "--out", str(tmp_path / "x.parquet")])
    assert done.exit_code == 2
    assert "received_at" in done.output
    done = runner.invoke(app, ["hotspots", "gi", "--calls", str(source), "--res", "9",
                               "--area", "district:NOPE", "--out", str(tmp_path / "x.parquet")])
    assert done.exit_code == 2
    assert "no district" in done.output
