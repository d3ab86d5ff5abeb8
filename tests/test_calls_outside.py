"""A call from outside Punjab (``POST /calls`` on PostGIS): named, kept and sent on.

The call is taken (a 15 call is never refused for where it came from), routed to the
nearest Punjab station as a fallback, and carries ``outside_punjab`` and
``transfer_suggested`` in its answer, its stored row, its trail snapshot and its audit entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.callservice import LAHORE_POINT, call_body, fresh_time, headers, post_call

pytestmark = pytest.mark.integration

ISLAMABAD = (33.6844, 73.0479)
PESHAWAR = (34.0151, 71.5249)


@pytest.fixture(scope="module")
def db(loaded_postgis: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(loaded_postgis, autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize(("place", "province"), [(ISLAMABAD, "Islamabad Capital Territory"),
                                                 (PESHAWAR, "Khyber Pakhtunkhwa")])
def test_a_call_from_another_province_is_named_and_kept(
        client: httpx.Client, db: psycopg.Connection[Any], place: tuple[float, float],
        province: str) -> None:
    taken = post_call(client, call_body(*place, "fire", at=fresh_time()))
    assert taken.status_code == 201, taken.text
    call = taken.json()
    assert call["outside_punjab"] == province
    assert call["transfer_suggested"] is True
    assert call["method"] == "nearest"
    assert call["out_of_coverage"] is True
    assert call["station_code"]
    assert call["distance_m"] > 0
    read = client.get(f"/api/v1/calls/{call['id']}", headers=headers("admin", "PK6"))
    assert read.status_code == 200, read.text
    assert read.json()["outside_punjab"] == province
    assert read.json()["transfer_suggested"] is True
    stored = db.execute("SELECT outside_punjab FROM calls WHERE id = %s", (call["id"],)).fetchone()
    assert stored == (province,)
    snapshot = db.execute("SELECT snapshot FROM call_events WHERE call_id = %s",
                          (call["id"],)).fetchone()
    assert snapshot is not None
    as_sent = json.loads(snapshot[0]) if isinstance(snapshot[0], str) else snapshot[0]
    assert as_sent["outside_punjab"] == province
    assert as_sent["transfer_suggested"] is True
    audit = db.execute("SELECT detail FROM audit_log WHERE call_id = %s AND action = 'route'",
                       (call["id"],)).fetchone()
    assert audit is not None
    assert audit[0]["outside_punjab"] == province


def test_a_call_in_punjab_is_not_flagged(client: httpx.Client, db: psycopg.Connection[Any]) -> None:
    taken = post_call(client, call_body(*LAHORE_POINT, "fire", at=fresh_time()))
    assert taken.status_code == 201, taken.text
    assert taken.json()["outside_punjab"] is None
    assert taken.json()["transfer_suggested"] is False
    stored = db.execute("SELECT outside_punjab FROM calls WHERE id = %s",
                        (taken.json()["id"],)).fetchone()
    assert stored == (None,)
