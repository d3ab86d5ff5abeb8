"""Routing benchmark on the real station layer: the router against its baselines, one run.

Every timing is the best of three passes over the same points (one-at-a-time methods
included), so a stray scheduler hiccup on a 2-core machine does not decide a ratio.

    python bench/routing.py [--points N] [--json FILE]

Baselines, all measured in the same run on the same points:
PostGIS one query per point (prepared ``ST_Covers`` over the Unix socket), PostGIS batch
join (points in a table), geopandas ``sjoin``, shapely ``STRtree`` (vectorised, and one
point at a time), then the router in bulk and one point at a time. Every answer is
compared with PostGIS: ``disagreements`` must be 0.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import psycopg
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    console,
    load_boundaries_into,
    print_table,
    scratch_database,
    timed,
    write_json,
)
from jurisdictions.catalog import neighbouring_provinces, punjab_boundary_set, routing_stations
from jurisdictions.index import compile_index
from jurisdictions.router import RouteAnswer, Router

SOCKET_DIR = "/var/run/postgresql"
SINGLE_SQL = ("SELECT code FROM stations WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) "
              "ORDER BY code LIMIT 1")
BATCH_SQL = ("SELECT DISTINCT ON (p.id) p.id, s.code FROM bench_points p "
             "JOIN stations s ON ST_Covers(s.geom, p.geom) WHERE p.id BETWEEN %s AND %s "
             "ORDER BY p.id, s.code")


def sample_points(province: shapely.Geometry, stations: gpd.GeoDataFrame, n_uniform: int,
                  n_border: int, seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points (lon, lat): ``n_uniform`` uniform over Punjab (what calls look like, and
    what every method is timed on), and ``n_border`` hard cases for the agreement check,
    half station vertices and half points on shared edges at random fractions."""
    rng = np.random.default_rng(seed)
    n_vertex = n_border // 2
    n_edge = n_border - n_vertex
    minx, miny, maxx, maxy = shapely.bounds(province)
    shapely.prepare(province)
    uniform = np.empty((0, 2))
    while len(uniform) < n_uniform:
        cand = rng.uniform((minx, miny), (maxx, maxy), size=(n_uniform, 2))
        uniform = np.vstack([uniform, cand[shapely.contains_xy(province, cand[:, 0], cand[:, 1])]])
    ring_coords = shapely.get_coordinates(shapely.boundary(stations.geometry.values))
    vertex = ring_coords[rng.choice(len(ring_coords), n_vertex, replace=False)]
    i = rng.choice(len(ring_coords) - 1, n_edge, replace=False)
    edge = ring_coords[i] + (ring_coords[i + 1] - ring_coords[i]) * rng.uniform(0, 1, (n_edge, 1))
    return uniform[:n_uniform], np.vstack([vertex, edge])


def index_rss_mb(path: Path) -> float:
    """Resident memory added by loading the index and serving one point, in a fresh process."""
    code = (
        "import re\n"
        "def rss():\n"
        "    return int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "from pathlib import Path\n"
        "from jurisdictions.index import RoutingIndex\n"
        "from jurisdictions.router import RouteAnswer, Router\n"
        "import numpy, shapely, geopandas, h3ronpy, pyproj\n"
        "before = rss()\n"
        f"r = Router(RoutingIndex.load(Path({str(path)!r})))\n"
        "r.resolve(31.52, 74.35)\n"
        "r.station_rows(numpy.array([31.52]), numpy.array([74.35]))\n"
        "print((rss() - before) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def load_seconds(path: Path) -> float:
    """Wall time to load the cached index into a ready router, in a fresh process (best of 3)."""
    code = (
        "import time\n"
        "from pathlib import Path\n"
        "from jurisdictions.index import RoutingIndex\n"
        "from jurisdictions.router import RouteAnswer, Router\n"
        "t = time.perf_counter()\n"
        f"r = Router(RoutingIndex.load(Path({str(path)!r})))\n"
        "r.resolve(31.52, 74.35)\n"
        "print(time.perf_counter() - t)\n"
    )
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout.strip().splitlines()[-1]) for _ in range(3)]
    return min(runs)


