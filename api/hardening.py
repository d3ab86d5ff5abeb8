"""What every request and answer goes through, whatever its endpoint (``docs/security.md``).

- :func:`strict_json_body` (the app's ``before_request``): a handler that takes a JSON body
  (a ``data`` parameter) gets it only as ``application/json`` (415 otherwise), decoded
  strictly against its declared type (no ``"31.5"`` for a number, no number for a time:
  400) and refused with a clear 400 when nested too deeply to decode. Litestar's own
  decoding is lenient (it converts strings to numbers and numbers to times) and lets a
  decoder's ``RecursionError`` become a 500. The decoded body is handed on, so the
  handler's body is decoded once, not twice.
- :func:`~api.request_ids.request_id` names every request (the client's ``X-Request-ID``
  when it is a plain token, else a new one); :func:`stamp_response` (the app's
  ``before_send``) puts it on every answer with the security headers; error bodies carry
  it too (:mod:`api.errors`).
- :class:`WebSocketOriginGuard`: a browser opens a WebSocket from any page it likes and
  sends the page's ``Origin``; a socket from a page of another origin than this service
  (or one of ``SAFECITY_ALLOWED_ORIGINS``) is refused at the handshake (HTTP 403).
- :func:`redact_access_log`: uvicorn's access log prints each request's path with its
  query, and a map link or an EventSource carries its bearer token there
  (``?token=``, ``?access_token=``); the log gets ``[redacted]`` instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, Final, cast

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import AppError, BadInputError
from api.request_ids import request_id

log = logging.getLogger("safecity.security")

NO_COMPRESSION: Final = "no_compression"
"""A handler whose ``opt`` holds this key is never gzipped by the app's compression
middleware: ``POST /calls``, whose ~1 kB answer is made on the loop that takes calls
(compressing it would cost more than it saves on a police LAN), and answers that are
gzipped already (the dashboard map's still part)."""


class UnsupportedMediaTypeError(AppError):
    """A JSON endpoint was sent something else."""

    status = 415


_JSON = "application/json"
_DECODER_OPT: Final = "safecity.body_decoder"
"""Where each route handler keeps its strict body decoder (in its ``opt``, which lives as
long as the handler; ``None``: the handler takes no JSON body)."""


_ERROR_OPT: Final = "safecity.body_error"


def body_errors(mapper: Callable[[msgspec.ValidationError], Exception]) -> dict[str, Any]:
    """``opt`` of a handler whose wrong-shaped bodies are answered by ``mapper`` (routing
    answers each of its input forms with the same 422s) instead of the default 400."""
    return {_ERROR_OPT: mapper}


def _decoder(request: Request[Any, Any, Any]) -> msgspec.json.Decoder[Any] | None:
    options = request.route_handler.opt
    if _DECODER_OPT not in options:
        field = request.route_handler.parsed_fn_signature.parameters.get("data")
        decoder = None
        if field is not None:
            try:
                decoder = msgspec.json.Decoder(field.annotation, strict=True)
            except TypeError:  # a type msgspec cannot decode alone: Litestar's own path
                decoder = None
        options[_DECODER_OPT] = decoder
    found: msgspec.json.Decoder[Any] | None = options[_DECODER_OPT]
    return found


async def strict_json_body(request: Request[Any, Any, Any]) -> None:
    """Refuse a JSON body that is not ``application/json`` (415), does not match the
    handler's type exactly (400) or nests too deeply to decode (400); hand the decoded
    body on to the handler."""
    decoder = _decoder(request)
    if decoder is None:
        return
    body = await request.body()
    if not body and request.headers.get("content-type") is None:
        return  # no body at all: the handler's own rules (optional or a 400) apply
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != _JSON:
        raise UnsupportedMediaTypeError(f"the body must be JSON (Content-Type: {_JSON}), "
                                        f"not {media_type or 'unspecified'}")
    try:
        data = decoder.decode(body)
    except RecursionError as exc:
        raise BadInputError("the JSON body is nested too deeply") from exc
    except msgspec.ValidationError as exc:
        mapper = request.route_handler.opt.get(_ERROR_OPT)
        raise (mapper(exc) if mapper else BadInputError(f"invalid body: {exc}")) from exc
    except msgspec.DecodeError as exc:
        raise BadInputError(f"the body is not valid JSON: {exc}") from exc
    # Litestar reads the body from here: decoded once, and its lenient conversion
    # passes an instance of the declared type through unchanged
    request._connection_state.json = data


HTML_HEADERS: Final = (
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data: blob:; worker-src 'self' blob:; connect-src 'self'; "
     b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)
"""On HTML pages: nothing from another origin, no inline script (the pages load theirs
from ``/static``), never framed, no referrer leaving the page."""
EVERY_ANSWER_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
)


