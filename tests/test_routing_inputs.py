"""What ``POST /route`` and ``/route/batch`` accept and what they answer with.

Inputs are strict and checked the same way in every form (one JSON point, a JSON batch,
a GeoJSON batch): a number sent as a string, a radius out of ``[0, 50000]`` (``1e9``,
out-of-range ``1e999``, ``"inf"``, ``"nan"``, negative) or a feature that is not an object
is a 422 naming the field or the feature, never a 500. GeoJSON batches come back as a
FeatureCollection with each feature's ``id`` and properties; answers carry names.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.domain.routing.schemas import FeatureCollection, RouteBatch
from api.domain.routing.services import batch_arrays, decode_batch, decode_point
from api.errors import AppError, UnprocessableError
from tests.callservice import ATTOCK_POINT, LAHORE_POINT, LAHORE_STATION, headers

ROUTE = "/api/v1/route/"
BATCH = "/api/v1/route/batch"
LAT, LON = LAHORE_POINT


def point(**extra: Any) -> dict[str, Any]:
    return {"lat": LAT, "lon": LON, **extra}


def feature(radius: Any = None, **extra: Any) -> dict[str, Any]:
    props = {} if radius is None else {"radius_m": radius}
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [LON, LAT]},
            "properties": props, **extra}


def collection(*features: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def raw(body: Any) -> bytes:
    """JSON text as a client might send it (``1e999`` needs to be written by hand)."""
    return json.dumps(body).replace('"__HUGE__"', "1e999").encode()


def in_every_form(radius: Any) -> dict[str, bytes]:
    """One radius sent as a point, a JSON batch and a GeoJSON batch."""
    return {"point": raw(point(radius_m=radius)),
            "json batch": raw({"points": [point(), point(radius_m=radius)]}),
            "geojson batch": raw(collection(feature(), feature(radius)))}


def decode_checked(form: str, body: bytes) -> None:
    """What the endpoint does with a body before routing it (in the worker for batches)."""
    if form == "point":
        decode_point(body)
    else:
        batch_arrays(decode_batch(body))


# ----------------------------------------------------------------- decoding, no server


BAD_RADII = [1e9, "__HUGE__", "inf", "nan", -1, -0.5, 50_000.001, "100", True, [1], {"m": 1}]


@pytest.mark.parametrize("radius", BAD_RADII, ids=repr)
@pytest.mark.parametrize("form", ["point", "json batch", "geojson batch"])
def test_a_bad_radius_is_a_422_naming_the_field_and_the_bound(form: str, radius: Any) -> None:
    with pytest.raises(UnprocessableError) as caught:
        decode_checked(form, in_every_form(radius)[form])
    detail = str(caught.value)
    assert caught.value.status == 422
    assert "radius_m" in detail
    assert "50,000" in detail or "50000" in detail, detail
    if form == "geojson batch":
        assert "feature 1" in detail, detail
    if form == "json batch":
        assert "points[1]" in detail, detail


@given(st.floats(allow_nan=True, allow_infinity=True, width=64))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_every_form_draws_the_same_line_on_the_radius(radius: float) -> None:
    """A radius is accepted in one form exactly when it is in the others, and that is when
    it lies within ``[0, 50000]``."""
    text = msgspec.json.encode(radius) if np.isfinite(radius) else b'"nan"'
    bodies = {
        "point": b'{"lat": %r, "lon": %r, "radius_m": %s}' % (LAT, LON, text),
        "json batch": b'{"points": [{"lat": %r, "lon": %r, "radius_m": %s}]}' % (LAT, LON, text),
        "geojson batch": (b'{"type": "FeatureCollection", "features": [{"type": "Feature", '
                          b'"geometry": {"type": "Point", "coordinates": [%r, %r]}, '
                          b'"properties": {"radius_m": %s}}]}' % (LON, LAT, text)),
    }
    outcome = {}
    for form, body in bodies.items():
        try:
            decode_checked(form, body)
            outcome[form] = True
        except UnprocessableError:
            outcome[form] = False
    assert set(outcome.values()) == {0.0 <= radius <= 50_000}, (radius, outcome)


@given(st.floats(-200, 200), st.floats(-200, 200))
@settings(max_examples=200)
def test_coordinates_are_bounded_alike_in_json_and_geojson(lat: float, lon: float) -> None:
    json_body = msgspec.json.encode({"points": [{"lat": lat, "lon": lon}]})
    geojson_body = msgspec.json.encode(collection({
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}}))
    accepted = []
    for form, body in (("json batch", json_body), ("geojson batch", geojson_body)):
        try:
            decode_checked(form, body)
            accepted.append(True)
        except UnprocessableError:
            accepted.append(False)
    assert accepted == [abs(lat) <= 90 and abs(lon) <= 180] * 2


@pytest.mark.parametrize(("body", "field"), [
    (point() | {"lat": "31.5"}, "lat"),
    (point() | {"lon": "74.3"}, "lon"),
    (point(radius_m="100"), "radius_m"),
    (point() | {"lat": True}, "lat"),
])
def test_numbers_sent_as_strings_are_refused(body: dict[str, Any], field: str) -> None:
    with pytest.raises(UnprocessableError, match=field):
        decode_point(raw(body))
    with pytest.raises(UnprocessableError, match=rf"points\[0\]\.{field}"):
        decode_checked("json batch", raw({"points": [body]}))


@pytest.mark.parametrize(("features", "where"), [
    ([1], "feature 0"),
    (["x"], "feature 0"),
    ([[1, 2]], "feature 0"),
    ([None], "feature 0"),
    ([feature(), {"type": "Feature", "geometry": "POINT(74 31)"}], "feature 1"),
    ([feature(), feature(), feature() | {"properties": [1, 2]}], "feature 2"),
    ([feature() | {"geometry": {"type": "Polygon", "coordinates": [[[74, 31]]]}}], "feature 0"),
    ([feature() | {"geometry": {"type": "Point", "coordinates": [74]}}], "feature 0"),
    ([feature() | {"geometry": {"type": "Point", "coordinates": ["74", "31"]}}], "feature 0"),
    ([feature() | {"geometry": None}], "feature 0"),
])
def test_features_that_are_not_point_features_name_their_index(features: list[Any],
                                                               where: str) -> None:
    with pytest.raises(UnprocessableError) as caught:
        decode_checked("geojson batch", raw(collection(*features)))
    assert where in str(caught.value), str(caught.value)


def test_a_body_of_neither_form_is_a_400() -> None:
    for body in (b"[1, 2]", b'{"type": "FeatureCollection"}', b'{"features": []}', b"{]"):
        with pytest.raises(AppError) as caught:
            decode_checked("json batch", body)
        assert caught.value.status in {400, 422}, body


def test_good_batches_decode_to_their_arrays() -> None:
    body = decode_batch(raw(collection(feature(25), feature(None, id="a"), feature(0.0))))
    assert isinstance(body, FeatureCollection)
    lat, lon, radius = batch_arrays(body)
    assert radius.tolist() == [25.0, 0.0, 0.0]
    assert lat.tolist() == [LAT] * 3
    assert lon.tolist() == [LON] * 3
    json_body = decode_batch(raw({"points": [point(radius_m=7), point()]}))
    assert isinstance(json_body, RouteBatch)
    assert batch_arrays(json_body)[2].tolist() == [7.0, 0.0]


# ----------------------------------------------------------------- over HTTP (PostGIS)


@pytest.mark.integration
@pytest.mark.parametrize("radius", [1e9, "__HUGE__", "inf", "nan", -1, "100"], ids=repr)
def test_the_endpoints_answer_bad_radii_with_a_422(client: httpx.Client, radius: Any) -> None:
    hdrs = headers("planner", "PK6") | {"Content-Type": "application/json"}
    for form, body in in_every_form(radius).items():
        path = ROUTE if form == "point" else BATCH
        answer = client.post(path, content=body, headers=hdrs)
        assert answer.status_code == 422, (form, answer.text)
        assert "radius_m" in answer.json()["detail"], (form, answer.text)


@pytest.mark.integration
@pytest.mark.parametrize("features", [[1], ["x"], [[1, 2]],
                                      [{"type": "Feature", "geometry": "POINT(74 31)"}],
                                      [feature() | {"properties": [1, 2]}]], ids=repr)
def test_the_batch_endpoint_names_the_bad_feature(client: httpx.Client,
                                                  features: list[Any]) -> None:
    answer = client.post(BATCH, json=collection(*features), headers=headers("planner", "PK6"))
    assert answer.status_code == 422, answer.text
    assert "feature 0" in answer.json()["detail"]


@pytest.mark.integration
def test_string_numbers_are_a_422_over_http(client: httpx.Client) -> None:
    hdrs = headers("call_taker", "PK617")
    for body in (point() | {"lat": "31.5"}, point(radius_m="100")):
        answer = client.post(ROUTE, json=body, headers=hdrs)
        assert answer.status_code == 422, answer.text
        batch = client.post(BATCH, json={"points": [body]}, headers=hdrs)
        assert batch.status_code == 422, batch.text
    assert client.post(ROUTE, json=point(radius_m=100), headers=hdrs).status_code == 200


@pytest.mark.integration
def test_geojson_batches_keep_ids_properties_and_order(client: httpx.Client) -> None:
    features: list[dict[str, Any]] = [
        {"type": "Feature", "id": "site-7", "properties": {"name": "camera 7", "radius_m": 40},
         "geometry": {"type": "Point", "coordinates": [LON, LAT]}},
        {"type": "Feature", "id": 12, "properties": None,
         "geometry": {"type": "Point", "coordinates": [ATTOCK_POINT[1], ATTOCK_POINT[0], 350.0]}},
        {"type": "Feature", "properties": {"method": "mine", "note": [1, {"a": None}]},
         "geometry": {"type": "Point", "coordinates": [LON, LAT]}},
    ]
    answer = client.post(BATCH, json=collection(*features), headers=headers("planner", "PK6"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["type"] == "FeatureCollection"
    assert body["count"] == 3
    assert body["rejected"] == 0
    out = body["features"]
    assert [f.get("id") for f in out] == ["site-7", 12, None]
    assert "id" not in out[2]  # a feature sent without an id comes back without one
    assert [f["geometry"] for f in out] == [f["geometry"] for f in features]
    first, second, third = (f["properties"] for f in out)
    assert first["name"] == "camera 7"
    assert first["radius_m"] == 40
    assert first["station_code"] == LAHORE_STATION
    assert first["method"] == "overlap"
    assert second["district_code"] == "PK601"
    assert second["district_name"] == "Attock"
    assert third["note"] == [1, {"a": None}]
    assert third["method"] in {"interior", "boundary"}  # the answer's field wins


@pytest.mark.integration
def test_json_batches_keep_their_order(client: httpx.Client) -> None:
    rng = np.random.default_rng(16)
    places = [LAHORE_POINT, ATTOCK_POINT, (24.8607, 67.0011)]
    order = rng.integers(0, 3, 60)
    points = [{"lat": places[i][0], "lon": places[i][1]} for i in order]
    answer = client.post(BATCH, json={"points": points}, headers=headers("planner", "PK6"))
    assert answer.status_code == 200, answer.text
    routes = answer.json()["routes"]
    hdrs = headers("planner", "PK6")
    alone = [client.post(ROUTE, json={"lat": lat, "lon": lon}, headers=hdrs) for lat, lon in places]
    expected = [one.json()["station_code"] if one.status_code == 200 else None for one in alone]
    assert expected[0] == LAHORE_STATION
    assert expected[1] is not None
    assert [r["station_code"] for r in routes] == [expected[int(i)] for i in order]


@pytest.mark.integration
def test_route_answers_carry_names(client: httpx.Client) -> None:
    answer = client.post(ROUTE, json=point(), headers=headers("call_taker", "PK617"))
    assert answer.status_code == 200, answer.text
    route = answer.json()
    assert route["station_code"] == LAHORE_STATION
    assert route["station_name"].startswith("Lahore Cantt")
    assert route["tehsil_code"] == "PK61701"
    assert route["tehsil_name"] == "Lahore Cantt"
    assert route["district_code"] == "PK617"
    assert route["district_name"] == "Lahore"
    assert route["region_code"] == "LHR"
    assert route["region_name"] == "Lahore"
    batch = client.post(BATCH, json={"points": [point()]}, headers=headers("planner", "PK6"))
    assert {k: v for k, v in batch.json()["routes"][0].items() if k.endswith("_name")} == \
        {k: v for k, v in route.items() if k.endswith("_name")}


# ----------------------------------------------------------------- out of Punjab


INSIDE = {"Lahore": (31.5204, 74.3587), "Rawalpindi": (33.5651, 73.0169),
          "Multan": (30.1575, 71.5249)}
OUTSIDE = {"Islamabad": ((33.6844, 73.0479), "Islamabad Capital Territory"),
           "Peshawar": ((34.0151, 71.5249), "Khyber Pakhtunkhwa"),
           "Karachi": ((24.8607, 67.0011), "Sindh"),
           "Quetta": ((30.1798, 66.9750), "Balochistan"),
           "Muzaffarabad": ((34.3700, 73.4711), "Azad Jammu and Kashmir"),
           "Gilgit": ((35.9208, 74.3080), "Gilgit-Baltistan")}


@pytest.fixture(scope="module")
def provinces() -> Any:
    import geopandas as gpd

    from jurisdictions.catalog import PROVINCES_FILE
    from jurisdictions.sources import verified_source

    return gpd.read_file(verified_source(PROVINCES_FILE))


@pytest.fixture(scope="module")
def router(punjab_router: Any) -> Any:
    """The shipped set's router with Pakistan's other provinces beside it."""
    from jurisdictions.catalog import neighbouring_provinces
    from jurisdictions.router import Router

    return Router(punjab_router.index, neighbours=neighbouring_provinces())


@pytest.mark.parametrize("name", INSIDE)
def test_punjab_cities_are_not_flagged(router: Any, name: str) -> None:
    lat, lon = INSIDE[name]
    answer = router.resolve(lat, lon)
    assert answer.outside_punjab is None
    assert not answer.transfer_suggested
    assert answer.method in {"interior", "boundary"}
    assert answer.district_name == name


@pytest.mark.parametrize("name", OUTSIDE)
@pytest.mark.parametrize("radius", [None, 300.0])
def test_cities_of_other_provinces_are_named_with_a_fallback_station(
        router: Any, name: str, radius: float | None) -> None:
    (lat, lon), province = OUTSIDE[name]
    answer = router.resolve(lat, lon, radius)
    assert answer.outside_punjab == province
    assert answer.transfer_suggested
    assert answer.out_of_coverage
    assert answer.method == "nearest"
    assert answer.station_code  # the nearest Punjab station, however far
    assert answer.distance_m > 0
    assert answer.to_dict()["transfer_suggested"] is True
    batch = router.resolve_many([lat], [lon], [radius or 0.0])
    assert batch["outside_punjab"].tolist() == [province]
    assert batch["station_code"].tolist() == [answer.station_code]
    assert batch["distance_m"].tolist() == pytest.approx([answer.distance_m])
    assert batch["out_of_coverage"].tolist() == [True]


def test_without_the_provinces_the_router_answers_as_before(punjab_router: Any) -> None:
    from jurisdictions.errors import OutsidePunjabError

    (lat, lon), _ = OUTSIDE["Karachi"]
    with pytest.raises(OutsidePunjabError):
        punjab_router.resolve(lat, lon)
    assert punjab_router.resolve_many([lat], [lon])["method"].tolist() == ["rejected"]


def test_the_fallback_is_the_nearest_station_in_metres(router: Any) -> None:
    """Checked against every station's distance (the unbounded search only narrows it)."""
    import shapely
    from pyproj import Transformer

    stations = router.index.stations
    for (lat, lon), _province in OUTSIDE.values():
        epsg = 32642 if lon < 72 else 32643
        to_utm = Transformer.from_crs(4326, epsg, always_xy=True)

        def project(xy: Any, t: Any = to_utm) -> Any:
            return np.column_stack(t.transform(xy[:, 0], xy[:, 1]))

        projected = shapely.transform(stations.geometry.values, project)
        x, y = to_utm.transform(lon, lat)
        distances = shapely.distance(projected, shapely.Point(x, y))
        best = int(np.argmin(distances))
        answer = router.resolve(lat, lon)
        assert answer.station_code == stations["code"].iloc[best]
        assert answer.distance_m == pytest.approx(float(distances[best]), rel=1e-9)


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=4, deadline=None)
def test_near_the_border_only_points_outside_punjab_are_flagged(
        router: Any, provinces: Any, seed: int) -> None:
    """Random points within 3 km of Punjab's outline: a point in COD-AB Punjab is never
    flagged; one in a neighbour more than 100 m from the outline always is, with the
    neighbour's name (within 100 m the tehsils and the province outline may disagree)."""
    import shapely

    punjab = provinces[provinces["code"] == "PK6"].geometry.iloc[0]
    band = shapely.buffer(punjab.boundary, 0.03)
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = band.bounds
    xy = rng.uniform((minx, miny), (maxx, maxy), (60_000, 2))
    xy = xy[shapely.contains_xy(band, xy[:, 0], xy[:, 1])]
    answers = router.resolve_many(xy[:, 1], xy[:, 0])
    flagged = (answers["outside_punjab"] != "").to_numpy()
    in_punjab = shapely.contains_xy(punjab, xy[:, 0], xy[:, 1])
    assert not flagged[in_punjab].any()
    clear = shapely.distance(punjab, shapely.points(xy)) > 0.001  # about 100 m
    for _, row in provinces[provinces["code"] != "PK6"].iterrows():
        inside = shapely.contains_xy(row.geometry, xy[:, 0], xy[:, 1]) & clear
        assert set(answers["outside_punjab"][inside]) <= {row["name"]}
        assert flagged[inside].all()
    assert flagged.sum() > 100  # the band does reach into the neighbours


