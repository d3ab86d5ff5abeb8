"""The area dashboard's data and pages over real PostGIS (in-process app, its jobs running).

Calls are posted through the API as a call taker would; the dashboard's projection is
kept by the app's own refresh job. The figures are checked against straightforward
counts over ``calls``, the response percentiles against ``GET /stats/response`` (the
same definitions), the scope rules against the API's, and a new call against the 5 s
counting target.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, func, select, text

from api.db.call_models import CallRecord
from api.domain.dashboard.services import bin_percentile
from tests.callservice import LAHORE_POINT, call_body, headers, post_call

pytestmark = pytest.mark.integration

DISTRICT = "PK617"  # Lahore
TEHSIL = "PK61701"
STATION = "PK61701-007"
COUNTED_WITHIN_S = 5.0


def _sync_url(client: Any) -> str:
    return str(client.container.engine.url.set(drivername="postgresql+psycopg").render_as_string(
        hide_password=False))


def _post_now(client: Any, n: int, category: str = "other_crime",
              at: datetime | None = None) -> list[str]:
    ids = []
    for i in range(n):
        body = call_body(LAHORE_POINT[0] + 0.0004 * i, LAHORE_POINT[1], category, at=at)
        if at is None:
            body.pop("received_at")
        answer = post_call(client, body)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


def _figures(client: Any, level: str, code: str, role: str = "dpo", scope: str = DISTRICT, *,
             parts: str = "figures") -> dict[str, Any]:
    answer = client.get(f"/api/v1/dashboard/{level}/{code}", params={"parts": parts},
                        headers=headers(role, scope))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _counted(client: Any, want: int, level: str = "district", code: str = DISTRICT) -> float:
    """Seconds until the area's calls today reach ``want`` (fails after the target)."""
    started = time.monotonic()
    while True:
        got = _figures(client, level, code)["key_figures"]["calls_today"]["value"]
        if got >= want:
            return time.monotonic() - started
        assert time.monotonic() - started < COUNTED_WITHIN_S, (got, want)
        time.sleep(0.1)


def test_bin_percentiles_match_numpy_within_a_bin() -> None:
    rng = np.random.default_rng(7)
    seconds = rng.gamma(3.0, 200.0, 5000)
    bins: dict[int, int] = {}
    for value in np.floor(seconds / 30).astype(int):
        bins[int(value)] = bins.get(int(value), 0) + 1
    for q in (0.5, 0.9):
        found = bin_percentile(bins, q)
        assert found is not None
        assert abs(found - float(np.percentile(seconds, q * 100))) <= 30.0
    assert bin_percentile({}, 0.5) is None
    assert bin_percentile({4: 1}, 0.5) == pytest.approx(135.0)


def test_new_calls_counted_within_5_s_and_agree_with_calls(client: Any) -> None:
    before = _figures(client, "district", DISTRICT)
    base = before["key_figures"]["calls_today"]["value"]
    _post_now(client, 3, "other_crime")
    _post_now(client, 1, "dacoity_robbery")
    waited = _counted(client, base + 4)
    assert waited < COUNTED_WITHIN_S
    body = _figures(client, "district", DISTRICT)
    key = body["key_figures"]
    # the same counts straight from calls, over the same window
    midnight = datetime.fromisoformat(body["local_date"]).replace(tzinfo=UTC) - timedelta(hours=5)
    engine = create_engine(_sync_url(client))
    with engine.connect() as connection:
        direct = dict(connection.execute(
            select(CallRecord.category, func.count()).where(
                CallRecord.district_code == DISTRICT, CallRecord.received_at >= midnight)
            .group_by(CallRecord.category)).all())
        open_now = connection.execute(select(func.count()).where(
            CallRecord.district_code == DISTRICT, CallRecord.status.in_(("received", "transferred",
            "acknowledged", "dispatched", "en_route", "on_scene")),
            CallRecord.received_at >= datetime.now(UTC) - timedelta(hours=24))).scalar_one()
    engine.dispose()
    assert key["calls_today"]["value"] == sum(direct.values())
    by_category = {c["category"]: c["value"] for c in key["calls_today_by_category"]}
    assert {k: v for k, v in by_category.items() if v} == direct
    assert key["open_calls"]["value"] == open_now
    assert key["calls_7d"]["value"] >= key["calls_today"]["value"]
    # the area is its children summed
    assert body["child_level"] == "tehsil"
    assert sum(a["calls_today"]["value"] for a in body["areas"]) == key["calls_today"]["value"]
    assert {a["code"] for a in body["areas"]} >= {TEHSIL}
    assert len(body["baseline_days"]) == 4


