"""Issue 15's hardening, over HTTP against the real service on PostGIS: every bad input a
clear 4xx (deep JSON, loose types, other media types), request ids on every answer and in
every error, 500s logged with their stack trace (``docs/security.md``)."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from litestar import get, post
from litestar.exceptions import WebSocketDisconnect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from api.auth import mint_token
from api.domain.calls.intake import MAX_KEY_LENGTH, scoped_key
from tests.callservice import (
    ATTOCK_POINT,
    LAHORE_POINT,
    LAHORE_STATION,
    ROOT,
    SECRET,
    ServiceClient,
    call_body,
    free_port,
    headers,
    new_key,
    post_call,
    start_server,
    token,
)

pytestmark = pytest.mark.integration

NOWHERE_CALL = "00000000-0000-0000-0000-000000000000"
JSON_BODIES = [  # every endpoint that takes a JSON body, as a role allowed to use it, and
    # the status of a body of the wrong shape (routing answers all its forms with 422s)
    ("POST", "/api/v1/calls", "call_taker", 400),
    ("POST", f"/api/v1/calls/{NOWHERE_CALL}/events", "admin", 400),
    ("PUT", f"/api/v1/stations/{LAHORE_STATION}/roster", "admin", 400),
    ("POST", "/api/v1/plans", "planner", 400),
    ("POST", "/api/v1/route", "call_taker", 422),
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


@pytest.mark.parametrize(("method", "path", "role", "status"), JSON_BODIES)
def test_deeply_nested_json_is_a_clear_4xx_on_every_body(client: ServiceClient, method: str,
                                                         path: str, role: str, status: int) -> None:
    for body in deep_bodies():
        answer = send(client, method, path, role, body)
        assert answer.status_code == status, (path, body[:20], answer.text[:300])
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
    for method, path, role, _status in JSON_BODIES:
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


# --------------------------------------------------------------------------- secrets in URLs


MAP_LINK = "/maps/calls?level=district&code=PK617&res=7"


def test_a_map_link_sets_a_strict_cookie_only_for_a_role_that_may_open_it(
        client: ServiceClient) -> None:
    allowed = client.get(f"{MAP_LINK}&token={token('dpo', 'PK617')}", follow_redirects=False,
                         headers={"Sec-Fetch-Site": "none"})
    assert allowed.status_code == 303, allowed.text
    assert allowed.headers["location"] == MAP_LINK
    cookie = allowed.headers["set-cookie"].lower()
    assert "samesite=strict" in cookie
    assert "httponly" in cookie
    assert "path=/maps" in cookie
    # valid tokens that may not open this page: a role without analytics, another area
    for role, scope in (("call_taker", "PK6"), ("sho", LAHORE_STATION), ("dpo", "PK601")):
        planted = client.get(f"{MAP_LINK}&token={token(role, scope)}", follow_redirects=False)
        assert planted.status_code == 403, planted.text
        assert "set-cookie" not in planted.headers
    plan = client.get(f"/maps/plans/{NOWHERE_CALL}?token={token('sho', LAHORE_STATION)}",
                      follow_redirects=False)
    assert plan.status_code == 403
    assert "set-cookie" not in plan.headers


@pytest.mark.parametrize("started_by", [{"Sec-Fetch-Site": "cross-site"},
                                        {"Sec-Fetch-Site": "same-site"},
                                        {"Origin": "https://evil.example"},
                                        {"Origin": "null"}])
def test_a_map_link_from_another_site_sets_no_cookie(client: ServiceClient,
                                                     started_by: dict[str, str]) -> None:
    answer = client.get(f"{MAP_LINK}&token={token('dpo', 'PK617')}", follow_redirects=False,
                        headers=started_by)
    assert answer.status_code == 403, answer.text
    assert "set-cookie" not in answer.headers
    same_site = client.get(f"{MAP_LINK}&token={token('dpo', 'PK617')}", follow_redirects=False,
                           headers={"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1"})
    assert same_site.status_code == 303


def test_the_servers_access_log_never_shows_a_token(loaded_postgis: str, tmp_path: Path) -> None:
    """``safecity serve`` as an operator runs it, access log on: tokens in URLs (a map
    link, ``?access_token=`` on the API) are written as ``[redacted]``."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "SAFECITY_JWT_SECRET": SECRET, "DATABASE_URL": loaded_postgis,
           "SAFECITY_WORKERS": "1"}
    env.pop("REDIS_URL", None)
    secret_token = token("dpo", "PK617")
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--log-level", "info"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.HTTPError:
                assert process.poll() is None, log_path.read_text()
                time.sleep(0.5)
        api = httpx.get(f"{base}/api/v1/calls?limit=1&access_token={secret_token}", timeout=30)
        assert api.status_code == 200, api.text
        link = httpx.get(f"{base}{MAP_LINK}&token={secret_token}&x=1", timeout=30,
                         follow_redirects=False)
        assert link.status_code == 303
        refused = httpx.get(f"{base}/api/v1/calls?ACCESS_TOKEN={secret_token}", timeout=30)
        assert refused.status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    text = log_path.read_text()
    signature = secret_token.rsplit(".", 1)[1]
    assert signature not in text, text
    assert secret_token.split(".")[1] not in text
    assert "/api/v1/calls?limit=1&access_token=[redacted] HTTP/1.1\" 200" in text, text
    assert "&token=[redacted]&x=1 HTTP/1.1\" 303" in text, text


