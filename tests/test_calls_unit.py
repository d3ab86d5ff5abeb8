"""Unit tests of the call service's pure parts: the state machine, the H3 ring bound of
duplicate search, request hashing, cursors, the feed envelope, roster checks, channels."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone

import h3.api.basic_int as h3_int
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.channels import path_channels
from api.db.call_models import CELL_RES, NEAR_RING, CallEventRecord
from api.domain.calls import lifecycle
from api.domain.calls.intake import request_hash
from api.domain.calls.schemas import CallCreate
from api.domain.calls.wire import envelope
from api.domain.stations.schemas import ShiftIn
from api.domain.stations.services import _checked
from api.errors import BadInputError, ConflictError, UnprocessableError
from geo.distance import haversine_m

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
    if haversine_m(lat, lon, other_lat, other_lon) > 250:
        return  # the flat-earth offset overshot by millimetres
    disk = set(h3_int.grid_disk(h3_int.latlng_to_cell(lat, lon, CELL_RES), NEAR_RING))
    assert len(disk) == 19
    assert h3_int.latlng_to_cell(other_lat, other_lon, CELL_RES) in disk


def test_haversine_matches_known_distance() -> None:
    # one degree of latitude is 111.2 km on the mean sphere
    assert haversine_m(31.0, 74.0, 32.0, 74.0) == pytest.approx(111_195, rel=1e-4)
    assert haversine_m(31.5, 74.3, 31.5, 74.3) == 0.0
    many = haversine_m(31.0, 74.0, [31.0, 32.0], [74.0, 74.0])  # one point to many
    assert many.tolist() == [0.0, haversine_m(31.0, 74.0, 32.0, 74.0)]


# ---------------------------------------------------------------------- idempotency hash
def test_request_hash_ignores_spelling_not_content() -> None:
    at = datetime(2025, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=5)))
    a = msgspec.json.decode(b'{"lat": 31, "lon": 74.3, "category": "fire"}', type=CallCreate)
    b = msgspec.json.decode(b'{"category": "fire", "lon": 74.30, "lat": 31.0}', type=CallCreate)
    assert request_hash(a, None) == request_hash(b, None)
    assert request_hash(a, at.astimezone(UTC)) == request_hash(b, at.astimezone(UTC))
    assert request_hash(a, None) != request_hash(a, at.astimezone(UTC))
    c = msgspec.json.decode(b'{"lat": 31, "lon": 74.3, "category": "murder"}', type=CallCreate)
    assert request_hash(a, None) != request_hash(c, None)


# ---------------------------------------------------------------------- cursors
def test_cursor_round_trip_and_garbage() -> None:
    from api.pagination import decode_cursor, encode_cursor

    at, ident = datetime(2025, 3, 1, 12, 30, tzinfo=UTC), uuid.UUID("12345678-1234-4678-9234-567812345678")
    assert decode_cursor(encode_cursor(at, ident)) == (at, ident)
    for garbage in ("", "!!!", "bm90IGEgY3Vyc29y", "MjAyNS0wMS0wMXx4"):
        with pytest.raises(BadInputError):
            decode_cursor(garbage)


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


# ---------------------------------------------------------------------- intake: group commit
class _FakeDriver:
    """Stands in for an asyncpg connection: answers the intake statement per call, and
    fails a whole batch (as one transaction would) when it holds a poisoned call."""

    def __init__(self, key_at: int) -> None:
        self.key_at = key_at
        self.batches: list[int] = []
        self.failed: list[int] = []

    def _row(self, args: tuple[object, ...]) -> dict[str, object]:
        if args[self.key_at] == "poison":
            raise ValueError("this call cannot be written")
        return {"ok": True, "event_id": len(self.batches), "duplicate_of": None}

    async def fetchrow(self, _sql: str, *args: object) -> dict[str, object]:
        await asyncio.sleep(0.01)
        self.batches.append(1)
        return self._row(args)

    async def fetchmany(self, _sql: str, batch: list[tuple[object, ...]]
                        ) -> list[dict[str, object]]:
        await asyncio.sleep(0.01)
        try:
            rows = [self._row(args) for args in batch]  # any failure fails them all
        except ValueError:
            self.failed.append(len(batch))
            raise
        self.batches.append(len(batch))
        return rows


def test_group_commit_batches_waiting_calls_and_isolates_a_failing_one() -> None:
    from contextlib import asynccontextmanager
    from types import SimpleNamespace

    from api.db.group_commit import GroupCommit

    class Writer(GroupCommit):
        @asynccontextmanager
        async def connection(self):  # type: ignore[no-untyped-def]
            yield driver

    writer = Writer(SimpleNamespace(), "the intake statement", writers=1)  # type: ignore[arg-type]
    driver = _FakeDriver(0)

    async def take(key: str) -> object:
        try:
            return await writer.run((key,))
        except ValueError as exc:
            return exc

    async def burst() -> list[object]:
        keys = [f"k{i}" for i in range(12)]
        keys[7] = "poison"
        return await asyncio.gather(*(take(key) for key in keys))

    answers = asyncio.run(burst())
    assert isinstance(answers[7], ValueError)  # the bad call fails alone
    assert all(a["ok"] for i, a in enumerate(answers) if i != 7)  # type: ignore[index]
    # all twelve were queued before the writer ran: one batch, which failed on the
    # poisoned call (nothing written) and was retried one call at a time
    assert driver.failed == [12]
    assert driver.batches == [1] * 12
    assert writer.batches == 11
    assert writer.written == 11

    async def two_waves() -> None:
        first = [asyncio.ensure_future(take(f"a{i}")) for i in range(3)]
        await asyncio.sleep(0.002)  # the first batch is in flight: these queue behind it
        second = [asyncio.ensure_future(take(f"b{i}")) for i in range(5)]
        await asyncio.gather(*first, *second)

    driver.batches.clear()
    asyncio.run(two_waves())
    assert driver.batches == [3, 5]


# ---------------------------------------------------------------------- intake: on-duty guesses
def test_duty_cache_guesses_reads_and_forgets() -> None:
    from api.db.call_models import DutyShift
    from api.domain.stations.services import DutyCache

    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    day = DutyShift(1, "A", "Inspector", None, now - timedelta(hours=4), now + timedelta(hours=4))
    reads: list[str | None] = []

    async def read(station: str | None, lo: datetime, hi: datetime) -> list[tuple[str, DutyShift]]:
        reads.append(station)
        assert lo < hi
        return [("S1", day)]

    async def scenario() -> None:
        cache = DutyCache(read)
        assert cache.predict("S1", now) == (False, None)
        assert await cache.guess("S1", now, now) == day  # the window around the clock
        assert cache.predict("S1", now) == (True, day)
        assert cache.predict("S2", now) == (True, None)  # read with it: nobody on duty
        assert cache.predict("S1", now + timedelta(hours=5)) == (True, None)
        assert cache.predict("S1", now + timedelta(days=2)) == (False, None)
        cache.forget("S2")  # the database disagreed about S2
        assert cache.predict("S2", now) == (False, None)
        assert cache.predict("S1", now) == (True, day)
        assert await cache.guess("S1", now, now) == day  # known: nothing read
        later = now - timedelta(days=30)  # a call reported long ago: its station's window
        assert await cache.guess("S1", later, now) == on_duty_or_none(day, later)
        assert reads == [None, "S1"]

    asyncio.run(scenario())


def on_duty_or_none(shift: object, at: datetime) -> object:
    start, end = shift.starts_at, shift.ends_at  # type: ignore[attr-defined]
    return shift if start <= at < end else None


# ---------------------------------------------------------------------- the call's one wire form
_aware_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1),
                            timezones=st.just(UTC))
_texts = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@st.composite
def _calls(draw: st.DrawFn) -> object:
    from api.domain.calls.schemas import Call, OnDuty

    maybe = st.none() | _texts
    sho = draw(st.none() | st.builds(OnDuty, officer_name=_texts, rank=_texts, phone=maybe,
                                     shift_start=_aware_times, shift_end=_aware_times))
    return Call(
        id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))), status=draw(_texts),
        category=draw(_texts), category_label=draw(_texts), serious=draw(st.booleans()),
        lat=draw(st.floats(-90, 90)), lon=draw(st.floats(-180, 180)),
        radius_m=draw(st.none() | st.floats(0, 1e5)), received_at=draw(_aware_times),
        created_at=draw(_aware_times), updated_at=draw(_aware_times),
        station_code=draw(_texts), station_name=draw(maybe), tehsil_code=draw(_texts),
        tehsil_name=draw(maybe), district_code=draw(_texts), district_name=draw(maybe),
        region_code=draw(_texts), region_name=draw(maybe), method=draw(_texts),
        out_of_coverage=draw(st.booleans()), distance_m=draw(st.none() | st.floats(0, 1e5)),
        outside_punjab=draw(maybe), transfer_suggested=draw(st.booleans()),
        sho_on_duty=sho, unstaffed=draw(st.booleans()),
        duplicate_of=draw(st.none() | st.uuids()), allowed_events=draw(st.lists(_texts, max_size=3)),
        caller_phone=draw(maybe), caller_phone_hidden=draw(st.booleans()),
        description=draw(maybe))


@settings(max_examples=200, deadline=None)
@given(call=_calls())
def test_template_and_cut_rebuild_the_encoders_own_text(call: object) -> None:
    """Every writer's text is the encoder's: the template's separators around each field's
    encoded value, and the text cut around ``duplicate_of`` with the link put back."""
    from api.domain.calls.wire import CallEncoder

    encoder = CallEncoder()
    text = encoder.encode(call)  # type: ignore[arg-type]
    values = {name: encoder.encode_value(getattr(call, name)) for name in encoder.template.fields}
    assert "".join(encoder.template.interleave(values)) == text
    head, tail = encoder.around(call, "duplicate_of")  # type: ignore[arg-type]
    assert head + encoder.encode_value(call.duplicate_of) + tail == text  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(call=_calls())
def test_the_stored_text_is_the_answer_litestar_would_encode(call: object) -> None:
    """``POST /calls`` sends the snapshot's text as its answer (no second encoding): it
    must be byte for byte what Litestar makes of the same :class:`Call`."""
    from litestar.serialization import encode_json

    from api.db.intake import snapshot_with_link
    from api.domain.calls.wire import CallEncoder

    encoder = CallEncoder()
    text = snapshot_with_link(encoder.around(call, "duplicate_of"),  # type: ignore[arg-type]
                              call.duplicate_of)  # type: ignore[attr-defined]
    assert text.encode() == encode_json(call)


def test_template_spans_and_missing_fields() -> None:
    from api.domain.calls.wire import CallEncoder

    template = CallEncoder().template
    assert template.fields[0] == "id"
    assert template.fragment({"category": '"x"', "category_label": '"X"', "serious": "true"}) \
        == '"x","category_label":"X","serious":true'
    with pytest.raises(KeyError, match="not consecutive"):
        template.fragment({"category": '"x"', "serious": "true"})
    with pytest.raises(KeyError, match="no field 'priority'"):
        list(template.interleave({"priority": "1"}))
    with pytest.raises(KeyError, match="missing"):
        list(template.interleave({"id": '"x"'}))


@pytest.mark.parametrize("phone", [None, "", "03001234567"])
@pytest.mark.parametrize("role", ["call_taker", "rpo", "planner"])
def test_the_answer_made_from_the_stored_form_is_what_the_principal_may_read(
        phone: str | None, role: str) -> None:
    """Intake answers with the full form it stored, cut for the reader: the same as
    building the reader's form from the record."""
    from api.auth import Principal
    from api.db.intake import NewCall
    from api.domain.calls.categories import Categories
    from api.domain.calls.services import CallContext, CallWriting

    class Areas:
        def name(self, level: str, code: str) -> str:
            return f"{level} {code}"

    writer = CallWriting()
    writer.ctx = CallContext(router=lambda: None, areas=Areas,  # type: ignore[arg-type]
                             boundary_set=lambda: "v", categories=Categories(), publisher=None)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    record = NewCall(
        id=uuid.uuid4(), idempotency_key="k", request_hash="h", status="received",
        category="fire", serious=False, lat=31.5, lon=74.3, radius_m=None, h3_r9=1,
        caller_phone=phone, description=None, received_at=now, station_code="S",
        tehsil_code="T", district_code="D", region_code="R", boundary_set="v", method="interior",
        out_of_coverage=False, distance_m=None, outside_punjab=None, sho_shift_id=None, sho_name=None,
        sho_rank=None,
        sho_phone=None, sho_shift_start=None, sho_shift_end=None, unstaffed=True, created_by="x",
        created_at=now, updated_at=now)
    principal = Principal(subject="p", role=role, scope="PK6", level="province")
    assert writer.seen_by(writer.as_call(record, None), principal) == writer.as_call(record, principal)


def test_near_disk_is_the_cells_grid_disk_remembered() -> None:
    from api.domain.calls.intake import near_disk

    cell = h3_int.latlng_to_cell(31.5204, 74.3587, CELL_RES)
    disk = near_disk(cell)
    assert list(disk) == list(h3_int.grid_disk(cell, NEAR_RING))
    assert near_disk(cell) is disk  # computed once
