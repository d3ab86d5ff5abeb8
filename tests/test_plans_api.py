"""The expansion planner API on PostGIS: plan jobs in the background, their results and roles.

The service runs in this process (the ``client`` fixture; under uvicorn for the browser
and for a second process) on the session database with a small generated history loaded
by ``synth load``'s function (3 months of 2024 at 0.3 % of full volume); plans read their
demand from it. The window ``[2024-01-01, 2024-04-01)`` keeps
calls other modules post (2025 onwards) out of every plan here.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.callservice import Server, ServiceClient, headers, service_settings, start_server, token

pytestmark = pytest.mark.integration

TEHSIL = "PK61702"  # Lahore City: the most demand, and stand-in existing sites
LAHORE_DISTRICT, SHEIKHUPURA_DISTRICT = "PK617", "PK633"
WINDOW = {"from": "2024-01-01", "until": "2024-04-01"}
STAGES = ["loading demand", "building coverage", "solving", "writing results"]
PLANNER = headers("planner")


@pytest.fixture(scope="module")
def history(loaded_postgis: str) -> str:
    """The session database with the small history loaded (idempotent)."""
    from tests.test_analytics_api import load_small_history

    load_small_history(loaded_postgis)
    return loaded_postgis


@pytest.fixture(scope="module")
def client(history: str) -> Iterator[ServiceClient]:
    """The service in this process over the session database with the small history."""
    from api.container import Container

    with ServiceClient(Container(service_settings(history))) as started:
        yield started


@pytest.fixture(scope="module")
def server(history: str) -> Iterator[Server]:
    """The service under uvicorn over the same database (for the browser)."""
    started = start_server(history)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def db(loaded_postgis: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(loaded_postgis, autocommit=True) as conn:
        yield conn


def post_plan(client: httpx.Client, body: dict[str, Any], auth: dict[str, str] | None = None
              ) -> httpx.Response:
    return client.post("/api/v1/plans", json=body, headers=PLANNER if auth is None else auth)


def wait(client: httpx.Client, location: str, auth: dict[str, str] | None = None,
         timeout_s: float = 240) -> tuple[dict[str, Any], list[tuple[str, str, float]]]:
    """Poll a plan until it is finished; its last state and every (state, stage, progress) seen."""
    seen: list[tuple[str, str, float]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.get(location, headers=PLANNER if auth is None else auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen.append((body["state"], body["stage"], body["progress"]))
        if body["state"] in ("succeeded", "failed"):
            return body, seen
        assert time.monotonic() < deadline, f"plan not finished in {timeout_s} s: {body}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def lahore_plan(client: ServiceClient) -> dict[str, Any]:
    """One MCLP plan of Lahore City, run to the end (shared by the result tests)."""
    answer = post_plan(client, {"tehsil": TEHSIL, "sites": 5, "radius_m": 500, **WINDOW})
    assert answer.status_code == 202, answer.text
    body, seen = wait(client, answer.headers["location"])
    return {"accepted": answer.json(), "location": answer.headers["location"], "plan": body,
            "seen": seen}


# ------------------------------------------------------------------ the job


def test_post_answers_202_with_location(lahore_plan: dict[str, Any]) -> None:
    accepted = lahore_plan["accepted"]
    assert accepted["state"] == "queued"
    assert accepted["tehsil_code"] == TEHSIL
    assert accepted["tehsil"] == "Lahore City"
    assert lahore_plan["location"] == f"/api/v1/plans/{accepted['id']}"
    assert accepted["links"] == {"self": f"/api/v1/plans/{accepted['id']}",
                                 "sites": f"/api/v1/plans/{accepted['id']}/sites",
                                 "map": f"/maps/plans/{accepted['id']}"}


def test_plan_runs_to_success_with_progress(lahore_plan: dict[str, Any]) -> None:
    plan, seen = lahore_plan["plan"], lahore_plan["seen"]
    assert plan["state"] == "succeeded", plan
    assert plan["stage"] == "done"
    assert plan["progress"] == 1.0
    assert plan["error"] is None
    progress = [p for _, _, p in seen]
    assert progress == sorted(progress)  # never goes back
    assert {stage for _, stage, _ in seen} <= {"queued", *STAGES, "done"}
    assert set(STAGES) | {"queued", "total"} <= set(plan["timings"])
    assert all(plan["timings"][stage] >= 0 for stage in STAGES)
    assert plan["timings"]["total"] >= sum(plan["timings"][s] for s in STAGES) - 0.01
    assert plan["started_at"] <= plan["finished_at"]
    assert plan["params"] == {"tehsil": TEHSIL, "sites": 5, "radius_m": 500.0, "model": "mclp",
                              "target": None, "from": "2023-12-31T19:00:00+00:00",
                              "until": "2024-03-31T19:00:00+00:00", "res": 9, "solver": "highs",
                              "time_limit_s": 120.0}
    assert plan["created_by"] == "test-planner"


def test_summary_is_the_cli_summary(lahore_plan: dict[str, Any]) -> None:
    from api.domain.plans.planner import summary_rows

    s = lahore_plan["plan"]["summary"]
    assert s["tehsil_code"] == TEHSIL
    assert s["model"] == "mclp"
    assert s["new_sites"] == 5
    assert s["existing_sites"] > 0
    assert s["existing_sites_stand_in"] is True
    assert 0 <= s["covered_share_before"] <= s["covered_share_after"] <= 1
    assert s["covered_share_after"] >= s["greedy_covered_share"] - 1e-9
    assert s["solver"].startswith("HiGHS")
    assert s["status"] == "optimal"
    assert s["gap"] <= 1e-4
    assert s["solve_seconds"] >= 0
    assert s["calls"] > 0
    assert s["calls_source"].startswith("database: calls routed to tehsil PK61702")
    assert set(summary_rows(s)) >= {"covered share before", "covered share after", "solver",
                                    "optimality gap", "solve time (s)"}


def test_sites_are_geojson_with_existing_sites_kept(client: ServiceClient,
                                                    lahore_plan: dict[str, Any]) -> None:
    plan = lahore_plan["plan"]
    answer = client.get(plan["links"]["sites"], headers=PLANNER)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    collection = answer.json()
    assert collection["type"] == "FeatureCollection"
    assert collection["summary"] == plan["summary"]
    features = collection["features"]
    existing = [f for f in features if f["properties"]["existing"]]
    new = [f for f in features if f["properties"]["new"]]
    assert len(existing) == plan["summary"]["existing_sites"]  # every existing site is kept
    assert len(new) == 5
    assert all(f["geometry"]["type"] == "Point" for f in features)
    assert all(f["properties"]["stand_in"] for f in existing)
    assigned = sum(f["properties"]["demand_assigned"] for f in features)
    s = plan["summary"]
    assert assigned == pytest.approx(s["covered_share_after"] * s["demand_total"])
    text = answer.text.lower()
    assert "phone" not in text
    assert "caller" not in text


def test_plan_reads_the_same_from_another_process(loaded_postgis: str,
                                                  lahore_plan: dict[str, Any]) -> None:
    """A second service process (another worker, or the service after a restart) answers
    from the table; and at start-up it marks failed the jobs of processes that are gone."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    orphan, stale = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    with psycopg.connect(loaded_postgis, autocommit=True) as conn:
        for plan_id, owner, beat in ((orphan, f"{host}:{dead.pid}:0000", now),
                                     (stale, "elsewhere:1:0000", now - timedelta(minutes=10))):
            conn.execute(
                "INSERT INTO plans (id, state, stage, progress, params, tehsil_code, tehsil_name,"
                " district_code, region_code, boundary_set, created_by, created_role, owner,"
                " created_at, updated_at, started_at, heartbeat_at, timings)"
                " VALUES (%s, 'running', 'solving', 0.4, '{}', %s, 'Lahore City', %s, 'LHR', 'x',"
                " 'test', 'planner', %s, %s, %s, %s, %s, '{}')",
                (plan_id, TEHSIL, LAHORE_DISTRICT, owner, now, now, now, beat))
    other = start_server(loaded_postgis)
    try:
        with httpx.Client(base_url=other.url, timeout=30) as client:
            again = client.get(lahore_plan["location"], headers=PLANNER)
            assert again.status_code == 200, again.text
            assert again.json()["summary"] == lahore_plan["plan"]["summary"]
            for plan_id in (orphan, stale):
                body = client.get(f"/api/v1/plans/{plan_id}", headers=PLANNER).json()
                assert body["state"] == "failed", body
                assert body["error"].startswith("interrupted: ")
                assert body["stage"] == "solving"  # where it stopped
    finally:
        other.stop()


