"""Who is asking, and over which area: JWT bearer tokens with a role and a jurisdiction scope.

A token carries ``role`` (one of :data:`ROLES`), ``scope`` (the code of one area) and
``lvl`` (that area's level). Roles tied to a command level only accept scopes of that
level (an SHO's scope is a station, a DPO's a district). Every check lives here as a
method of :class:`Principal`, so services ask one object and HTTP stays out of them.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from api.errors import ForbiddenError, UnauthorizedError
from api.tokens import ALGORITHM, ISSUER, ROLE_LEVEL, ROLES, SCOPE_LEVELS, mint_token
from api.tokens import check_claims as _check_claims

__all__ = ["CALL_TAKER_EVENTS", "PHONE_ROLES", "ROLES", "ROLE_LEVEL", "SCOPE_LEVELS", "SECURITY",
           "Action", "Authenticator", "Principal", "UnavailableAuthError", "decode_token",
           "mint_token", "principal_from_header"]
"""The claims rules and minting live in :mod:`api.tokens` (light, for the CLI)."""


Action = Literal["call.create", "call.read", "call.event", "feed.read", "roster.read",
                 "roster.write", "route", "analytics.read", "plan.create", "plan.read",
                 "alert.read", "alert.act", "stats.read"]

_ALLOWED: dict[str, frozenset[str]] = {
    "call.create": frozenset({"call_taker", "admin"}),
    "call.read": frozenset({"call_taker", "sho", "dpo", "cpo", "rpo", "ig", "admin"}),
    "call.event": frozenset({"call_taker", "sho", "dpo", "cpo", "rpo", "ig", "admin"}),
    "feed.read": frozenset({"sho", "dpo", "cpo", "rpo", "ig", "admin"}),
    "roster.read": frozenset({"call_taker", "sho", "dpo", "cpo", "rpo", "ig", "admin"}),
    "roster.write": frozenset({"sho", "dpo", "cpo", "rpo", "ig", "admin"}),
    "route": frozenset({"call_taker", "planner", "admin"}),
    "analytics.read": frozenset({"planner", "sho", "dpo", "cpo", "rpo", "ig", "admin"}),
    "plan.create": frozenset({"planner", "ig", "rpo", "dpo", "cpo", "admin"}),
    "plan.read": frozenset({"planner", "ig", "rpo", "dpo", "cpo", "admin"}),
    "alert.read": frozenset({"sho", "dpo", "cpo", "rpo", "ig", "admin"}),
    "alert.act": frozenset({"sho", "dpo", "cpo", "rpo", "ig", "admin"}),
    "stats.read": frozenset({"planner", "sho", "dpo", "cpo", "rpo", "ig", "admin"}),
}
"""Which roles may attempt which action at all (scope is checked separately).
Planners work on aggregates only, so no call, feed or roster endpoint admits them; they
route batches of points (candidate sites, historical locations) for analysis, which
carries no caller data. Command roles get calls already routed and boundaries from
``/jurisdictions``, so ``/route`` is for intake systems and planners. Call takers see
single calls, not the heat maps and hot spots of command and planning. Safe City expansion
plans (``plan.*``: aggregates, no caller data) are for planners and command above the station.
Alerts (``alert.*``) name calls and are for the chain of command; response-time statistics
(``stats.read``) are aggregates, so planners read them too."""

CALL_TAKER_EVENTS = frozenset({"transferred", "cancelled"})
"""A call taker may re-route a call or cancel a hoax; the station's progress is the station's."""

PHONE_ROLES = frozenset({"call_taker", "sho", "dpo", "cpo", "admin"})
"""Roles that call people back: the taker, the station, the district on an unstaffed station."""

SECURITY: list[dict[str, list[str]]] = [{"BearerToken": []}]
"""The OpenAPI security requirement of every endpoint behind a bearer token (the scheme
``BearerToken`` is declared once, on the app)."""



@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    subject: str
    role: str
    scope: str
    level: str

    def require(self, action: Action) -> None:
        """Refuse roles that may never do ``action`` (403 naming the role)."""
        if self.role not in _ALLOWED[action]:
            raise ForbiddenError(f"role {self.role!r} may not {action.replace('.', ' ')}")

    def covers(self, path: Mapping[str, str | None]) -> bool:
        """Whether an area, given as its ``{level: code}`` path upwards, lies in scope."""
        if self.role == "admin" or self.level == "province":
            return True
        return path.get(self.level) == self.scope

    def require_scope(self, path: Mapping[str, str | None], what: str) -> None:
        """403 unless ``path`` lies inside this principal's scope."""
        if not self.covers(path):
            raise ForbiddenError(f"{what} is outside your scope ({self.level} {self.scope})")

    @property
    def sees_phone(self) -> bool:
        return self.role in PHONE_ROLES


