"""Reads and writes of accounts, web sessions and the sign-in throttle (one seam for the
accounts service; the tables are :mod:`api.db.account_models`).

Every function takes the caller's :class:`~sqlalchemy.ext.asyncio.AsyncSession` and its
``now``; the throttle's arithmetic (windows, locks) is the caller's, this module only
stores what it decides.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.account_models import SignInThrottleRecord, UserRecord, WebSessionRecord
from api.db.transactions import write_transaction

__all__ = ["ThrottleState", "UserExistsError", "UserRecord", "WebSessionRecord"]


class UserExistsError(Exception):
    """An account with that username exists already."""


@dataclass(frozen=True, slots=True)
class ThrottleState:
    """Failed sign-ins of one key: how many since ``first_failed_at``, locked until when."""

    key: str
    failures: int
    first_failed_at: dt.datetime
    locked_until: dt.datetime | None


async def add_user(session: AsyncSession, *, username: str, password_hash: str, role: str,
                   scope_code: str, scope_level: str, now: dt.datetime) -> UserRecord:
    """Insert an account; :class:`UserExistsError` when the username is taken."""
    record = UserRecord(id=uuid.uuid4(), username=username, password_hash=password_hash, role=role,
                        scope_code=scope_code, scope_level=scope_level, disabled=False,
                        created_at=now, updated_at=now, last_sign_in_at=None)
    try:
        async with write_transaction(session):
            session.add(record)
    except IntegrityError as exc:
        raise UserExistsError(username) from exc
    return record


async def list_users(session: AsyncSession) -> list[UserRecord]:
    """Every account, by username."""
    async with session.begin():
        return list((await session.scalars(select(UserRecord).order_by(UserRecord.username))).all())


async def user_by_name(session: AsyncSession, username: str) -> UserRecord | None:
    async with session.begin():
        found: UserRecord | None = await session.scalar(
            select(UserRecord).where(UserRecord.username == username))
        return found


async def disable_user(session: AsyncSession, username: str, now: dt.datetime) -> bool:
    """Mark the account disabled and end all its sessions; False when there is no such account."""
    async with write_transaction(session):
        user_id = await session.scalar(
            update(UserRecord).where(UserRecord.username == username)
            .values(disabled=True, updated_at=now).returning(UserRecord.id))
        if user_id is None:
            return False
        await session.execute(delete(WebSessionRecord).where(WebSessionRecord.user_id == user_id))
        return True


async def signed_in(session: AsyncSession, user_id: uuid.UUID, *, id_hash: str, csrf_token: str,
                    now: dt.datetime, expires_at: dt.datetime, new_hash: str | None) -> None:
    """Record a sign-in: a new session row, the account's last sign-in time (and its
    password hash, when the hasher's parameters changed since it was made); expired
    sessions of anyone are removed on the way."""
    async with write_transaction(session):
        await session.execute(delete(WebSessionRecord).where(WebSessionRecord.expires_at <= now))
        values: dict[str, object] = {"last_sign_in_at": now}
        if new_hash is not None:
            values |= {"password_hash": new_hash, "updated_at": now}
        await session.execute(update(UserRecord).where(UserRecord.id == user_id).values(**values))
        session.add(WebSessionRecord(id_hash=id_hash, user_id=user_id, csrf_token=csrf_token,
                                     created_at=now, last_seen_at=now, expires_at=expires_at))


async def session_user(session: AsyncSession, id_hash: str
                       ) -> tuple[WebSessionRecord, UserRecord] | None:
    """The session with this token hash and its account, or None."""
    async with session.begin():
        row = (await session.execute(
            select(WebSessionRecord, UserRecord).join(UserRecord, UserRecord.id == WebSessionRecord.user_id)
            .where(WebSessionRecord.id_hash == id_hash))).first()
    return None if row is None else (row[0], row[1])


async def touch_session(session: AsyncSession, id_hash: str, now: dt.datetime) -> None:
    """The session was used now (its idle expiry starts again)."""
    async with write_transaction(session):
        await session.execute(update(WebSessionRecord).where(WebSessionRecord.id_hash == id_hash)
                              .values(last_seen_at=now))


async def end_session(session: AsyncSession, id_hash: str) -> None:
    async with write_transaction(session):
        await session.execute(delete(WebSessionRecord).where(WebSessionRecord.id_hash == id_hash))


async def throttle_states(session: AsyncSession, keys: list[str]) -> dict[str, ThrottleState]:
    """The stored failures of these keys (keys without failures are absent)."""
    async with session.begin():
        rows = (await session.scalars(select(SignInThrottleRecord)
                                      .where(SignInThrottleRecord.key.in_(keys)))).all()
    return {r.key: ThrottleState(r.key, r.failures, r.first_failed_at, r.locked_until) for r in rows}


async def save_throttle(session: AsyncSession, states: list[ThrottleState]) -> None:
    """Write these keys' counts as decided by the caller (insert or replace)."""
    async with write_transaction(session):
        keys = [s.key for s in states]
        await session.execute(delete(SignInThrottleRecord).where(SignInThrottleRecord.key.in_(keys)))
        session.add_all([SignInThrottleRecord(key=s.key, failures=s.failures,
                                              first_failed_at=s.first_failed_at,
                                              locked_until=s.locked_until) for s in states])


async def clear_throttle(session: AsyncSession, key: str) -> None:
    async with write_transaction(session):
        await session.execute(delete(SignInThrottleRecord).where(SignInThrottleRecord.key == key))
