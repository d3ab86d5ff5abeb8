"""Wire shapes of station rosters and the on-duty answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar.openapi.spec import Example
from litestar.params import Parameter

from api.types import NO_NUL, AwareTime, Phone

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120, pattern=NO_NUL)]
Rank = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=NO_NUL)]

StationCode = Annotated[str, Parameter(max_length=64, description="station code",
                                       examples=[Example(value="PK61701-007")])]
"""A station code in a path (``/stations/{code}/…``)."""

MAX_SHIFTS = 5_000


class ShiftIn(msgspec.Struct, forbid_unknown_fields=True):
    """One duty shift as SHO (or acting SHO) over ``[start, end)``."""

    officer_name: Name
    rank: Rank
    start: AwareTime
    end: AwareTime
    phone: Phone | None = None


class RosterPut(msgspec.Struct, forbid_unknown_fields=True):
    """A station's whole roster; it replaces the one stored."""

    shifts: Annotated[list[ShiftIn], msgspec.Meta(max_length=MAX_SHIFTS)]


class Shift(msgspec.Struct):
    id: int
    officer_name: str
    rank: str
    phone: str | None
    start: datetime
    end: datetime


class Roster(msgspec.Struct):
    """The stored roster of a station (``revision`` grows with every replacement)."""

    station_code: str
    station_name: str
    revision: int
    updated_at: datetime | None
    updated_by: str | None
    shifts: list[Shift]


class OnDuty(msgspec.Struct):
    """The officer holding a station's roster shift at a moment."""

    officer_name: str
    rank: str
    phone: str | None
    shift_start: datetime
    shift_end: datetime


class OnDutyAnswer(msgspec.Struct):
    """Who holds the station at ``at``; ``unstaffed`` when nobody does."""

    station_code: str
    station_name: str
    at: datetime
    on_duty: OnDuty | None
    unstaffed: bool