_VERIFIED: OrderedDict[tuple[str, str], tuple[Principal, int]] = OrderedDict()
"""Tokens already verified, with their expiry: a client sends the same token with every
request, and checking its signature again costs more than the rest of a read."""
_VERIFIED_MAX = 4096


def decode_token(secret: str, token: str) -> Principal:
    """The principal of a bearer token; 401 for anything unsigned, expired or malformed."""
    key = (secret, token)
    known = _VERIFIED.get(key)
    if known is not None:
        if known[1] > time.time():
            _VERIFIED.move_to_end(key)
            return known[0]
        del _VERIFIED[key]
    try:
        claims: dict[str, Any] = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER,
                                            options={"require": ["exp", "iat", "sub", "iss"]})
    except jwt.ExpiredSignatureError as exc:
        raise UnauthorizedError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise UnauthorizedError(f"invalid token: {_token_problem(exc)}") from exc
    _check_times(claims["iat"], claims["exp"])
    role, scope, level = claims.get("role"), claims.get("scope"), claims.get("lvl")
    if not (isinstance(role, str) and isinstance(scope, str) and isinstance(level, str)
            and isinstance(claims["sub"], str)):
        raise UnauthorizedError("token lacks role, scope, lvl or sub (strings)")
    try:
        _check_claims(role, level, scope)
    except ValueError as exc:
        raise UnauthorizedError(f"invalid token: {exc}") from exc
    principal = Principal(subject=str(claims["sub"]), role=role, scope=scope, level=level)
    _VERIFIED[key] = (principal, int(claims["exp"]))
    if len(_VERIFIED) > _VERIFIED_MAX:
        _VERIFIED.popitem(last=False)
    return principal


def principal_from_header(secret: str | None, authorization: str | None,
                          query_token: str | None = None) -> Principal:
    """Parse ``Authorization: Bearer …`` (or ``?access_token=`` for EventSource/WebSocket)."""
    if secret is None:
        raise UnavailableAuthError("SAFECITY_JWT_SECRET is not set on the server")
    token = None
    if authorization:
        kind, _, value = authorization.partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            raise UnauthorizedError("Authorization header must be 'Bearer <token>'")
        token = value.strip()
    elif query_token:
        token = query_token
    if not token:
        raise UnauthorizedError("a bearer token is required (Authorization: Bearer <token>)")
    return decode_token(secret, token)


@dataclass(frozen=True, slots=True)
class Authenticator:
    """Checks bearer tokens with the server's signing secret (``SAFECITY_JWT_SECRET``);
    one per process, given to whatever authenticates a request or a WebSocket."""

    secret: str | None

    def principal(self, authorization: str | None, query_token: str | None = None) -> Principal:
        """The caller of ``Authorization: Bearer …`` (or of a token in the query); 401 without
        a valid one, 503 when the server has no secret."""
        return principal_from_header(self.secret, authorization, query_token)


MAX_TTL_S = 30 * 24 * 3600
"""The longest a token may live (``safecity token --ttl-hours`` allows 30 days)."""
CLOCK_SKEW_S = 300
_SCOPE_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _check_times(issued: Any, expires: Any) -> None:
    """``iat`` and ``exp`` whole seconds (not strings, floats or booleans), issued no later
    than now and living at most :data:`MAX_TTL_S`: a forged ``exp`` of ``1e30`` or
    ``"9999999999"`` is refused, not trusted for ever."""
    if type(issued) is not int or type(expires) is not int:
        raise UnauthorizedError("invalid token: iat and exp must be whole seconds")
    now = time.time()
    if issued > now + CLOCK_SKEW_S:
        raise UnauthorizedError("invalid token: issued in the future")
    if not issued < expires <= issued + MAX_TTL_S:
        raise UnauthorizedError(f"invalid token: it may live at most {MAX_TTL_S // 86400} days")


MINT_HINT = "mint one with `safecity token --role ROLE --scope CODE`"


def _token_problem(exc: jwt.PyJWTError) -> str:
    """What is wrong with a token, in words a person can act on (PyJWT's own messages
    include decoder internals such as "'utf-8' codec can't decode byte 0xb7")."""
    if isinstance(exc, jwt.InvalidSignatureError):
        return ("its signature does not match this server's secret (was it minted with another "
                f"SAFECITY_JWT_SECRET?); {MINT_HINT}")
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return f"it is not signed with {ALGORITHM}, the only algorithm this service accepts; {MINT_HINT}"
    if isinstance(exc, jwt.DecodeError):
        return f"it is not a JSON Web Token (three base64url parts separated by dots); {MINT_HINT}"
    if isinstance(exc, jwt.InvalidIssuerError):
        return f"it was not issued by {ISSUER}; {MINT_HINT}"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"it lacks the {exc.claim!r} claim; {MINT_HINT}"
    return f"{exc}; {MINT_HINT}"


class UnavailableAuthError(UnauthorizedError):
    """The server has no signing secret: nobody can be authenticated."""

    status = 503
