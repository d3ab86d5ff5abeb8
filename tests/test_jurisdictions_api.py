"""``GET /api/v1/jurisdictions/...``: any valid token of any role, no scope narrowing
(boundaries are not caller data), 401 without a token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.callservice import LAHORE_STATION, headers

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("path", ["/api/v1/jurisdictions/region",
                                  "/api/v1/jurisdictions/district/PK617"])
def test_no_token_is_401(client: httpx.Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.parametrize(("role", "scope"), [
    ("call_taker", "PK617"), ("planner", "PK6"), ("sho", LAHORE_STATION), ("dpo", "PK601"),
    ("rpo", "RWP"), ("ig", "PK6"), ("admin", "PK6"),
])
def test_every_role_reads_every_boundary(client: httpx.Client, role: str, scope: str) -> None:
    layer = client.get("/api/v1/jurisdictions/region", params={"simplify": 0.01},
                       headers=headers(role, scope))
    assert layer.status_code == 200, layer.text
    body = layer.json()
    assert body["type"] == "FeatureCollection"
    assert {f["properties"]["code"] for f in body["features"]} >= {"LHR", "RWP"}
    # a district outside the token's scope (Lahore for an Attock DPO) is not refused
    one = client.get("/api/v1/jurisdictions/district/PK617", headers=headers(role, scope))
    assert one.status_code == 200, one.text
    assert one.json()["properties"]["code"] == "PK617"


def test_unknown_level_and_code_are_404(client: httpx.Client) -> None:
    hdrs = headers("planner")
    assert client.get("/api/v1/jurisdictions/galaxy", headers=hdrs).status_code == 404
    assert client.get("/api/v1/jurisdictions/district/PK999", headers=hdrs).status_code == 404


def test_a_level_is_made_in_a_worker_once_and_kept(client: Any) -> None:
    counts = client.container.workers.counts
    hdrs = {**headers("planner"), "Accept-Encoding": "gzip"}
    first = client.get("/api/v1/jurisdictions/tehsil", params={"simplify": 0.002}, headers=hdrs)
    assert first.status_code == 200, first.text
    done = counts.done
    again = client.get("/api/v1/jurisdictions/tehsil", params={"simplify": 0.002}, headers=hdrs)
    assert counts.done == done  # kept: no second job
    assert again.content == first.content
    assert again.headers["content-encoding"] == "gzip"
    assert again.headers["content-type"].startswith("application/geo+json")
    plain = client.get("/api/v1/jurisdictions/tehsil", params={"simplify": 0.002},
                       headers={**hdrs, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    body = plain.json()
    assert body["level"] == "tehsil"
    assert len(body["features"]) == 139
    assert body["attribution"].startswith("Administrative boundaries")
    assert client.get("/api/v1/jurisdictions/tehsil", params={"simplify": 1},
                      headers=hdrs).status_code == 400