CSP_KEY: Final = "safecity.csp"
"""A page whose inline script is known (the ``/schema`` page: its hash) puts its own
Content Security Policy here; every other HTML page gets :data:`HTML_HEADERS`'."""


async def stamp_response(message: Message, scope: Scope) -> None:
    """Every answer's start: the request id, ``nosniff`` and ``DENY``; on HTML pages a
    Content Security Policy and the referrer policy."""
    if message["type"] != "http.response.start":
        return
    headers: list[tuple[bytes, bytes]] = message.setdefault("headers", [])  # type: ignore[assignment]
    html = False
    for name, value in headers:
        if name.lower() == b"content-type":
            html = value.startswith(b"text/html")
            break
    headers.append((b"x-request-id", request_id(scope).encode()))
    headers.extend(EVERY_ANSWER_HEADERS)
    if html:
        own = cast("str | None", scope.get(CSP_KEY))
        headers.extend(HTML_HEADERS if own is None
                       else ((HTML_HEADERS[0][0], own.encode()), *HTML_HEADERS[1:]))


_TOKEN_IN_QUERY = re.compile(r"(?i)([?&](?:access_)?token=)[^&\s\"]*")
REDACTED: Final = "[redacted]"


def redact_tokens(text: str) -> str:
    """``text`` with the value of every ``token=``/``access_token=`` query parameter hidden."""
    return _TOKEN_IN_QUERY.sub(rf"\1{REDACTED}", text) if "token=" in text.lower() else text


class RedactTokens(logging.Filter):
    """Hides bearer tokens in a log record's message and arguments (uvicorn's access log
    passes the path with its query as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        return True


SERVER_LOGGERS: Final = ("uvicorn.access", "uvicorn.error")


def redact_access_log() -> None:
    """Put :class:`RedactTokens` on uvicorn's loggers (once per process; uvicorn has set
    up its logging before it builds the app, in every worker)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def origin_allowed(scope: Scope, allowed: frozenset[str]) -> bool:
    """Whether a connection's ``Origin`` may use it: none (not a browser), this service's
    own host, or one of ``allowed`` (scheme://host[:port], compared without case)."""
    origin = host = None
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            origin = value.decode("latin-1").strip().lower().rstrip("/")
        elif name == b"host":
            host = value.decode("latin-1").strip().lower()
    if origin is None:
        return True
    if origin in allowed:
        return True
    return host is not None and origin.partition("://")[2] == host


class WebSocketOriginGuard:
    """ASGI middleware: a WebSocket handshake from a foreign ``Origin`` is refused (403)
    before any handler runs; HTTP requests pass untouched."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = frozenset(o.strip().lower().rstrip("/") for o in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.WEBSOCKET and not origin_allowed(scope, self.allowed):
            log.warning("WebSocket from origin %s refused (request_id=%s)",
                        dict(scope["headers"]).get(b"origin", b"").decode("latin-1")[:200],
                        request_id(scope))
            await send({"type": "websocket.close", "code": 1008, "reason": "origin not allowed"})
            return
        await self.app(scope, receive, send)
