"""Unit tests of the call service's pure parts: the state machine, the H3 ring bound of
duplicate search, request hashing, cursors, the feed envelope, roster checks, channels."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta, timezone

import h3.api.basic_int as h3_int
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.channels import path_channels
from api.db.call_models import CallEventRecord
from api.domain.calls import lifecycle
from api.domain.calls.schemas import CallCreate
from api.domain.calls.services import (
    DUPLICATE_RING,
    H3_RES,
    _decode_cursor,
    _haversine_m,
    _request_hash,
    envelope,
)
from api.domain.stations.schemas import ShiftIn
from api.domain.stations.services import _checked
from api.errors import BadInputError, ConflictError, UnprocessableError

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------------- state machine
def test_every_status_has_its_transitions_and_terminals_have_none() -> None:
    assert set(lifecycle.TRANSITIONS) == set(lifecycle.STATUSES)
    for status in lifecycle.TERMINAL:
        assert lifecycle.allowed_events(status) == ()
    for status in lifecycle.OPEN_STATUSES:
        assert "cancelled" in lifecycle.allowed_events(status) or status == "on_scene"
        assert set(lifecycle.allowed_events(status)) <= set(lifecycle.EVENT_TYPES)


def test_every_open_status_can_reach_closed() -> None:
    for start in lifecycle.OPEN_STATUSES:
        seen, frontier = {start}, [start]
        while frontier:
            for event in lifecycle.allowed_events(frontier.pop()):
                if event not in seen:
                    seen.add(event)
                    frontier.append(event)
        assert "closed" in seen, start


@pytest.mark.parametrize("status", lifecycle.STATUSES)
@pytest.mark.parametrize("event", lifecycle.EVENT_TYPES)
def test_next_status_accepts_exactly_the_table(status: str, event: str) -> None:
    if event in lifecycle.TRANSITIONS[status]:
        assert lifecycle.next_status(status, event) == event
        return
    with pytest.raises(ConflictError) as refused:
        lifecycle.next_status(status, event)
    assert refused.value.extra["allowed"] == list(lifecycle.TRANSITIONS[status])
    assert refused.value.status == 409
    for allowed in lifecycle.TRANSITIONS[status]:
        assert allowed in str(refused.value)


def test_a_station_must_acknowledge_before_dispatch() -> None:
    with pytest.raises(ConflictError):
        lifecycle.next_status("received", "dispatched")
    with pytest.raises(ConflictError):
        lifecycle.next_status("transferred", "on_scene")


# ---------------------------------------------------------------------- duplicates
@settings(max_examples=400, deadline=None)
@given(lat=st.floats(28.0, 34.0), lon=st.floats(69.5, 75.5), distance=st.floats(0, 250),
       bearing=st.floats(0, 2 * math.pi))
def test_two_rings_hold_every_point_within_250_m(lat: float, lon: float, distance: float,
                                                 bearing: float) -> None:
    north, east = distance * math.cos(bearing), distance * math.sin(bearing)
    other_lat = lat + north / 111_320.0
    other_lon = lon + east / (111_320.0 * math.cos(math.radians(lat)))
    if _haversine_m(lat, lon, other_lat, other_lon) > 250:
        return  # the flat-earth offset overshot by millimetres
    disk = set(h3_int.grid_disk(h3_int.latlng_to_cell(lat, lon, H3_RES), DUPLICATE_RING))
    assert len(disk) == 19
    assert h3_int.latlng_to_cell(other_lat, other_lon, H3_RES) in disk


def test_haversine_matches_known_distance() -> None:
    # one degree of latitude is 111.2 km on the mean sphere
    assert _haversine_m(31.0, 74.0, 32.0, 74.0) == pytest.approx(111_195, rel=1e-4)
    assert _haversine_m(31.5, 74.3, 31.5, 74.3) == 0.0


# ---------------------------------------------------------------------- idempotency hash
def test_request_hash_ignores_spelling_not_content() -> None:
    at = datetime(2025, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=5)))
    a = msgspec.json.decode(b'{"lat": 31, "lon": 74.3, "category": "fire"}', type=CallCreate)
    b = msgspec.json.decode(b'{"category": "fire", "lon": 74.30, "lat": 31.0}', type=CallCreate)
    assert _request_hash(a, None) == _request_hash(b, None)
    assert _request_hash(a, at.astimezone(UTC)) == _request_hash(b, at.astimezone(UTC))
    assert _request_hash(a, None) != _request_hash(a, at.astimezone(UTC))
    c = msgspec.json.decode(b'{"lat": 31, "lon": 74.3, "category": "murder"}', type=CallCreate)
    assert _request_hash(a, None) != _request_hash(c, None)


# ---------------------------------------------------------------------- cursors
def test_cursor_round_trip_and_garbage() -> None:
    from api.domain.calls.services import _encode_cursor

    class Row:
        received_at = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
        id = uuid.UUID("12345678-1234-4678-9234-567812345678")

    assert _decode_cursor(_encode_cursor(Row())) == (Row.received_at, Row.id)  # type: ignore[arg-type]
    for garbage in ("", "!!!", "bm90IGEgY3Vyc29y", "MjAyNS0wMS0wMXx4"):
        with pytest.raises(BadInputError):
            _decode_cursor(garbage)


# ---------------------------------------------------------------------- feeds
def test_envelope_is_json_with_event_and_snapshot() -> None:
    snapshot = '{"id":"x","unstaffed":true,"caller_phone":"0300"}'
    row = CallEventRecord(
        id=42, call_id=uuid.uuid4(), type="received", at=datetime(2025, 1, 1, tzinfo=UTC),
        recorded_at=datetime(2025, 1, 1, tzinfo=UTC), from_status=None, status="received",
        station_code="S", tehsil_code="T", district_code="D", region_code="R",
        from_station_code=None, reason=None, note=None, actor="a", role="call_taker",
        snapshot=snapshot)
    message = msgspec.json.decode(envelope(row, msgspec.json.Encoder()))
    assert message["event_id"] == 42
    assert message["type"] == "received"
    assert message["unstaffed"] is True
    assert message["event"]["station_code"] == "S"
    assert message["call"] == msgspec.json.decode(snapshot)


def test_path_channels_cover_both_paths_once() -> None:
    here = {"station": "S1", "tehsil": "T1", "district": "D1", "region": "R1", "province": "P"}
    left = {"station": "S2", "tehsil": "T1", "district": "D1", "region": "R1", "province": "P"}
    assert path_channels(here, left) == ["station:S1", "tehsil:T1", "district:D1", "region:R1",
                                         "province:P", "station:S2"]


# ---------------------------------------------------------------------- rosters
def _shift(start_h: float, end_h: float, name: str = "A") -> ShiftIn:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    return ShiftIn(officer_name=name, rank="Inspector", start=base + timedelta(hours=start_h),
                   end=base + timedelta(hours=end_h))


def test_roster_checks() -> None:
    ordered = _checked([_shift(12, 20, "B"), _shift(0, 12, "A")])
    assert [s.officer_name for s in ordered] == ["A", "B"]  # back to back is fine
    with pytest.raises(UnprocessableError, match="overlap"):
        _checked([_shift(0, 12), _shift(11, 20)])
    with pytest.raises(UnprocessableError, match="ends before"):
        _checked([_shift(5, 5)])
    with pytest.raises(UnprocessableError, match="more than 48"):
        _checked([_shift(0, 49)])
