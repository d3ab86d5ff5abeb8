"""Bulk load of a generated call history (``safecity synth load``) into ``calls`` and
``call_events``.

Everything is prepared column-wise (numpy, pandas, Arrow): the call rows, every call's
trail, and each event's ``snapshot``, the call as JSON right after the event, exactly as
the call service encodes it: the separators between the fields come from the call's one
encoder (:class:`api.domain.calls.wire.CallEncoder`'s template, handed in by the caller
with the rest of the call domain's vocabulary as a :class:`HistoryForm`; this module
imports no domain code). A snapshot is one element-wise concatenation of those
separators and values encoded once: per call (id, coordinates, times, phone), per value
of a small domain (category, areas, status and its allowed events) and constants. Only
the hashes a call's key, id and request hash are made of (sha256, sha1) are computed
call by call, with :mod:`hashlib`.

PostgreSQL: rows go in with ``COPY … (FORMAT binary)`` (no text parsing on the server),
built by the same concatenation, in chunks prepared in a worker thread while the previous
chunk is being copied. Events are copied in (time, call id, trail position) order, so
their ids (the feeds' event ids) follow time. Into empty tables (a fresh database), under
an exclusive lock, the foreign keys, the keys of ``calls`` and the indexes a copy would
update at random places are dropped and built again after the copy, inside the same
transaction (building an index once is several times cheaper than keeping it up to date
row by row); the same indexes and keys, validated, are there when it commits. Otherwise
the calls are staged and inserted with ``ON CONFLICT DO NOTHING``, and only the new
calls' events are copied. SQLite: ``executemany`` in batches. Every path is one
transaction, and idempotent on the call ids.
"""

from __future__ import annotations

import hashlib
import re
import struct
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from api.db.call_models import CELL_RES

__all__ = ["CALL_COLUMNS", "EVENT_COLUMNS", "LOAD_ACTOR", "LOAD_CHUNK", "LOAD_METHOD",
           "LOAD_NAMESPACE", "LOAD_ROLE", "HistoryForm", "LoadReport", "PreparedHistory",
           "load_history", "prepare", "prepare_history"]

LOAD_ACTOR = "safecity synth load"
"""Who the loaded rows say created them (``created_by``, event ``actor``)."""
LOAD_ROLE = "admin"
LOAD_METHOD = "synth"
"""``calls.method`` of loaded calls: the generator routed them; its method is not kept."""
LOAD_CHUNK = 50_000
"""Calls per step of the SQLite path (bounds memory there)."""
COPY_CALLS = 100_000
"""Call rows per COPY chunk on PostgreSQL (about 30 MB)."""
COPY_EVENTS = 100_000
"""Event rows per COPY chunk on PostgreSQL (about 100 MB with their snapshots)."""
SQLITE_BATCH = 5_000
"""Rows per ``executemany`` on the embedded SQLite file."""
INDEX_MEMORY = "512MB"
"""``maintenance_work_mem`` while the indexes are built again after a load into empty tables."""
LOAD_NAMESPACE = uuid.UUID("6f1c2e0a-5b7d-4c1e-9a55-3d2f0c7b8e41")
"""UUID5 namespace: a call's id is derived from its Idempotency-Key, so loads are idempotent."""

CALL_COLUMNS = ("id", "idempotency_key", "request_hash", "status", "category", "serious", "lat",
                "lon", "radius_m", "caller_phone", "description", "received_at", "station_code",
                "tehsil_code", "district_code", "region_code", "boundary_set", "method",
                "out_of_coverage", "distance_m", "unstaffed", "created_by", "created_at",
                "updated_at", "h3_r9")
"""Columns of ``calls`` a load writes, besides ``geom`` (named in every statement: columns
added later keep their default, NULL). History gets no ``alert_due`` rows: the alert
engine watches calls taken live, not closed ones loaded from the past."""
EVENT_COLUMNS = ("call_id", "type", "at", "recorded_at", "from_status", "status", "station_code",
                 "tehsil_code", "district_code", "region_code", "reason", "actor", "role",
                 "snapshot")
"""Columns of ``call_events`` a load writes (``id`` comes from the table's identity)."""
TABLES = ("calls", "call_events")
LEVELS = ("station", "tehsil", "district", "region")
EVENT_TYPES = ("received", "acknowledged", "dispatched", "on_scene", "closed", "cancelled")
"""Trail entries of a loaded call; an event's status is its type."""
_LIFECYCLE = (("acknowledged", "acknowledged_at"), ("dispatched", "dispatched_at"),
              ("on_scene", "on_scene_at"), ("closed", "closed_at"))
_CANCELLED_SEQ = 9
_NOT_A_TIME = np.iinfo(np.int64).min
_PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01 UTC in microseconds since 1970: PostgreSQL's binary timestamps count from it."""
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_COPY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_POINT_4326 = bytes.fromhex("0101000020e6100000")
"""EWKB head of a 2-D point with SRID 4326 (little-endian), x and y follow."""

Progress = Callable[[str, float], None]


class Template(Protocol):
    """The call's wire form as separators between its fields' encoded values (see
    :class:`api.domain.calls.wire.SnapshotTemplate`, which the caller passes)."""

    def fragment(self, values: Mapping[str, str]) -> str: ...
    def interleave(self, values: Mapping[str | tuple[str, ...], Any]) -> Iterator[Any]: ...


@dataclass(frozen=True)
class HistoryForm:
    """What the call domain says a stored call looks like, for writing it column-wise."""

    template: Template
    """Separators between the encoded values of the call's fields."""
    label: Callable[[str], str]
    """A category's label."""
    call_class: Mapping[str, str]
    """Each category's class (``case``, ``information``, ``hoax``, ``dropped``)."""
    allowed_events: Callable[[str], Sequence[str]]
    """What may follow a status."""
    area_name: Callable[[str, str], str | None]
    """The name of an area (level, code) in the boundary set served."""
    canonical: Callable[[str], str]
    """A snapshot decoded as the domain's call and encoded again: equal to its input when
    the column-wise encoders here write what the domain's encoder writes."""


@dataclass
class LoadReport:
    """What a load wrote: calls new to the database, calls already there, their events."""

    backend: str
    calls_in_file: int
    inserted: int = 0
    already_present: int = 0
    events: int = 0
    elapsed_s: float = 0.0
    rebuilt_indexes: bool = False
    """Whether the load went into empty tables and built their indexes afterwards."""


# --------------------------------------------------------------------------- column encoders

