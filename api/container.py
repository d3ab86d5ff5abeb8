"""Everything the service shares, built once per process: what :func:`api.app.create_app`
serves from.

Read :class:`Container` top to bottom for the whole service: the database engines and
their pools, the live channels and the publisher, the boundary set being served (router,
areas, urban tehsils; replaced when a new set is loaded), the per-process contexts of
calls and alerts, every service, and the jobs that run beside the requests. Building it
connects to nothing; :meth:`Container.open` (the app's start-up) loads the boundary set
and warms what the first call would otherwise wait for, :meth:`Container.close` releases
it all. Handlers get its parts through :mod:`api.deps`.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Generic, TypeVar

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.areas import Areas
from api.audit import AuditService
from api.auth import Authenticator
from api.boundaries import current_boundaries
from api.channels import FeedPublisher, build_channels_plugin
from api.db.boundary_store import RouterHolder
from api.db.engine import async_engine, postgres_pool
from api.db.group_commit import WRITERS
from api.db.intake import PostgresCallStore, SqliteCallStore
from api.domain.accounts.services import AccountService
from api.domain.alerts.engine import AlertContext, AlertEngine
from api.domain.alerts.feeds import AlertFeedService
from api.domain.alerts.rules import AlertPolicy
from api.domain.alerts.services import AlertService, HotspotScanner
from api.domain.analytics.services import AnalyticsService, CallHistoryRepository
from api.domain.calls.categories import Categories
from api.domain.calls.intake import CallIntake
from api.domain.calls.services import CallContext, CallService, utc_now
from api.domain.dashboard.services import DashboardRefresher, DashboardService
from api.domain.feeds.services import FeedService
from api.domain.jurisdictions.services import JurisdictionService
from api.domain.plans.services import HEARTBEAT_S, REAP_EVERY_S, PlanRunner, PlanService, PlanStore
from api.domain.routing.services import RoutingService
from api.domain.stations.services import RosterService
from api.domain.stats.services import ResponseStatsService
from api.domain.trends.services import TrendsService
from api.jobs import JobRunner
from api.routing import current_router
from api.settings import Settings
from api.shipped import load_categories
from api.tokens import signing_secret
from api.watchers import CHECK_S as WATCHER_CHECK_S
from api.watchers import DASHBOARD_REFRESH_S, WatcherProcess
from api.workers import WorkerPool
from geo.response import SlaTable, urban_tehsils
from jurisdictions.boundaries import BoundarySet
from jurisdictions.router import Router

T = TypeVar("T")

INTAKE_SPARE_CONNECTIONS = 2
"""The intake's own pool holds its writers (:data:`api.db.group_commit.WRITERS`) and
these, for the rare roster reads of the on-duty cache."""

WARM_POINT = (31.5204, 74.3587)
"""A point in Lahore routed once at start-up, so the first call does not build the
router's single-point lookup."""

HOTSPOT_FIRST_SCAN_S = 120.0
"""The first emerging hot-spot scan waits this long after start-up (the service answers
calls first; dedup keys make a rescan after a restart harmless)."""


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