def test_response_percentiles_agree_with_the_stats_api(client: Any) -> None:
    # calls of the last minutes (today's earlier hours are re-read once a minute)
    received = datetime.now(UTC) - timedelta(minutes=5)
    ids = _post_now(client, 2, "dacoity_robbery", at=received)
    for minutes, call_id in zip((2.0, 4.5), ids, strict=True):
        for kind, after in (("acknowledged", 0.5), ("dispatched", 1.0), ("on_scene", minutes)):
            at = (received + timedelta(minutes=after)).isoformat()
            answer = client.post(f"/api/v1/calls/{call_id}/events", json={"type": kind, "at": at},
                                 headers=headers("sho", STATION))
            assert answer.status_code in (200, 201), answer.text
    # until the projection has taken in these events (the station may already show a p50
    # from calls of other tests, so a value alone does not say these were counted)
    engine = create_engine(_sync_url(client))
    with engine.connect() as connection:
        last = connection.execute(text("SELECT max(id) FROM call_events")).scalar_one()
    deadline = time.monotonic() + COUNTED_WITHIN_S
    while True:
        with engine.connect() as connection:
            mark = connection.execute(text(
                "SELECT last_event_id FROM dashboard_refresh")).scalar_one_or_none()
        if (mark or 0) >= last:
            break
        assert time.monotonic() < deadline, (mark, last)
        time.sleep(0.2)
    engine.dispose()
    body = _figures(client, "station", STATION, "sho", STATION)
    midnight = datetime.fromisoformat(body["local_date"]).replace(tzinfo=UTC) - timedelta(hours=5)
    stats = client.get("/api/v1/stats/response", params={
        "level": "station", "code": STATION, "from": midnight.isoformat()},
        headers=headers("sho", STATION))
    assert stats.status_code == 200, stats.text
    response = stats.json()["intervals"]["response"]
    key = body["key_figures"]
    assert response["count"] >= 2
    assert abs(key["response_p50_min"]["value"] - response["p50_min"]) <= 0.5
    assert abs(key["response_p90_min"]["value"] - response["p90_min"]) <= 0.5
    assert key["within_sla"]["value"] == pytest.approx(response["within_sla"], abs=1e-3)


def test_scope_is_the_apis(client: Any) -> None:
    assert client.get("/api/v1/dashboard/region/RWP",
                      headers=headers("dpo", DISTRICT)).status_code == 403
    assert client.get(f"/api/v1/dashboard/district/{DISTRICT}",
                      headers=headers("call_taker")).status_code == 403
    assert client.get("/api/v1/dashboard/district/PK999",
                      headers=headers("ig")).status_code == 404
    assert client.get(f"/api/v1/dashboard/district/{DISTRICT}").status_code == 401
    planner = _figures(client, "province", "PK6", "planner", "PK6", parts="figures,map")
    assert [a["level"] for a in planner["areas"]] == ["region"] * 9
    assert planner["map"]["calls"]["lon"] == []  # planners see aggregates, never calls
    ig = _figures(client, "province", "PK6", "ig", "PK6", parts="map,open_calls,alerts")
    still = client.get(ig["map"]["still"], headers=headers("ig", "PK6"))
    assert still.status_code == 200, still.text
    assert len(still.json()["children"]["names"]) == 9
    assert len(still.json()["stations"]["codes"]) == 720
    assert len(ig["map"]["calls"]["lon"]) >= 1
    assert all(c["status"] not in ("closed", "cancelled") for c in ig["open_calls"])
    # the map's still part has the same scope rules as every part
    own = f"/api/v1/dashboard/district/{DISTRICT}/map/still"
    assert client.get("/api/v1/dashboard/region/RWP/map/still",
                      headers=headers("dpo", DISTRICT)).status_code == 403
    assert client.get("/api/v1/dashboard/district/PK999/map/still",
                      headers=headers("ig")).status_code == 404
    assert client.get(own).status_code == 401
    assert client.get(own, headers=headers("planner", "PK6")).status_code == 200