def test_lscp_reaches_its_target(client: httpx.Client) -> None:
    answer = post_plan(client, {"tehsil": "Lahore City", "model": "lscp", "target": 0.5,
                                "radius_m": 750, **WINDOW})
    assert answer.status_code == 202, answer.text
    plan, _ = wait(client, answer.headers["location"])
    assert plan["state"] == "succeeded", plan
    s = plan["summary"]
    assert s["model"] == "lscp"
    assert s["target"] == 0.5
    assert s["covered_share_after"] >= 0.5
    assert s["new_sites"] <= s["greedy_new_sites"]


def test_an_impossible_plan_fails_with_its_reason(client: httpx.Client) -> None:
    answer = post_plan(client, {"tehsil": TEHSIL, "model": "lscp", "target": 1.0, "sites": 0,
                                **WINDOW})
    assert answer.status_code == 202, answer.text
    plan, _ = wait(client, answer.headers["location"])
    assert plan["state"] == "failed"
    assert "needs more than 0 new sites" in plan["error"]
    assert plan["summary"] is None
    for path in (plan["links"]["sites"], plan["links"]["map"]):
        refused = client.get(path, headers=PLANNER)
        assert refused.status_code == 409, refused.text
        assert "needs more than 0 new sites" in refused.json()["detail"]
    paths = client.get("/schema/openapi.json").json()["paths"]  # and the document says so
    for path in ("/api/v1/plans/{plan_id}/sites", "/maps/plans/{plan_id}"):
        assert "409" in paths[path]["get"]["responses"], path