# --------------------------------------------------------------------------- headers


def test_html_pages_carry_a_local_only_policy_and_one_content_type(client: ServiceClient) -> None:
    schema_page = client.get("/schema")
    assert schema_page.status_code == 200
    policy = schema_page.headers["content-security-policy"]
    assert "'sha256-" in policy
    assert "unsafe-inline' ; script" not in policy
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src
    for page in (schema_page,):
        check_page_headers(page)


def check_page_headers(page: Any) -> None:
    policy = page.headers["content-security-policy"]
    assert "http:" not in policy
    assert "https:" not in policy
    assert "*" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers.get_list("content-type") == ["text/html; charset=utf-8"]


def test_a_map_page_carries_the_policy_and_one_content_type(client: ServiceClient) -> None:
    page = client.get(MAP_LINK, headers=headers("dpo", "PK617"))
    assert page.status_code == 200, page.text[:300]
    check_page_headers(page)
    assert "<script>" not in page.text  # no inline script for the policy to allow
    assert "script-src 'self';" in page.headers["content-security-policy"]


def test_csv_has_one_charset(client: ServiceClient) -> None:
    csv = client.get("/api/v1/heatmaps/calls?level=district&code=PK617&res=6&format=csv",
                     headers=headers("dpo", "PK617"))
    assert csv.status_code == 200, csv.text[:300]
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv.headers["x-content-type-options"] == "nosniff"


# --------------------------------------------------------------------------- WebSocket origins


FEED_SOCKET = "/api/v1/ws/feeds/district/PK617"


def test_websockets_from_a_foreign_origin_are_refused(client: ServiceClient) -> None:
    url = f"{FEED_SOCKET}?access_token={token('dpo', 'PK617')}"
    for origin in ("https://evil.example", "http://127.0.0.1.evil.example", "null"):
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
                url, headers={"Origin": origin}):
            pass
        assert refused.value.code == 1008
    for same in ({"Origin": "http://127.0.0.1"}, {}):  # this service's own page; not a browser
        with client.websocket_connect(url, headers=same) as socket:
            assert socket.scope["path"] == FEED_SOCKET


def test_configured_origins_may_open_websockets_on_a_real_server(loaded_postgis: str) -> None:
    served = start_server(loaded_postgis,
                          extra_env={"SAFECITY_ALLOWED_ORIGINS": "https://control.punjab.example/"})
    try:
        url = served.url.replace("http://", "ws://") + f"{FEED_SOCKET}?access_token={token('dpo', 'PK617')}"
        with ws_connect(url, origin="https://control.punjab.example", open_timeout=30) as socket:  # type: ignore[arg-type]
            socket.send("hello")  # the handshake was accepted
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url, origin="https://evil.example", open_timeout=30)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
    finally:
        served.stop()


