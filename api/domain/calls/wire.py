"""The call's wire form, written by one encoder.

A call travels as JSON in four places: the API's answers, every trail entry's
``snapshot`` (the call as it stood after the event; live feeds and ``Last-Event-ID``
replays send it as stored), the one statement that takes a call on PostgreSQL (which
learns the call's ``duplicate_of`` only while it writes the snapshot) and the bulk
history load (which writes millions of snapshots column by column). All of them take
their text from :class:`CallEncoder`, i.e. from msgspec encoding :class:`Call`:

- :meth:`CallEncoder.encode` is that encoding;
- :meth:`CallEncoder.around` is the same text cut around one field's value, for a value
  someone else fills in (the database's duplicate link);
- :meth:`CallEncoder.template` is the same text as constant separators between the
  fields' values, learnt by encoding a call whose every field is a marker, so a writer
  that encodes values column-wise cannot get a key, the field order or the punctuation
  wrong.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from uuid import UUID

import msgspec

from api.db.call_models import CallEventRecord
from api.domain.calls.schemas import Call, CallEvent


class SnapshotTemplate:
    """:class:`Call`'s JSON as ``separators[0] v0 separators[1] v1 … v(n-1) separators[n]``,
    ``v`` being each field's value as msgspec encodes it."""

    def __init__(self, fields: tuple[str, ...], separators: tuple[str, ...]) -> None:
        if len(separators) != len(fields) + 1:
            raise ValueError("a template has one separator more than it has fields")
        self.fields = fields
        self.separators = separators
        self._position = {name: i for i, name in enumerate(fields)}

    def fragment(self, values: Mapping[str, str]) -> str:
        """Encoded values of consecutive fields with the separators between them (not the
        ones before the first or after the last): ``v_i sep v_i+1 … v_j``."""
        span = self._span(tuple(values))
        parts = [values[self.fields[span[0]]]]
        for i in span[1:]:
            parts += [self.separators[i], values[self.fields[i]]]
        return "".join(parts)

    def interleave(self, values: Mapping[str | tuple[str, ...], Any]) -> Iterator[Any]:
        """The pieces of the whole text in order: separators (``str``) and the given values
        (anything a column-wise writer joins: a constant or an array of encoded values).

        A key is one field or a tuple of consecutive fields whose value already holds the
        separators between them (see :meth:`fragment`). Every field must be given once.
        """
        starts: dict[int, tuple[int, Any]] = {}
        for key, value in values.items():
            span = self._span(key if isinstance(key, tuple) else (key,))
            starts[span[0]] = (span[-1], value)
        covered = sorted(i for first, (last, _value) in starts.items()
                         for i in range(first, last + 1))
        if covered != list(range(len(self.fields))):
            missing = [self.fields[i] for i in range(len(self.fields)) if i not in covered]
            raise KeyError(f"the call's wire form needs a value for every field once; "
                           f"missing or repeated: {missing or 'repeated fields'}")
        i = 0
        while i < len(self.fields):
            last, value = starts[i]
            yield self.separators[i]
            yield value
            i = last + 1
        yield self.separators[-1]

    def _span(self, names: tuple[str, ...]) -> list[int]:
        try:
            span = [self._position[name] for name in names]
        except KeyError as exc:
            raise KeyError(f"the call's wire form has no field {exc.args[0]!r}") from None
        if span != list(range(span[0], span[0] + len(span))):
            raise KeyError(f"fields {names} are not consecutive in the call's wire form")
        return span


class CallEncoder:
    """The one encoder of the call's wire form (one per process; encoders are not free).

    ``form`` is :class:`Call`; tests pass another struct to see what a changed form does.
    """

    def __init__(self, form: type[msgspec.Struct] = Call) -> None:
        self._encoder = msgspec.json.Encoder()
        self._form = form

    def encode(self, call: msgspec.Struct) -> str:
        return self._encoder.encode(call).decode()

    def encode_value(self, value: Any) -> str:
        """One value as it appears inside the call's JSON."""
        return self._encoder.encode(value).decode()

    def around(self, call: Call, field: str) -> tuple[str, str]:
        """The call's text before and after the value of ``field``: the value placed
        between them (as encoded JSON) completes :meth:`encode`'s text."""
        marker = _MARKER.format(field)
        text = self.encode(msgspec.structs.replace(call, **{field: marker}))
        head, found, tail = text.partition(self.encode_value(marker))
        if not found:
            raise KeyError(f"the call's wire form has no field {field!r}")
        return head, tail

    @cached_property
    def template(self) -> SnapshotTemplate:
        """The separators between the fields' values, learnt from the encoder itself."""
        fields = self._form.__struct_fields__
        markers: dict[str, Any] = {name: _MARKER.format(name) for name in fields}
        # a Struct does not check types when built: every field can hold its marker
        text = self.encode(self._form(**markers))
        separators = []
        for name in fields:
            before, found, text = text.partition(self.encode_value(markers[name]))
            if not found:  # a field msgspec leaves out (omit_defaults) or renames
                raise RuntimeError(f"{self._form.__name__}.{name} is not written as a plain field")
            separators.append(before)
        separators.append(text)
        return SnapshotTemplate(tuple(fields), tuple(separators))


_MARKER = "\x1fsafecity-wire-field:{}\x1f"
"""A value no real field holds (unit separators; msgspec writes them escaped)."""


@dataclass(frozen=True, slots=True)
class Written:
    """A trail entry as just written (a ``call_events`` row but its sequence): its id
    from the database, its columns as sent."""

    id: int
    call_id: UUID
    type: str
    at: datetime
    recorded_at: datetime
    from_status: str | None
    status: str
    station_code: str
    tehsil_code: str
    district_code: str
    region_code: str
    from_station_code: str | None
    from_tehsil_code: str | None
    from_district_code: str | None
    from_region_code: str | None
    reason: str | None
    note: str | None
    actor: str
    role: str
    snapshot: str


TrailEntry = CallEventRecord | Written
"""What a feed message is made of: a stored trail entry or one just written."""


def event_schema(row: TrailEntry) -> CallEvent:
    return CallEvent(id=row.id, call_id=row.call_id, type=row.type, at=row.at,
                     recorded_at=row.recorded_at, from_status=row.from_status, status=row.status,
                     station_code=row.station_code, from_station_code=row.from_station_code,
                     reason=row.reason, note=row.note, actor=row.actor, role=row.role)


class _Staffing(msgspec.Struct):
    unstaffed: bool


def envelope(row: TrailEntry, encoder: msgspec.json.Encoder,
             unstaffed: bool | None = None) -> bytes:
    """The feed message of an event (live and replayed alike): event, then the call after
    it, the stored snapshot sent as it is. ``unstaffed`` is the snapshot's own (read from
    it when not given: intake knows it without parsing the text it just wrote)."""
    snapshot = row.snapshot.encode()
    if unstaffed is None:
        unstaffed = msgspec.json.decode(snapshot, type=_Staffing).unstaffed
    return b"".join((
        b'{"event_id":', str(row.id).encode(), b',"type":', encoder.encode(row.type),
        b',"unstaffed":', b"true" if unstaffed else b"false",
        b',"event":', encoder.encode(event_schema(row)), b',"call":', snapshot, b"}",
    ))
