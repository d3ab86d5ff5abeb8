"""What may follow what in a call's life: the one state machine every writer goes through.

A call starts ``received`` at the station the router chose. The station acknowledges it,
dispatches a unit, the unit goes en route and reaches the scene, and the call is closed.
A transfer hands the call to another station, which must acknowledge it afresh
(status ``transferred``); cancelling (hoax, duplicate) ends it at any open stage.
Information calls may be closed straight after acknowledgement (nothing to dispatch).
"""

from __future__ import annotations

from api.errors import ConflictError

STATUSES = ("received", "transferred", "acknowledged", "dispatched", "en_route", "on_scene",
            "closed", "cancelled")
EVENT_TYPES = ("acknowledged", "dispatched", "en_route", "on_scene", "closed", "transferred",
               "cancelled")
"""Types a client may post; ``received`` is written by the service when the call is taken."""

TERMINAL = frozenset({"closed", "cancelled"})
OPEN_STATUSES = tuple(s for s in STATUSES if s not in TERMINAL)

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("acknowledged", "transferred", "cancelled"),
    "transferred": ("acknowledged", "transferred", "cancelled"),
    "acknowledged": ("dispatched", "transferred", "closed", "cancelled"),
    "dispatched": ("en_route", "on_scene", "closed", "cancelled"),
    "en_route": ("on_scene", "closed", "cancelled"),
    "on_scene": ("closed",),
    "closed": (),
    "cancelled": (),
}
"""Event types allowed in each status (each event type moves the call to the status of
the same name)."""


def allowed_events(status: str) -> tuple[str, ...]:
    """Event types that may follow ``status``."""
    return TRANSITIONS.get(status, ())


def next_status(status: str, event_type: str) -> str:
    """The status after ``event_type``; 409 naming the allowed types when it may not follow."""
    allowed = allowed_events(status)
    if event_type not in allowed:
        names = ", ".join(allowed) if allowed else "none (the call is finished)"
        raise ConflictError(
            f"a {status} call cannot take {event_type!r}; allowed next: {names}",
            extra={"status": status, "allowed": list(allowed)},
        )
    return event_type
