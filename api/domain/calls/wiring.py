"""The call service's part of the app: controllers, the channels plugin, start-up.

``create_app`` takes these parts as they are, so the app module stays a list of areas.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.types import ControllerRouterHandler
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.channels import FeedPublisher, ServiceChannels, build_channels_plugin
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

INTAKE_SPARE_CONNECTIONS = 2
"""The intake's own pool holds its writers (:data:`api.db.group_commit.WRITERS`) and
these, for the rare roster reads of the on-duty cache."""

WARM_POINT = (31.5204, 74.3587)
"""A point in Lahore routed once at start-up, so the first call does not build the
router's single-point lookup."""


class BoundaryDerived(Generic[T]):
    """A value built from the boundary set being served (its :class:`Areas`, its urban
    tehsils), rebuilt when that set changes."""

    def __init__(self, boundaries: Callable[[], BoundarySet], build: Callable[[BoundarySet], T],
                 *, on_change: Callable[[], None] | None = None) -> None:
        self._boundaries = boundaries
        self._build = build
        self._on_change = on_change
        self._value: tuple[str, T] | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        boundaries = self._boundaries()
        version = str(boundaries.version)
        value = self._value
        if value is None or value[0] != version:
            with self._lock:
                if self._value is None or self._value[0] != version:
                    replaced = self._value is not None
                    self._value = (version, self._build(boundaries))
                    if replaced and self._on_change is not None:
                        self._on_change()
                value = self._value
        return value[1]


def settle_heap() -> None:
    """Collect, then move everything alive into the collector's permanent generation.

    Called once the service has started (boundary set, router, tables loaded) and again
    when a new boundary set replaces the old one. The collector then never walks those
    objects: a full collection took ~140 ms with them (every few seconds under load, the
    whole process stalled, the p99 of call intake with it) and takes ~5 ms without.
    """
    gc.collect()
    gc.freeze()


def _resettle_heap() -> None:
    gc.unfreeze()  # the replaced set's objects may be garbage now
    settle_heap()


@dataclass
class CallServiceParts:
    """What the app registers for calls, rosters and feeds."""

    route_handlers: list[ControllerRouterHandler]
    channels: ServiceChannels
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
        from api.db.group_commit import WRITERS  # noqa: PLC0415
        from api.db.intake import PostgresCallStore, SqliteCallStore  # noqa: PLC0415
        from api.domain.calls.categories import Categories  # noqa: PLC0415
        from api.domain.calls.intake import CallIntake  # noqa: PLC0415
        from api.domain.calls.services import CallContext, utc_now  # noqa: PLC0415
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
            # plan of the intake statement (built for it) instead of planning every call;
            # no sequential scans there: a plan cached while a fresh database's calls table
            # is nearly empty would otherwise scan it whole for every call as it grows
            intake_engine = async_engine(settings, **{
                **options, "pool_size": WRITERS + INTAKE_SPARE_CONNECTIONS,
                "connect_args": {**options["connect_args"], "server_settings": {
                    "plan_cache_mode": "auto", "enable_seqscan": "off"}}})
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        areas = BoundaryDerived(lambda: app.state.jurisdictions.boundaries, Areas,
                                on_change=_resettle_heap)
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
            PostgresCallStore(intake_engine) if intake_engine else SqliteCallStore(sessions))
        app.state.feeds = FeedService(sessions, channels)
        alerting = alert_parts(app, settings, sessions=sessions, publisher=publisher,
                               channels=channels, clock=clock)
        with contextlib.suppress(ValueError):  # a boundary set without Lahore routes nothing
            await anyio.to_thread.run_sync(lambda: app.state.routing.router.resolve(*WARM_POINT))
        areas.get()
        if settings.alerts.enabled:
            app.state.alert_context.urban()
        settle_heap()
        ticker = None
        try:
            async with anyio.create_task_group() as tasks:
                if settings.alerts.enabled and settings.alerts.tick_s > 0:
                    if settings.database.is_postgres:  # started and stopped with the bus
                        ticker = AlertTicker(app.state.alert_context, settings.alerts.tick_s,
                                             lambda: async_engine(settings, **{
                                                 **options, "pool_size": ALERT_CONNECTIONS}))
                        channels.producers.append(ticker)
                    else:  # SQLite: one writer at a time anyway, so on the request loop
                        tasks.start_soon(every, settings.alerts.tick_s, alerting.engine.run_due,
                                         0.0)
                if settings.alerts.enabled and settings.alerts.hotspot_scan_h > 0:
                    tasks.start_soon(every, settings.alerts.hotspot_scan_h * 3600,
                                     alerting.hotspots.scan, HOTSPOT_FIRST_SCAN_S)
                yield
                tasks.cancel_scope.cancel()
        finally:
            gc.unfreeze()  # an app made again in this process (tests) starts from scratch
            if ticker is not None:
                await ticker.stop()  # (stopped with the bus already, unless it failed)
                channels.producers.remove(ticker)
            await engine.dispose()
            if intake_engine is not None:
                await intake_engine.dispose()

    return CallServiceParts(
        route_handlers=[CallController, StationController, FeedController, station_feed_socket,
                        area_feed_socket, AlertController, alert_feed_socket, StatsController],
        channels=channels,
        lifespan=lifespan,
    )


