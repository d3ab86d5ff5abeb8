"""Tables of web sign-in: accounts, their sessions, and the throttle of failed sign-ins.

- ``users``: one row per account (``safecity users add``): a lower-case ``username``,
  the argon2id hash of the password (never the password), the role and the scope
  (``scope_code`` at ``scope_level``) its sessions act with — the same pair a bearer
  token carries, checked by the same rules (:mod:`api.auth`) — and ``disabled``.
- ``web_sessions``: one row per signed-in browser. The browser holds a random token;
  the row holds only its SHA-256 (``id_hash``), so a copy of the table signs nobody in.
  Each row has its CSRF token, an absolute expiry and the time it was last used (idle
  expiry).
- ``sign_in_throttle``: failed sign-ins counted per key (``user:<name>`` and
  ``addr:<client address>``) in a window, and until when the key is locked. In the
  database so every worker process counts the same failures.

Shares :data:`api.db.models.metadata` (migration ``0008``).
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import metadata

__all__ = ["SignInThrottleRecord", "UserRecord", "WebSessionRecord", "metadata"]


class UserRecord(DefaultBase):
    """One account that can sign in to the web pages."""

    __tablename__ = "users"

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    scope_code: Mapped[str] = mapped_column(String(64))
    scope_level: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class WebSessionRecord(DefaultBase):
    """One signed-in browser, known by the hash of the token in its cookie."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user_id", "user_id"),
                      Index("ix_web_sessions_expires_at", "expires_at"))

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class SignInThrottleRecord(DefaultBase):
    """Failed sign-ins of one username or one client address."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_failed_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