def test_map_live_part_is_todays_calls_as_columns(client: Any) -> None:
    _post_now(client, 2, "fire")
    layer = _figures(client, "district", DISTRICT, parts="map")["map"]
    calls = layer["calls"]
    n = len(calls["lon"])
    assert n >= 2
    assert {len(calls[k]) for k in ("lon", "lat", "category", "status", "serious")} == {n}
    assert set(calls["serious"]) <= {0, 1}
    statuses = [calls["statuses"][i] for i in calls["status"]]
    categories = [calls["categories"][i] for i in calls["category"]]
    assert "fire" in categories
    # open ones first, and as many as there are today (below the cap) straight from calls
    open_ = {"received", "transferred", "acknowledged", "dispatched", "en_route", "on_scene"}
    flags = [s in open_ for s in statuses]
    assert flags == sorted(flags, reverse=True)
    midnight = datetime.fromisoformat(
        _figures(client, "district", DISTRICT)["local_date"]).replace(tzinfo=UTC) - timedelta(hours=5)
    engine = create_engine(_sync_url(client))
    with engine.connect() as connection:
        today = connection.execute(select(func.count()).where(
            CallRecord.district_code == DISTRICT, CallRecord.received_at >= midnight)).scalar_one()
    engine.dispose()
    assert n == min(today, 5000)
    assert layer["still"] == (f"/api/v1/dashboard/district/{DISTRICT}/map/still"
                              f"?v={layer['still_key']}")
    assert "children" not in layer
    assert "basemap" not in layer


