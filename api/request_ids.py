"""Every request's id: on its answer (``X-Request-ID``), in its error body and in the log
line of a server error, so one failure can be found from either end."""

from __future__ import annotations

import os
import re
from typing import Any, Final

from litestar.types import Scope

REQUEST_ID_HEADER: Final = "X-Request-ID"
_KEY: Final = "safecity.request_id"
_CLIENT_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
"""A client's own request id is kept only when it cannot forge a log line or a header."""


def request_id(scope: Scope) -> str:
    """This request's id, made on first use: the client's ``X-Request-ID`` when it is a
    plain token, else 16 random hex digits."""
    state: dict[str, Any] = scope  # type: ignore[assignment]
    known: str | None = state.get(_KEY)
    if known is None:
        given = next((value for name, value in scope.get("headers", ())
                      if name == b"x-request-id"), None)
        known = given.decode() if given and _CLIENT_ID.match(given) else os.urandom(8).hex()
        state[_KEY] = known
    return known