def _micros(values: Any) -> npt.NDArray[np.int64]:
    """Microseconds since the epoch (UTC) of a datetime column; NaT as int64 min.

    Finer precision is truncated to the microsecond, as :meth:`pandas.Timestamp.to_pydatetime`
    (and so the per-call encoder) does.
    """
    series = pd.to_datetime(pd.Series(values), utc=True).dt.tz_localize(None)
    return series.to_numpy(dtype="datetime64[ns]").astype("datetime64[us]").astype(np.int64)


def _strings(lengths: npt.NDArray[np.int64], data: npt.NDArray[np.uint8],
             kind: pa.DataType | None = None) -> pa.Array:
    """An Arrow string (or binary) array from concatenated ``data`` and each value's length."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError("column chunk over 2 GiB: use smaller chunks")
    return pa.Array.from_buffers(kind or pa.string(), len(lengths),
                                 [None, pa.py_buffer(offsets.astype(np.int32)),
                                  pa.py_buffer(np.ascontiguousarray(data))])


def _fixed(matrix: npt.NDArray[np.uint8]) -> pa.Array:
    """Each row of an ``n × k`` byte matrix as a binary value."""
    n, k = matrix.shape
    return _strings(np.full(n, k, dtype=np.int64), matrix.reshape(-1), pa.binary())


def _big_endian(values: npt.NDArray[Any], dtype: str) -> pa.Array:
    """Numbers as big-endian binary values (``dtype`` such as ``">i8"``)."""
    data = np.ascontiguousarray(values, dtype=dtype)
    return _fixed(data.view(np.uint8).reshape(len(data), data.itemsize))


def iso_times(micros: npt.NDArray[np.int64], suffix: str) -> pa.Array:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]`` + ``suffix`` per time, as :meth:`datetime.isoformat`
    and msgspec write them (the fraction only when it is not zero)."""
    n = len(micros)
    if n == 0:
        return pa.array([], type=pa.string())
    text = pc.cast(pa.array(micros.astype("datetime64[us]")), pa.string())
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32, count=n + 1, offset=4 * text.offset)
    if not np.all(np.diff(offsets) == 26):  # years outside 1000-9999: rare, slow path
        return pa.array([pd.Timestamp(int(m), unit="us").isoformat() + suffix for m in micros],
                        type=pa.string())
    tail = np.frombuffer(suffix.encode(), dtype=np.uint8)
    width = 26 + len(tail)
    matrix = np.empty((n, width), dtype=np.uint8)
    matrix[:, :26] = np.frombuffer(text.buffers()[2], dtype=np.uint8, count=26 * n,
                                   offset=int(offsets[0])).reshape(n, 26)
    matrix[:, 10] = ord("T")
    matrix[:, 26:] = tail
    whole = micros % 1_000_000 == 0
    matrix[whole, 19:19 + len(tail)] = tail
    lengths = np.where(whole, 19 + len(tail), width).astype(np.int64)
    return _strings(lengths, matrix[np.arange(width) < lengths[:, None]])


def json_floats(values: npt.NDArray[np.float64]) -> pa.Array:
    """Each float as msgspec encodes it (one C call for the column, then split)."""
    if len(values) == 0:
        return pa.array([], type=pa.string())
    body = np.frombuffer(msgspec.json.encode(values.tolist()), dtype=np.uint8)[1:-1]
    commas = np.flatnonzero(body == ord(","))  # floats never contain commas
    ends = np.append(commas, len(body))
    starts = np.concatenate(([0], commas + 1))
    return _strings(ends - starts, body[body != ord(",")])


def json_strings(values: pa.Array) -> pa.Array:
    """Each string as msgspec encodes it (quoted, escaped where JSON needs it); null as ``null``."""
    values = values.cast(pa.string())
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=len(values) + 1,
                            offset=4 * values.offset) if len(values) else np.zeros(1, np.int32)
    data = values.buffers()[2]
    text = (np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]] if data is not None
            else np.empty(0, np.uint8))
    special = np.flatnonzero((text < 0x20) | (text == ord('"')) | (text == ord("\\"))) + offsets[0]
    if len(special):  # rare: a quote, backslash or control character; msgspec escapes those
        positions = np.unique(np.searchsorted(offsets, special, side="right") - 1)
        fixed = pa.array([msgspec.json.encode(values[int(i)].as_py()).decode() for i in positions],
                         type=pa.string())
        mask = np.zeros(len(values), dtype=bool)
        mask[positions] = True
        quoted = pc.replace_with_mask(quoted, pa.array(mask), fixed)
    return pc.fill_null(quoted, "null")


def json_value(value: Any) -> str:
    """One value as msgspec encodes it."""
    return msgspec.json.encode(value).decode()


HEAD_FIELDS = ("category", "category_label", "serious")
"""Consecutive fields of the wire form encoded together, per (category, serious)."""
AREA_FIELDS = tuple(f"{level}_{part}" for level in ("station", "tehsil", "district", "region")
                    for part in ("code", "name"))
"""Consecutive fields of the wire form encoded together, per combination of areas."""


_HEX_PAIRS = np.array([ord(a) | ord(b) << 8 for a in "0123456789abcdef" for b in "0123456789abcdef"],
                      dtype="<u2")