# ------------------------------------------------------------------ refused up front


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"tehsil": TEHSIL, "sites": 3, "from": "2030-01-01", "until": "2030-02-01"}, 422,
     "Lahore City (PK61702) has no calls received between"),
    ({"tehsil": "Atlantis", "sites": 3}, 422, "no tehsil is named 'Atlantis'"),
    ({"tehsil": TEHSIL}, 422, "sites: the MCLP needs a number of new sites"),
    ({"tehsil": TEHSIL, "sites": 2, "target": 0.5}, 422, "target: a target share goes with the LSCP"),
    ({"tehsil": TEHSIL, "sites": 2, "from": "2024-03-01", "until": "2024-02-01"}, 422,
     "must be before until"),
    ({"tehsil": TEHSIL, "sites": 2, "from": "1900-01-01"}, 422, "must lie between 2000 and 2100"),
    ({"tehsil": TEHSIL, "sites": 2, "from": "2024-02-30"}, 422, "not an ISO 8601 date"),
    ({"tehsil": TEHSIL, "sites": 2, "radius_m": 0}, 400, "radius_m"),
    ({"tehsil": TEHSIL, "sites": 2, "res": 12}, 400, "res"),
    ({"tehsil": TEHSIL, "sites": 2, "colour": "red"}, 400, "colour"),
])
def test_bad_requests_are_refused_before_queueing(client: httpx.Client, db: psycopg.Connection[Any],
                                                  body: dict[str, Any], status: int, message: str) -> None:
    before = db.execute("SELECT count(*) FROM plans").fetchone()
    answer = post_plan(client, body)
    assert answer.status_code == status, answer.text
    assert message in answer.text
    assert db.execute("SELECT count(*) FROM plans").fetchone() == before


def test_unknown_plan_is_404(client: httpx.Client) -> None:
    for path in ("/api/v1/plans/{}", "/api/v1/plans/{}/sites", "/maps/plans/{}"):
        answer = client.get(path.format(uuid.uuid4()), headers=PLANNER)
        assert answer.status_code == 404, answer.text


# ------------------------------------------------------------------ roles and scope


@pytest.mark.parametrize(("role", "scope"), [("sho", "PK61702-001"), ("call_taker", "PK6")])
def test_roles_without_planning_are_refused(client: httpx.Client, lahore_plan: dict[str, Any],
                                            role: str, scope: str) -> None:
    auth = headers(role, scope)
    answer = post_plan(client, {"tehsil": TEHSIL, "sites": 2, **WINDOW}, auth)
    assert answer.status_code == 403, answer.text
    assert f"role '{role}' may not plan create" in answer.json()["detail"]
    plan = lahore_plan["plan"]
    for path in (lahore_plan["location"], plan["links"]["sites"], plan["links"]["map"]):
        assert client.get(path, headers=auth).status_code == 403


