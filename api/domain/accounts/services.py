"""Accounts and browser sessions, with no HTTP in sight.

A signed-in browser acts as an :class:`api.auth.Principal` built from its account's
role and scope — the same class, and so the same permission and scope rules, as a
bearer token's. Passwords are hashed with argon2id (argon2-cffi's defaults: 64 MiB, 3
passes, 4 lanes); hashing and checking take ~50 ms of CPU each and run in a thread
(the library releases the GIL), never on the event loop.

Failed sign-ins are counted per username and per client address (:class:`SignInPolicy`);
past a few they are answered slowly, past more the key is locked for a while. The
refusal is the same whether the username, the password or both were wrong, and a
username that does not exist costs the same hash check as one that does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.areas import Areas
from api.auth import Principal
from api.db import accounts as store
from api.errors import AppError, ConflictError, ForbiddenError, NotFoundError, UnprocessableError
from api.tokens import check_claims

SESSION_COOKIE = "safecity_session"
"""The browser's session token (HttpOnly, SameSite=Strict, path ``/``, Secure over HTTPS)."""
CSRF_HEADER = "x-csrf-token"
"""Where scripts (htmx ``hx-headers``) send the session's CSRF token."""
CSRF_FIELD = "_csrf"
"""Where forms send it."""
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
"""Lower-case letters, digits, ``.``, ``_``, ``-``; 2 to 64 characters."""
MIN_PASSWORD = 10
WRONG_CREDENTIALS = "Wrong username or password."
"""The one refusal of a sign-in with bad credentials (never says which was wrong)."""


@dataclass(frozen=True)
class SignInPolicy:
    """Session lifetimes and the throttle of failed sign-ins (``docs/web.md``)."""

    session_s: int = 12 * 3600
    """A session ends this long after sign-in, used or not (one shift)."""
    idle_s: int = 3600
    """… or after this long without a request."""
    touch_s: int = 60
    """A session's last use is written at most this often (not on every request)."""
    window_s: int = 15 * 60
    """Failures older than this are forgotten."""
    slow_after: int = 3
    """From this many failures of a key on, each refusal is answered after a delay …"""
    delay_step_s: float = 0.5
    """… growing by this much per further failure …"""
    max_delay_s: float = 2.0
    """… up to this."""
    user_lock_after: int = 5
    """This many failures of one username lock it for :attr:`lock_s`."""
    address_lock_after: int = 20
    """This many failures from one client address lock that address for :attr:`lock_s`."""
    lock_s: int = 15 * 60