# --------------------------------------------------------------------------- token claims


def forged(**claims: Any) -> str:
    """A token signed with the server's secret (as only its holder could) with ``claims``
    over a valid planner's."""
    now = int(time.time())
    base = {"sub": "forger", "role": "planner", "scope": "PK6", "lvl": "province",
            "iss": "safecity", "iat": now, "exp": now + 3600}
    return jwt.encode({k: v for k, v in {**base, **claims}.items() if v is not None}, SECRET,
                      algorithm="HS256")


STATS = "/api/v1/stats/response?level=province"


@pytest.mark.parametrize("claims", [
    {"exp": "9999999999"}, {"exp": 1e30},
    # times relative to now get ids that are not (test processes collect at other instants)
    pytest.param({"exp": int(time.time()) + 3600.5}, id="exp-in-an-hour-not-an-integer"),
    pytest.param({"exp": int(time.time()) + 400 * 86400}, id="exp-in-400-days"),
    {"exp": True}, {"iat": None},
    pytest.param({"iat": str(int(time.time()))}, id="iat-now-as-a-string"),
    pytest.param({"iat": int(time.time()) + 86400, "exp": int(time.time()) + 90000},
                 id="iat-tomorrow"),
    {"role": "call_taker", "scope": "LHR"}, {"role": "planner", "scope": "PK617"},
    {"role": "dpo", "scope": "PK617"}, {"role": "ig", "scope": "LHR"}, {"scope": "PK6' OR 1=1"},
    {"sub": 7}, {"role": "root"},
], ids=str)
def test_forged_claims_are_refused(client: ServiceClient, claims: dict[str, Any]) -> None:
    answer = client.get(STATS, headers={"Authorization": f"Bearer {forged(**claims)}"})
    assert answer.status_code == 401, (claims, answer.text)
    assert answer.json()["detail"].startswith(("invalid token", "token lacks", "token expired"))


def test_the_honest_forms_of_those_claims_are_accepted(client: ServiceClient) -> None:
    for claims in ({}, {"role": "ig", "lvl": "province"},
                   {"role": "call_taker", "scope": "LHR", "lvl": "region"},
                   {"exp": int(time.time()) + 29 * 86400}):
        answer = client.get("/api/v1/calls?limit=1" if claims.get("role") == "call_taker" else STATS,
                            headers={"Authorization": f"Bearer {forged(**claims)}"})
        assert answer.status_code == 200, (claims, answer.text)


@pytest.mark.parametrize("bad", [
    "eyJhbGciOiJIUzI1NiJ9.not-json.sig", base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode() + ".e30.c2ln",
    "a.b", "...", "Zm9v.YmFy.YmF6",
])
def test_a_malformed_token_is_a_clear_401(client: ServiceClient, bad: str) -> None:
    answer = client.get(STATS, headers={"Authorization": f"Bearer {bad}"})
    assert answer.status_code == 401, answer.text
    detail = answer.json()["detail"]
    assert "codec" not in detail
    assert detail.startswith("invalid token")
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_minting_refuses_what_decoding_refuses() -> None:
    with pytest.raises(ValueError, match="province scope"):
        mint_token(SECRET, "call_taker", "LHR", "province")
    with pytest.raises(ValueError, match="at most"):
        mint_token(SECRET, "admin", "PK6", "province", ttl_s=365 * 86400)


# --------------------------------------------------------------------------- idempotency scope