def test_no_token_is_401(client: httpx.Client, lahore_plan: dict[str, Any]) -> None:
    assert client.post("/api/v1/plans", json={"tehsil": TEHSIL, "sites": 2}).status_code == 401
    plan = lahore_plan["plan"]
    for path in (lahore_plan["location"], plan["links"]["sites"], plan["links"]["map"]):
        answer = client.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_dpo_plans_only_in_their_district(client: httpx.Client, lahore_plan: dict[str, Any]) -> None:
    outsider = headers("dpo", SHEIKHUPURA_DISTRICT)
    answer = post_plan(client, {"tehsil": TEHSIL, "sites": 2, **WINDOW}, outsider)
    assert answer.status_code == 403, answer.text
    assert "outside your scope (district PK633)" in answer.json()["detail"]
    assert client.get(lahore_plan["location"], headers=outsider).status_code == 403
    assert client.get(lahore_plan["plan"]["links"]["sites"], headers=outsider).status_code == 403

    insider = headers("dpo", LAHORE_DISTRICT)
    assert client.get(lahore_plan["location"], headers=insider).status_code == 200
    own = post_plan(client, {"tehsil": "PK63305", "sites": 1, **WINDOW}, outsider)  # Sheikhupura
    assert own.status_code == 202, own.text
    plan, _ = wait(client, own.headers["location"], outsider)
    assert plan["state"] == "succeeded", plan
    assert plan["district_code"] == SHEIKHUPURA_DISTRICT
    assert client.get(own.headers["location"], headers=insider).status_code == 403


@pytest.mark.parametrize(("role", "scope"), [("rpo", "LHR"), ("ig", "PK6"), ("cpo", LAHORE_DISTRICT),
                                             ("admin", "PK6"), ("planner", LAHORE_DISTRICT)])
def test_command_roles_and_planners_read_plans_in_scope(client: httpx.Client, lahore_plan: dict[str, Any],
                                                        role: str, scope: str) -> None:
    answer = client.get(lahore_plan["plan"]["links"]["sites"], headers=headers(role, scope))
    assert answer.status_code == 200, answer.text


def test_planner_scoped_to_another_region_is_refused(client: httpx.Client,
                                                     lahore_plan: dict[str, Any]) -> None:
    answer = client.get(lahore_plan["location"], headers=headers("planner", "RWP", "region"))
    assert answer.status_code == 403


# ------------------------------------------------------------------ the list


