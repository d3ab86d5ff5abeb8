"""Dependency providers of the call, roster and feed controllers (one place, shared)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, principal_from_header
from api.domain.calls.services import CallService
from api.domain.feeds.services import FeedService
from api.domain.stations.areas import Areas
from api.domain.stations.services import RosterService


def provide_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller from ``Authorization: Bearer`` (or ``?access_token=``); 401 without one."""
    return principal_from_header(request.app.state.settings.jwt_secret,
                                 request.headers.get("authorization"),
                                 request.query_params.get("access_token"))


async def provide_db_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """A session per request; services open and commit their own transactions on it."""
    async with state.db_sessions() as session:
        yield session


def provide_call_service(db_session: AsyncSession, state: State) -> CallService:
    return CallService(session=db_session, context=state.call_context)


def provide_roster_service(db_session: AsyncSession) -> RosterService:
    return RosterService(session=db_session)


def provide_areas(state: State) -> Areas:
    areas: Areas = state.areas.get()
    return areas


def provide_feed_service(state: State) -> FeedService:
    feeds: FeedService = state.feeds
    return feeds
