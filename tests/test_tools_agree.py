"""The CLI and the API agree: same source, same defaults, same date formats, honest files.

Each test is one inconsistency a new user met (issue 16): ``hotspots gi`` counting hoax and
dropped calls, ``--out gi.csv`` holding Parquet, ``plan rank`` planning on its own synthetic
history while the API used the database, ``/stats/response`` refusing a plain date that
``/hotspots`` takes and naming a parameter the user never sent. The CLI runs as a user runs
it (a subprocess with ``DATABASE_URL``) against the session PostGIS with a small history.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest

from tests.callservice import ServiceClient, headers, service_settings

DISTRICT = "PK633"  # Sheikhupura: enough calls in the small history, a quick study area
PLANNER = headers("planner")


def cli(*args: str, database_url: str | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    """``safecity ARGS`` in a new process (as a user types it), optionally on a database."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("DATABASE_URL", None)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, capture_output=True,
                          text=True, check=False, cwd=cwd, timeout=600)


def calls_file(tmp_path: Path, punjab_set: Any) -> tuple[Path, pd.DataFrame]:
    """Calls in one station's area: 40 cases, 30 hoax, 20 dropped, 10 information."""
    from geo import h3cells
    from geo.aggregate import study_area_cells

    station = punjab_set.stations.iloc[100]
    cells = study_area_cells(station.geometry, 8)
    rng = np.random.default_rng(16)
    categories = ["other_crime"] * 40 + ["hoax"] * 30 + ["dropped"] * 20 + ["information"] * 10
    pick = cells[rng.integers(0, len(cells), len(categories))]
    lat, lon = h3cells.cells_to_latlng(pick)
    frame = pd.DataFrame({"lat": lat, "lon": lon, "category": categories,
                          "received_at": pd.Timestamp("2024-03-01T10:00+05:00")})
    path = tmp_path / "calls.csv"
    frame.to_csv(path, index=False)
    return path, frame.assign(area=f"station:{station['code']}")


