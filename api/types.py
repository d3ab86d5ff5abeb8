"""Wire types more than one resource uses, and the bounds on the times clients send.

Coordinates, phone numbers and aware times mean the same in a call, a route request and a
roster; each is declared once here so they are checked the same way everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec

from api.errors import BadInputError, UnprocessableError

Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90, description="WGS84 latitude")]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180, description="WGS84 longitude")]
Radius = Annotated[float, msgspec.Meta(ge=0, le=50_000, description="uncertainty radius, metres")]

Phone = Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9][0-9 ()-]{2,30}$", max_length=32,
                                    description="caller's number, digits with optional +, "
                                                "spaces, dashes")]
NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold NUL characters: refuse them at the door (400), not at the
database (500)."""
AwareTime = Annotated[datetime, msgspec.Meta(tz=True, description="ISO 8601 with a time zone")]

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No call, shift or query is older than this (helpline-15 records start well after it);
it also keeps time-window arithmetic far from ``datetime.min``."""

LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""Nor later than this (a year 9999 time in a western zone overflows on conversion to UTC)."""


def plausible(value: datetime, name: str) -> datetime:
    """``value`` in UTC; 422 naming ``name`` when it lies outside 2000–2100."""
    if not EARLIEST <= value <= LATEST:
        raise UnprocessableError(f"{name} ({value.isoformat()}) must lie between "
                                 f"{EARLIEST.year} and {LATEST.year}")
    return value.astimezone(UTC)


def aware(value: datetime | None, name: str) -> datetime | None:
    """A query time, which must say its zone (a naive time is ambiguous by five hours)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise BadInputError(f"{name} needs a time zone (e.g. 2026-01-01T00:00:00+05:00)")
    return plausible(value, name)
