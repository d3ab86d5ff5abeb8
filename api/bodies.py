"""Large answers gzipped where they are made (a worker process), never on the loop that
takes calls (``docs/isolation.md``).

The app's compression middleware gzips an answer on the request process's event loop,
in one piece: for a heavy answer (a 100,000-point batch, a province's Gi* cells, a map
page) that is a few hundred milliseconds in which no 15 call is taken (measured: 1.1 s of
every 40 s under analytic load, the intake's p99 164 ms). So the worker that encodes such
an answer gzips it too, at the worker's lower priority, and what crosses back to the
request process is a fifth of the bytes; the request process only sends them.

A handler answering a :class:`Body` carries :data:`BODY_OPT` so the middleware leaves it
alone; it asks for gzip with :func:`takes_gzip` and passes that to the job (or wraps a job
that returns a plain body in :func:`body_job`).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from litestar import Request, Response

from api.hardening import NO_COMPRESSION

GZIP_LEVEL: Final = 6
"""Most of level 9's saving at a fraction of its time (the middleware's level too)."""
MINIMUM_SIZE: Final = 1024
"""Smaller answers are sent as they are: gzip would save too little to pay for itself."""
BODY_OPT: Final = {NO_COMPRESSION: True}
"""``opt`` of a handler that answers a :class:`Body` (gzipped already, or not to be)."""


def gzipped(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """``data`` gzipped, the same bytes every time (no timestamp in the header)."""
    return gzip.compress(data, compresslevel=level, mtime=0)


def takes_gzip(request: Request[Any, Any, Any]) -> bool:
    """Whether the client accepts gzip (``Accept-Encoding``; ``gzip;q=0`` refuses it)."""
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.partition(";")
        if name.strip().lower() not in ("gzip", "*"):
            continue
        quality = params.strip().lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


@dataclass(frozen=True, slots=True)
class Body:
    """An answer's body as it goes on the wire: gzipped or not, decided where it was made."""

    data: bytes
    gzipped: bool = False

    @classmethod
    def made(cls, data: bytes | str, gzip_it: bool) -> Body:
        """``data`` (text as UTF-8), gzipped when ``gzip_it`` and it is over
        :data:`MINIMUM_SIZE`. Call it where ``data`` was made: in the worker."""
        raw = data.encode() if isinstance(data, str) else data
        if gzip_it and len(raw) >= MINIMUM_SIZE:
            return cls(gzipped(raw), True)
        return cls(raw)

    def response(self, media_type: str, headers: Mapping[str, str] | None = None,
                 status_code: int = 200) -> Response[bytes]:
        """The answer, its encoding named; ``Vary`` gains ``Accept-Encoding`` (the same URL
        answers differently to a client that takes gzip)."""
        out = dict(headers or {})
        out["Vary"] = ", ".join(v for v in (out.get("Vary"), "Accept-Encoding") if v)
        if self.gzipped:
            out["Content-Encoding"] = "gzip"
        return Response(self.data, media_type=media_type, headers=out, status_code=status_code)


def kept_response(request: Request[Any, Any, Any], raw: bytes, packed: bytes | None, *,
                  media_type: str, etag: str, headers: Mapping[str, str]) -> Response[bytes]:
    """An answer encoded (and gzipped: ``packed``, ``None`` if not worth it) once and kept:
    304 when ``If-None-Match`` names its ETag (or ``*``), else the gzipped bytes for a
    client that takes gzip, else the plain ones."""
    out = {**headers, "ETag": etag}
    held = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in held or "*" in held:
        return Response(b"", status_code=304, headers={**out, "Vary": "Accept-Encoding"})
    if packed is not None and takes_gzip(request):
        return Body(packed, gzipped=True).response(media_type, out)
    return Body(raw).response(media_type, out)


def body_job(gzip_it: bool, job: Callable[..., bytes | str], *args: Any) -> Body:
    """Worker job: ``job(*args)``'s body made ready for the wire (:meth:`Body.made`)."""
    return Body.made(job(*args), gzip_it)
