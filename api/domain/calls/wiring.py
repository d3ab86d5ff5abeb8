"""The call service's part of the app: controllers, the channels plugin, start-up.

``create_app`` takes these parts as they are, so the app module stays a list of areas.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.channels import FeedPublisher, build_channels_plugin
from api.domain.stations.areas import Areas
from api.settings import Settings
from jurisdictions.boundaries import BoundarySet

log = logging.getLogger(__name__)
T = TypeVar("T")

PG_CONNECT_TIMEOUT_S = 5
"""A database that does not answer a connect within this is reported as down (503)."""

DEFAULT_POOL_SIZE = 24
"""Connections per worker (``SAFECITY_DB_POOL``). No overflow: overflow connections are
closed as soon as they are returned, and re-opening one (TLS probe, type introspection,
statement preparation) costs more than waiting a moment for a pooled one."""

INTAKE_WRITERS = 2
"""Transactions writing calls at once per worker (group commit: calls arriving meanwhile
queue for the next one)."""
INTAKE_CONNECTIONS = INTAKE_WRITERS + 2
"""The intake's own pool: its writers and the rare roster reads of the on-duty cache."""

WARM_POINT = (31.5204, 74.3587)
"""A point in Lahore routed once at start-up, so the first call does not build the
router's single-point lookup."""


class BoundaryDerived(Generic[T]):
    """A value built from the boundary set being served (its :class:`Areas`, its urban
    tehsils), rebuilt when that set changes."""

    def __init__(self, boundaries: Callable[[], BoundarySet], build: Callable[[BoundarySet], T]
                 ) -> None:
        self._boundaries = boundaries
        self._build = build
        self._value: tuple[str, T] | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        boundaries = self._boundaries()
        version = str(boundaries.version)
        value = self._value
        if value is None or value[0] != version:
            with self._lock:
                if self._value is None or self._value[0] != version:
                    self._value = (version, self._build(boundaries))
                value = self._value
        return value[1]


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
    from api.domain.alerts.controllers import (  # noqa: PLC0415
        AlertController,
        StatsController,
        alert_feed_socket,
    )
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
        from api.domain.calls.intake import OneStatement  # noqa: PLC0415
        from api.domain.calls.services import CallContext, CallIntake, utc_now  # noqa: PLC0415
        from api.domain.feeds.services import FeedService  # noqa: PLC0415

        options: dict[str, Any] = {}
        if settings.database.is_postgres:
            pool = int(os.environ.get("SAFECITY_DB_POOL", DEFAULT_POOL_SIZE))
            # custom plans: after five executions PostgreSQL may switch a prepared statement
            # to a generic plan, which for the duplicate search (H3 cells + a time window)
            # picks the time index and scans the whole window: measured 9 ms instead of 1
            server = {"plan_cache_mode": "force_custom_plan"}
            # no pre-ping: with asyncpg it is three round trips per checkout, more than a
            # call's own statement; connections the server closed are dropped at checkout
            options = {"pool_size": pool, "max_overflow": 0, "pool_timeout": 10,
                       "pool_pre_ping": False,
                       "connect_args": {"timeout": PG_CONNECT_TIMEOUT_S, "server_settings": server}}
        engine = async_engine(settings, **options)
        intake_engine = None
        if settings.database.is_postgres:
            # call intake on its own few connections, where PostgreSQL may keep a generic
            # plan of the intake statement (built for it) instead of planning every call
            intake_engine = async_engine(settings, **{
                **options, "pool_size": INTAKE_CONNECTIONS,
                "connect_args": {**options["connect_args"],
                                 "server_settings": {"plan_cache_mode": "auto"}}})
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        areas = BoundaryDerived(lambda: app.state.jurisdictions.boundaries, Areas)
        app.state.settings = settings
        app.state.db_sessions = sessions
        app.state.areas = areas
        clock = app.state.get("clock") or utc_now  # tests inject one
        publisher = FeedPublisher(channels)
        app.state.call_context = CallContext(
            router=lambda: app.state.routing.router,
            areas=areas.get,
            boundary_set=lambda: str(app.state.routing.router.index.version),
            categories=Categories(),
            publisher=publisher,
            clock=clock,
            alerts=settings.alerts.enabled,
        )
        app.state.call_intake = CallIntake(
            app.state.call_context, sessions,
            OneStatement(intake_engine, writers=INTAKE_WRITERS) if intake_engine else None)
        app.state.feeds = FeedService(sessions, channels)
        alerting = alert_parts(app, settings, sessions=sessions, publisher=publisher,
                               channels=channels, clock=clock)
        with contextlib.suppress(ValueError):  # a boundary set without Lahore routes nothing
            await anyio.to_thread.run_sync(lambda: app.state.routing.router.resolve(*WARM_POINT))
        try:
            async with anyio.create_task_group() as tasks:
                if settings.alerts.enabled and settings.alerts.tick_s > 0:
                    tasks.start_soon(every, settings.alerts.tick_s, alerting.engine.run_due, 0.0)
                if settings.alerts.enabled and settings.alerts.hotspot_scan_h > 0:
                    tasks.start_soon(every, settings.alerts.hotspot_scan_h * 3600,
                                     alerting.hotspots.scan, HOTSPOT_FIRST_SCAN_S)
                yield
                tasks.cancel_scope.cancel()
        finally:
            await engine.dispose()
            if intake_engine is not None:
                await intake_engine.dispose()

    return CallServiceParts(
        route_handlers=[CallController, StationController, FeedController, station_feed_socket,
                        area_feed_socket, AlertController, alert_feed_socket, StatsController],
        channels=channels,
        lifespan=lifespan,
    )