# ----------------------------------------------------------------- the CLI


def run_cli(tmp_path: Any, *args: str) -> Any:
    """``safecity route`` as a user runs it (embedded default, nothing loaded: the files)."""
    import os
    import subprocess
    import sys

    from tests.callservice import ROOT

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["SAFECITY_SQLITE_PATH"] = str(tmp_path / "empty.sqlite")
    return subprocess.run([sys.executable, "-m", "api.cli", "route", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False, timeout=300)


def test_the_cli_prints_the_apis_answer_with_names_and_flags(tmp_path: Any) -> None:
    (lat, lon), province = OUTSIDE["Islamabad"]
    done = run_cli(tmp_path, str(lat), str(lon))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["outside_punjab"] == province
    assert answer["transfer_suggested"] is True
    assert answer["district_name"] == "Rawalpindi"
    assert answer["station_name"].startswith("Rawalpindi")
    assert "transfer the call" in " ".join(done.stderr.split())
    inside = run_cli(tmp_path, str(LAT), str(LON), "--radius-m", "100")
    assert inside.returncode == 0, inside.stderr
    routed = json.loads(inside.stdout)
    assert routed["method"] == "overlap"
    assert routed["station_code"] == LAHORE_STATION
    assert (routed["tehsil_name"], routed["district_name"]) == ("Lahore Cantt", "Lahore")
    assert (routed["outside_punjab"], routed["transfer_suggested"]) == (None, False)
    refused = run_cli(tmp_path, str(LAT), str(LON), "--radius-m", "1e9")
    assert refused.returncode == 2
    assert "radius_m" in refused.stderr


def test_the_cli_csv_carries_names_and_flags(tmp_path: Any) -> None:
    import pandas as pd

    places = [INSIDE["Lahore"], OUTSIDE["Karachi"][0], OUTSIDE["Peshawar"][0], (28.6139, 77.2090)]
    source = tmp_path / "points.csv"
    pd.DataFrame({"site": ["a", "b", "c", "d"], "lat": [p[0] for p in places],
                  "lon": [p[1] for p in places]}).to_csv(source, index=False)
    target = tmp_path / "routed.csv"
    done = run_cli(tmp_path, "--csv", str(source), "--out", str(target))
    assert done.returncode == 0, done.stderr
    routed = pd.read_csv(target, keep_default_na=False)
    assert routed["site"].tolist() == ["a", "b", "c", "d"]
    assert routed["outside_punjab"].tolist() == ["", "Sindh", "Khyber Pakhtunkhwa", ""]
    assert routed["transfer_suggested"].tolist() == [False, True, True, False]
    assert routed["method"].tolist() == ["interior", "nearest", "nearest", "rejected"]
    assert routed["district_name"].tolist()[0] == "Lahore"
    assert "2 outside Punjab" in " ".join(done.stderr.split())


@pytest.mark.integration
def test_out_of_province_decisions_are_audited(client: httpx.Client, loaded_postgis: str) -> None:
    import uuid

    import psycopg

    from api.auth import mint_token
    from tests.callservice import SECRET

    subject = f"route-outside-{uuid.uuid4().hex[:8]}"
    hdrs = {"Authorization": f"Bearer {mint_token(SECRET, 'planner', 'PK6', 'province', subject=subject)}"}
    (lat, lon), province = OUTSIDE["Islamabad"]
    one = client.post(ROUTE, json={"lat": lat, "lon": lon}, headers=hdrs)
    assert one.status_code == 200, one.text
    assert one.json()["outside_punjab"] == province
    batch = client.post(BATCH, json={"points": [{"lat": lat, "lon": lon}, point()]}, headers=hdrs)
    assert batch.status_code == 200, batch.text
    assert [r["transfer_suggested"] for r in batch.json()["routes"]] == [True, False]
    with psycopg.connect(loaded_postgis, autocommit=True) as db:
        rows = db.execute("SELECT action, detail FROM audit_log WHERE actor = %s ORDER BY id",
                          (subject,)).fetchall()
    assert [r[0] for r in rows] == ["route", "route.batch"]
    assert rows[0][1]["outside_punjab"] == province
    assert rows[1][1]["outside_punjab"] == 1
    assert rows[1][1]["count"] == 2