ALERT_CONNECTIONS = 2
"""The alert ticker's own pool (its thread has its own event loop)."""


class CrossLoopPublisher(FeedPublisher):
    """Publishes from another thread's event loop through the app's (the channels plugin
    belongs to the app's loop)."""

    def __init__(self, inner: FeedPublisher, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(inner.plugin)
        self.inner = inner
        self.loop = loop

    async def publish(self, payload: bytes, channels: Iterable[str]) -> bool:
        try:
            done = asyncio.run_coroutine_threadsafe(
                self.inner.publish(payload, list(channels)), self.loop)
        except RuntimeError:  # the app's loop is gone (shutting down): replay covers it
            return False
        return await asyncio.wrap_future(done)


class AlertTicker:
    """The alert engine's tick (:meth:`AlertEngine.run_due` every ``tick_s``) on a thread
    with its own event loop and connections (PostgreSQL).

    On the request loop, evaluating a second's worth of new calls held the loop for tens
    of milliseconds at a time (every call waited behind it), and under load the engine,
    one coroutine among many, fell behind. On its own thread the interpreter switches
    between the two every few milliseconds and the engine keeps its share. Alerts are
    published through the app's loop; ``SKIP LOCKED`` shares due calls with other workers
    (and with a tick asked for through ``app.state.alert_engine``) as before.
    """

    def __init__(self, ctx: Any, tick_s: float, make_engine: Callable[[], Any]) -> None:
        self.ctx = ctx
        self.tick_s = tick_s
        self.make_engine = make_engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._main, args=(loop,),
                                        name="safecity-alert-ticker", daemon=True)
        self._thread.start()

    def _main(self, app_loop: asyncio.AbstractEventLoop) -> None:
        try:
            asyncio.run(self._run(app_loop))
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("the alert ticker stopped")

    async def stop(self) -> None:
        """Stop ticking; a tick under way is cancelled (its transaction rolls back, and
        the calls it held stay due for the next start or another worker)."""
        self._stop.set()
        if self._task is not None:
            loop, task = self._task
            with contextlib.suppress(RuntimeError):  # its loop has already ended
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            import anyio  # noqa: PLC0415

            await anyio.to_thread.run_sync(self._thread.join, 30.0)

    async def _run(self, app_loop: asyncio.AbstractEventLoop) -> None:
        from api.domain.alerts.engine import AlertEngine  # noqa: PLC0415

        task = asyncio.current_task()
        if task is not None:
            self._task = (asyncio.get_running_loop(), task)
        if self._stop.is_set():
            return
        engine = self.make_engine()
        publisher = self.ctx.publisher
        ctx = dataclasses.replace(
            self.ctx, sessions=async_sessionmaker(engine, expire_on_commit=False),
            publisher=CrossLoopPublisher(publisher, app_loop) if publisher else None)
        alerts = AlertEngine(ctx)
        try:
            while not self._stop.is_set():
                try:
                    await alerts.run_due()
                except Exception:
                    log.exception("alert tick failed; retrying in %.0f s", self.tick_s)
                await asyncio.sleep(self.tick_s)
        finally:
            await engine.dispose()


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
    from api.shipped import load_categories  # noqa: PLC0415
    from geo.response import SlaTable, urban_tehsils  # noqa: PLC0415

    urban = BoundaryDerived(lambda: app.state.jurisdictions.boundaries,
                            lambda boundaries: urban_tehsils(boundaries.layer("tehsil")))
    sla = SlaTable.from_categories(load_categories())
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