class ServedSet:
    """The boundary set being served and what the service builds from it.

    Loaded at start-up (:meth:`load`) and replaced when the database's current set changes
    (:meth:`refresh`, a periodic job): the routing and jurisdiction services are swapped
    together in one assignment, so a request sees the old pair or the new one, never a
    mix; areas and urban tehsils follow the set's version on their next use.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._holder: RouterHolder | None = None
        self._current: tuple[RoutingService, JurisdictionService] | None = None
        self._areas = BoundaryDerived(self.boundaries, Areas, on_change=_resettle_heap)
        self._urban = BoundaryDerived(self.boundaries,
                                      lambda boundaries: urban_tehsils(boundaries.layer("tehsil")))

    async def load(self) -> None:
        """The database's current set (or, on the embedded default, the shipped one) and
        its router; in worker threads (reading and compiling take seconds)."""
        router = await anyio.to_thread.run_sync(lambda: current_router(self.settings))
        boundaries = await anyio.to_thread.run_sync(lambda: current_boundaries(self.settings))
        self._holder = RouterHolder(self.settings, router=router)
        self._current = (RoutingService(router), JurisdictionService(boundaries))

    async def refresh(self) -> None:
        """Swap in a newly loaded or imported boundary set, if there is one."""
        holder = self._holder
        if holder is None or not await anyio.to_thread.run_sync(holder.refresh):
            return
        fresh = await anyio.to_thread.run_sync(lambda: current_boundaries(self.settings))
        self._current = (RoutingService(holder.router), JurisdictionService(fresh))

    def _loaded(self) -> tuple[RoutingService, JurisdictionService]:
        if self._current is None:
            raise RuntimeError("no boundary set is loaded yet (the app has not started)")
        return self._current

    @property
    def routing(self) -> RoutingService:
        return self._loaded()[0]

    @property
    def jurisdictions(self) -> JurisdictionService:
        return self._loaded()[1]

    def router(self) -> Router:
        return self.routing.router

    def boundaries(self) -> BoundarySet:
        return self.jurisdictions.boundaries

    def version(self) -> str:
        """The version of the set the router answers from (recorded with each call)."""
        return self.routing.boundary_set

    def areas(self) -> Areas:
        return self._areas.get()

    def urban(self) -> Mapping[str, bool]:
        """Tehsil code → urban (census 2023), of the set being served."""
        return self._urban.get()


class Container:
    """The service's parts (see the module docstring); one per app."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        """The service's clock (tests move one instead of sleeping)."""
        self.authenticator = Authenticator(signing_secret(settings.jwt_secret, settings.jwt_secret_file))

        # the database: the service's pool and, on PostgreSQL, the intake's few connections
        postgres = settings.database.is_postgres
        # custom plans: after five executions PostgreSQL may switch a prepared statement to a
        # generic plan, which for the duplicate search (H3 cells + a time window) picks the
        # time index and scans the whole window: measured 9 ms instead of 1
        self.engine = async_engine(settings, **(postgres_pool(
            settings.database.pool_size, plan_cache_mode="force_custom_plan") if postgres else {}))
        # the intake's own connections, where PostgreSQL may keep a generic plan of the intake
        # statement (built for it) instead of planning every call; no sequential scans there:
        # a plan cached while a fresh database's calls table is nearly empty would otherwise
        # scan it whole for every call as it grows
        self.intake_engine = async_engine(settings, **postgres_pool(
            WRITERS + INTAKE_SPARE_CONNECTIONS, plan_cache_mode="auto",
            enable_seqscan="off")) if postgres else None
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

        # live delivery: Redis pub/sub with REDIS_URL, else in this process
        self.channels = build_channels_plugin(settings.redis_url)
        self.publisher = FeedPublisher(self.channels)

        # the boundary set being served
        self.served = ServedSet(settings)

        # calls, rosters and their feeds
        self.call_context = CallContext(
            router=self.served.router, areas=self.served.areas, boundary_set=self.served.version,
            categories=Categories(), publisher=self.publisher, clock=clock,
            alerts=settings.alerts.enabled)
        self.call_intake = CallIntake(
            self.call_context, self.sessions,
            PostgresCallStore(self.intake_engine) if self.intake_engine is not None
            else SqliteCallStore(self.sessions),
            self.call_service)
        self.feeds = FeedService(self.sessions, self.channels)

        # heavy work (analytics, map pages, batch routing, plans) runs in worker processes
        self.workers = WorkerPool(settings)

        # analytics over the stored history, response-time statistics and alerts
        self.history = CallHistoryRepository(self.sessions)
        self.analytics = AnalyticsService(self.served.boundaries, self.served.areas, self.workers,
                                          clock=clock)
        sla = SlaTable.from_categories(load_categories())
        self.trends = TrendsService(self.analytics, clock=clock)
        self.response_stats = ResponseStatsService(self.sessions, self.served.boundaries,
                                                   self.served.areas, sla)
        self.alert_context = AlertContext(
            sessions=self.sessions, policy=AlertPolicy.load(settings.alerts.policy_path), sla=sla,
            urban=self.served.urban, publisher=self.publisher, clock=clock)
        self.alert_engine = AlertEngine(self.alert_context)
        self.alerts = AlertService(self.alert_context, self.served.areas)
        self.alert_feeds = AlertFeedService(self.sessions, self.channels)
        self.hotspots = HotspotScanner(self.alert_context, self.analytics, self.served.router)
        self.dashboard = DashboardService(
            self.sessions, self.served.areas, version=self.served.version,
            category_label=self.call_context.categories.label, workers=self.workers, clock=clock)
        self.dashboard_refresh = DashboardRefresher(self.sessions, sla, self.served.urban, clock)
        # on PostgreSQL, with the real clock, the two run in a process of their own
        self.watchers = (WatcherProcess(settings, self.publisher, self.served.urban)
                         if postgres and clock is utc_now else None)

        # work beside the requests: started once the channels are up, stopped before they go
        self.jobs = JobRunner()
        plan_store = PlanStore(self.sessions)
        self.plan_runner = PlanRunner(plan_store, self.served.boundaries, self.jobs, self.workers,
                                      at_once=settings.plans.workers)
        self.plans = PlanService(plan_store, self.plan_runner, self.history,
                                 self.served.boundaries, self.served.areas)
        self.accounts = AccountService(self.sessions, self.served.areas, clock)  # web sign-in
        self._schedule()

    def _schedule(self) -> None:
        """The periodic jobs (plan runs are background jobs, submitted as plans are posted)."""
        settings, jobs = self.settings, self.jobs
        jobs.every("boundary-set poll", settings.routing.reload_poll_s, self.served.refresh,
                   first_delay_s=settings.routing.reload_poll_s)
        alerts = settings.alerts
        if self.watchers is not None:  # the alert tick and the dashboard refresh
            jobs.alongside(self.watchers)
            jobs.every("watcher check", WATCHER_CHECK_S, self.watchers.check,
                       first_delay_s=WATCHER_CHECK_S)
        else:  # SQLite (one writer at a time anyway) or a test's clock: on the request loop
            if alerts.enabled:
                jobs.every("alert tick", alerts.tick_s, self.alert_engine.run_due)
            jobs.every("dashboard refresh", DASHBOARD_REFRESH_S, self.dashboard_refresh.run)
        if alerts.enabled:
            jobs.every("hot-spot scan", alerts.hotspot_scan_h * 3600, self.hotspots.scan,
                       first_delay_s=HOTSPOT_FIRST_SCAN_S)
        jobs.every("plan heartbeat", HEARTBEAT_S, self.plan_runner.heartbeat,
                   first_delay_s=HEARTBEAT_S)
        jobs.every("plan reaper", REAP_EVERY_S, self.plan_runner.reap, first_delay_s=REAP_EVERY_S)

    # ------------------------------------------------------------------ per request
    def call_service(self, session: AsyncSession) -> CallService:
        """Calls on one session, with the roster and the audit log on the same session."""
        audit = AuditService(session=session)
        return CallService(session, context=self.call_context,
                           roster=RosterService(session=session, audit=audit), audit=audit)

    def roster_service(self, session: AsyncSession) -> RosterService:
        return RosterService(session=session, audit=AuditService(session=session))

    # ------------------------------------------------------------------ start and stop
    async def open(self) -> None:
        """Start-up: the boundary set loaded and the router warmed, the plans of processes
        that are gone marked interrupted, then the heap settled (:func:`settle_heap`)."""
        try:
            await self.served.load()
            with contextlib.suppress(ValueError):  # a boundary set without Lahore routes nothing
                await anyio.to_thread.run_sync(lambda: self.served.router().resolve(*WARM_POINT))
            self.served.areas()
            if self.settings.alerts.enabled:
                self.served.urban()
            await self.plan_runner.startup()
            self.workers.start()  # they warm up while the service starts serving
        except BaseException:
            await self._dispose()
            raise
        settle_heap()

    async def close(self) -> None:
        """Shutdown (after the jobs stopped): this process's unfinished plans marked
        interrupted, the worker processes ended, the pools closed."""
        try:
            await self.plan_runner.shutdown()
            await self.workers.close()
        finally:
            gc.unfreeze()  # an app made again in this process (tests) starts from scratch
            await self._dispose()

    async def _dispose(self) -> None:
        await self.workers.close()
        await self.engine.dispose()
        if self.intake_engine is not None:
            await self.intake_engine.dispose()
