"""Tokens and scope rules (unit): what each role may do, and over which areas."""

from __future__ import annotations

import time

import jwt
import pytest

from api.auth import (
    ROLES,
    Principal,
    decode_token,
    mint_token,
    principal_from_header,
)
from api.errors import ForbiddenError, UnauthorizedError

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-with-enough-bytes-for-hs256"
PATH = {"station": "PK61701-001", "tehsil": "PK61701", "district": "PK617", "region": "LHR",
        "province": "PK6"}
OTHER = {"station": "PK60101-001", "tehsil": "PK60101", "district": "PK601", "region": "RWP",
         "province": "PK6"}


def test_round_trip_keeps_claims() -> None:
    token = mint_token(SECRET, "dpo", "PK617", "district", subject="badge-17")
    principal = decode_token(SECRET, token)
    assert principal == Principal("badge-17", "dpo", "PK617", "district")


@pytest.mark.parametrize(("role", "level"), [("sho", "district"), ("dpo", "station"),
                                             ("rpo", "district"), ("ig", "region")])
def test_role_level_mismatch_is_refused(role: str, level: str) -> None:
    with pytest.raises(ValueError, match="scope must be"):
        mint_token(SECRET, role, "X", level)
    now = int(time.time())
    forged = jwt.encode({"sub": "x", "role": role, "scope": "X", "lvl": level, "iss": "safecity",
                         "iat": now, "exp": now + 3600}, SECRET, algorithm="HS256")
    with pytest.raises(UnauthorizedError, match="scope must be"):
        decode_token(SECRET, forged)


def test_unknown_role_wrong_secret_expired_and_garbage_are_401() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        mint_token(SECRET, "chief", "PK6", "province")
    good = mint_token(SECRET, "ig", "PK6", "province")
    with pytest.raises(UnauthorizedError, match="invalid token"):
        decode_token("another-secret-of-sufficient-length-xx", good)
    old = mint_token(SECRET, "ig", "PK6", "province", ttl_s=10, now=1_000_000)
    with pytest.raises(UnauthorizedError, match="expired"):
        decode_token(SECRET, old)
    with pytest.raises(UnauthorizedError):
        decode_token(SECRET, "not.a.jwt")


def test_header_forms() -> None:
    token = mint_token(SECRET, "sho", "PK61701-001", "station")
    assert principal_from_header(SECRET, f"Bearer {token}").role == "sho"
    assert principal_from_header(SECRET, None, token).role == "sho"
    with pytest.raises(UnauthorizedError, match="required"):
        principal_from_header(SECRET, None)
    with pytest.raises(UnauthorizedError, match="Bearer"):
        principal_from_header(SECRET, f"Basic {token}")
    with pytest.raises(UnauthorizedError) as caught:
        principal_from_header(None, f"Bearer {token}")
    assert caught.value.status == 503


@pytest.mark.parametrize(("role", "scope", "level", "inside", "outside"), [
    ("sho", "PK61701-001", "station", True, False),
    ("dpo", "PK617", "district", True, False),
    ("cpo", "PK617", "district", True, False),
    ("rpo", "LHR", "region", True, False),
    ("ig", "PK6", "province", True, True),
    ("admin", "PK617", "district", True, True),
    ("call_taker", "PK617", "district", True, False),
    ("call_taker", "PK6", "province", True, True),
])
def test_scope_covers(role: str, scope: str, level: str, inside: bool, outside: bool) -> None:
    principal = Principal("t", role, scope, level)
    assert principal.covers(PATH) is inside
    assert principal.covers(OTHER) is outside
    if not outside:
        with pytest.raises(ForbiddenError, match="outside your scope"):
            principal.require_scope(OTHER, "call x")


def test_role_permissions_table() -> None:
    allowed = {role: {a for a in ("call.create", "call.read", "call.event", "feed.read",
                                  "roster.read", "roster.write", "route", "analytics.read")
                      if _can(role, a)} for role in ROLES}
    assert allowed["planner"] == {"route", "analytics.read"}  # aggregates and points, no calls
    assert allowed["call_taker"] == {"call.create", "call.read", "call.event", "roster.read", "route"}
    assert "call.create" not in allowed["sho"]
    assert all("route" not in allowed[r] and "analytics.read" in allowed[r]
               for r in ("sho", "dpo", "cpo", "rpo", "ig"))
    assert allowed["admin"] == {"call.create", "call.read", "call.event", "feed.read",
                                "roster.read", "roster.write", "route", "analytics.read"}
    phone = {role for role in ROLES if Principal("t", role, "PK6", "province").sees_phone}
    assert phone == {"call_taker", "sho", "dpo", "cpo", "admin"}


def _can(role: str, action: str) -> bool:
    try:
        Principal("t", role, "PK6", "province").require(action)  # type: ignore[arg-type]
    except ForbiddenError:
        return False
    return True
