"""The call service's part of the app: controllers, the channels plugin, start-up.

``create_app`` takes these parts as they are, so the app module stays a list of areas.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.channels import FeedPublisher, build_channels_plugin
from api.domain.stations.areas import Areas
from api.settings import Settings
from jurisdictions.boundaries import BoundarySet

PG_CONNECT_TIMEOUT_S = 5
"""A database that does not answer a connect within this is reported as down (503)."""

DEFAULT_POOL_SIZE = 24
"""Connections per worker (``SAFECITY_DB_POOL``). No overflow: overflow connections are
closed as soon as they are returned, and re-opening one (TLS probe, type introspection,
statement preparation) costs more than waiting a moment for a pooled one."""

WARM_POINT = (31.5204, 74.3587)
"""A point in Lahore routed once at start-up, so the first call does not build the
router's single-point lookup."""


class AreasCache:
    """:class:`Areas` of the boundary set being served, rebuilt when that set changes."""

    def __init__(self, boundaries: Callable[[], BoundarySet]) -> None:
        self._boundaries = boundaries
        self._areas: Areas | None = None
        self._lock = threading.Lock()

    def get(self) -> Areas:
        boundaries = self._boundaries()
        areas = self._areas
        if areas is None or areas.version != boundaries.version:
            with self._lock:
                if self._areas is None or self._areas.version != boundaries.version:
                    self._areas = Areas(boundaries)
                areas = self._areas
        return areas


@dataclass
class CallServiceParts:
    """What the app registers for calls, rosters and feeds."""

    route_handlers: list[ControllerRouterHandler]
    channels: ChannelsPlugin
    lifespan: Callable[[Litestar], Any]


def call_service_parts(settings: Settings) -> CallServiceParts:
    """Controllers, the channels plugin (Redis when ``REDIS_URL`` is set) and a lifespan.

    The lifespan must run after the one that puts ``routing`` and ``jurisdictions`` on
    ``app.state``; it opens the async engine and builds the per-process context.
    """
    from api.domain.calls.controllers import CallController  # noqa: PLC0415
    from api.domain.feeds.controllers import (  # noqa: PLC0415
        FeedController,
        area_feed_socket,
        station_feed_socket,
    )
    from api.domain.stations.controllers import StationController  # noqa: PLC0415

    channels = build_channels_plugin(settings.redis_url)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        import anyio  # noqa: PLC0415

        from api.db.engine import async_engine  # noqa: PLC0415
        from api.domain.calls.categories import Categories  # noqa: PLC0415
        from api.domain.calls.services import CallContext  # noqa: PLC0415
        from api.domain.feeds.services import FeedService  # noqa: PLC0415

        options: dict[str, Any] = {}
        if settings.database.is_postgres:
            pool = int(os.environ.get("SAFECITY_DB_POOL", DEFAULT_POOL_SIZE))
            # custom plans: after five executions PostgreSQL may switch a prepared statement
            # to a generic plan, which for the duplicate search (H3 cells + a time window)
            # picks the time index and scans the whole window: measured 9 ms instead of 1
            server = {"plan_cache_mode": "force_custom_plan"}
            options = {"pool_size": pool, "max_overflow": 0, "pool_timeout": 10,
                       "connect_args": {"timeout": PG_CONNECT_TIMEOUT_S, "server_settings": server}}
        engine = async_engine(settings, **options)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        areas = AreasCache(lambda: app.state.jurisdictions.boundaries)
        app.state.settings = settings
        app.state.db_sessions = sessions
        app.state.areas = areas
        app.state.call_context = CallContext(
            router=lambda: app.state.routing.router,
            areas=areas.get,
            boundary_set=lambda: str(app.state.routing.router.index.version),
            categories=Categories(),
            publisher=FeedPublisher(channels),
        )
        app.state.feeds = FeedService(sessions, channels)
        with contextlib.suppress(ValueError):  # a boundary set without Lahore routes nothing
            await anyio.to_thread.run_sync(lambda: app.state.routing.router.resolve(*WARM_POINT))
        try:
            yield
        finally:
            await engine.dispose()

    return CallServiceParts(
        route_handlers=[CallController, StationController, FeedController, station_feed_socket,
                        area_feed_socket],
        channels=channels,
        lifespan=lifespan,
    )