class SignInRefusedError(AppError):
    """Wrong credentials (401) or a locked username or address (429)."""

    status = 401

    def __init__(self, message: str, *, status: int = 401, retry_after_s: int | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s


class SignInRequiredError(Exception):
    """A page was asked for without a live session (answered with a redirect to the
    sign-in form, back to ``next_path`` afterwards)."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in first")
        self.next_path = next_path

    @classmethod
    def at(cls, path: str, query: str = "") -> SignInRequiredError:
        return cls(same_site_path(path + (f"?{query}" if query else "")))


@dataclass(frozen=True, slots=True)
class PageUser:
    """Who a signed-in browser is: the principal its requests act as, and what a page shows."""

    principal: Principal
    username: str
    csrf_token: str
    area_name: str

    def csrf_matches(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(str(sent), self.csrf_token)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: the token for the cookie (shown once, stored hashed) and its user."""

    token: str
    user: PageUser


@dataclass(frozen=True, slots=True)
class Account:
    """An account as listed (no hash)."""

    username: str
    role: str
    scope_code: str
    scope_level: str
    disabled: bool
    created_at: dt.datetime
    last_sign_in_at: dt.datetime | None


def token_hash(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def principal_of(username: str, role: str, scope_code: str, scope_level: str) -> Principal:
    """The principal of an account's sessions (``subject`` ``user:<name>`` in the audit log)."""
    return Principal(subject=f"user:{username}", role=role, scope=scope_code, level=scope_level)


@dataclass
class AccountService:
    """Accounts, sessions and the sign-in throttle (one per process)."""

    sessions: async_sessionmaker[AsyncSession]
    areas: Callable[[], Areas]
    clock: Callable[[], dt.datetime]
    policy: SignInPolicy = field(default_factory=SignInPolicy)
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    _dummy_hash: str | None = None

    # ------------------------------------------------------------------ accounts
    async def add_user(self, username: str, password: str, role: str, scope: str) -> Account:
        """A new account; the scope code must exist at the role's level (as for tokens)."""
        name = username.strip().lower()
        if not USERNAME.match(name):
            raise UnprocessableError("a username is 2-64 lower-case letters, digits, '.', '_' or '-'")
        if len(password) < MIN_PASSWORD:
            raise UnprocessableError(f"a password has at least {MIN_PASSWORD} characters")
        area = self.areas().find(scope)
        if area is None:
            raise NotFoundError(f"no area has code {scope!r}")
        try:
            check_claims(role, area.level)
        except ValueError as exc:
            raise UnprocessableError(str(exc)) from exc
        hashed = await anyio.to_thread.run_sync(self.hasher.hash, password)
        async with self.sessions() as session:
            try:
                record = await store.add_user(session, username=name, password_hash=hashed, role=role,
                                              scope_code=area.code, scope_level=area.level,
                                              now=self.clock())
            except store.UserExistsError as exc:
                raise ConflictError(f"user {name!r} exists already") from exc
        return _account(record)

    async def list_users(self) -> list[Account]:
        async with self.sessions() as session:
            return [_account(r) for r in await store.list_users(session)]

    async def disable_user(self, username: str) -> None:
        """The account can no longer sign in, and its open sessions end now."""
        async with self.sessions() as session:
            if not await store.disable_user(session, username.strip().lower(), self.clock()):
                raise NotFoundError(f"no user {username!r}")

    # ------------------------------------------------------------------ sign-in
    async def sign_in(self, username: str, password: str, address: str) -> SignedIn:
        """A new session for right credentials of an enabled account; otherwise
        :class:`SignInRefusedError` (after the throttle's delay, when there is one)."""
        name = username.strip().lower()[:64]
        keys = [f"user:{name}", f"addr:{address}"]
        now = self.clock()
        async with self.sessions() as session:
            states = await store.throttle_states(session, keys)
            locked = [s.locked_until for s in states.values()
                      if s.locked_until is not None and s.locked_until > now]
            if locked:
                wait = int((max(locked) - now).total_seconds()) + 1
                raise SignInRefusedError(
                    f"Too many failed sign-ins. Try again in {max(1, round(wait / 60))} min.",
                    status=429, retry_after_s=wait)
            user = await store.user_by_name(session, name) if USERNAME.match(name) else None
            good = await self._verify(user.password_hash if user else None, password)
            if user is not None and good and not user.disabled:
                return await self._open_session(session, user, password, now, keys[0])
            if user is not None and user.disabled and good:
                raise SignInRefusedError(WRONG_CREDENTIALS)  # nothing to throttle: the password was right
            delay = await self._count_failure(session, keys, states, now)
        if delay > 0:
            await asyncio.sleep(delay)
        raise SignInRefusedError(WRONG_CREDENTIALS)

    async def _verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; an unknown user is checked against a
        throw-away hash so that the answer takes as long."""
        if stored is None and self._dummy_hash is None:
            self._dummy_hash = await anyio.to_thread.run_sync(self.hasher.hash, secrets.token_hex(16))
        against = stored if stored is not None else self._dummy_hash

        def check() -> bool:
            try:
                return bool(self.hasher.verify(str(against), password))
            except (VerificationError, InvalidHashError):
                return False

        matches = await anyio.to_thread.run_sync(check)
        return matches and stored is not None

    async def _open_session(self, session: AsyncSession, user: store.UserRecord, password: str,
                            now: dt.datetime, user_key: str) -> SignedIn:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        new_hash = (await anyio.to_thread.run_sync(self.hasher.hash, password)
                    if self.hasher.check_needs_rehash(user.password_hash) else None)
        await store.signed_in(session, user.id, id_hash=token_hash(token), csrf_token=csrf, now=now,
                              expires_at=now + dt.timedelta(seconds=self.policy.session_s),
                              new_hash=new_hash)
        await store.clear_throttle(session, user_key)
        return SignedIn(token, self._page_user(user, csrf))

    async def _count_failure(self, session: AsyncSession, keys: list[str],
                             states: dict[str, store.ThrottleState], now: dt.datetime) -> float:
        """Count one failure against each key (locking those past their limit); the delay
        to answer after."""
        policy, window = self.policy, dt.timedelta(seconds=self.policy.window_s)
        updated: list[store.ThrottleState] = []
        for key in keys:
            known = states.get(key)
            fresh = known is None or now - known.first_failed_at > window
            failures = 1 if fresh or known is None else known.failures + 1
            limit = policy.user_lock_after if key.startswith("user:") else policy.address_lock_after
            locked = now + dt.timedelta(seconds=policy.lock_s) if failures >= limit else None
            updated.append(store.ThrottleState(key, failures, now if fresh or known is None
                                               else known.first_failed_at, locked))
        with contextlib.suppress(IntegrityError):  # a concurrent failure was written first
            await store.save_throttle(session, updated)
        worst = max(s.failures for s in updated)
        if worst < policy.slow_after:
            return 0.0
        return min(policy.max_delay_s, policy.delay_step_s * (worst - policy.slow_after + 1))

    # ------------------------------------------------------------------ sessions
    async def page_user(self, token: str) -> PageUser | None:
        """The user of a live session token; None when unknown, expired, idle too long or
        its account is disabled."""
        if not token or len(token) > 128:
            return None
        digest = token_hash(token)
        now = self.clock()
        async with self.sessions() as session:
            found = await store.session_user(session, digest)
            if found is None:
                return None
            web, user = found
            idle_until = web.last_seen_at + dt.timedelta(seconds=self.policy.idle_s)
            if user.disabled or web.expires_at <= now or idle_until <= now:
                await store.end_session(session, digest)
                return None
            if (now - web.last_seen_at).total_seconds() >= self.policy.touch_s:
                await store.touch_session(session, digest, now)
        return self._page_user(user, web.csrf_token)

    async def sign_out(self, token: str) -> None:
        async with self.sessions() as session:
            await store.end_session(session, token_hash(token))

    def _page_user(self, user: store.UserRecord, csrf: str) -> PageUser:
        principal = principal_of(user.username, user.role, user.scope_code, user.scope_level)
        return PageUser(principal, user.username, csrf,
                        self.areas().name(user.scope_level, user.scope_code) or user.scope_code)


def _account(record: store.UserRecord) -> Account:
    return Account(record.username, record.role, record.scope_code, record.scope_level,
                   bool(record.disabled), record.created_at, record.last_sign_in_at)


def require_csrf(user: PageUser, sent: str | None) -> None:
    """403 unless a state-changing request carries the session's CSRF token."""
    if not user.csrf_matches(sent):
        raise ForbiddenError("missing or wrong CSRF token: reload the page and try again")


def same_site_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this site (``/…``, not ``//host`` or ``/\\host``),
    else ``default``: a sign-in never redirects to another site."""
    if (not target or not target.startswith("/") or target.startswith(("//", "/\\"))
            or any(c in target for c in "\\\r\n\t") or len(target) > 2000):
        return default
    return target


def template_context(user: PageUser | None, **context: Any) -> dict[str, Any]:
    """What ``base.html`` needs besides the page's own context: the user, the CSRF token
    and the nav entries the user's role may open."""
    nav: list[tuple[str, str]] = []
    if user is not None:
        role = user.principal.role
        nav.append(("Dashboard", "/"))
        if role == "sho":
            nav.append(("Console", "/console"))
        if role in {"planner", "sho", "dpo", "cpo", "rpo", "ig", "admin"}:
            p = user.principal
            nav.append(("Maps", f"/maps/calls?level={p.level}&code={p.scope}"))
        if role in {"planner", "ig", "rpo", "dpo", "cpo", "admin"}:  # plan.read
            nav.append(("Plans", "/plans"))
    nav.append(("API docs", "/schema"))
    return {"user": user, "csrf_token": user.csrf_token if user else "", "nav": nav, **context}