HOTSPOT_FIRST_SCAN_S = 120.0
"""The first emerging hot-spot scan waits this long after start-up (the service answers
calls first; dedup keys make a rescan after a restart harmless)."""


@dataclass
class AlertParts:
    engine: Any
    hotspots: Any


def alert_parts(app: Litestar, settings: Settings, *, sessions: Any, publisher: FeedPublisher,
                channels: ChannelsPlugin, clock: Callable[[], Any]) -> AlertParts:
    """The alert engine, services and feeds on ``app.state`` (rules from the policy file)."""
    from api.domain.alerts.engine import AlertContext, AlertEngine  # noqa: PLC0415
    from api.domain.alerts.feeds import AlertFeedService  # noqa: PLC0415
    from api.domain.alerts.rules import AlertPolicy  # noqa: PLC0415
    from api.domain.alerts.services import AlertService, HotspotScanner  # noqa: PLC0415
    from api.domain.stats.services import ResponseStatsService  # noqa: PLC0415
    from geo.response import SlaTable, urban_tehsils  # noqa: PLC0415

    urban = BoundaryDerived(lambda: app.state.jurisdictions.boundaries,
                            lambda boundaries: urban_tehsils(boundaries.layer("tehsil")))
    sla = SlaTable.from_categories()
    ctx = AlertContext(sessions=sessions, policy=AlertPolicy.load(settings.alerts.policy_path),
                       sla=sla, urban=urban.get,
                       publisher=publisher, clock=clock)
    app.state.alert_context = ctx
    app.state.alert_engine = AlertEngine(ctx)
    app.state.alert_service = AlertService(ctx, app.state.areas.get)
    app.state.alert_feeds = AlertFeedService(sessions, channels)
    app.state.hotspot_scanner = HotspotScanner(ctx, lambda: app.state.analytics,
                                               lambda: app.state.routing.router)
    app.state.response_stats = ResponseStatsService(
        sessions, lambda: app.state.jurisdictions.boundaries, app.state.areas.get, sla)
    return AlertParts(app.state.alert_engine, app.state.hotspot_scanner)


async def every(interval_s: float, job: Callable[[], Any], first_delay_s: float) -> None:
    """Run ``job`` every ``interval_s`` seconds; a failure (database down) is logged and
    the next run tries again, so deadlines that fell due meanwhile are not lost."""
    import anyio  # noqa: PLC0415

    await anyio.sleep(first_delay_s)
    while True:
        try:
            await job()
        except Exception:
            log.exception("background job %s failed; retrying in %.0f s",
                          getattr(job, "__qualname__", job), interval_s)
        await anyio.sleep(interval_s)