def _hex(raw: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Lower-case hex digits of each row of bytes (``n × k`` bytes to ``n × 2k`` digits)."""
    return _HEX_PAIRS[raw].view(np.uint8).reshape(raw.shape[0], 2 * raw.shape[1])


def _digests(name: str, items: list[bytes], size: int, prefix: bytes = b"") -> npt.NDArray[np.uint8]:
    """``hashlib.new(name, prefix + item).digest()`` of every item, as an ``n × size`` matrix."""
    make = getattr(hashlib, name)
    if prefix:
        joined = b"".join([make(prefix + item).digest() for item in items])
    else:
        joined = b"".join([h.digest() for h in map(make, items)])
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(items), size)


def _uuid5(keys: pa.Array) -> npt.NDArray[np.uint8]:
    """``uuid.uuid5(LOAD_NAMESPACE, key).bytes`` of each key, as an ``n × 16`` matrix."""
    raw = _digests("sha1", keys.cast(pa.binary()).to_pylist(), 20, LOAD_NAMESPACE.bytes)[:, :16].copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x50  # version 5
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw


def _uuid_text(raw: npt.NDArray[np.uint8]) -> pa.Array:
    """``str(uuid.UUID(bytes=…))`` of each row of an ``n × 16`` matrix."""
    n = len(raw)
    nibbles = _hex(raw)
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, stop, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at:at + stop - start] = nibbles[:, start:stop]
    return _strings(np.full(n, 36, dtype=np.int64), text.reshape(-1))


def fixed7(values: npt.NDArray[np.float64]) -> pa.Array:
    """``f"{x:.7f}"`` of each value (the idempotency key's rounding), column-wise.

    ``x * 1e7`` is off the exact product by far less than 1e-6, so rounding it to an
    integer is exact unless its fraction is that close to one half; those values, and
    values below 1 (sign, leading zeros) or huge, are formatted one by one.
    """
    scaled = values * 1e7
    floor = np.floor(scaled)
    fraction = scaled - floor
    exact = (values >= 1.0) & (values < 1e9) & (np.abs(fraction - 0.5) > 1e-6)
    digits = pc.cast(pa.array(np.where(exact, floor + (fraction > 0.5), 1e7).astype(np.int64)),
                     pa.string())
    text = pc.binary_join_element_wise(pc.utf8_slice_codeunits(digits, 0, -7), ".",
                                       pc.utf8_slice_codeunits(digits, -7), "")
    if exact.all():
        return text
    slow = np.flatnonzero(~exact)
    patched = pa.array([f"{values[i]:.7f}" for i in slow.tolist()], type=pa.string())
    return pc.replace_with_mask(text, pa.array(~exact), patched)


def _factorize(values: pd.Series) -> tuple[npt.NDArray[np.int32], list[str]]:
    """Codes and distinct values of a column read as strings (``astype(str)``)."""
    if isinstance(values.dtype, pd.CategoricalDtype) and not values.isna().any():
        return (values.cat.codes.to_numpy().astype(np.int32),
                [str(c) for c in values.cat.categories.tolist()])
    codes, uniques = pd.factorize(values.astype(str), sort=False)
    return codes.astype(np.int32), [str(u) for u in uniques]


def _combine(*columns: tuple[npt.NDArray[np.int32], int]
             ) -> tuple[npt.NDArray[np.int32], list[tuple[int, ...]]]:
    """Codes of the distinct combinations of coded columns ``(codes, cardinality)``, and
    the column codes of each combination."""
    key = np.zeros(len(columns[0][0]), dtype=np.int64)
    for codes, size in columns:
        key = key * max(size, 1) + codes
    combo, uniques = pd.factorize(key, sort=False)
    out = []
    for unique in np.asarray(uniques).tolist():
        parts = []
        rest = int(unique)
        for _codes, size in reversed(columns):
            rest, part = divmod(rest, max(size, 1))
            parts.append(part)
        out.append(tuple(reversed(parts)))
    return combo.astype(np.int32), out


def _take(values: pa.Array | list[Any], indices: Any) -> pa.Array:
    """``values[indices]``; a list becomes a string (or, of bytes, binary) array first."""
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.binary() if values and isinstance(values[0], bytes)
                          else pa.string())
    return values.take(pa.array(indices))


def _flat(pieces: Iterable[Any]) -> list[Any]:
    """Pieces with tuples opened and neighbouring constants merged (fewer joins)."""
    out: list[Any] = []
    for piece in pieces:
        for part in piece if isinstance(piece, tuple) else (piece,):
            if isinstance(part, str) and out and isinstance(out[-1], str):
                out[-1] += part
            else:
                out.append(part)
    return out


def _join(*pieces: Any) -> pa.Array:
    """Element-wise concatenation of arrays and constants (all text, or all binary)."""
    binary = any(isinstance(p, bytes) or (isinstance(p, pa.Array) and p.type == pa.binary())
                 for p in pieces)
    return pc.binary_join_element_wise(*pieces, b"" if binary else "")


def _field(value: str | None) -> bytes:
    """One field of a binary COPY row: length and UTF-8 bytes, or NULL."""
    if value is None:
        return _NULL
    data = value.encode()
    return struct.pack(">i", len(data)) + data


def _fields(values: pa.Array) -> pa.Array:
    """Each string as a binary COPY field (length and bytes; -1 for NULL)."""
    values = values.cast(pa.binary())
    lengths = pc.fill_null(pc.binary_length(values), -1).to_numpy(zero_copy_only=False)
    return _join(_big_endian(lengths, ">i4"), pc.fill_null(values, b""))


def payload(rows: pa.Array) -> memoryview:
    """The bytes of a string or binary array's values, back to back (no copy)."""
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1,
                            offset=4 * rows.offset)
    data = rows.buffers()[2]
    if data is None:
        return memoryview(b"")
    return memoryview(data)[int(offsets[0]):int(offsets[-1])]


# --------------------------------------------------------------------------- preparation

@dataclass
class PreparedHistory:
    """A history ready to write, column-wise: per call (in load order) and per event.

    Per event (in trail order: call, position): the call (``event_row``, a position in
    the calls), the type (an index into :data:`EVENT_TYPES`), the previous event's type
    (-1 for none), the position in the call's trail and the time.
    """

    n: int
    call_id: npt.NDArray[np.int64]
    raw_ids: npt.NDArray[np.uint8]
    """The 16 bytes of each call's UUID, filled by :meth:`identify`."""
    category: tuple[npt.NDArray[np.int32], list[str]]
    codes: dict[str, tuple[npt.NDArray[np.int32], list[str]]]
    serious: npt.NDArray[np.bool_]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    phone: pa.Array
    received: npt.NDArray[np.int64]
    received_iso: pa.Array
    out_of_coverage: npt.NDArray[np.bool_]
    status: npt.NDArray[np.int8]
    updated: npt.NDArray[np.int64]
    boundary_set: str
    event_row: npt.NDArray[np.int64]
    event_type: npt.NDArray[np.int8]
    event_from: npt.NDArray[np.int8]
    event_seq: npt.NDArray[np.int8]
    event_at: npt.NDArray[np.int64]
    lat_json: pa.Array
    lon_json: pa.Array
    phone_json: pa.Array
    head: tuple[npt.NDArray[np.int32], list[str]]
    """The encoded ``category``, ``category_label`` and ``serious`` per (category, serious)."""
    areas: tuple[npt.NDArray[np.int32], list[tuple[int, ...]], list[str]]
    """Per call its area combination; per combination the code index at each level and
    the encoded ``station_code``, ``station_name``, … ``region_name``."""
    form: HistoryForm
    _binary: dict[str, Any] = field(default_factory=dict, repr=False)
    _ids: pa.Array | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ identities

    def identify(self, start: int, stop: int) -> tuple[pa.Array, pa.Array]:
        """Idempotency keys and request hashes of calls ``[start, stop)``, and their ids
        into :attr:`raw_ids`: the only call-by-call work (hashing), done chunk by chunk.

        The key is :func:`geo.synth.idempotency_key` (the one ``synth replay`` sends), the
        id the UUID5 of the key, so loading a file twice, or loading what was replayed,
        finds the same calls; the request hash is the call service's ``_request_hash`` of
        the body ``synth replay`` posts (msgspec's ``CallCreate``), so a later replay of the
        same call is recognised as the same request.
        """
        part = slice(start, stop)
        n = stop - start
        category_codes, categories = self.category
        call_text = pc.cast(pa.array(self.call_id[part]), pa.string())
        material = _join(call_text, "|", iso_times(self.received[part], "+00:00"), "|",
                         fixed7(self.lat[part]), "|", fixed7(self.lon[part]), "|",
                         _take(categories, category_codes[part]))
        key_hex = _hex(_digests("sha256", material.cast(pa.binary()).to_pylist(), 32)[:, :8])
        keys = _join("synth-", call_text, "-", _strings(np.full(n, 16, dtype=np.int64), key_hex.reshape(-1)))
        self.raw_ids[part] = _uuid5(keys)
        self._ids = None
        bodies = _join('{"lat":', self.lat_json[start:stop], ',"lon":', self.lon_json[start:stop],
                       ',"category":', _take([json_value(c) for c in categories], category_codes[part]),
                       ',"radius_m":null,"caller_phone":', self.phone_json[start:stop],
                       ',"received_at":"', self.received_iso[start:stop], '","description":null}')
        digests = _digests("sha256", bodies.cast(pa.binary()).to_pylist(), 32)
        return keys, _strings(np.full(n, 64, dtype=np.int64), _hex(digests).reshape(-1))

    def h3_r9(self, part: slice) -> npt.NDArray[np.int64]:
        """The resolution-9 H3 cell of calls ``part`` (the call service's duplicate search
        reads it)."""
        from geo.h3cells import latlng_to_cells  # noqa: PLC0415

        return latlng_to_cells(self.lat[part], self.lon[part], CELL_RES).astype(np.int64)

    @property
    def ids(self) -> pa.Array:
        """Each call's id as text (after :meth:`identify`)."""
        if self._ids is None:
            self._ids = _uuid_text(self.raw_ids)
        return self._ids

    # ------------------------------------------------------------------ snapshots

    def snapshots(self, events: npt.NDArray[np.int64]) -> pa.Array:
        """The call as JSON right after each of ``events`` (positions in the event arrays):
        the text the call domain's encoder gives for the stored call."""
        rows = self.event_row[events]
        types = self.event_type[events]
        head_codes, heads = self.head
        area_codes, _combos, areas = self.areas
        allowed = [json_value(list(self.form.allowed_events(t))) for t in EVENT_TYPES]
        received = ('"', _take(self.received_iso, rows), '"')
        return _join(*_flat(self.form.template.interleave({
            "id": ('"', _take(self.ids, rows), '"'),
            "status": _take([json_value(t) for t in EVENT_TYPES], types),
            HEAD_FIELDS: _take(heads, head_codes[rows]),
            "lat": _take(self.lat_json, rows), "lon": _take(self.lon_json, rows),
            "radius_m": "null", "received_at": received, "created_at": received,
            "updated_at": ('"', iso_times(self.event_at[events], "Z"), '"'),
            AREA_FIELDS: _take(areas, area_codes[rows]),
            "method": json_value(LOAD_METHOD),
            "out_of_coverage": _take(["false", "true"], self.out_of_coverage[rows].astype(np.int8)),
            "distance_m": "null", "outside_punjab": "null", "transfer_suggested": "false",
            "sho_on_duty": "null", "unstaffed": "false",
            "duplicate_of": "null", "allowed_events": _take(allowed, types),
            "caller_phone": _take(self.phone_json, rows), "caller_phone_hidden": "false",
            "description": "null"})))

    # ------------------------------------------------------------------ binary COPY rows

    def _domain(self) -> dict[str, Any]:
        """Binary COPY fields of the small domains, encoded once."""
        if not self._binary:
            _codes, categories = self.category
            _area_codes, combos, _areas = self.areas
            self._binary.update(
                kinds=[_field(k) for k in EVENT_TYPES],
                previous=[*(_field(k) for k in EVENT_TYPES), _NULL],
                categories=[_field(c) for c in categories],
                areas=[b"".join(_field(self.codes[level][1][index])
                                for level, index in zip(LEVELS, combo, strict=True))
                       for combo in combos],
                flags=[b"\x00\x00\x00\x01\x00", b"\x00\x00\x00\x01\x01"])
        return self._binary

    def call_rows(self, start: int, stop: int) -> pa.Array:
        """Calls ``[start, stop)`` as binary COPY rows (:data:`CALL_COLUMNS`, then ``geom``),
        identifying them first."""
        keys, hashes = self.identify(start, stop)
        part = slice(start, stop)
        n = stop - start
        domain = self._domain()
        category_codes, _categories = self.category
        received = _big_endian(self.received[part] - _PG_EPOCH_US, ">i8")
        point = np.empty((n, 25), dtype=np.uint8)
        point[:, :9] = np.frombuffer(_POINT_4326, dtype=np.uint8)
        point[:, 9:17] = np.ascontiguousarray(self.lon[part], dtype="<f8").view(np.uint8).reshape(n, 8)
        point[:, 17:] = np.ascontiguousarray(self.lat[part], dtype="<f8").view(np.uint8).reshape(n, 8)
        return _join(
            struct.pack(">h", len(CALL_COLUMNS) + 1) + struct.pack(">i", 16), _fixed(self.raw_ids[part]),
            _fields(keys), struct.pack(">i", 64), hashes.cast(pa.binary()),
            _take(domain["kinds"], self.status[part]), _take(domain["categories"], category_codes[part]),
            _take(domain["flags"], self.serious[part].astype(np.int8)), struct.pack(">i", 8),
            _big_endian(self.lat[part], ">f8"), struct.pack(">i", 8), _big_endian(self.lon[part], ">f8"),
            _NULL, _fields(self.phone[start:stop]), _NULL + struct.pack(">i", 8), received,
            _take(domain["areas"], self.areas[0][part]), _field(self.boundary_set) + _field(LOAD_METHOD),
            _take(domain["flags"], self.out_of_coverage[part].astype(np.int8)),
            _NULL + domain["flags"][0] + _field(LOAD_ACTOR) + struct.pack(">i", 8), received,
            struct.pack(">i", 8), _big_endian(self.updated[part] - _PG_EPOCH_US, ">i8"),
            struct.pack(">i", 8), _big_endian(self.h3_r9(part), ">i8"),
            struct.pack(">i", 25), _fixed(point))

    def event_rows(self, events: npt.NDArray[np.int64]) -> pa.Array:
        """``events`` as binary COPY rows of ``call_events`` (columns :data:`EVENT_COLUMNS`)."""
        rows = self.event_row[events]
        types = self.event_type[events]
        previous = self.event_from[events]
        domain = self._domain()
        category_codes, _categories = self.category
        at = _big_endian(self.event_at[events] - _PG_EPOCH_US, ">i8")
        reason = pc.if_else(pa.array(types == EVENT_TYPES.index("cancelled")),
                            _take(domain["categories"], category_codes[rows]), pa.scalar(_NULL))
        return _join(
            struct.pack(">h", len(EVENT_COLUMNS)) + struct.pack(">i", 16), _fixed(self.raw_ids[rows]),
            _take(domain["kinds"], types), struct.pack(">i", 8), at, struct.pack(">i", 8), at,
            _take(domain["previous"], np.where(previous < 0, len(EVENT_TYPES), previous)),
            _take(domain["kinds"], types), _take(domain["areas"], self.areas[0][rows]), reason,
            _field(LOAD_ACTOR) + _field(LOAD_ROLE), _fields(self.snapshots(events)))

    # ------------------------------------------------------------------ Arrow tables

    def call_table(self, start: int, stop: int) -> pa.Table:
        """Calls ``[start, stop)`` as a table (columns :data:`CALL_COLUMNS`), identifying them first."""
        keys, hashes = self.identify(start, stop)
        part = slice(start, stop)
        n = stop - start
        category_codes, categories = self.category
        nulls = pa.nulls(n)
        received = _timestamps(self.received[part])
        columns: dict[str, Any] = {
            "id": _uuid_text(self.raw_ids[part]), "idempotency_key": keys, "request_hash": hashes,
            "status": _take(list(EVENT_TYPES), self.status[part]),
            "category": _take(categories, category_codes[part]), "serious": self.serious[part],
            "lat": self.lat[part], "lon": self.lon[part], "radius_m": nulls,
            "caller_phone": self.phone[start:stop], "description": nulls, "received_at": received,
            **{f"{level}_code": _take(values, codes[part])
               for level, (codes, values) in self.codes.items()},
            "boundary_set": _constant(self.boundary_set, n), "method": _constant(LOAD_METHOD, n),
            "out_of_coverage": self.out_of_coverage[part], "distance_m": nulls,
            "unstaffed": np.zeros(n, dtype=bool), "created_by": _constant(LOAD_ACTOR, n),
            "created_at": received, "updated_at": _timestamps(self.updated[part]),
            "h3_r9": self.h3_r9(part),
        }
        return pa.table({name: columns[name] for name in CALL_COLUMNS})

    def event_table(self, events: npt.NDArray[np.int64]) -> pa.Table:
        """``events`` as a table (columns :data:`EVENT_COLUMNS`)."""
        rows = self.event_row[events]
        types = self.event_type[events]
        previous = self.event_from[events]
        category_codes, categories = self.category
        at = _timestamps(self.event_at[events])
        kinds = list(EVENT_TYPES)
        columns: dict[str, Any] = {
            "call_id": _take(self.ids, rows), "type": _take(kinds, types), "at": at,
            "recorded_at": at,
            "from_status": pa.array(kinds, type=pa.string()).take(
                pa.array(np.maximum(previous, 0), mask=previous < 0)),
            "status": _take(kinds, types),
            **{f"{level}_code": _take(values, codes[rows])
               for level, (codes, values) in self.codes.items()},
            "reason": pc.if_else(pa.array(types == EVENT_TYPES.index("cancelled")),
                                 _take(categories, category_codes[rows]), pa.scalar(None, pa.string())),
            "actor": _constant(LOAD_ACTOR, len(events)), "role": _constant(LOAD_ROLE, len(events)),
            "snapshot": self.snapshots(events),
        }
        return pa.table({name: columns[name] for name in EVENT_COLUMNS})

    def event_order(self, calls: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.int64]:
        """Events (of the calls ``calls`` marks, else all) in the order they are inserted on
        PostgreSQL: by time, then call id (PostgreSQL's byte order of UUIDs), then position."""
        chosen = (np.arange(len(self.event_row)) if calls is None
                  else np.flatnonzero(calls[self.event_row]))
        # events are in (call, position) order: a stable sort by time keeps a call's events
        # at one time in position order; only ties between calls need the ids
        order = chosen[np.argsort(self.event_at[chosen], kind="stable")]
        at, rows = self.event_at[order], self.event_row[order]
        tied = np.flatnonzero((at[1:] == at[:-1]) & (rows[1:] != rows[:-1]))
        if len(tied):
            spans = np.unique(np.concatenate([tied, tied + 1]))
            starts = np.searchsorted(at, at[spans], side="left")
            stops = np.searchsorted(at, at[spans], side="right")
            halves = self.raw_ids.view(">u8").reshape(self.n, 2)
            for start, stop in set(zip(starts.tolist(), stops.tolist(), strict=True)):
                group = order[start:stop]
                ids = halves[self.event_row[group]]
                order[start:stop] = group[np.lexsort((self.event_seq[group], ids[:, 1], ids[:, 0]))]
        return order


def _constant(value: str, n: int) -> pa.Array:
    return pa.array([value], type=pa.string()).take(pa.array(np.zeros(n, dtype=np.int8)))


def _timestamps(micros: npt.NDArray[np.int64]) -> pa.Array:
    return pa.array(micros, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _trails(calls: pd.DataFrame, received: npt.NDArray[np.int64], klass: Mapping[str, str]
            ) -> dict[str, npt.NDArray[Any]]:
    """Every call's trail, in (call, position) order.

    ``received`` first, then the lifecycle times the history has, in the state machine's
    order (not sorted by time: an on-scene time before dispatch is a data fault the
    response code must see, so it is kept as recorded). Hoax and dropped calls are
    ``cancelled`` at their close time with the class as reason. Information calls are
    answered on the phone: acknowledged and closed at their close time, as the state
    machine requires an acknowledgement before a close.
    """
    call_class = calls["category"].astype(str).map(klass).fillna("case").to_numpy()
    n = len(calls)
    rows = np.arange(n, dtype=np.int64)
    closed = _micros(calls["closed_at"])
    has_closed = closed != _NOT_A_TIME
    cancelled = np.isin(call_class, ("hoax", "dropped")) & has_closed
    information = (call_class == "information") & has_closed
    parts: list[tuple[npt.NDArray[np.int64], int, int, npt.NDArray[np.int64]]] = [(rows, 0, 0, received)]
    for seq, (kind, column) in enumerate(_LIFECYCLE, start=1):
        at = closed if column == "closed_at" else _micros(calls[column])
        has = (at != _NOT_A_TIME) & ~cancelled
        if kind in ("acknowledged", "closed"):
            at = np.where(information, closed, at)
            has |= information
        parts.append((rows[has], seq, EVENT_TYPES.index(kind), at[has]))
    parts.append((rows[cancelled], _CANCELLED_SEQ, EVENT_TYPES.index("cancelled"), closed[cancelled]))
    row = np.concatenate([p[0] for p in parts])
    order = np.argsort(row, kind="stable")  # parts are in position order: (call, position)
    row = row[order]
    seq_all = np.concatenate([np.full(len(p[0]), p[1], np.int8) for p in parts])[order]
    kind_all = np.concatenate([np.full(len(p[0]), p[2], np.int8) for p in parts])[order]
    at_all = np.concatenate([p[3] for p in parts])[order]
    first = np.ones(len(row), dtype=bool)
    first[1:] = row[1:] != row[:-1]
    previous = np.full(len(row), -1, dtype=np.int8)
    previous[1:] = kind_all[:-1]
    previous[first] = -1
    starts = np.flatnonzero(first)
    last = np.append(starts[1:], len(row)) - 1
    return {"row": row, "seq": seq_all, "type": kind_all, "from": previous, "at": at_all,
            "status": kind_all[last] if n else np.empty(0, np.int8),
            "updated": np.maximum.reduceat(at_all, starts) if n else np.empty(0, np.int64)}


def prepare(calls: pd.DataFrame, boundary_set: str, form: HistoryForm) -> PreparedHistory:
    """Everything a load writes for ``calls`` (in load order), column-wise, but the
    calls' keys, ids and request hashes: :meth:`PreparedHistory.identify` hashes those
    chunk by chunk (:meth:`~PreparedHistory.call_rows` and
    :meth:`~PreparedHistory.call_table` do it), so the hashing overlaps the copy."""
    n = len(calls)
    received = _micros(calls["received_at"])
    lat = calls["lat"].to_numpy(dtype=np.float64)
    lon = calls["lon"].to_numpy(dtype=np.float64)
    serious = calls["serious"].astype(bool).to_numpy()
    out_of_coverage = calls["out_of_coverage"].astype(bool).to_numpy()
    category_codes, categories = _factorize(calls["category"])
    codes = {level: _factorize(calls[f"{level}_code"]) for level in LEVELS}
    phone = pa.array([p if isinstance(p, str) else None for p in calls["caller_phone"].tolist()],
                     type=pa.string())
    given = pc.fill_null(pc.greater(pc.utf8_length(phone), 0), False)
    phone_json = json_strings(pc.if_else(given, phone, pa.scalar(None, pa.string())))
    lat_json, lon_json = json_floats(lat), json_floats(lon)
    received_iso = iso_times(received, "Z")

    template = form.template
    head_codes, head_values = _combine((category_codes, len(categories)), (serious.astype(np.int32), 2))
    heads = [template.fragment({"category": json_value(categories[c]),
                                "category_label": json_value(form.label(categories[c])),
                                "serious": json_value(bool(s))}) for c, s in head_values]
    area_codes, combos = _combine(*((codes[level][0], len(codes[level][1])) for level in LEVELS))
    named = [[codes[level][1][index] for level, index in zip(LEVELS, combo, strict=True)]
             for combo in combos]
    fragments = [template.fragment({
        key: json_value(value) for level, code in zip(LEVELS, combo, strict=True)
        for key, value in ((f"{level}_code", code), (f"{level}_name", form.area_name(level, code)))})
        for combo in named]
    trails = _trails(calls, received, form.call_class)
    prepared = PreparedHistory(
        n=n, call_id=calls["call_id"].to_numpy(dtype=np.int64), raw_ids=np.zeros((n, 16), dtype=np.uint8),
        category=(category_codes, categories), codes=codes, serious=serious, lat=lat, lon=lon,
        phone=phone, received=received, received_iso=received_iso, out_of_coverage=out_of_coverage,
        status=trails["status"], updated=trails["updated"], boundary_set=boundary_set,
        event_row=trails["row"], event_type=trails["type"], event_from=trails["from"],
        event_seq=trails["seq"], event_at=trails["at"], lat_json=lat_json, lon_json=lon_json,
        phone_json=phone_json, head=(head_codes, heads), areas=(area_codes, combos, fragments),
        form=form)
    _check_schema(prepared)
    return prepared


def _check_schema(prepared: PreparedHistory) -> None:
    """Fail before writing anything if the column-wise value encoders here no longer write
    what the call domain's encoder writes: the first event of each type must come back
    unchanged from being decoded as the domain's call and encoded again."""
    _types, firsts = np.unique(prepared.event_type, return_index=True)
    for text in prepared.snapshots(firsts.astype(np.int64)).to_pylist():
        try:
            same = prepared.form.canonical(text) == text
        except msgspec.ValidationError:
            same = False
        if not same:
            raise RuntimeError("the call's wire form changed: the column-wise snapshots of "
                               f"api.db.history_load must be brought in line with it ({text})")


def prepare_history(calls: pd.DataFrame, boundary_set: str, form: HistoryForm
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of ``calls`` and ``call_events`` for ``calls`` (in load order) as DataFrames
    (columns :data:`CALL_COLUMNS`, and :data:`EVENT_COLUMNS` plus ``seq``), ids as
    :class:`uuid.UUID`, events in (call, trail position) order."""
    prepared = prepare(calls, boundary_set, form)
    rows = prepared.call_table(0, prepared.n).to_pandas()
    ids = [uuid.UUID(bytes=raw) for raw in map(bytes, prepared.raw_ids)]
    rows["id"] = ids
    rows["caller_phone"] = calls["caller_phone"].to_numpy()
    trail = prepared.event_table(np.arange(len(prepared.event_row))).to_pandas()
    trail["call_id"] = [ids[r] for r in prepared.event_row.tolist()]
    trail["seq"] = prepared.event_seq.astype(np.int64)
    for name in ("from_status", "reason"):
        trail[name] = trail[name].astype(object).where(trail[name].notna(), None)
    return rows, trail


# --------------------------------------------------------------------------- PostgreSQL

def _ahead(pool: ThreadPoolExecutor, jobs: Iterable[Callable[[], Any]]) -> Iterator[Any]:
    """Results of ``jobs`` in order, each next one computed in ``pool`` while the caller
    handles the previous."""
    pending: Future[Any] | None = None
    for job in jobs:
        future = pool.submit(job)
        if pending is not None:
            yield pending.result()
        pending = future
    if pending is not None:
        yield pending.result()


def _copy(cur: Any, pool: ThreadPoolExecutor, statement: str, *, total: int, step: int,
          rows: Callable[[int, int], pa.Array], progress: Callable[[int], None]) -> None:
    """``COPY … FROM STDIN (FORMAT binary)`` of ``rows(start, stop)`` chunk by chunk, the
    next chunk built in ``pool`` while the previous one is sent."""
    starts = range(0, total, step)
    jobs = (lambda s=s: rows(s, min(total, s + step)) for s in starts)
    with cur.copy(f"{statement} FROM STDIN (FORMAT binary)") as copy:
        copy.write(_COPY_HEADER)
        for start, chunk in zip(starts, _ahead(pool, jobs), strict=True):
            copy.write(payload(chunk))
            progress(min(total, start + step))
        copy.write(_COPY_TRAILER)


_IN_LOAD_ORDER: dict[str, tuple[str, ...]] = {
    "calls": (), "call_events": ("id", *(f"{level}_code" for level in LEVELS))}
"""Per table, columns whose values a load writes in increasing order (or, for area codes,
in order within each area): a b-tree led by one only grows at the end of a range during
the copy, which costs less than building it again from a scan of the 4 GB of events a
month makes. ``calls`` rows are narrow: building their indexes afresh (in parallel) is
cheaper than keeping any of them up to date."""
_WRITTEN = {"calls": {*CALL_COLUMNS, "geom"} - {"radius_m", "description", "distance_m"},
            "call_events": {*EVENT_COLUMNS, "id"}}
"""Columns a load sets on some rows; the others it leaves NULL on all of them."""
_NOT_NULL_PREDICATE = re.compile(r"^\(?([a-z_][a-z0-9_]*) IS NOT NULL\)?$")


def _cheap_to_keep(table: str, method: str, first_column: str | None, predicate: str | None) -> bool:
    """Whether the copy may keep an index up to date instead of it being built afterwards:
    a partial index no loaded row enters, or a b-tree led by a column in load order."""
    if predicate is not None:
        match = _NOT_NULL_PREDICATE.match(predicate)
        return match is not None and match.group(1) not in _WRITTEN[table]
    return method == "btree" and first_column in _IN_LOAD_ORDER[table]


def _keys_and_indexes(cur: Any) -> tuple[list[str], list[str]]:
    """Statements that drop, and that create again, the indexes and keys of ``calls`` and
    ``call_events`` that a copy would update at random places (keys, UUIDs, cells, phone
    numbers, the spatial index), and every foreign key into or out of these tables (a
    per-row check otherwise). Dropped first foreign keys, then keys, then indexes; created
    in the reverse order."""
    cur.execute(
        "SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), "
        "am.amname, a.attname, pg_get_expr(i.indpred, i.indrelid), quote_ident(con.conname), "
        "pg_get_constraintdef(con.oid) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
        "LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
        "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid "
        "AND con.contype IN ('p', 'u', 'x') "
        "WHERE i.indrelid = ANY(%(t)s::regclass[]) ORDER BY i.indexrelid", {"t": list(TABLES)})
    keys: list[tuple[str, str]] = []
    indexes: list[tuple[str, str]] = []
    for table, index, definition, method, first, predicate, constraint, constraint_def in cur.fetchall():
        if _cheap_to_keep(table, method, first, predicate):
            continue
        if constraint is not None:
            keys.append((f"ALTER TABLE {table} DROP CONSTRAINT {constraint}",
                         f"ALTER TABLE {table} ADD CONSTRAINT {constraint} {constraint_def}"))
        else:
            indexes.append((f"DROP INDEX {index}", definition))
    cur.execute(
        "SELECT c.conrelid::regclass::text, quote_ident(c.conname), pg_get_constraintdef(c.oid) "
        "FROM pg_constraint c WHERE c.contype = 'f' "
        "AND (c.conrelid = ANY(%(t)s::regclass[]) OR c.confrelid = ANY(%(t)s::regclass[])) "
        "ORDER BY c.oid", {"t": list(TABLES)})
    foreign = [(f"ALTER TABLE {table} DROP CONSTRAINT {name}",
                f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
               for table, name, definition in cur.fetchall()]
    steps = [*foreign, *keys, *indexes]
    return [drop for drop, _create in steps], [create for _drop, create in reversed(steps)]


def _empty_and_ours(cur: Any) -> bool:
    """Whether ``calls`` and ``call_events`` are empty and this role may alter them (and
    every table with a foreign key into them)."""
    cur.execute(
        "SELECT bool_and(pg_has_role(c.relowner, 'USAGE')) FROM pg_class c WHERE c.oid = ANY("
        "SELECT unnest(%(t)s::regclass[]) UNION SELECT conrelid FROM pg_constraint "
        "WHERE confrelid = ANY(%(t)s::regclass[]))", {"t": list(TABLES)})
    if not cur.fetchone()[0]:
        return False
    cur.execute("SELECT NOT EXISTS (SELECT FROM calls) AND NOT EXISTS (SELECT FROM call_events)")
    return bool(cur.fetchone()[0])


def _load_postgres(engine: Any, prepared: PreparedHistory, report: LoadReport, update: Progress) -> None:
    """Binary COPY of the calls and then their events, in one transaction.

    Into empty tables: an exclusive lock (live writers wait for the load), the costly
    indexes and keys dropped (:func:`_keys_and_indexes`), both tables copied, the indexes
    and keys built again. Otherwise the calls are staged and inserted
    with ``ON CONFLICT DO NOTHING`` (a second load adds nothing) and the events of the new
    calls copied into the indexed table.
    """
    call_cols = ", ".join(CALL_COLUMNS)
    event_cols = ", ".join(EVENT_COLUMNS)
    n = prepared.n
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur, ThreadPoolExecutor(1, thread_name_prefix="synth-load") as pool:
            bulk = _empty_and_ours(cur)
            if bulk:
                cur.execute(f"LOCK TABLE {', '.join(TABLES)} IN ACCESS EXCLUSIVE MODE")
                bulk = _empty_and_ours(cur)  # still empty now that nobody else can write
            rebuild: list[str] = []
            if bulk:
                drops, rebuild = _keys_and_indexes(cur)
                for statement in drops:
                    cur.execute(statement)
                target = "calls"
            else:
                cur.execute(f"CREATE TEMP TABLE _load_calls ON COMMIT DROP AS SELECT {call_cols}, geom "
                            "FROM calls WITH NO DATA")
                target = "_load_calls"
            _copy(cur, pool, f"COPY {target} ({call_cols}, geom)", total=n, step=COPY_CALLS,
                  rows=prepared.call_rows,
                  progress=lambda done: update(f"copied {done:,} of {n:,} calls",
                                               0.1 + 0.1 * done / max(n, 1)))
            new_calls = np.ones(n, dtype=bool)
            if bulk:
                report.inserted = n
            else:
                update(f"inserting {n:,} calls", 0.2)
                cur.execute("CREATE TEMP TABLE _load_new (id uuid) ON COMMIT DROP")
                cur.execute(
                    f"WITH ins AS (INSERT INTO calls ({call_cols}, geom) SELECT {call_cols}, geom "
                    "FROM _load_calls ON CONFLICT DO NOTHING RETURNING id) "
                    "INSERT INTO _load_new SELECT id FROM ins")
                report.inserted = cur.rowcount
                if report.inserted < n:
                    cur.execute("SELECT l.id::text FROM _load_calls l WHERE NOT EXISTS "
                                "(SELECT FROM _load_new n WHERE n.id = l.id)")
                    skipped = pa.array([r[0] for r in cur.fetchall()], type=pa.string())
                    new_calls = ~pc.is_in(prepared.ids, value_set=skipped).to_numpy(zero_copy_only=False)
            order = prepared.event_order(new_calls)
            total = len(order)
            share = 0.5 if bulk else 0.75
            _copy(cur, pool, f"COPY call_events ({event_cols})", total=total, step=COPY_EVENTS,
                  rows=lambda start, stop: prepared.event_rows(order[start:stop]),
                  progress=lambda done: update(f"copied {done:,} of {total:,} events",
                                      0.2 + share * done / max(total, 1)))
            report.events = total
            if rebuild:
                cur.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_MEMORY}'")
                for i, statement in enumerate(rebuild):
                    update(f"building index {i + 1} of {len(rebuild)}", 0.7 + 0.25 * i / len(rebuild))
                    cur.execute(statement)
                report.rebuilt_indexes = True
            update("analysing", 0.96)
            cur.execute("ANALYZE calls")
            if bulk:
                cur.execute("ANALYZE call_events")
        conn.commit()
    except BaseException:
        raw.driver_connection.rollback()
        raise
    finally:
        raw.close()


# --------------------------------------------------------------------------- SQLite

def _load_sqlite(engine: Any, chunks: Iterable[tuple[pd.DataFrame, pd.DataFrame, float]],
                 report: LoadReport, update: Progress) -> None:
    """Insert chunk by chunk with ``executemany`` in one ``IMMEDIATE`` transaction; calls
    already present (by id or key) are left as they are, and so are their events."""
    from sqlalchemy import select  # noqa: PLC0415
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

    from api.db.call_models import CallEventRecord, CallRecord  # noqa: PLC0415
    from api.db.engine import SQLITE_BEGIN_OPTION  # noqa: PLC0415

    calls_table: Any = CallRecord.__table__
    events_table: Any = CallEventRecord.__table__
    with engine.connect().execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"}) as conn, conn.begin():
        for rows, trail, fraction in chunks:
            new_rows = []
            for start in range(0, len(rows), SQLITE_BATCH):
                batch = rows.iloc[start:start + SQLITE_BATCH]
                present = set(conn.execute(select(calls_table.c.id).where(
                    calls_table.c.id.in_(batch["id"].tolist()))).scalars())
                present |= set(conn.execute(select(calls_table.c.id).where(
                    calls_table.c.idempotency_key.in_(batch["idempotency_key"].tolist()))).scalars())
                fresh = batch[~batch["id"].isin(present)]
                if fresh.empty:
                    continue
                records = fresh.to_dict("records")
                for record, lat, lon in zip(records, fresh["lat"].tolist(), fresh["lon"].tolist(),
                                            strict=True):
                    record["geom"] = f"SRID=4326;POINT({lon!r} {lat!r})"
                    for name in ("received_at", "created_at", "updated_at"):
                        record[name] = record[name].to_pydatetime()
                conn.execute(sqlite_insert(calls_table).on_conflict_do_nothing(), records)
                new_rows.append(fresh["id"])
            if new_rows:
                new_ids = set().union(*(set(s.tolist()) for s in new_rows))
                events = trail[trail["call_id"].isin(new_ids)].sort_values(["at", "seq"], kind="stable")
                records = events[list(EVENT_COLUMNS)].to_dict("records")
                for record in records:
                    for name in ("at", "recorded_at"):
                        record[name] = record[name].to_pydatetime()
                for start in range(0, len(records), SQLITE_BATCH):
                    conn.execute(events_table.insert(), records[start:start + SQLITE_BATCH])
                report.inserted += len(new_ids)
                report.events += len(records)
            update(f"inserted {fraction:.0%}", fraction)


# --------------------------------------------------------------------------- entry point

def load_history(calls: pd.DataFrame, engine: Any, *, boundary_set: str, form: HistoryForm,
                 progress: Progress | None = None, chunk: int = LOAD_CHUNK) -> LoadReport:
    """Write a generated history into ``calls`` and ``call_events`` of ``engine``'s database.

    PostgreSQL: binary COPY streamed in chunks (a month at full scale, 1.8 million calls,
    in about a minute and a half on two cores). SQLite: ``executemany`` in batches of
    ``chunk`` calls. Either way one transaction, so a failed load leaves nothing behind,
    and idempotent on the call ids (a call given twice in the file is loaded once). The
    caller migrates the database first.
    """
    began = time.perf_counter()
    update: Progress = progress or (lambda _step, _fraction: None)
    report = LoadReport(backend=engine.dialect.name, calls_in_file=len(calls))
    calls = calls.sort_values(["received_at", "call_id"], kind="stable").reset_index(drop=True)
    if engine.dialect.name == "postgresql":
        update(f"preparing {len(calls):,} calls", 0.0)
        if not calls["call_id"].is_unique:  # the same call twice (same key, same id): once
            same = calls.duplicated(subset=["call_id", "received_at", "lat", "lon", "category"])
            calls = calls[~same.to_numpy()].reset_index(drop=True)
        _load_postgres(engine, prepare(calls, boundary_set, form), report, update)
    else:
        def chunks() -> Iterator[tuple[pd.DataFrame, pd.DataFrame, float]]:
            for start in range(0, len(calls), chunk):
                part = calls.iloc[start:start + chunk]
                rows, trail = prepare_history(part, boundary_set, form)
                yield rows, trail, min(1.0, (start + len(part)) / max(len(calls), 1))

        _load_sqlite(engine, chunks(), report, update)
    report.already_present = report.calls_in_file - report.inserted
    report.elapsed_s = time.perf_counter() - began
    update("done", 1.0)
    return report
