"""Issue 15's hardening, over HTTP against the real service on PostGIS: every bad input a
clear 4xx (deep JSON, loose types, other media types), request ids on every answer and in
every error, 500s logged with their stack trace (``docs/security.md``)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from litestar import get, post

from tests.callservice import (
    LAHORE_POINT,
    LAHORE_STATION,
    ServiceClient,
    call_body,
    headers,
    new_key,
    post_call,
)

pytestmark = pytest.mark.integration

NOWHERE_CALL = "00000000-0000-0000-0000-000000000000"
JSON_BODIES = [  # every endpoint that takes a JSON body, as a role allowed to use it
    ("POST", "/api/v1/calls", "call_taker"),
    ("POST", f"/api/v1/calls/{NOWHERE_CALL}/events", "admin"),
    ("PUT", f"/api/v1/stations/{LAHORE_STATION}/roster", "admin"),
    ("POST", "/api/v1/plans", "planner"),
    ("POST", "/api/v1/route", "call_taker"),
]


def deep(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def deep_bodies() -> list[bytes]:
    """Nesting deep enough for any decoder's recursion limit: the whole body, a known
    field's value, an unknown field's value and an object of objects."""
    nested_objects = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    return [deep(100_000), b'{"lat":' + deep(100_000) + b"}",
            b'{"unknown_field":' + deep(100_000) + b"}", nested_objects]


def send(client: ServiceClient, method: str, path: str, role: str, body: bytes, *,
         content_type: str | None = "application/json") -> Any:
    extra = {"Idempotency-Key": new_key()}
    if content_type is not None:
        extra["Content-Type"] = content_type
    return client.request(method, path, content=body, headers=headers(role, **extra))


@pytest.mark.parametrize(("method", "path", "role"), JSON_BODIES)
def test_deeply_nested_json_is_a_clear_400_on_every_body(client: ServiceClient, method: str,
                                                         path: str, role: str) -> None:
    for body in deep_bodies():
        answer = send(client, method, path, role, body)
        assert answer.status_code == 400, (path, body[:20], answer.text[:300])
        payload = answer.json()
        assert payload["request_id"] == answer.headers["x-request-id"]
        assert payload["detail"]


def test_json_nested_past_the_decoders_limit_names_the_nesting(client: ServiceClient) -> None:
    """Today's bodies stop deep input at their first wrong type; a body of free-form JSON
    (a handler registered on the running app for this test) reaches the decoder's
    recursion limit, which is a 400 naming the nesting instead of Litestar's 500."""

    @post("/test-only/free-json", include_in_schema=False, status_code=200)
    async def free_json(data: dict[str, Any]) -> dict[str, int]:
        return {"keys": len(data)}

    register_once(client, free_json)
    for body in [b'{"a":' + deep(100_000) + b"}", b'{"a":' * 50_000 + b"1" + b"}" * 50_000]:
        answer = client.post("/test-only/free-json", content=body,
                             headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text[:300]
        assert answer.json()["detail"] == "the JSON body is nested too deeply"
    fine = client.post("/test-only/free-json", json={"a": deep(50).decode()})
    assert fine.status_code == 200
    assert fine.json() == {"keys": 1}


def register_once(client: ServiceClient, handler: Any) -> None:
    paths = {route.path for route in client.app.routes}
    if not set(handler.paths) <= paths:
        client.app.register(handler)


@pytest.mark.parametrize(("field", "value"), [
    ("lat", "31.5"), ("lon", "74.3"), ("radius_m", "100"), ("received_at", 1_700_000_000),
    ("received_at", 1_700_000_000.5), ("received_at", "2025-01-01T10:00:00"),
    ("category", 7), ("lat", True),
])
def test_loose_types_are_refused_on_calls(client: ServiceClient, field: str, value: Any) -> None:
    body = {**call_body(*LAHORE_POINT), field: value}
    answer = post_call(client, body)
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["detail"]


def test_strict_bodies_still_take_good_calls_and_events(client: ServiceClient) -> None:
    body = call_body(*LAHORE_POINT, radius_m=100, description="strict but fine")
    created = post_call(client, body)
    assert created.status_code == 201, created.text
    call = created.json()
    assert call["radius_m"] == 100
    assert call["description"] == "strict but fine"
    event = client.post(f"/api/v1/calls/{call['id']}/events",
                        json={"type": "cancelled", "reason": "hoax"}, headers=headers("call_taker"))
    assert event.status_code == 201, event.text
    assert event.json()["call"]["status"] == "cancelled"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/xml", None])
def test_json_endpoints_take_only_application_json(client: ServiceClient,
                                                   content_type: str | None) -> None:
    good = json.dumps(call_body(*LAHORE_POINT)).encode()
    for method, path, role in JSON_BODIES:
        answer = send(client, method, path, role, good, content_type=content_type)
        assert answer.status_code == 415, (path, answer.text)
        assert "application/json" in answer.json()["detail"]
    charset = send(client, "POST", "/api/v1/calls", "call_taker", good,
                   content_type="application/json; charset=utf-8")
    assert charset.status_code == 201, charset.text


def test_last_event_id_in_the_query_is_checked_like_the_header(client: ServiceClient) -> None:
    feeds = [f"/api/v1/stations/{LAHORE_STATION}/feed", "/api/v1/feeds/district/PK617",
             "/api/v1/alerts/feed/district/PK617"]
    for feed in feeds:
        in_query = client.get(f"{feed}?last_event_id=zz", headers=headers("admin"))
        in_header = client.get(feed, headers=headers("admin", **{"Last-Event-ID": "zz"}))
        assert in_query.status_code == in_header.status_code == 400, (feed, in_query.text)
        assert "last_event_id" in in_query.text
        negative = client.get(f"{feed}?last_event_id=-1", headers=headers("admin"))
        assert negative.status_code == 400


def test_every_answer_carries_a_request_id(client: ServiceClient) -> None:
    answers = [client.get("/health"), client.get("/api/v1/nowhere"),
               client.get("/api/v1/calls"),  # 401
               client.get("/schema/openapi.json"),
               post_call(client, call_body(*LAHORE_POINT))]
    ids = [a.headers.get("x-request-id") for a in answers]
    assert all(ids), ids
    assert len(set(ids)) == len(ids), ids
    for answer in answers[1:3]:
        assert answer.json()["request_id"] == answer.headers["x-request-id"]


def test_a_clients_request_id_is_kept_only_when_it_is_plain(client: ServiceClient) -> None:
    kept = client.get("/api/v1/nowhere", headers={"X-Request-ID": "desk-7:call-42"})
    assert kept.headers["x-request-id"] == "desk-7:call-42" == kept.json()["request_id"]
    forged = client.get("/health", headers={"X-Request-ID": "x\tFAKE log line " + "a" * 80})
    assert "FAKE" not in forged.headers["x-request-id"]
    assert len(forged.headers["x-request-id"]) == 16


def test_a_server_error_is_logged_with_its_stack_trace_and_request_id(
        client: ServiceClient, caplog: pytest.LogCaptureFixture) -> None:
    """A handler that fails (registered on the running app for this test) answers 500 with
    the request id and nothing of the error; the log has both, and the trace."""

    @get("/test-only/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("secret internals 0xdeadbeef")

    register_once(client, boom)
    with caplog.at_level(logging.ERROR, logger="safecity.errors"):
        answer = client.get("/test-only/boom", headers={"X-Request-ID": "trace-me-15"})
    assert answer.status_code == 500
    assert answer.json()["request_id"] == "trace-me-15" == answer.headers["x-request-id"]
    assert "0xdeadbeef" not in answer.text
    logged = [r for r in caplog.records if r.name == "safecity.errors"]
    assert logged, caplog.text
    text = caplog.text
    assert "trace-me-15" in text
    assert "Traceback" in text
    assert "0xdeadbeef" in text
    assert "/test-only/boom" in text
