"""Bounds on the times clients send, so none reaches the database it cannot hold."""

from __future__ import annotations

from datetime import UTC, datetime

from api.errors import UnprocessableError

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