def keys_stay_in_their_area(client: ServiceClient) -> list[str]:
    """Two areas' call takers pick the same key: two calls, neither told of the other's;
    within an area the key works as before (replay 200, another body 409 naming the call).
    The ids: Lahore's, Attock's, the province desk's."""
    key = new_key("shared")
    lahore = post_call(client, call_body(*LAHORE_POINT), key=key, scope="LHR")
    assert lahore.status_code == 201, lahore.text
    attock_body = call_body(*ATTOCK_POINT)
    attock = post_call(client, attock_body, key=key, scope="RWP")
    assert attock.status_code == 201, attock.text
    assert attock.json()["id"] != lahore.json()["id"]
    assert lahore.json()["id"] not in attock.text
    replay = post_call(client, attock_body, key=key, scope="RWP")
    assert replay.status_code == 200
    assert replay.json()["id"] == attock.json()["id"]
    other_body = post_call(client, call_body(*ATTOCK_POINT), key=key, scope="RWP")
    assert other_body.status_code == 409
    assert other_body.json()["call_id"] == attock.json()["id"]
    assert lahore.json()["id"] not in other_body.text
    province = post_call(client, call_body(*ATTOCK_POINT), key=key, scope="PK6")
    assert province.status_code == 201, province.text
    return [lahore.json()["id"], attock.json()["id"], province.json()["id"], key]


def test_idempotency_keys_are_scoped_to_the_callers_area(client: ServiceClient,
                                                          loaded_postgis: str) -> None:
    *ids, key = keys_stay_in_their_area(client)
    with psycopg.connect(loaded_postgis) as db:
        stored = dict(db.execute("SELECT idempotency_key, id::text FROM calls WHERE "
                                 "idempotency_key LIKE %s", (f"%{key}",)).fetchall())
    assert stored == {f"LHR/{key}": ids[0], f"RWP/{key}": ids[1], key: ids[2]}


def test_a_province_key_with_a_slash_cannot_reach_an_areas_key(client: ServiceClient) -> None:
    key = new_key("slash")
    area = post_call(client, call_body(*LAHORE_POINT), key=key, scope="LHR")
    desk = post_call(client, call_body(*ATTOCK_POINT), key=f"LHR/{key}", scope="PK6")
    assert area.status_code == desk.status_code == 201
    assert area.json()["id"] != desk.json()["id"]


def test_scoped_keys_fit_the_column() -> None:
    longest = "k" * MAX_KEY_LENGTH
    stored = scoped_key("PK61701-007", longest)
    assert len(stored) <= MAX_KEY_LENGTH
    assert stored.startswith("PK61701-007/#")
    assert scoped_key("PK61701-007", longest) != scoped_key("PK61701-008", longest)
    assert scoped_key("PK6", longest) == longest


# --------------------------------------------------------------------------- OpenAPI


def test_the_openapi_document_tells_the_truth(client: ServiceClient) -> None:
    document = client.get("/schema/openapi.json").json()
    paths = document["paths"]
    for path in ("/api/v1/heatmaps/calls", "/api/v1/heatmaps/response", "/api/v1/hotspots",
                 "/api/v1/hotspots/emerging"):
        ok = paths[path]["get"]["responses"]["200"]["content"]
        assert set(ok) == {"application/json", "application/geo+json", "text/csv",
                           "application/vnd.apache.parquet"}
        assert ok["application/json"]["schema"]["properties"]["meta"] == {
            "$ref": "#/components/schemas/ResultMeta"}
    assert "ResultMeta" in document["components"]["schemas"]
    for path, item in paths.items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            if path == "/health":
                continue
            assert {"400", "404", "503"} <= codes, (method, path, codes)
            if operation.get("security"):
                assert {"401", "403"} <= codes, (method, path)
            if "requestBody" in operation:
                assert "415" in codes, (method, path)
    assert {"200", "201", "409", "415"} <= set(paths["/api/v1/calls"]["post"]["responses"])
    # and what a heat map really answers matches what is documented for it
    answer = client.get("/api/v1/heatmaps/calls?level=district&code=PK617&res=6",
                        headers=headers("dpo", "PK617"))
    assert answer.status_code == 200
    assert set(answer.json()) == {"meta", "cells"}
    assert set(answer.json()["meta"]) <= set(
        document["components"]["schemas"]["ResultMeta"]["properties"])
