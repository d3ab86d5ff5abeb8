"""Roles and jurisdiction scope over HTTP, for every role: who may read, write, watch,
and who sees caller numbers; 401 without a usable token; the ``safecity token`` CLI."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import jwt
import pytest

from api.auth import mint_token
from tests.callservice import (
    ATTOCK_POINT,
    LAHORE_POINT,
    LAHORE_STATION,
    ROOT,
    SECRET,
    ServiceClient,
    call_body,
    headers,
    post_call,
)

pytestmark = pytest.mark.integration

OTHER_STATION = "PK60101-001"  # Attock
PHONE = "03009990001"


@pytest.fixture(scope="module")
def lahore_call(client: ServiceClient) -> dict[str, Any]:
    response = post_call(client, call_body(*LAHORE_POINT, "dacoity_robbery", caller_phone=PHONE))
    assert response.status_code == 201, response.text
    call: dict[str, Any] = response.json()
    assert call["station_code"] == LAHORE_STATION
    return call


# role, scope, may read the Lahore call, sees the caller's number
READERS = [
    ("call_taker", "PK6", True, True),
    ("call_taker", "PK601", False, False),
    ("sho", LAHORE_STATION, True, True),
    ("sho", OTHER_STATION, False, False),
    ("dpo", "PK617", True, True),
    ("dpo", "PK601", False, False),
    ("cpo", "PK617", True, True),
    ("cpo", "PK601", False, False),
    ("rpo", "LHR", True, False),
    ("rpo", "RWP", False, False),
    ("ig", "PK6", True, False),
    ("planner", "PK6", False, False),
    ("admin", "PK601", True, True),  # an administrator's scope does not narrow what they see
]


@pytest.mark.parametrize(("role", "scope", "may_read", "sees_phone"), READERS,
                         ids=[f"{r}-{s}" for r, s, _, _ in READERS])
def test_read_scope_for_every_role(client: httpx.Client, lahore_call: dict[str, Any], *, role: str,
                                   scope: str, may_read: bool, sees_phone: bool) -> None:
    one = client.get(f"/api/v1/calls/{lahore_call['id']}", headers=headers(role, scope))
    trail = client.get(f"/api/v1/calls/{lahore_call['id']}/events", headers=headers(role, scope))
    listed = client.get("/api/v1/calls", params={"limit": 500, "since": lahore_call["received_at"],
                                                 "until": "2099-01-01T00:00:00Z"},
                        headers=headers(role, scope))
    filtered = client.get("/api/v1/calls", params={"station": LAHORE_STATION},
                          headers=headers(role, scope))
    if not may_read:
        assert one.status_code == 403, one.text
        assert trail.status_code == 403
        assert "scope" in one.json()["detail"] or "may not" in one.json()["detail"]
        if role == "planner":
            assert listed.status_code == 403
        else:
            assert listed.status_code == 200
            assert lahore_call["id"] not in {c["id"] for c in listed.json()["items"]}
        assert filtered.status_code == 403
        return
    assert one.status_code == 200, one.text
    assert trail.status_code == 200
    assert listed.status_code == 200
    assert lahore_call["id"] in {c["id"] for c in listed.json()["items"]}
    assert filtered.status_code == 200
    body = one.json()
    if sees_phone:
        assert body["caller_phone"] == PHONE
        assert body["caller_phone_hidden"] is False
    else:
        assert body["caller_phone"] is None
        assert body["caller_phone_hidden"] is True
    assert all(c["caller_phone"] in (None, PHONE) for c in listed.json()["items"]
               if c["id"] == lahore_call["id"])


# role, scope, status of creating a Lahore call, status of creating an Attock call
CREATORS = [
    ("call_taker", "PK6", 201, 201),
    ("call_taker", "PK601", 403, 201),
    ("admin", "PK6", 201, 201),
    ("sho", LAHORE_STATION, 403, 403),
    ("dpo", "PK617", 403, 403),
    ("cpo", "PK617", 403, 403),
    ("rpo", "LHR", 403, 403),
    ("ig", "PK6", 403, 403),
    ("planner", "PK6", 403, 403),
]


@pytest.mark.parametrize(("role", "scope", "lahore", "attock"), CREATORS,
                         ids=[f"{r}-{s}" for r, s, _, _ in CREATORS])
def test_create_scope_for_every_role(client: httpx.Client, role: str, scope: str, lahore: int,
                                     attock: int) -> None:
    made_lahore = post_call(client, call_body(*LAHORE_POINT), role=role, scope=scope)
    made_attock = post_call(client, call_body(*ATTOCK_POINT), role=role, scope=scope)
    assert (made_lahore.status_code, made_attock.status_code) == (lahore, attock), (
        made_lahore.text, made_attock.text)


# role, scope, status of acknowledging a fresh Lahore call
ACKNOWLEDGERS = [
    ("sho", LAHORE_STATION, 201),
    ("sho", OTHER_STATION, 403),
    ("dpo", "PK617", 201),
    ("dpo", "PK601", 403),
    ("cpo", "PK617", 201),
    ("rpo", "LHR", 201),
    ("rpo", "RWP", 403),
    ("ig", "PK6", 201),
    ("admin", "PK6", 201),
    ("call_taker", "PK6", 403),  # may transfer or cancel, not acknowledge for a station
    ("planner", "PK6", 403),
]


@pytest.mark.parametrize(("role", "scope", "expected"), ACKNOWLEDGERS,
                         ids=[f"{r}-{s}" for r, s, _ in ACKNOWLEDGERS])
def test_event_scope_for_every_role(client: httpx.Client, role: str, scope: str,
                                    expected: int) -> None:
    call = post_call(client, call_body(*LAHORE_POINT)).json()
    answer = client.post(f"/api/v1/calls/{call['id']}/events", json={"type": "acknowledged"},
                         headers=headers(role, scope))
    assert answer.status_code == expected, answer.text


# role, scope, roster read, roster write, Lahore station feed
STATION_ACCESS = [
    ("sho", LAHORE_STATION, 200, 200, 200),
    ("sho", OTHER_STATION, 403, 403, 403),
    ("dpo", "PK617", 200, 200, 200),
    ("cpo", "PK601", 403, 403, 403),
    ("rpo", "LHR", 200, 200, 200),
    ("ig", "PK6", 200, 200, 200),
    ("admin", "PK6", 200, 200, 200),
    ("call_taker", "PK6", 200, 403, 403),
    ("planner", "PK6", 403, 403, 403),
]


@pytest.mark.parametrize(("role", "scope", "read", "write", "feed"), STATION_ACCESS,
                         ids=[f"{r}-{s}" for r, s, _, _, _ in STATION_ACCESS])
def test_station_scope_for_every_role(client: ServiceClient, *, role: str, scope: str, read: int,
                                      write: int, feed: int) -> None:
    hdrs = headers(role, scope)
    roster = f"/api/v1/stations/{LAHORE_STATION}/roster"
    assert client.get(roster, headers=hdrs).status_code == read
    assert client.get(f"/api/v1/stations/{LAHORE_STATION}/on-duty", headers=hdrs).status_code == read
    current = client.get(roster, headers=headers("admin")).json()["shifts"]
    shifts = [{k: s[k] for k in ("officer_name", "rank", "phone", "start", "end")} for s in current]
    assert client.put(roster, json={"shifts": shifts}, headers=hdrs).status_code == write
    assert client.stream_status(f"/api/v1/stations/{LAHORE_STATION}/feed", hdrs) == feed


def test_missing_or_bad_tokens_are_401(client: httpx.Client, lahore_call: dict[str, Any]) -> None:
    url = f"/api/v1/calls/{lahore_call['id']}"
    expired = mint_token(SECRET, "ig", "PK6", "province", ttl_s=60, now=1_000_000)
    foreign = mint_token("another-secret-entirely-0123456789abcdef", "ig", "PK6", "province")
    wrong_level = jwt.encode({"sub": "x", "role": "sho", "scope": "PK617", "lvl": "district",
                              "iss": "safecity", "exp": 4_000_000_000}, SECRET, algorithm="HS256")
    for hdrs in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"},
                 {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Bearer {expired}"},
                 {"Authorization": f"Bearer {foreign}"}, {"Authorization": f"Bearer {wrong_level}"}):
        answer = client.get(url, headers=hdrs)
        assert answer.status_code == 401, (hdrs, answer.text)
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert client.post("/api/v1/calls", json=call_body(*LAHORE_POINT),
                       headers={"Idempotency-Key": "no-token"}).status_code == 401
    assert client.get("/api/v1/calls").status_code == 401


def test_token_cli(loaded_postgis: str) -> None:
    env = {"DATABASE_URL": loaded_postgis, "SAFECITY_JWT_SECRET": SECRET, "PATH": "/usr/bin:/bin",
           "COLUMNS": "250"}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api.cli", "token", *args], cwd=ROOT,
                              env={**env, **extra}, capture_output=True, text=True, check=False)

    made = run("--role", "dpo", "--scope", "PK617", "--subject", "DPO Lahore")
    assert made.returncode == 0, made.stderr
    claims = jwt.decode(made.stdout.strip(), SECRET, algorithms=["HS256"], issuer="safecity")
    assert (claims["role"], claims["scope"], claims["lvl"], claims["sub"]) == (
        "dpo", "PK617", "district", "DPO Lahore")
    station = run("--role", "sho", "--scope", LAHORE_STATION)
    assert jwt.decode(station.stdout.strip(), SECRET, algorithms=["HS256"])["lvl"] == "station"
    assert run("--role", "sho", "--scope", "PK617").returncode == 2  # a district is no station
    assert run("--role", "dpo", "--scope", "NOWHERE").returncode == 2
    assert run("--role", "chief").returncode == 2
    # no secret in the environment and none can be kept on disk: a clear refusal
    unwritable = run("--role", "ig", SAFECITY_JWT_SECRET="",
                     SAFECITY_JWT_SECRET_FILE="/proc/version/jwt-secret")
    assert unwritable.returncode == 2
    assert "SAFECITY_JWT_SECRET" in unwritable.stderr