@pytest.mark.unit
def test_gi_leaves_out_hoax_dropped_and_information_by_default_like_the_api(tmp_path: Path,
                                                                           punjab_set: Any) -> None:
    source, frame = calls_file(tmp_path, punjab_set)
    area = str(frame["area"].iloc[0])
    out = tmp_path / "gi.parquet"
    done = cli("hotspots", "gi", "--calls", str(source), "--res", "8", "--area", area, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert int(pd.read_parquet(out)["count"].sum()) == 40
    done = cli("hotspots", "gi", "--calls", str(source), "--res", "8", "--area", area, "--all-calls",
               "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert int(pd.read_parquet(out)["count"].sum()) == 100
    done = cli("hotspots", "gi", "--calls", str(source), "--res", "8", "--area", area,
               "--category", "hoax", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert int(pd.read_parquet(out)["count"].sum()) == 30


@pytest.mark.unit
def test_out_is_written_in_the_format_its_name_says(tmp_path: Path, punjab_set: Any) -> None:
    source, frame = calls_file(tmp_path, punjab_set)
    area = str(frame["area"].iloc[0])
    common = ["hotspots", "gi", "--calls", str(source), "--res", "8", "--area", area]
    csv_out, json_out, pq_out = tmp_path / "gi.csv", tmp_path / "gi.geojson", tmp_path / "gi.parquet"
    for out in (csv_out, json_out, pq_out):
        done = cli(*common, "--out", str(out))
        assert done.returncode == 0, done.stdout + done.stderr
    assert csv_out.read_bytes()[:4] != b"PAR1"
    table = pd.read_csv(csv_out)
    assert list(table.columns) == ["h3", "count", "z", "p", "bin"]
    assert int(table["count"].sum()) == 40
    collection = json.loads(json_out.read_text())
    assert collection["type"] == "FeatureCollection"
    assert any("GeoNames" in line for line in collection["attribution"])
    assert any("CC BY-IGO" in line for line in collection["attribution"])
    assert collection["meta"]["area"] == area
    assert len(collection["features"]) == len(table)
    assert collection["features"][0]["geometry"]["type"] == "Polygon"
    assert sum(f["properties"]["count"] for f in collection["features"]) == 40
    assert pq_out.read_bytes()[:4] == b"PAR1"
    from geo.tables import read_metadata

    assert pd.read_parquet(pq_out)["count"].sum() == 40
    assert any("GeoNames" in line for line in read_metadata(pq_out)["attribution"])
    # an ending that names no format is refused at once, before any work, and says why
    done = cli(*common, "--out", str(tmp_path / "gi.xlsx"))
    assert done.returncode == 2
    text = " ".join((done.stdout + done.stderr).split())
    for part in ("'.xlsx'", ".csv", ".geojson"):
        assert part in text
    assert not (tmp_path / "gi.xlsx").exists()
    done = cli("plan", "curve", "--tehsil", "PK61702", "--max-sites", "2", "--calls", str(source),
               "--out", str(tmp_path / "curve.geojson"))
    assert done.returncode == 2
    assert "'.geojson'" in " ".join((done.stdout + done.stderr).split())


@pytest.fixture(scope="module")
def history(loaded_postgis: str) -> str:
    from tests.test_analytics_api import load_small_history

    load_small_history(loaded_postgis)
    return loaded_postgis


@pytest.fixture(scope="module")
def client(history: str) -> Iterator[ServiceClient]:
    from api.container import Container

    with ServiceClient(Container(service_settings(history))) as started:
        yield started


@pytest.mark.integration
def test_gi_without_a_file_reads_the_database_and_matches_the_api(client: ServiceClient, history: str,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "gi.csv"
    done = cli("hotspots", "gi", "--res", "7", "--area", f"district:{DISTRICT}", "--out", str(out),
               database_url=history)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "from the database" in " ".join(done.stderr.split())
    mine = pd.read_csv(out).set_index("h3").sort_index()
    answer = client.get("/api/v1/hotspots", params={"level": "district", "code": DISTRICT, "res": 7},
                        headers=PLANNER)
    assert answer.status_code == 200, answer.text
    api = pd.DataFrame(answer.json()["cells"]).set_index("h3").sort_index()
    assert mine.index.equals(api.index)
    assert mine["count"].sum() == api["count"].sum() > 50
    np.testing.assert_array_equal(mine["count"].to_numpy(), api["count"].to_numpy())
    np.testing.assert_allclose(mine["z"].to_numpy(), api["z"].to_numpy(dtype=float), atol=1e-9)


@pytest.mark.integration
def test_plan_rank_reads_the_database_when_it_holds_calls(history: str, tmp_path: Path) -> None:
    from api.domain.plans.services import weighted_categories

    out = tmp_path / "rank.csv"
    done = cli("plan", "rank", "--out", str(out), database_url=history)
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join(done.stderr.split())
    assert "from the database" in said
    assert "synthetic" not in said
    ranking = pd.read_csv(out).set_index("tehsil_code")
    with psycopg.connect(history) as conn:
        rows = conn.execute("SELECT tehsil_code, count(*) FROM calls WHERE category = ANY(%s) "
                            "GROUP BY tehsil_code", (list(weighted_categories()),)).fetchall()
    expected = {str(code): int(n) for code, n in rows if code is not None}
    assert sum(expected.values()) > 1000
    got = ranking["calls"].astype(int)
    assert {code: int(got[code]) for code in expected} == expected
    assert int(got.sum()) == sum(expected.values())
    # a file is read only when given
    done = cli("plan", "rank", "--calls", str(tmp_path / "none.csv"), database_url=history)
    assert done.returncode == 2
    assert "no such file" in done.stdout + done.stderr


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/api/v1/stats/response", "/api/v1/hotspots"])
def test_stats_and_hotspots_take_the_same_from_and_until(client: ServiceClient, path: str) -> None:
    area = {"level": "district", "code": DISTRICT, "res": 7}
    for since, until in (("2024-01-01", "2024-02-01"), ("2024-01-01T00:00:00+05:00",
                                                        "2024-02-01T00:00:00Z"),
                         ("2026-12-01", None)):
        params = {**area, "from": since, **({"until": until} if until else {})}
        answer = client.get(path, params=params, headers=PLANNER)
        assert answer.status_code == 200, (params, answer.text)
    january = client.get(path, params={**area, "from": "2024-01-01", "until": "2024-02-01"},
                         headers=PLANNER).json()
    same = client.get(path, params={**area, "from": "2024-01-01T00:00:00+05:00",
                                    "until": "2024-02-01T00:00:00+05:00"}, headers=PLANNER).json()
    assert json.dumps(january, sort_keys=True) == json.dumps(same, sort_keys=True)
    for name in ("from", "until"):
        answer = client.get(path, params={**area, name: "first of May"}, headers=PLANNER)
        assert answer.status_code == 400
        detail = answer.text
        assert f"{name}: 'first of May'" in detail
        assert "since" not in detail


@pytest.mark.integration
def test_stats_response_cli_takes_a_date(history: str) -> None:
    done = cli("stats", "response", "--level", "district", "--code", DISTRICT, "--from", "2024-01-01",
               "--until", "2024-02-01", "--json", database_url=history)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["calls"] > 0
    assert pd.Timestamp(report["from"]) == pd.Timestamp("2023-12-31T19:00:00Z")  # midnight in Pakistan


def test_route_csv_out_follows_the_name(tmp_path: Path) -> None:
    points = tmp_path / "points.csv"
    points.write_text("id,lat,lon\na,31.5204,74.3587\nb,33.7667,72.36\n")
    out = tmp_path / "routed.geojson"
    done = cli("route", "--csv", str(points), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    collection = json.loads(out.read_text())
    assert [f["properties"]["id"] for f in collection["features"]] == ["a", "b"]
    assert collection["features"][0]["properties"]["station_code"] == "PK61701-007"
    frame = gpd.read_file(out)
    assert len(frame) == 2
