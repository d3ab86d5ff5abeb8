"""Every dependency the handlers take, registered once on the app (:func:`dependencies`).

Each is a part of the app's :class:`~api.container.Container`, or is made per request
from one (a database session and the services bound to it). A handler names what it needs
by these keys; nothing is read from ``app.state``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from litestar.connection import ASGIConnection
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import AuditService
from api.auth import Principal
from api.container import Container
from api.domain.accounts.controllers import provide_page_principal, provide_page_user
from api.domain.calls.intake import CallIntake
from api.domain.calls.services import CallService
from api.domain.maps.controllers import provide_map_principal
from api.domain.routing.services import RoutingAudit
from api.domain.stations.services import RosterService


def dependencies(container: Container) -> dict[str, Provide]:
    """The app's dependencies, by the parameter name handlers take them as."""
    served = container.served

    def principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
        """The caller from ``Authorization: Bearer`` (or ``?access_token=``); 401 without one."""
        return container.authenticator.principal(request.headers.get("authorization"),
                                                 request.query_params.get("access_token"))

    async def db_session() -> AsyncGenerator[AsyncSession, None]:
        """A session per request; services open and commit their own transactions on it."""
        async with container.sessions() as session:
            yield session

    def call_intake(principal: Principal) -> CallIntake:
        # taking the principal orders the two: Litestar resolves independent dependencies
        # of one level in a task group (a task each), ~50 µs more on every POST /calls
        return container.call_intake

    def calls(db_session: AsyncSession) -> CallService:
        return container.call_service(db_session)

    def rosters(db_session: AsyncSession) -> RosterService:
        return container.roster_service(db_session)

    def routing_audit(db_session: AsyncSession) -> RoutingAudit:
        return RoutingAudit(AuditService(session=db_session))

    return {
        "principal": Provide(principal, sync_to_thread=False),
        "map_principal": Provide(provide_map_principal),
        "page_user": Provide(provide_page_user), "accounts": _part(container.accounts),
        "page_principal": Provide(provide_page_principal),
        "authenticator": _part(container.authenticator),
        "db_session": Provide(db_session),
        "call_intake": Provide(call_intake, sync_to_thread=False),
        "calls": Provide(calls, sync_to_thread=False),
        "rosters": Provide(rosters, sync_to_thread=False),
        "routing_audit": Provide(routing_audit, sync_to_thread=False),
        # the boundary set being served: read per request (a new set replaces it)
        "areas": Provide(served.areas, sync_to_thread=False),
        "routing": Provide(lambda: served.routing, sync_to_thread=False),
        "jurisdictions": Provide(lambda: served.jurisdictions, sync_to_thread=False),
        "feeds": _part(container.feeds),
        "alerts": _part(container.alerts),
        "alert_feeds": _part(container.alert_feeds),
        "stats": _part(container.response_stats),
        "analytics": _part(container.analytics),
        "trends": _part(container.trends),
        "plans": _part(container.plans),
        "workers": _part(container.workers),
        "dashboard": _part(container.dashboard),
    }


def _part(value: object) -> Provide:
    """A part of the container that stays the same while the app runs."""
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)
