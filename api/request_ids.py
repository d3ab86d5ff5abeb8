"""Every request's id: on its answer (``X-Request-ID``), in its error body and in the log
line of a server error, so one failure can be found from either end."""

from __future__ import annotations

import itertools
import os
import re
from typing import Any, Final

from litestar.types import Scope

REQUEST_ID_HEADER: Final = "X-Request-ID"
_KEY: Final = "safecity.request_id"
_CLIENT_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
"""A client's own request id is kept only when it cannot forge a log line or a header."""
_PROCESS: Final = os.urandom(4).hex()
_NEXT = itertools.count(1)
"""Ids are this process's random prefix and a counter: unique across workers and restarts,
and ~0.3 µs each (``os.urandom`` per request costs several µs of system call)."""


def request_id(scope: Scope) -> str:
    """This request's id, made on first use: the client's ``X-Request-ID`` when it is a
    plain token, else 16 hex digits (this process's random prefix and a counter)."""
    state: dict[str, Any] = scope  # type: ignore[assignment]
    known: str | None = state.get(_KEY)
    if known is None:
        known = f"{_PROCESS}{next(_NEXT):08x}"
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                if _CLIENT_ID.match(value):
                    known = value.decode()
                break
        state[_KEY] = known
    return known
