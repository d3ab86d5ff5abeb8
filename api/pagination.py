"""Cursor pagination of the list endpoints: newest first by ``(time, id)``.

A cursor is the last item's time and id, opaque to clients (URL-safe base64): the next
page is what sorts strictly after it, so rows added meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from api.errors import BadInputError


def encode_cursor(at: datetime, ident: UUID) -> str:
    """The cursor after the item at ``(at, ident)``."""
    raw = f"{at.isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """``(time, id)`` of a cursor :func:`encode_cursor` made; 400 for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, ident = raw.partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("naive time")
        return when, UUID(ident)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise BadInputError("invalid cursor (pass back next_cursor unchanged)") from exc
