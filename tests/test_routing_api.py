"""``POST /api/v1/route`` and ``/route/batch`` over HTTP: who may route, and every decision
in the audit log (a batch as one entry with its counts)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from api.auth import mint_token
from tests.callservice import ATTOCK_POINT, LAHORE_POINT, LAHORE_STATION, SECRET, headers

pytestmark = pytest.mark.integration

DELHI = (28.6139, 77.2090)  # outside Pakistan and far from Punjab: rejected


@pytest.fixture(scope="module")
def db(loaded_postgis: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(loaded_postgis, autocommit=True) as conn:
        yield conn


def actor(role: str, scope: str = "PK6", level: str = "province") -> tuple[str, dict[str, str]]:
    """A subject no other test uses and its headers, so its audit entries are its own."""
    subject = f"route-test-{role}-{uuid.uuid4().hex[:8]}"
    token = mint_token(SECRET, role, scope, level, subject=subject)
    return subject, {"Authorization": f"Bearer {token}"}


def entries(db: psycopg.Connection[Any], subject: str) -> list[tuple[Any, ...]]:
    return db.execute("SELECT action, role, call_id, detail FROM audit_log WHERE actor = %s "
                      "ORDER BY id", (subject,)).fetchall()


def test_a_point_needs_a_token(client: httpx.Client) -> None:
    body = {"lat": LAHORE_POINT[0], "lon": LAHORE_POINT[1]}
    missing = client.post("/api/v1/route/", json=body)
    assert missing.status_code == 401, missing.text
    assert missing.headers["www-authenticate"].startswith("Bearer")
    bad = client.post("/api/v1/route/", json=body, headers={"Authorization": "Bearer x.y.z"})
    assert bad.status_code == 401
    batch = client.post("/api/v1/route/batch", json={"points": [body]})
    assert batch.status_code == 401


@pytest.mark.parametrize(("role", "scope", "status"), [
    ("call_taker", "PK617", 200),
    ("planner", "PK6", 200),
    ("admin", "PK6", 200),
    ("sho", LAHORE_STATION, 403),
    ("dpo", "PK617", 403),
    ("rpo", "LHR", 403),
    ("ig", "PK6", 403),
])
def test_who_may_route(client: httpx.Client, role: str, scope: str, status: int) -> None:
    body = {"lat": LAHORE_POINT[0], "lon": LAHORE_POINT[1]}
    one = client.post("/api/v1/route/", json=body, headers=headers(role, scope))
    batch = client.post("/api/v1/route/batch", json={"points": [body]}, headers=headers(role, scope))
    assert one.status_code == status, one.text
    assert batch.status_code == status, batch.text
    if status == 403:
        assert "may not route" in one.json()["detail"]


def test_answers_are_not_limited_to_the_scope(client: httpx.Client) -> None:
    """A Lahore call taker learns that a point is Attock's (to hand the call on)."""
    answer = client.post("/api/v1/route/", json={"lat": ATTOCK_POINT[0], "lon": ATTOCK_POINT[1]},
                         headers=headers("call_taker", "PK617"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["district_code"] == "PK601"


def test_each_point_decision_is_audited(client: httpx.Client, db: psycopg.Connection[Any]) -> None:
    subject, hdrs = actor("call_taker")
    answer = client.post("/api/v1/route/", json={"lat": LAHORE_POINT[0], "lon": LAHORE_POINT[1],
                                                 "radius_m": 50}, headers=hdrs)
    assert answer.status_code == 200, answer.text
    assert answer.json()["station_code"] == LAHORE_STATION
    rejected = client.post("/api/v1/route/", json={"lat": DELHI[0], "lon": DELHI[1]},
                           headers=hdrs)
    assert rejected.status_code == 422, rejected.text
    rows = entries(db, subject)
    assert [(r[0], r[1], r[2]) for r in rows] == [("route", "call_taker", None)] * 2
    routed, refused = rows[0][3], rows[1][3]
    assert routed["station"] == LAHORE_STATION
    assert routed["method"] == answer.json()["method"]
    assert routed["lat"] == LAHORE_POINT[0]
    assert routed["radius_m"] == 50
    assert routed["boundary_set"]
    assert routed["scope"] == "PK6"
    assert refused["method"] == "rejected"
    assert refused["station"] is None
    assert refused["reason"]


def test_a_batch_is_one_audit_entry_with_its_counts(client: httpx.Client,
                                                    db: psycopg.Connection[Any]) -> None:
    subject, hdrs = actor("planner")
    points = [{"lat": LAHORE_POINT[0], "lon": LAHORE_POINT[1]},
              {"lat": ATTOCK_POINT[0], "lon": ATTOCK_POINT[1]},
              {"lat": DELHI[0], "lon": DELHI[1]}] * 40
    answer = client.post("/api/v1/route/batch", json={"points": points}, headers=hdrs)
    assert answer.status_code == 200, answer.text
    assert answer.json()["count"] == 120
    assert answer.json()["rejected"] == 40
    assert answer.headers["content-encoding"] == "gzip"  # in the worker, once
    geojson = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [LAHORE_POINT[1],
                                                                         LAHORE_POINT[0]]},
         "properties": {}}]}
    assert client.post("/api/v1/route/batch", json=geojson, headers=hdrs).status_code == 200
    # a batch that cannot be read decides nothing and records nothing
    assert client.post("/api/v1/route/batch", json={"points": []}, headers=hdrs).status_code == 400
    rows = entries(db, subject)
    assert [(r[0], r[1]) for r in rows] == [("route.batch", "planner")] * 2
    first = rows[0][3]
    assert first["count"] == 120
    assert first["rejected"] == 40
    assert first["boundary_set"]
    assert "lat" not in first  # counts, not the points
    assert rows[1][3]["count"] == 1