def strtree_vectorised(tree: shapely.STRtree, codes: npt.NDArray[np.str_],
                       points: npt.NDArray[np.object_]) -> npt.NDArray[np.str_]:
    pairs = tree.query(points, predicate="covered_by")
    out = np.full(len(points), "", dtype=object)
    order = np.lexsort((pairs[1], pairs[0]))
    p, s = pairs[0][order], pairs[1][order]
    first = np.ones(len(p), dtype=bool)
    first[1:] = p[1:] != p[:-1]
    out[p[first]] = codes[s[first]]
    return out.astype(str)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000, help="points for the bulk methods")
    parser.add_argument("--single", type=int, default=20_000, help="points for one-at-a-time methods")
    parser.add_argument("--pg-single", type=int, default=5_000, help="points for PostGIS one-at-a-time")
    parser.add_argument("--border", type=int, default=40_000,
                        help="vertex and shared-edge points for the agreement check")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()

    boundaries = punjab_boundary_set()
    stations = routing_stations(boundaries).sort_values("code").reset_index(drop=True)
    codes = stations["code"].to_numpy(dtype=str)

    console.print("compiling the routing index from scratch …")
    build_s, index = timed(lambda: compile_index(stations, boundaries.version))
    with tempfile.TemporaryDirectory() as tmp:
        path = index.save(Path(tmp) / "index.npz")
        file_mb = path.stat().st_size / 1e6
        load_s = load_seconds(path)
        rss_mb = index_rss_mb(path)
    router = Router(index, neighbours=neighbouring_provinces())  # as the service has it

    points, border = sample_points(boundaries.province.geometry.iloc[0], stations, args.points,
                                   args.border, args.seed)
    lon, lat = points[:, 0], points[:, 1]
    everything = np.vstack([points, border])
    n_single = min(args.single, len(points))
    n_pg_single = min(args.pg_single, len(points))
    geoms = shapely.points(points)
    results: dict[str, dict[str, float]] = {}

    def record(name: str, seconds: float, n: int) -> None:
        results[name] = {"seconds": seconds, "points": n, "points_per_s": n / seconds}

    with scratch_database("safecity_bench") as url:
        console.print("loading the boundary set into PostGIS with safecity jurisdictions load …")
        load_boundaries_into(url)
        dbname = url.rsplit("/", 1)[1]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_points (id integer PRIMARY KEY, geom geometry(Point, 4326))")
            with conn.cursor().copy("COPY bench_points (id, geom) FROM STDIN") as copy:
                ewkb = shapely.to_wkb(shapely.set_srid(shapely.points(everything), 4326), hex=True,
                                      include_srid=True)
                for k, wkb in enumerate(ewkb.tolist()):
                    copy.write_row((k, wkb))
            conn.execute("ANALYZE bench_points")
            console.print("PostGIS batch join …")
            seconds, rows = timed(lambda: conn.execute(BATCH_SQL, (0, len(points) - 1)).fetchall())
            record("postgis_batch", seconds, len(points))
            rows += conn.execute(BATCH_SQL, (len(points), len(everything) - 1)).fetchall()
        pg_all = np.full(len(everything), "", dtype=object)
        for pid, code in rows:
            pg_all[pid] = code
        pg_all = pg_all.astype(str)
        pg_batch = pg_all[: len(points)]

        console.print("PostGIS one query per point (prepared, Unix socket) …")
        with psycopg.connect(host=SOCKET_DIR, dbname=dbname, user="postgres") as conn:
            cur = conn.cursor()
            cur.execute(SINGLE_SQL, (float(lon[0]), float(lat[0])), prepare=True)
            def pg_one_by_one() -> list[str]:
                found = []
                for x, y in zip(lon[:n_pg_single].tolist(), lat[:n_pg_single].tolist(), strict=True):
                    cur.execute(SINGLE_SQL, (x, y), prepare=True)
                    hit = cur.fetchone()
                    found.append(hit[0] if hit else "")
                return found

            seconds, pg_single = timed(pg_one_by_one, repeat=3)
            record("postgis_single", seconds, n_pg_single)

    console.print("geopandas sjoin …")
    frame = gpd.GeoDataFrame(geometry=geoms, crs="EPSG:4326")

    def sjoin() -> npt.NDArray[np.str_]:
        joined = gpd.sjoin(frame, stations[["code", "geometry"]], predicate="covered_by", how="left")
        best = joined.groupby(level=0)["code"].min()
        return best.reindex(frame.index).fillna("").to_numpy(dtype=str)

    seconds, sjoin_codes = timed(sjoin)
    record("geopandas_sjoin", seconds, len(points))

    console.print("shapely STRtree …")
    tree = shapely.STRtree(stations.geometry.values)
    seconds, tree_codes = timed(lambda: strtree_vectorised(tree, codes, geoms))
    record("strtree_vectorised", seconds, len(points))
    def strtree_one_by_one() -> list[str]:
        found = []
        for g in geoms[:n_single]:
            hits = tree.query(g, predicate="covered_by")
            found.append(str(codes[hits.min()]) if hits.size else "")
        return found

    seconds, _ = timed(strtree_one_by_one, repeat=3)
    record("strtree_single", seconds, n_single)

    console.print("router …")
    router.resolve(float(lat[0]), float(lon[0]))  # build the one-point lookup once
    seconds, answers = timed(lambda: router.resolve_many(lat, lon), repeat=3)
    record("router_batch", seconds, len(points))
    def router_one_by_one() -> list[RouteAnswer | None]:
        found: list[RouteAnswer | None] = []
        for y, x in zip(lat[:n_single].tolist(), lon[:n_single].tolist(), strict=True):
            try:
                found.append(router.resolve(y, x))
            except ValueError:
                found.append(None)
        return found

    seconds, single_codes = timed(router_one_by_one, repeat=3)
    record("router_single", seconds, n_single)

    def covering(frame: object) -> npt.NDArray[np.str_]:
        import pandas as pd  # noqa: PLC0415

        assert isinstance(frame, pd.DataFrame)
        covered = frame["method"].isin(["interior", "boundary"]).to_numpy()
        return np.where(covered, frame["station_code"].to_numpy(dtype=str), "")

    router_codes = covering(answers)
    border_codes = covering(router.resolve_many(border[:, 1], border[:, 0]))
    border_single = []
    for x, y in border.tolist():
        try:
            a = router.resolve(y, x)
            border_single.append("" if a.out_of_coverage else a.station_code)
        except ValueError:
            border_single.append("")
    single = np.array(["" if a is None or a.out_of_coverage else a.station_code for a in single_codes])
    disagreements = {
        "router_batch_vs_postgis_batch": int((router_codes != pg_batch).sum()),
        "router_batch_vs_postgis_on_vertices_and_edges": int(
            (border_codes != pg_all[len(points):]).sum()),
        "router_single_vs_postgis_on_vertices_and_edges": int(
            (np.array(border_single, dtype=str) != pg_all[len(points):]).sum()),
        "router_single_vs_postgis_single": int(
            (single[:n_pg_single] != np.array(pg_single, dtype=str)).sum()),
        "router_single_vs_postgis_batch": int((single != pg_batch[:n_single]).sum()),
        "sjoin_vs_postgis_batch": int((sjoin_codes != pg_batch).sum()),
        "strtree_vs_postgis_batch": int((tree_codes != pg_batch).sum()),
    }
    router_total = sum(v for k, v in disagreements.items() if k.startswith("router"))

    def ratio(a: str, b: str) -> float:
        return results[a]["points_per_s"] / results[b]["points_per_s"]

    ratios = {
        "batch_vs_postgis_batch": ratio("router_batch", "postgis_batch"),
        "batch_vs_strtree": ratio("router_batch", "strtree_vectorised"),
        "batch_vs_sjoin": ratio("router_batch", "geopandas_sjoin"),
        "single_vs_postgis_single": ratio("router_single", "postgis_single"),
        "single_vs_strtree_single": ratio("router_single", "strtree_single"),
    }
    targets = {"batch_vs_postgis_batch": 20.0, "batch_vs_strtree": 3.0, "single_vs_postgis_single": 30.0}
    print_table(
        f"routing, {len(points):,} points uniform over Punjab, {len(stations)} stations "
        f"({shapely.get_num_coordinates(stations.geometry.values).sum():,} vertices)",
        ["method", "points", "seconds", "points/s", "µs/point"],
        [[name, f"{r['points']:,}", f"{r['seconds']:.3f}", f"{r['points_per_s']:,.0f}",
          f"{1e6 / r['points_per_s']:.2f}"] for name, r in results.items()],
    )
    print_table("ratios (router ÷ baseline, same run)", ["ratio", "value", "target"],
                [[k, f"{v:.1f}x", f"≥ {targets[k]:.0f}x" if k in targets else ""]
                 for k, v in ratios.items()])
    print_table("index", ["figure", "value", "target"], [
        ["build (compile) s", f"{build_s:.1f}", ""],
        ["load from cache s", f"{load_s:.2f}", "≤ 2"],
        ["index RSS MB", f"{rss_mb:.0f}", "≤ 300"],
        ["index file MB", f"{file_mb:.0f}", ""],
        ["entries / boundary cells", f"{len(index.lo):,} / {index.n_boundary_cells:,}", ""],
        ["boundary-method share", f"{(answers['method'] == 'boundary').mean():.3%}", ""],
    ])
    print_table(f"disagreements with PostGIS ST_Covers (must be 0 for the router); "
                f"{len(points):,} uniform + {len(border):,} vertex/edge points",
                ["comparison", "count"], [[k, str(v)] for k, v in disagreements.items()])
    write_json(args.json, {
        "points": len(points),
        "border_points": len(border),
        "stations": len(stations),
        "cpu_count": os.cpu_count(),
        "disagreements": router_total,
        "disagreement_detail": disagreements,
        "ratios": ratios,
        "targets": targets,
        "throughput": results,
        "index": {"build_s": build_s, "load_s": load_s, "rss_mb": rss_mb, "file_mb": file_mb,
                  "entries": len(index.lo), "boundary_cells": index.n_boundary_cells},
    })
    if router_total:
        raise SystemExit(f"{router_total} disagreements with PostGIS")


if __name__ == "__main__":
    main()