def test_map_still_part_is_encoded_once_and_revalidated(client: Any) -> None:
    layer = _figures(client, "district", DISTRICT, parts="map")["map"]
    auth = headers("dpo", DISTRICT)
    first = client.get(layer["still"], headers={**auth, "Accept-Encoding": "gzip"})
    assert first.status_code == 200, first.text
    assert first.headers["content-encoding"] == "gzip"
    assert first.headers["cache-control"] == "private, max-age=86400"
    etag = first.headers["etag"]
    still = first.json()
    assert still["area"]["code"] == DISTRICT
    assert still["children"]["level"] == "tehsil"
    assert TEHSIL in still["children"]["codes"]
    assert len(still["stations"]["codes"]) == len(still["stations"]["points"]) > 0
    plain = client.get(layer["still"], headers={**auth, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.json() == still
    assert plain.headers["etag"] == etag
    again = client.get(layer["still"], headers={**auth, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    # under another key (an old page's URL) it is revalidated, never kept
    old = client.get(layer["still"].split("?")[0] + "?v=old", headers=auth)
    assert old.status_code == 200
    assert old.headers["cache-control"] == "private, no-cache"
    # scope is checked on a revalidation too
    assert client.get(f"/api/v1/dashboard/region/RWP/map/still?v={layer['still_key']}",
                      headers={**auth, "If-None-Match": etag}).status_code == 403


def _signed_in_as(client: Any, role: str, scope: str) -> None:
    """The test client signed in through the real form as a new ``role`` of ``scope``."""
    from tests.test_signin import new_user, sign_in

    answer = sign_in(client, new_user(client, role, scope))
    assert answer.status_code == 303, answer.text


def test_pages_render_with_the_sections_and_refuse_outside_scope(client: Any) -> None:
    _signed_in_as(client, "dpo", DISTRICT)
    try:
        home = client.get("/", follow_redirects=False)
        assert home.status_code == 303
        assert home.headers["location"] == f"/dash/district/{DISTRICT}"
        page = client.get(f"/dash/district/{DISTRICT}")
        assert page.status_code == 200, page.text
        for name in ("Key figures", "Map", "Areas", "Open calls", "Alerts", "Sign out"):
            assert f">{name}<" in page.text, name
        assert 'id="trends-panel" class="sc-card" aria-label="Trends" ' \
               f'hx-get="/dash/district/{DISTRICT}/trends" hx-trigger="load"' in page.text
        assert 'id="profile-panel" class="sc-card" aria-label="When the calls come" ' \
               f'hx-get="/dash/district/{DISTRICT}/profile" hx-trigger="load"' in page.text
        assert 'id="layer-hotspots"' in page.text  # a DPO may read analytics: the heatmap toggles
        crumbs = page.text.index('aria-label="Breadcrumb"')
        assert page.text.index(">Punjab<", crumbs) < page.text.index(">Lahore<", crumbs)
        assert client.get("/dash/region/RWP").status_code == 403
        live = client.get(f"/dash/district/{DISTRICT}/map.json")
        assert live.status_code == 200
        assert live.json()["still"] in page.text  # preloaded by the page's head
        assert f'href="/dash/district/{DISTRICT}/map.json" as="fetch"' in page.text
        still = client.get(live.json()["still"])
        assert still.status_code == 200
        assert still.json()["area"]["code"] == DISTRICT
        assert client.get("/dash/region/RWP/map/still.json").status_code == 403
        call_id = _post_now(client, 1)[0]
        call = client.get(f"/calls/{call_id}")
        assert call.status_code == 200
        assert "received" in call.text
    finally:
        client.cookies.clear()
    assert client.get("/", follow_redirects=False).status_code == 200  # the landing page
    assert client.get(f"/dash/district/{DISTRICT}",
                      follow_redirects=False).headers["location"].startswith("/login")


def test_alert_actions_need_the_page_token(client: Any) -> None:
    _signed_in_as(client, "dpo", DISTRICT)
    try:
        refused = client.post("/dash/alerts/1/acknowledge", json={})
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    finally:
        client.cookies.clear()


@pytest.mark.parametrize("backend", ["sqlite", "postgis"])
def test_migration_0009_matches_the_models_and_goes_down(backend: str, tmp_path: Any,
                                                         fresh_postgis_url: str) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from api.db.dashboard_models import metadata
    from api.db.engine import create_sync_engine
    from api.db.migrate import alembic_config, upgrade
    from api.settings import DatabaseSettings

    settings = (DatabaseSettings(sqlite_path=tmp_path / "dash.sqlite") if backend == "sqlite"
                else DatabaseSettings(url=fresh_postgis_url))
    engine = create_sync_engine(settings)
    ours = {"dashboard_calls", "dashboard_refresh"}
    try:
        assert upgrade(engine, "0009") == "0009"
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "include_object": lambda obj, name, kind, *_: kind != "table" or name in ours,
                "include_name": lambda name, kind, *_: kind != "table" or name in ours,
                # SQLite reflects GUID columns as NUMERIC: types are compared on PostGIS
                "compare_type": backend == "postgis"})
            assert compare_metadata(context, metadata) == []
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0008")
        with engine.connect() as conn:
            from sqlalchemy import inspect

            assert not ours & set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_the_dashboard_on_embedded_sqlite(tmp_path: Any) -> None:
    """The projection, its job and the figures on the embedded SQLite default."""
    import os
    import subprocess
    import sys

    from api.container import Container
    from tests.callservice import ROOT, SECRET, ServiceClient, service_settings

    path = tmp_path / "safecity.sqlite"
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(SAFECITY_SQLITE_PATH=str(path), SAFECITY_JWT_SECRET=SECRET)
    done = subprocess.run([sys.executable, "-m", "api.cli", "jurisdictions", "load"], cwd=ROOT,
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    with ServiceClient(Container(service_settings(None, sqlite_path=path))) as sqlite_client:
        assert _figures(sqlite_client, "district", DISTRICT)["key_figures"]["calls_today"]["value"] == 0
        _post_now(sqlite_client, 2)
        assert _counted(sqlite_client, 2) < COUNTED_WITHIN_S
        body = _figures(sqlite_client, "district", DISTRICT, parts="figures,open_calls")
        assert body["key_figures"]["open_calls"]["value"] == 2
        assert len(body["open_calls"]) == 2
