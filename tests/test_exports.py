"""Exports people can use: calls and alerts as CSV, GeoJSON and GeoParquet, scoped like the
lists, with names beside codes and the sources' credits; the heat-map CSV says where.

The module has its own PostGIS database with a handful of calls taken through the API at
known places and times, and alerts raised by the engine at chosen instants, so every row
of every export can be checked.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.callservice import (
    ATTOCK_POINT,
    LAHORE_POINT,
    LAHORE_STATION,
    ServiceClient,
    headers,
    new_key,
    service_settings,
)
from tests.conftest import load_jurisdictions, scratch_postgis

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
LAHORE_DISTRICT, ATTOCK_DISTRICT = "PK617", "PK601"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def client() -> Iterator[ServiceClient]:
    from api.container import Container
    from api.settings import AlertSettings

    with scratch_postgis("safecity_exports") as url:
        load_jurisdictions(url)
        settings = service_settings(url, alerts=AlertSettings(tick_s=0.0, hotspot_scan_h=0.0))
        with ServiceClient(Container(settings, clock=Clock(T0))) as started:
            yield started


@pytest.fixture(scope="module")
def taken(client: ServiceClient) -> list[dict[str, Any]]:
    """Six calls: four in Lahore (one a hoax), two in Attock; then an alert for each Lahore
    call left unacknowledged."""
    calls = []
    plan = [(LAHORE_POINT, "other_crime", 0), (LAHORE_POINT, "murder", 10), (LAHORE_POINT, "hoax", 20),
            ((31.55, 74.30), "fire", 30), (ATTOCK_POINT, "other_crime", 40), (ATTOCK_POINT, "fire", 50)]
    for i, ((lat, lon), category, minutes) in enumerate(plan):
        at = T0 + timedelta(minutes=minutes)
        client.container.clock.now = max(client.container.clock.now, at)
        answer = client.post("/api/v1/calls", json={
            "lat": lat, "lon": lon, "category": category, "received_at": at.isoformat(),
            "caller_phone": f"+92300555000{i}"},
            headers=headers("call_taker", **{"Idempotency-Key": new_key("export")}))
        assert answer.status_code == 201, answer.text
        calls.append(answer.json())
    client.container.clock.now = T0 + timedelta(minutes=55)
    client.blocking_portal.call(client.container.alert_engine.run_due)
    return calls


def export(client: ServiceClient, what: str, role: str, scope: str = "PK6", **params: Any
           ) -> Any:
    return client.get(f"/api/v1/{what}/export", params=params, headers=headers(role, scope))


def test_calls_csv_is_the_callers_scope_with_names_and_phone_only_for_call_back_roles(
        client: ServiceClient, taken: list[dict[str, Any]]) -> None:
    answer = export(client, "calls", "dpo", LAHORE_DISTRICT)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="calls-district-PK617.csv"' in answer.headers["content-disposition"]
    assert "GeoNames" in answer.headers["x-attribution"]
    assert "CC BY-IGO" in answer.headers["x-attribution"]
    assert not answer.text.startswith("#")  # no comment line in the CSV itself
    table = pd.read_csv(io.StringIO(answer.text), dtype={"caller_phone": str})
    lahore = [c for c in taken if c["district_code"] == LAHORE_DISTRICT]
    assert sorted(table["id"]) == sorted(c["id"] for c in lahore)
    assert len(lahore) == 4
    assert set(table["district_code"]) == {LAHORE_DISTRICT}
    assert set(table["district_name"]) == {"Lahore"}
    row = table.set_index("id").loc[taken[0]["id"]]
    assert row["station_code"] == LAHORE_STATION
    assert row["station_name"] == taken[0]["station_name"]
    assert row["tehsil_name"] == taken[0]["tehsil_name"]
    assert row["category_label"] == taken[0]["category_label"]
    assert row["caller_phone"] == "+923005550000"
    assert list(table.columns[:4]) == ["id", "received_at", "status", "category"]
    assert "description" not in table.columns
    # an RPO commands but does not call back: no phone column at all
    answer = export(client, "calls", "rpo", "LHR")
    assert answer.status_code == 200, answer.text
    rpo = pd.read_csv(io.StringIO(answer.text))
    assert "caller_phone" not in rpo.columns
    assert "+92300555" not in answer.text
    assert len(rpo) == 4
    # an admin sees the province; a planner no calls; a DPO not another district
    assert len(pd.read_csv(io.StringIO(export(client, "calls", "admin").text))) == 6
    assert export(client, "calls", "planner").status_code == 403
    refused = export(client, "calls", "dpo", LAHORE_DISTRICT, district=ATTOCK_DISTRICT)
    assert refused.status_code == 403
    assert "outside your scope" in refused.text


def test_calls_filters_and_window_are_the_lists(client: ServiceClient, taken: list[dict[str, Any]]) -> None:
    window = {"from": (T0 + timedelta(minutes=5)).isoformat(),
              "until": (T0 + timedelta(minutes=45)).isoformat()}
    table = pd.read_csv(io.StringIO(export(client, "calls", "admin", **window).text))
    assert sorted(table["id"]) == sorted(c["id"] for c in taken[1:5])
    table = pd.read_csv(io.StringIO(export(client, "calls", "admin", category="fire").text))
    assert sorted(table["id"]) == sorted([taken[3]["id"], taken[5]["id"]])
    day = export(client, "calls", "admin", **{"from": T0.date().isoformat()})
    assert day.status_code == 200
    assert len(pd.read_csv(io.StringIO(day.text))) == 6
    bad = export(client, "calls", "admin", **{"from": "yesterday"})
    assert bad.status_code == 400
    assert "from: 'yesterday'" in bad.text
    bad = export(client, "calls", "admin", format="xlsx")
    assert bad.status_code == 400
    assert "csv, geojson, geoparquet" in bad.text


def test_calls_geojson_and_geoparquet_carry_the_same_rows_and_the_credits(
        client: ServiceClient, taken: list[dict[str, Any]]) -> None:
    answer = export(client, "calls", "dpo", LAHORE_DISTRICT, format="geojson")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    collection = answer.json()
    assert any("GeoNames (geonames.org), CC BY 4.0" in line for line in collection["attribution"])
    assert collection["meta"]["scope"] == {"role": "dpo", "level": "district", "code": LAHORE_DISTRICT}
    features = {f["properties"]["id"]: f for f in collection["features"]}
    assert set(features) == {c["id"] for c in taken[:4]}
    first = features[taken[0]["id"]]
    assert first["geometry"] == {"type": "Point", "coordinates": [LAHORE_POINT[1], LAHORE_POINT[0]]}
    assert first["properties"]["station_name"] == taken[0]["station_name"]
    answer = export(client, "calls", "rpo", "LHR", format="geoparquet")
    assert answer.status_code == 200, answer.text
    assert 'filename="calls-region-LHR.parquet"' in answer.headers["content-disposition"]
    frame = gpd.read_parquet(io.BytesIO(answer.content))
    assert frame.crs.to_epsg() == 4326
    assert set(frame["id"]) == {c["id"] for c in taken[:4]}
    assert "caller_phone" not in frame.columns
    assert frame.geometry.x.round(4).tolist().count(round(LAHORE_POINT[1], 4)) == 3
    note = json.loads(pq.read_schema(io.BytesIO(answer.content)).metadata[b"safecity"])
    assert any("CC BY-IGO" in line for line in note["attribution"])
    assert note["meta"]["rows"] == 4


def test_a_large_export_is_encoded_in_a_worker_and_is_the_same_file(
        client: ServiceClient, taken: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    import api.exports

    counts = client.container.workers.counts
    done = counts.done
    inline = export(client, "calls", "admin", format="geojson")
    assert counts.done == done  # six rows: encoded in the request
    monkeypatch.setattr(api.exports, "INLINE_ROWS", 2)
    pooled = export(client, "calls", "admin", format="geojson")
    assert pooled.status_code == 200, pooled.text
    assert counts.done == done + 1  # more than INLINE_ROWS: one job in a worker process
    assert pooled.content == inline.content
    # gzipped in the worker, once, for a client that takes gzip (httpx asks for it)
    assert pooled.headers["content-encoding"] == inline.headers["content-encoding"] == "gzip"
    plain = client.get("/api/v1/calls/export", params={"format": "geojson"},
                       headers={**headers("admin", "PK6"), "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == pooled.content


def test_alerts_export_names_stations_and_areas(client: ServiceClient, taken: list[dict[str, Any]]) -> None:
    answer = export(client, "alerts", "dpo", LAHORE_DISTRICT)
    assert answer.status_code == 200, answer.text
    table = pd.read_csv(io.StringIO(answer.text))
    assert len(table) >= 3
    assert set(table["district_code"]) == {LAHORE_DISTRICT}
    assert set(table["district_name"]) == {"Lahore"}
    row = table[table["call_ids"] == taken[0]["id"]].iloc[0]
    assert row["type"] == "unacknowledged"
    assert row["station_name"] == taken[0]["station_name"]
    assert f"{taken[0]['station_name']} ({LAHORE_STATION})" in row["summary"]
    assert row["lat"] == pytest.approx(LAHORE_POINT[0])
    assert "GeoNames" in answer.headers["x-attribution"]
    listed = client.get("/api/v1/alerts", headers=headers("dpo", LAHORE_DISTRICT)).json()["items"]
    assert sorted(a["id"] for a in listed) == sorted(table["id"])
    one = next(a for a in listed if a["id"] == int(row["id"]))
    assert one["summary"] == row["summary"]
    assert one["station_name"] == taken[0]["station_name"]
    collection = export(client, "alerts", "admin", format="geojson").json()
    assert len(collection["features"]) == len(client.get(
        "/api/v1/alerts", params={"limit": 500}, headers=headers("admin")).json()["items"])
    assert all(f["geometry"]["type"] == "Point" for f in collection["features"])
    assert any("CC BY 4.0" in line for line in collection["attribution"])
    assert export(client, "alerts", "planner").status_code == 403
    assert export(client, "alerts", "dpo", LAHORE_DISTRICT, level="district",
                  code=ATTOCK_DISTRICT).status_code == 403


def test_heatmap_csv_says_where_each_cell_is(client: ServiceClient, taken: list[dict[str, Any]]) -> None:
    answer = client.get("/api/v1/heatmaps/calls", params={
        "level": "station", "code": LAHORE_STATION, "res": 9, "format": "csv",
        "from": T0.date().isoformat()}, headers=headers("planner"))
    assert answer.status_code == 200, answer.text
    assert "GeoNames" in answer.headers["x-attribution"]
    table = pd.read_csv(io.StringIO(answer.text))
    assert list(table.columns[:7]) == ["h3", "lat", "lon", "station_code", "station_name",
                                       "tehsil_name", "district_name"]
    busy = table[table["count"] > 0]
    assert int(busy["count"].sum()) == 2  # the other crime and the murder; the hoax is no case
    assert set(busy["station_name"]) == {taken[0]["station_name"]}
    assert set(table["district_name"].dropna()) == {"Lahore"}
    import h3

    for cell, lat, lon in busy[["h3", "lat", "lon"]].itertuples(index=False):
        assert h3.latlng_to_cell(lat, lon, 9) == cell
