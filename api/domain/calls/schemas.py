"""Wire shapes of the call service: intake, the call as answered, lifecycle events, feeds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from api.domain.stations.schemas import OnDuty
from api.types import NO_NUL, AwareTime, Latitude, Longitude, Phone, Radius

Text = Annotated[str, msgspec.Meta(max_length=2000, pattern=NO_NUL)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
EventType = Literal["acknowledged", "dispatched", "en_route", "on_scene", "closed",
                    "transferred", "cancelled"]


class CallCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A helpline-15 call as the call taker records it."""

    lat: Latitude
    lon: Longitude
    category: Code
    radius_m: Radius | None = None
    caller_phone: Phone | None = None
    received_at: AwareTime | None = None
    """When the call came in (with a time zone); the server's clock when omitted."""
    description: Text | None = None


class Call(msgspec.Struct):
    """A call with where it went, who has it and where it stands."""

    id: UUID
    status: str
    category: str
    category_label: str
    serious: bool
    lat: float
    lon: float
    radius_m: float | None
    received_at: datetime
    created_at: datetime
    updated_at: datetime
    station_code: str
    station_name: str | None
    tehsil_code: str
    tehsil_name: str | None
    district_code: str
    district_name: str | None
    region_code: str
    region_name: str | None
    method: str
    out_of_coverage: bool
    distance_m: float | None
    outside_punjab: str | None
    """The province or territory the call came from when not Punjab (e.g. "Islamabad
    Capital Territory"): the station is only the nearest Punjab one, a fallback."""
    transfer_suggested: bool
    """The call belongs to another police (``outside_punjab`` is set): hand it on."""
    sho_on_duty: OnDuty | None
    unstaffed: bool
    """No SHO was on the station's roster when the call came in: the district is told."""
    duplicate_of: UUID | None
    allowed_events: list[str]
    caller_phone: str | None = None
    caller_phone_hidden: bool = False
    """``True`` when a number exists but the reader's role may not see it."""
    description: str | None = None


class CallPage(msgspec.Struct):
    """One page of calls, newest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[Call]
    next_cursor: str | None


class EventCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Something that happened to a call (``to_station`` and ``reason`` for a transfer)."""

    type: EventType
    at: AwareTime | None = None
    note: Text | None = None
    to_station: Code | None = None
    reason: Text | None = None


class CallEvent(msgspec.Struct):
    """One entry of a call's audit trail (``id`` is also the feed's event id)."""

    id: int
    call_id: UUID
    type: str
    at: datetime
    recorded_at: datetime
    from_status: str | None
    status: str
    station_code: str
    from_station_code: str | None
    reason: str | None
    note: str | None
    actor: str
    role: str


class FeedMessage(msgspec.Struct):
    """What a live subscriber receives: the event and the call as it stood after it."""

    event_id: int
    type: str
    event: CallEvent
    call: Call
    unstaffed: bool
    """Repeated from the call so a district control room can route on it without digging."""