def all_pages(client: httpx.Client, auth: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every plan ``GET /plans`` lists with ``params``, following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = client.get("/api/v1/plans", headers=auth,
                            params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.fixture(scope="module")
def sheikhupura_plan(client: ServiceClient) -> dict[str, Any]:
    """A second finished plan, in another district and region than Lahore City's."""
    answer = post_plan(client, {"tehsil": "PK63305", "sites": 1, **WINDOW})
    assert answer.status_code == 202, answer.text
    plan, _ = wait(client, answer.headers["location"])
    assert plan["state"] == "succeeded", plan
    return plan


def test_plans_are_listed_newest_first_page_by_page(client: httpx.Client, db: psycopg.Connection[Any],
                                                   lahore_plan: dict[str, Any],
                                                   sheikhupura_plan: dict[str, Any]) -> None:
    listed = all_pages(client, PLANNER)
    ids = [plan["id"] for plan in listed]
    assert {lahore_plan["plan"]["id"], sheikhupura_plan["id"]} <= set(ids)
    stored = db.execute("SELECT count(*) FROM plans").fetchone()
    assert stored is not None
    assert len(ids) == len(set(ids)) == stored[0]
    order = [(datetime.fromisoformat(plan["created_at"]), uuid.UUID(plan["id"])) for plan in listed]
    assert order == sorted(order, reverse=True)
    assert [plan["id"] for plan in all_pages(client, PLANNER, limit=1)] == ids
    shown = next(plan for plan in listed if plan["id"] == lahore_plan["plan"]["id"])
    assert shown == lahore_plan["plan"] | {"updated_at": shown["updated_at"]}  # as GET /plans/{id}


def test_plans_list_filters_within_scope(client: httpx.Client, lahore_plan: dict[str, Any],
                                         sheikhupura_plan: dict[str, Any]) -> None:
    lahore, sheikhupura = lahore_plan["plan"]["id"], sheikhupura_plan["id"]
    in_tehsil = all_pages(client, PLANNER, tehsil=TEHSIL)
    assert {plan["tehsil_code"] for plan in in_tehsil} == {TEHSIL}
    assert lahore in {plan["id"] for plan in in_tehsil}
    done = all_pages(client, PLANNER, state="succeeded")
    assert {plan["state"] for plan in done} == {"succeeded"}
    assert {lahore, sheikhupura} <= {plan["id"] for plan in done}

    dpo = headers("dpo", SHEIKHUPURA_DISTRICT)
    own = all_pages(client, dpo)
    assert {plan["district_code"] for plan in own} == {SHEIKHUPURA_DISTRICT}
    assert sheikhupura in {plan["id"] for plan in own}
    refused = client.get("/api/v1/plans", params={"tehsil": TEHSIL}, headers=dpo)
    assert refused.status_code == 403, refused.text
    assert "outside your scope (district PK633)" in refused.json()["detail"]
    rpo = all_pages(client, headers("rpo", "LHR"))  # Sheikhupura lies in the Lahore region
    assert {plan["region_code"] for plan in rpo} == {"LHR"}
    assert {lahore, sheikhupura} <= {plan["id"] for plan in rpo}
    elsewhere = all_pages(client, headers("rpo", "RWP"))
    assert not {lahore, sheikhupura} & {plan["id"] for plan in elsewhere}
    assert {plan["region_code"] for plan in elsewhere} <= {"RWP"}


@pytest.mark.parametrize(("params", "status", "message"), [
    ({"state": "done"}, 400, "unknown state 'done'"),
    ({"limit": 0}, 400, "limit"),
    ({"limit": 1000}, 400, "limit"),
    ({"tehsil": "PK69999"}, 422, "no tehsil with code 'PK69999'"),
    ({"cursor": "not-a-cursor"}, 400, "invalid cursor"),
])
def test_plans_list_refuses_bad_queries(client: httpx.Client, params: dict[str, Any], status: int,
                                        message: str) -> None:
    answer = client.get("/api/v1/plans", params=params, headers=PLANNER)
    assert answer.status_code == status, answer.text
    assert message in answer.text


def test_plans_list_needs_a_planning_role(client: httpx.Client) -> None:
    assert client.get("/api/v1/plans").status_code == 401
    answer = client.get("/api/v1/plans", headers=headers("sho", "PK61702-001"))
    assert answer.status_code == 403, answer.text


# ------------------------------------------------------------------ the map page


REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def test_map_page_is_offline_and_served_with_the_bundle(client: httpx.Client,
                                                        lahore_plan: dict[str, Any]) -> None:
    answer = client.get(lahore_plan["plan"]["links"]["map"], headers=PLANNER)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert not REMOTE.search(page)
    for cdn in ("cdn.jsdelivr", "unpkg.com", "mapbox.com", "googleapis"):
        assert cdn not in page
    assert 'src="/static/vendor/deck.gl/dist.min.js"' in page
    assert "/static/maps/safecity-map.css" in page
    assert "Safe City expansion plan" in page
    assert "Lahore City (PK61702)" in page
    assert "stand-in" in page
    data = json.loads(page.split('<script type="application/json" id="map-data">', 1)[1]
                      .split("</script>", 1)[0])
    assert len(data["cells"]["h3"]) == len(data["cells"]["cls"]) > 0
    assert len(data["sites"]["lon"]) >= 5  # the 5 new sites and the existing ones
    assert "phone" not in page.lower()
    for asset in ("/static/vendor/deck.gl/dist.min.js", "/static/maps/safecity-map.js",
                  "/static/maps/safecity-map.css"):
        assert client.get(asset).status_code == 200, asset


def test_map_page_takes_a_token_in_the_url(client: ServiceClient,
                                           lahore_plan: dict[str, Any]) -> None:
    """A browser navigation cannot set a header: a link carries the token, which the page
    swaps for the ``/maps`` cookie (303 to the same URL without it)."""
    path = lahore_plan["plan"]["links"]["map"]
    browser = client  # its cookie jar, emptied again at the end
    try:
        first = browser.get(f"{path}?token={token('planner')}", follow_redirects=False)
        assert first.status_code == 303, first.text
        assert first.headers["location"] == path
        assert "safecity_map_token" in first.headers["set-cookie"]
        answer = browser.get(path)  # with the cookie now
        assert answer.status_code == 200, answer.text
        assert "Safe City expansion plan" in answer.text
        assert browser.get(lahore_plan["location"]).status_code == 401  # the API never takes it
        outsider = browser.get(f"{path}?access_token={token('dpo', SHEIKHUPURA_DISTRICT)}",
                               follow_redirects=True)
        assert outsider.status_code == 403
    finally:
        browser.cookies.clear()


# ------------------------------------------------------------------ in process


def queued_row(plan_id: uuid.UUID, owner: str, params: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"id": plan_id, "state": "queued", "stage": "queued", "progress": 0.0, "params": params,
            "tehsil_code": TEHSIL, "tehsil_name": "Lahore City", "district_code": LAHORE_DISTRICT,
            "region_code": "LHR", "boundary_set": "test", "created_by": "test", "created_role": "planner",
            "owner": owner, "created_at": now, "updated_at": now, "heartbeat_at": now, "timings": {}}


def test_runner_reports_every_stage_in_order(history: str, punjab_set: Any) -> None:
    """The job in this process with the store watched: each stage once, progress rising."""
    import anyio
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from api.db.engine import create_async_engine_for
    from api.domain.plans.services import PlanRunner, PlanStore
    from api.jobs import JobRunner
    from api.settings import DatabaseSettings, Settings
    from api.workers import WorkerPool

    seen: list[tuple[str, float]] = []

    class Watched(PlanStore):
        async def progress(self, plan_id: uuid.UUID, stage: str, fraction: float,
                           timings: dict[str, float], now: datetime) -> None:
            seen.append((stage, fraction))
            await super().progress(plan_id, stage, fraction, timings, now)

    params = {"tehsil": TEHSIL, "sites": 3, "radius_m": 500.0, "model": "mclp", "target": None,
              "from": "2024-01-01T00:00:00+00:00", "until": "2024-04-01T00:00:00+00:00", "res": 9,
              "solver": "highs", "time_limit_s": 60.0}

    async def main() -> dict[str, Any] | None:
        engine = create_async_engine_for(DatabaseSettings(url=history))
        workers = WorkerPool(Settings(database=DatabaseSettings(url=history)))
        try:
            store = Watched(async_sessionmaker(engine, expire_on_commit=False))
            runner = PlanRunner(store, lambda: punjab_set, JobRunner(), workers)
            plan_id = uuid.uuid4()
            await store.insert(queued_row(plan_id, runner.owner, params))
            await runner.run(plan_id)
            await runner.run(plan_id)  # finished: a second run leaves it alone
            return await store.status(plan_id)
        finally:
            await workers.close()
            await engine.dispose()

    row = anyio.run(main)
    assert row is not None
    assert row["state"] == "succeeded", row["error"]
    assert [stage for stage, _ in seen] == STAGES
    fractions = [fraction for _, fraction in seen]
    assert fractions == sorted(fractions)
    assert len(set(fractions)) == len(fractions)
    assert 0 <= fractions[0] < fractions[-1] < 1
    assert row["progress"] == 1.0
    assert row["summary"]["new_sites"] == 3


@pytest.mark.slow
def test_staged_plan_equals_plan_sites(punjab_set: Any) -> None:
    """The planner's stages give the plan :func:`geo.coverage.plan_sites` gives."""
    from api.domain.plans.planner import SiteOptions, plan_tehsil
    from api.shipped import load_categories
    from geo.coverage import plan_sites
    from tests.test_coverage import lahore_calls, read_sites_frame

    calls = lahore_calls()
    categories = load_categories()
    existing = read_sites_frame([(31.4697, 74.2728)])
    timing = {"build_seconds", "solve_seconds"}
    for options in (SiteOptions(new_sites=3), SiteOptions(model="lscp", target=0.6)):
        staged = plan_tehsil(calls, TEHSIL, options, existing=existing, categories=categories,
                             boundaries=punjab_set)
        direct = plan_sites(calls, TEHSIL, new_sites=options.new_sites, model=options.model,
                            target=options.target, existing=existing, categories=categories,
                            boundaries=punjab_set)
        assert {k: v for k, v in staged.summary.items() if k not in timing} == \
               {k: v for k, v in direct.summary.items() if k not in timing}
        assert staged.sites["site_id"].tolist() == direct.sites["site_id"].tolist()


def test_the_model_and_migration_0004_agree(loaded_postgis: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    from api.db.models import metadata
    from api.db.plan_models import PlanRecord

    assert PlanRecord.__table__.metadata is metadata
    engine = create_engine(loaded_postgis.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True,
                "include_object": lambda obj, name, kind, *_: (
                    kind != "table" or name == "plans") and (
                    kind not in ("index", "column", "unique_constraint", "foreign_key_constraint")
                    or getattr(getattr(obj, "table", None), "name", "plans") == "plans"),
                "include_name": lambda name, kind, *_: kind != "table" or name == "plans"})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
