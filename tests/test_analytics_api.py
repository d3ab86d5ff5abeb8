"""Analytics endpoints on PostGIS with a small generated history loaded by `synth load`;
who may read them, over which area."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from tests.callservice import ServiceClient, headers, service_settings

pytestmark = pytest.mark.integration

DISTRICT = "PK633"  # Sheikhupura (Lahore region)
PLANNER = headers("planner")
ENDPOINTS = ("/api/v1/heatmaps/calls", "/api/v1/heatmaps/response", "/api/v1/hotspots",
             "/api/v1/hotspots/emerging")


def load_small_history(url: str) -> int:
    """Generate three months at a small scale and load them (idempotent: same seed, same ids)."""
    from bench._common import load_generated_history

    return load_generated_history(url, 3, 11, 0.003, "2024-01")


@pytest.fixture(scope="module")
def client(loaded_postgis: str) -> Iterator[Any]:
    from api.container import Container

    load_small_history(loaded_postgis)
    with ServiceClient(Container(service_settings(loaded_postgis))) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ENDPOINTS)
def test_json_rows_per_cell(client: Any, path: str) -> None:
    answer = client.get(path, params={"level": "district", "code": DISTRICT, "res": 7},
                        headers=PLANNER)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    meta, cells = body["meta"], body["cells"]
    assert meta["area"] == {"level": "district", "code": DISTRICT, "name": "Sheikhupura"}
    assert meta["cells"] == len(cells) > 100
    assert meta["calls"] > 0
    assert len({c["h3"] for c in cells}) == len(cells)
    assert all("phone" not in key for c in cells[:5] for key in c)
    assert b"caller" not in answer.content
    assert b"phone" not in answer.content
    if path.endswith("calls"):
        assert sum(c["count"] for c in cells) + meta["outside"] == meta["calls"]
        assert any(c["count"] == 0 for c in cells)  # zero cells kept
    if path.endswith("hotspots"):
        assert {c["bin"] for c in cells} <= set(range(-3, 4))
    if path.endswith("emerging"):
        assert meta["steps"] >= 3
        assert all(isinstance(c["category"], str) for c in cells)
    if path.endswith("response"):
        few = [c for c in cells if c["too_few"]]
        assert few
        assert all(c["median_min"] is None for c in few)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(("fmt", "accept", "media"), [
    ("geojson", None, "application/geo+json"),
    (None, "application/geo+json", "application/geo+json"),
    ("csv", None, "text/csv"),
    (None, "text/csv", "text/csv"),
    ("geoparquet", None, "application/vnd.apache.parquet"),
    (None, "application/vnd.apache.parquet", "application/vnd.apache.parquet"),
])
def test_formats(client: Any, path: str, fmt: str | None, accept: str | None, media: str) -> None:
    import geopandas as gpd
    import pandas as pd

    params: dict[str, Any] = {"level": "district", "code": DISTRICT, "res": 7}
    if fmt:
        params["format"] = fmt
    answer = client.get(path, params=params,
                        headers={**PLANNER, **({"Accept": accept} if accept else {})})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(media)
    if media == "application/geo+json":
        body = answer.json()
        assert body["type"] == "FeatureCollection"
        feature = body["features"][0]
        assert feature["geometry"]["type"] == "Polygon"
        assert len(feature["geometry"]["coordinates"][0]) == 7  # hexagon, closed ring
        assert "h3" in feature["properties"]
    elif media == "text/csv":
        frame = pd.read_csv(io.StringIO(answer.text))
        assert frame.columns[0] == "h3"
        assert len(frame) > 100
    else:
        frame = gpd.read_parquet(io.BytesIO(answer.content))
        assert frame.crs.to_epsg() == 4326
        assert len(frame) > 100
        assert set(frame.geom_type) == {"Polygon"}


@pytest.mark.parametrize("path", ENDPOINTS[:3])
def test_window_without_calls_gives_zero_cells(client: Any, path: str) -> None:
    answer = client.get(path, params={"level": "district", "code": DISTRICT, "res": 7,
                                      "from": "2030-01-01", "until": "2030-02-01"},
                        headers=PLANNER)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["meta"]["calls"] == 0
    assert len(body["cells"]) == body["meta"]["cells"] > 100
    if path.endswith("calls"):
        assert all(c["count"] == 0 for c in body["cells"])
    if path.endswith("hotspots"):
        assert all(c["bin"] == 0 for c in body["cells"])
    if path.endswith("response"):
        assert all(c["too_few"] for c in body["cells"])


def test_emerging_without_calls_is_a_clear_422(client: Any) -> None:
    answer = client.get("/api/v1/hotspots/emerging", params={
        "level": "district", "code": DISTRICT, "from": "2030-01-01", "until": "2030-01-08"},
        headers=PLANNER)
    assert answer.status_code == 422
    assert "emerging" in answer.json()["detail"]


def test_filters_narrow_the_selection(client: Any) -> None:
    base = {"level": "district", "code": DISTRICT, "res": 7}

    def meta(params: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = client.get("/api/v1/heatmaps/calls", params=params,
                                           headers=PLANNER).json()["meta"]
        return found

    every = meta(base)["calls"]
    serious = meta({**base, "serious": "true"})
    window = meta({**base, "from": "2024-02-01", "until": "2024-03-01"})
    hoax = meta({**base, "category": "hoax"})
    assert 0 < serious["calls"] < every
    assert 0 < window["calls"] < every
    assert hoax["categories"] == ["hoax"]
    assert hoax["calls"] > every


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"res": 4}, 400, "res 4 outside 5–10"),
    ({"res": 11}, 400, "outside 5–10"),
    ({"res": "x"}, 400, "res"),
    ({"level": "planet"}, 400, "unknown level"),
    ({"level": "district"}, 400, "needs a code"),
    ({"level": "district", "code": "PK999"}, 404, "no district with code"),
    ({"from": "2024-03-01", "until": "2024-02-01"}, 400, "after until"),
    ({"from": "yesterday"}, 400, "ISO 8601"),
    ({"category": "jaywalking"}, 400, "unknown category"),
    ({"format": "xml"}, 400, "unknown format"),
    ({"res": 10}, 422, "coarser res"),
])
def test_bad_parameters_are_4xx(client: Any, params: dict[str, Any], status: int, words: str) -> None:
    answer = client.get("/api/v1/hotspots", params=params, headers=PLANNER)
    assert answer.status_code == status, answer.text
    assert words in str(answer.json())


# role, scope, area asked for, expected status
SCOPES = [
    ("planner", "PK6", ("province", None), 200),
    ("planner", "PK6", ("district", DISTRICT), 200),
    ("planner", "PK617", ("district", DISTRICT), 403),  # a planner's scope narrows too
    ("dpo", DISTRICT, ("district", DISTRICT), 200),
    ("dpo", DISTRICT, ("tehsil", "PK63302"), 200),  # inside the own district
    ("dpo", DISTRICT, ("district", "PK617"), 403),
    ("dpo", DISTRICT, ("province", None), 403),
    ("cpo", "PK617", ("district", DISTRICT), 403),
    ("rpo", "LHR", ("district", DISTRICT), 200),
    ("rpo", "RWP", ("district", DISTRICT), 403),
    ("sho", "PK63301-001", ("station", "PK63301-001"), 200),
    ("sho", "PK63301-001", ("district", DISTRICT), 403),
    ("ig", "PK6", ("province", None), 200),
    ("admin", "PK601", ("district", DISTRICT), 200),  # an administrator's scope does not narrow
    ("call_taker", "PK6", ("district", DISTRICT), 403),  # single calls, not analytics
]


@pytest.mark.parametrize(("role", "scope", "area", "status"), SCOPES,
                         ids=[f"{r}-{s}-{a[1] or a[0]}" for r, s, a, _ in SCOPES])
def test_scope_of_every_role(client: Any, role: str, scope: str, area: tuple[str, str | None],
                             status: int) -> None:
    level, code = area
    res = {"province": 5, "station": 9}.get(level, 7)
    params = {"level": level, "res": res, **({"code": code} if code else {})}
    answer = client.get("/api/v1/heatmaps/calls", params=params, headers=headers(role, scope))
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.json()["meta"]["area"]["level"] == level
    else:
        detail = answer.json()["detail"]
        assert ("outside your scope" in detail) if role != "call_taker" else ("may not" in detail)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_endpoint_needs_a_token_and_the_role(client: Any, path: str) -> None:
    params = {"level": "district", "code": DISTRICT, "res": 7}
    missing = client.get(path, params=params)
    assert missing.status_code == 401, missing.text
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert client.get(path, params=params,
                      headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    assert client.get(path, params=params, headers=headers("call_taker")).status_code == 403
    assert client.get(path, params=params, headers=headers("dpo", "PK617")).status_code == 403
    assert client.get(path, params={**params, "level": "province"},
                      headers=headers("dpo", DISTRICT)).status_code == 403


def test_dashboard_heatmaps_draw_the_api_cells(client: Any) -> None:
    """``/dash/{level}/{code}/heatmaps/{kind}`` (the dashboard map's toggles): the cells of the
    analytics answer at the map pages' resolution, only those a map colours, with the figures
    of the API's rows and a legend that states calls, cells, window and minimum."""
    hot = client.get(f"/dash/district/{DISTRICT}/heatmaps/hotspots", headers=PLANNER)
    assert hot.status_code == 200, hot.text
    body = hot.json()
    res = body["res"]  # the map pages' own for a district: the finest within 8,000 cells
    assert res == 8
    assert body["window"] == "all dates on record"
    rows = client.get("/api/v1/hotspots", params={"level": "district", "code": DISTRICT, "res": res},
                      headers=PLANNER).json()
    assert body["calls"] == rows["meta"]["calls"] > 0
    assert body["cells"] == rows["meta"]["cells"]
    by_h3 = {r["h3"]: r for r in rows["cells"]}
    columns = body["columns"]
    assert 0 < body["drawn"] == len(columns["h3"]) <= body["cells"]
    labels = [c["label"] for c in body["classes"]]
    for i, h in enumerate(columns["h3"]):
        row, label = by_h3[h], labels[columns["cls"][i]]
        assert columns["values"]["calls"][i] == row["count"]
        if label.startswith("too few"):
            assert columns["values"]["z"][i] is None
        else:
            assert row["bin"] != 0
            assert columns["values"]["z"][i] == round(row["z"], 2)
    assert body["min_count"] == 5
    assert any("Minimum: 5 calls" in n for n in body["notes"])
    assert any(n.startswith("Gi* (Getis–Ord) z and p") for n in body["notes"])
    assert body["api"] == f"/api/v1/hotspots?level=district&code={DISTRICT}&res=8"
    response = client.get(f"/dash/district/{DISTRICT}/heatmaps/response", headers=PLANNER).json()
    assert response["title"] == "Median minutes to scene"
    assert response["drawn"] > 0
    assert {c["label"] for c in response["classes"]} <= {
        "too few calls (under 5 valid times)", "under 10 min", "10 to 15 min", "15 to 20 min",
        "20 to 30 min", "30 min or more"}


@pytest.mark.parametrize(("path", "hdrs", "status"), [
    (f"/dash/district/{DISTRICT}/heatmaps/hotspots", headers("dpo", "PK617"), 403),
    (f"/dash/district/{DISTRICT}/heatmaps/response", headers("call_taker"), 403),
    (f"/dash/district/{DISTRICT}/heatmaps/emerging", PLANNER, 404),
    (f"/dash/district/{DISTRICT}/heatmaps/hotspots", {}, 303),
])
def test_dashboard_heatmaps_are_scoped_as_the_api(client: Any, path: str, hdrs: dict[str, str],
                                                  status: int) -> None:
    answer = client.get(path, headers=hdrs, follow_redirects=False)
    assert answer.status_code == status, answer.text


def test_cells_are_gzipped_in_the_worker_once_for_a_client_that_takes_gzip(client: Any) -> None:
    params = {"level": "district", "code": DISTRICT, "res": 8}
    zipped = client.get("/api/v1/hotspots", params=params,
                        headers={**PLANNER, "Accept-Encoding": "gzip"})
    assert zipped.status_code == 200, zipped.text
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept, Accept-Encoding"
    plain = client.get("/api/v1/hotspots", params=params,
                       headers={**PLANNER, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert zipped.json() == plain.json()  # one layer of gzip (the middleware added none)
    assert int(zipped.headers["content-length"]) < len(plain.content) / 4
