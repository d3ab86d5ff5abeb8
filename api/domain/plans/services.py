"""Expansion plans as jobs: check and queue a request, run it in the background, read it back.

- :class:`PlanStore` is the only code that touches the ``plans`` table.
- :class:`PlanRunner` runs queued jobs as background jobs of the service's
  :class:`~api.jobs.JobRunner`, at most ``at_once`` at once (``SAFECITY_PLAN_WORKERS``,
  default 1: the solver is CPU-bound and the machine also serves calls). Each stage (read
  the demand, build the coverage instance, solve and encode) runs in the service's worker
  pool (:mod:`api.workers`), so no part of a plan runs in the process that takes calls,
  within the plan deadline (``SAFECITY_DEADLINE_PLAN_S``); progress is written to the row
  as each stage starts. Its periodic :meth:`~PlanRunner.heartbeat` keeps its unfinished jobs'
  heartbeat fresh and :meth:`~PlanRunner.reap` marks failed ("interrupted") the jobs of
  processes that died: those of dead processes on this host, and any job whose heartbeat
  is older than :data:`STALE_S`. Interrupted jobs are not re-run: the row says so and the
  client posts the plan again.
- :class:`PlanService` is what the controllers call: role and scope checks, the request
  checked (422) before anything is queued, reads of state, sites and map data.

Demand is the analytics endpoints' source, read with their repository
(:class:`api.domain.analytics.services.CallHistoryRepository`): the calls routed to the
tehsil in the window, of the categories with a seriousness weight above zero (hoax,
dropped and information calls weigh nothing and are not read). Nothing about a caller
is read or stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, get_args
from uuid import UUID, uuid4

import anyio
import numpy as np
import pandas as pd
from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.areas import Areas
from api.auth import Principal
from api.db.plan_models import UNFINISHED, PlanRecord
from api.domain.analytics.schemas import CellQuery
from api.domain.analytics.services import CallHistoryRepository, parse_time
from api.domain.plans.planner import (
    STAGES,
    PlanOptionError,
    SiteOptions,
    build_instance,
    solve_instance,
)
from api.domain.plans.schemas import (
    Plan,
    PlanAccepted,
    PlanCreate,
    PlanLinks,
    PlanPage,
    PlanState,
)
from api.errors import (
    AppError,
    BadInputError,
    ConflictError,
    NotFoundError,
    UnavailableError,
    UnprocessableError,
)
from api.jobs import JobRunner
from api.pagination import decode_cursor, encode_cursor
from api.shipped import load_categories, stand_in_sites
from api.workers import WorkerPool, worker_state
from geo.coverage import CoverageError, SitePlan, TehsilInstance, UnknownTehsilError, tehsil_ref
from jurisdictions.boundaries import PROVINCE_CODE, BoundarySet

log = logging.getLogger(__name__)
T = TypeVar("T")

HEARTBEAT_S = 5.0
"""How often a process refreshes the heartbeat of its unfinished jobs."""
STALE_S = 60.0
"""A job whose heartbeat is older than this belongs to a process that is gone."""
REAP_EVERY_S = 15.0
"""How often a process looks for jobs of processes that are gone."""
MAX_QUEUED = 16
"""Jobs waiting per process beyond the running ones; more is a 503 with Retry-After."""

DEMAND_COLUMNS = ("h3", "calls", "serious_calls", "demand", "covered_before", "covered_after",
                  "site_id")
"""Order of a demand cell's fields in ``plans.demand``."""

API_PREFIX = "/api/v1/plans"
MAP_PREFIX = "/maps/plans"


def utcnow() -> datetime:
    return datetime.now(UTC)


def links(plan_id: UUID) -> PlanLinks:
    return PlanLinks(self=f"{API_PREFIX}/{plan_id}", sites=f"{API_PREFIX}/{plan_id}/sites",
                     map=f"{MAP_PREFIX}/{plan_id}")


def weighted_categories() -> tuple[str, ...]:
    """Categories with a seriousness weight above zero: the ones that make demand."""
    table = load_categories()
    return tuple(table.loc[table["seriousness_weight"].astype(float) > 0, "code"].astype(str))


def window_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 date or date-time in UTC (naive: Pakistan time); 422 when unreadable or
    outside 2000–2100."""
    return parse_time(value, name, unreadable=UnprocessableError)


def plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python ones, non-finite floats as ``None``."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def encode_plan(plan: SitePlan) -> tuple[dict[str, Any], dict[str, Any], list[list[Any]]]:
    """``(summary, sites FeatureCollection, demand rows)`` as plain JSON values."""
    summary = plain(plan.summary)
    collection = plain(json.loads(plan.sites.to_json(drop_id=True, na="null")))
    collection["summary"] = summary
    demand = plan.demand
    rows = pd.DataFrame({
        "h3": demand["cell"].astype(str), "calls": demand["calls"].astype(int),
        "serious_calls": demand["serious_calls"].astype(int),
        "demand": demand["demand"].astype(float),
        "covered_before": demand["covered_before"].astype(bool),
        "covered_after": demand["covered_after"].astype(bool),
        "site_id": demand["site_id"].astype(object),
    })
    return summary, collection, plain(rows.to_numpy(dtype=object).tolist())


# ---------------------------------------------------------------------------- storage

_STATUS_COLUMNS = (PlanRecord.id, PlanRecord.state, PlanRecord.stage, PlanRecord.progress,
                   PlanRecord.params, PlanRecord.tehsil_code, PlanRecord.tehsil_name,
                   PlanRecord.district_code, PlanRecord.region_code, PlanRecord.boundary_set,
                   PlanRecord.created_by, PlanRecord.created_at, PlanRecord.started_at,
                   PlanRecord.finished_at, PlanRecord.updated_at, PlanRecord.timings,
                   PlanRecord.error, PlanRecord.summary)


DEFAULT_PAGE, MAX_PAGE = 50, 200
"""Plans per page of ``GET /plans``: by default, and at most."""
PLAN_STATES: tuple[str, ...] = get_args(PlanState)
_AREA_COLUMN: dict[str, Any] = {"tehsil": PlanRecord.tehsil_code,
                                "district": PlanRecord.district_code,
                                "region": PlanRecord.region_code}


class PlanStore:
    """Reads and writes of ``plans`` (one short transaction each)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def _write(self, stmt: Any) -> int:
        async with self.sessions() as session, session.begin():
            result = await session.execute(stmt)
            return int(getattr(result, "rowcount", 0) or 0)

    async def insert(self, values: dict[str, Any]) -> None:
        async with self.sessions() as session, session.begin():
            session.add(PlanRecord(**values))

    async def status(self, plan_id: UUID, *extra: Any) -> dict[str, Any] | None:
        """The job's columns (and ``extra`` ones), ``None`` when there is no such plan."""
        async with self.sessions() as session:
            result = await session.execute(select(*_STATUS_COLUMNS, *extra)
                                           .where(PlanRecord.id == plan_id))
            row = result.mappings().first()
        return dict(row) if row is not None else None

    async def page(self, conditions: list[Any], after: tuple[datetime, UUID] | None,
                   limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` jobs matching ``conditions``, newest first, after the cursor."""
        stmt = select(*_STATUS_COLUMNS).where(*conditions)
        if after is not None:
            stmt = stmt.where(tuple_(PlanRecord.created_at, PlanRecord.id) < after)
        stmt = stmt.order_by(PlanRecord.created_at.desc(), PlanRecord.id.desc()).limit(limit)
        async with self.sessions() as session:
            return [dict(row) for row in (await session.execute(stmt)).mappings()]

    async def claim(self, plan_id: UUID, owner: str, now: datetime) -> dict[str, Any] | None:
        """Mark a queued job running for ``owner``; its row, or ``None`` if it is not queued."""
        done = await self._write(update(PlanRecord)
                                 .where(PlanRecord.id == plan_id, PlanRecord.state == "queued")
                                 .values(state="running", owner=owner, started_at=now,
                                         heartbeat_at=now, updated_at=now))
        return await self.status(plan_id) if done else None

    async def progress(self, plan_id: UUID, stage: str, fraction: float, timings: dict[str, float],
                       now: datetime) -> None:
        await self._write(update(PlanRecord)
                          .where(PlanRecord.id == plan_id, PlanRecord.state == "running")
                          .values(stage=stage, progress=fraction, timings=timings, updated_at=now,
                                  heartbeat_at=now))

    async def succeed(self, plan_id: UUID, *, summary: dict[str, Any], result: dict[str, Any],
                      demand: list[list[Any]], timings: dict[str, float], now: datetime) -> bool:
        done = await self._write(update(PlanRecord)
                                 .where(PlanRecord.id == plan_id, PlanRecord.state == "running")
                                 .values(state="succeeded", stage="done", progress=1.0,
                                         summary=summary, result=result, demand=demand,
                                         timings=timings, finished_at=now, updated_at=now,
                                         heartbeat_at=now))
        return done > 0

    async def fail(self, plan_id: UUID, error: str, now: datetime,
                   timings: dict[str, float] | None = None) -> bool:
        """Mark an unfinished job failed (a finished one is left as it is)."""
        values: dict[str, Any] = {"state": "failed", "error": error, "finished_at": now,
                                  "updated_at": now}
        if timings is not None:
            values["timings"] = timings
        done = await self._write(update(PlanRecord)
                                 .where(PlanRecord.id == plan_id, PlanRecord.state.in_(UNFINISHED))
                                 .values(**values))
        return done > 0

    async def heartbeat(self, owner: str, now: datetime) -> int:
        return await self._write(update(PlanRecord)
                                 .where(PlanRecord.owner == owner, PlanRecord.state.in_(UNFINISHED))
                                 .values(heartbeat_at=now))

    async def interrupt(self, owners: list[str], reason: str, now: datetime) -> int:
        """Fail every unfinished job of ``owners`` with ``reason``."""
        if not owners:
            return 0
        return await self._write(update(PlanRecord)
                                 .where(PlanRecord.owner.in_(owners), PlanRecord.state.in_(UNFINISHED))
                                 .values(state="failed", error=reason, finished_at=now, updated_at=now))

    async def interrupt_stale(self, before: datetime, reason: str, now: datetime) -> int:
        return await self._write(update(PlanRecord)
                                 .where(PlanRecord.state.in_(UNFINISHED), PlanRecord.heartbeat_at < before)
                                 .values(state="failed", error=reason, finished_at=now, updated_at=now))

    async def unfinished_owners(self) -> list[str]:
        async with self.sessions() as session:
            result = await session.execute(select(PlanRecord.owner).distinct()
                                           .where(PlanRecord.state.in_(UNFINISHED)))
            return [str(owner) for owner in result.scalars()]


# ---------------------------------------------------------------------------- the jobs


_OWNERS_HERE: set[str] = set()
"""Owners made by this process: alive while it is (several runners may share a process)."""


def new_owner() -> str:
    """``host:pid:token`` of this process (the token tells a restart with the same pid apart)."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    _OWNERS_HERE.add(owner)
    return owner


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def dead_owners(owners: list[str], me: str) -> list[str]:
    """The owners on this host whose process is gone (or whose pid is now this process)."""
    host, pid, _ = me.rsplit(":", 2)
    dead = []
    for owner in owners:
        parts = owner.rsplit(":", 2)
        if (owner == me or owner in _OWNERS_HERE or len(parts) != 3 or parts[0] != host
                or not parts[1].isdigit()):
            continue
        if parts[1] == pid or not _pid_alive(int(parts[1])):
            dead.append(owner)
    return dead


INTERRUPTED = ("interrupted: the service process running this plan stopped before it finished "
               "({why}); post the plan again")


@dataclass
class _Clock:
    """Seconds per stage of one job."""

    timings: dict[str, float]
    stage: str | None = None
    began: float = 0.0

    def enter(self, stage: str | None) -> dict[str, float]:
        now = time.perf_counter()
        if self.stage is not None:
            self.timings[self.stage] = round(now - self.began, 3)
        self.stage, self.began = stage, now
        if stage is not None:
            self.timings[stage] = 0.0
        return dict(self.timings)


class PlanRunner:
    """Runs this process's queued plan jobs in the background (see the module docstring)."""

    def __init__(self, store: PlanStore, boundaries: Callable[[], BoundarySet], jobs: JobRunner,
                 workers: WorkerPool, *, at_once: int = 1, max_queued: int = MAX_QUEUED) -> None:
        self.store = store
        self._boundaries = boundaries
        self.jobs = jobs
        self.workers = workers
        self.at_once = max(1, at_once)
        self.max_queued = max_queued
        self.owner = new_owner()
        self.categories = weighted_categories()
        self._turns = asyncio.Semaphore(self.at_once)
        self._reserved = 0
        self._waiting = 0
        self._running = 0

    # -- queue
    def reserve(self) -> None:
        """Hold a place in the queue (503 when it is full); :meth:`submit` or :meth:`release`."""
        if self._reserved + self._waiting + self._running >= self.max_queued + self.at_once:
            raise UnavailableError(f"the planner is busy ({self._running} plans running, "
                                   f"{self._waiting} waiting); retry in a minute")
        self._reserved += 1

    def release(self) -> None:
        self._reserved -= 1

    def submit(self, plan_id: UUID) -> None:
        """Run a reserved, stored job as soon as one of the ``at_once`` turns is free."""
        self.jobs.submit(f"plan {plan_id}", lambda: self._in_turn(plan_id))
        self._reserved -= 1
        self._waiting += 1

    async def _in_turn(self, plan_id: UUID) -> None:
        waiting = True
        try:
            async with self._turns:
                self._waiting -= 1
                waiting = False
                self._running += 1
                try:
                    await self.run(plan_id)
                except Exception:
                    log.exception("plans: plan %s could not be recorded", plan_id)
                finally:
                    self._running -= 1
        finally:
            if waiting:
                self._waiting -= 1

    # -- start, stop and the periodic jobs
    async def startup(self) -> None:
        """Before serving: mark failed the jobs of processes that are gone (dead processes
        on this host, and any whose heartbeat is stale)."""
        try:
            await self.reap()
        except Exception:  # the periodic reaper tries again; the service must still start
            log.exception("plans: looking for interrupted plans at start-up failed")

    async def shutdown(self) -> None:
        """Mark this process's unfinished jobs failed (graceful stop)."""
        with anyio.move_on_after(5, shield=True):
            count = await self.store.interrupt([self.owner], INTERRUPTED.format(why="shutdown"),
                                               utcnow())
            if count:
                log.warning("plans: %d unfinished plan(s) interrupted by shutdown", count)

    async def heartbeat(self) -> None:
        """Refresh the heartbeat of this process's unfinished jobs (every :data:`HEARTBEAT_S`)."""
        await self.store.heartbeat(self.owner, utcnow())

    async def reap(self) -> int:
        """Fail the unfinished jobs of processes that are gone (every :data:`REAP_EVERY_S`);
        how many there were."""
        now = utcnow()
        count = await self.store.interrupt_stale(
            now - timedelta(seconds=STALE_S), INTERRUPTED.format(why=f"no heartbeat for {STALE_S:.0f} s"),
            now)
        dead = dead_owners(await self.store.unfinished_owners(), self.owner)
        count += await self.store.interrupt(dead, INTERRUPTED.format(why="its process is gone"), now)
        if count:
            log.warning("plans: %d plan(s) of stopped processes marked interrupted", count)
        return count

    async def run(self, plan_id: UUID) -> None:
        """Run one queued job through its stages, recording progress, result or failure."""
        started = utcnow()
        row = await self.store.claim(plan_id, self.owner, started)
        if row is None:
            return  # no longer queued (interrupted meanwhile)
        clock = _Clock({"queued": round((started - row["created_at"]).total_seconds(), 3)})
        began = time.perf_counter()

        async def enter(stage: str) -> None:
            await self.store.progress(plan_id, stage, STAGES[stage], clock.enter(stage), utcnow())

        deadline = time.monotonic() + self.workers.deadline("plan")

        async def in_worker(job: Callable[..., T], *args: Any) -> T:
            """A stage in a worker process (waiting for one: plans have their own queue),
            all stages within the plan's deadline."""
            return await self.workers.run("plan", job, *args, background=True,
                                          deadline_s=max(0.0, deadline - time.monotonic()))

        try:
            params = row["params"]
            options = options_from(params)
            code = str(row["tehsil_code"])
            version = str(self._boundaries().version)
            await enter("loading demand")
            calls = await in_worker(plan_demand_job, code, _parse_utc(params.get("from")),
                                    _parse_utc(params.get("until")), self.categories)
            await enter("building coverage")
            instance = await in_worker(plan_instance_job, calls, code, options, version)
            await enter("solving")
            summary, result, demand = await in_worker(plan_solve_job, instance, options, {
                "calls_source": calls_source(code, params), "boundary_set": version})
            await enter("writing results")
            timings = clock.enter(None)
            timings["total"] = round(time.perf_counter() - began, 3)
            await self.store.succeed(plan_id, summary=summary, result=result, demand=demand,
                                     timings=timings, now=utcnow())
        except (CoverageError, AppError) as exc:
            timings = clock.enter(None)
            timings["total"] = round(time.perf_counter() - began, 3)
            await self.store.fail(plan_id, str(exc), utcnow(), timings)
        except Exception as exc:
            log.exception("plans: plan %s failed", plan_id)
            timings = clock.enter(None)
            await self.store.fail(plan_id, f"internal error ({type(exc).__name__}); the service log "
                                  "has the details", utcnow(), timings)


# ---------------------------------------------------------------------------- in a worker


def plan_demand_job(code: str, since: datetime | None, until: datetime | None,
                    categories: tuple[str, ...]) -> pd.DataFrame:
    """Worker job, stage 1: the calls routed to tehsil ``code`` in the window, of
    ``categories``, read on the worker's own engine."""
    query = CellQuery(level="tehsil", code=code, since=since, until=until)
    calls = CallHistoryRepository.read(worker_state().engine(), query, categories)
    return calls.assign(tehsil_code=code)  # every selected call was routed to it


def plan_instance_job(calls: pd.DataFrame, code: str, options: SiteOptions, version: str
                      ) -> TehsilInstance:
    """Worker job, stage 2: demand cells, existing and candidate sites, coverage matrix."""
    state = worker_state()
    boundaries = state.boundaries(version)
    existing = state.memo(("stand-in sites", str(boundaries.version)),
                          lambda: stand_in_sites(boundaries))
    return build_instance(calls, tehsil_ref(code, boundaries), options, existing=existing,
                          categories=load_categories(), boundaries=boundaries)


def plan_solve_job(instance: TehsilInstance, options: SiteOptions, summary: dict[str, Any]
                   ) -> tuple[dict[str, Any], dict[str, Any], list[list[Any]]]:
    """Worker job, stage 3: the plan solved, ``summary`` added to its own, encoded as
    :func:`encode_plan` does."""
    plan = solve_instance(instance, options)
    plan.summary.update(summary)
    return encode_plan(plan)


def _parse_utc(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def options_from(params: dict[str, Any]) -> SiteOptions:
    """The solver options of a stored request."""
    return SiteOptions(new_sites=params.get("sites"), radius_m=float(params["radius_m"]),
                       model=params["model"], target=params.get("target"), res=int(params["res"]),
                       solver=params["solver"], time_limit=float(params["time_limit_s"])).check()


def calls_source(code: str, params: dict[str, Any]) -> str:
    """Where a plan's demand came from, for its summary."""
    window = f"{params.get('from') or '…'} – {params.get('until') or '…'}"
    return (f"database: calls routed to tehsil {code}, received {window} (UTC), of the categories "
            "with a seriousness weight above zero")


# ---------------------------------------------------------------------------- the service


class PlanService:
    """What the plan controllers call; every method checks the principal first."""

    def __init__(self, store: PlanStore, runner: PlanRunner, history: CallHistoryRepository,
                 boundaries: Callable[[], BoundarySet], areas: Callable[[], Areas]) -> None:
        self.store = store
        self.runner = runner
        self.history = history
        self._boundaries = boundaries
        self._areas = areas

    async def create(self, data: PlanCreate, principal: Principal) -> PlanAccepted:
        """Check the request, queue the job (202); 422 before queueing when it cannot run."""
        principal.require("plan.create")
        try:
            options = SiteOptions(new_sites=data.sites, radius_m=data.radius_m, model=data.model,
                                  target=data.target, res=data.res, solver=data.solver,
                                  time_limit=data.time_limit_s).check()
        except PlanOptionError as exc:
            raise UnprocessableError(f"{exc.option}: {exc}") from exc
        since, until = window_time(data.since, "from"), window_time(data.until, "until")
        if since is not None and until is not None and since >= until:
            raise UnprocessableError(f"from ({since.isoformat()}) must be before until "
                                     f"({until.isoformat()})")
        boundaries = self._boundaries()
        try:
            ref = tehsil_ref(data.tehsil, boundaries)
        except UnknownTehsilError as exc:
            raise UnprocessableError(f"tehsil: {exc}") from exc
        area = self._areas().get("tehsil", ref.code)
        principal.require_scope(area.path, f"tehsil {ref.label}")
        query = CellQuery(level="tehsil", code=ref.code, since=since, until=until)
        if not await self.has_calls(query):
            window = "" if since is None and until is None else (
                f" received between {since.isoformat() if since else '…'} and "
                f"{until.isoformat() if until else '…'}")
            raise UnprocessableError(f"tehsil {ref.label} has no calls{window} of a category with a "
                                     "seriousness weight above zero: there is no demand to plan "
                                     "camera sites for")
        params = {"tehsil": data.tehsil, "sites": options.new_sites, "radius_m": options.radius_m,
                  "model": options.model, "target": options.target,
                  "from": since.isoformat() if since else None,
                  "until": until.isoformat() if until else None, "res": options.res,
                  "solver": options.solver, "time_limit_s": options.time_limit}
        self.runner.reserve()
        plan_id = uuid4()
        now = utcnow()
        try:
            await self.store.insert({
                "id": plan_id, "state": "queued", "stage": "queued", "progress": 0.0,
                "params": params, "tehsil_code": ref.code, "tehsil_name": ref.name,
                "district_code": area.path.get("district", ref.district_code),
                "region_code": area.path.get("region", ""), "boundary_set": str(boundaries.version),
                "created_by": principal.subject, "created_role": principal.role,
                "owner": self.runner.owner, "created_at": now, "updated_at": now,
                "heartbeat_at": now, "timings": {},
            })
        except BaseException:
            self.runner.release()
            raise
        self.runner.submit(plan_id)
        return PlanAccepted(id=plan_id, state="queued", tehsil_code=ref.code, tehsil=ref.name,
                            links=links(plan_id))

    async def has_calls(self, query: CellQuery) -> bool:
        stmt = CallHistoryRepository.statement(query, self.runner.categories, on_scene=False).limit(1)
        async with self.history.sessions() as session:
            return (await session.execute(stmt)).first() is not None

    async def _visible(self, plan_id: UUID, principal: Principal, *extra: Any) -> dict[str, Any]:
        principal.require("plan.read")
        row = await self.store.status(plan_id, *extra)
        if row is None:
            raise NotFoundError(f"no plan {plan_id}")
        path = {"province": PROVINCE_CODE, "region": row["region_code"],
                "district": row["district_code"], "tehsil": row["tehsil_code"]}
        principal.require_scope(path, f"plan {plan_id} (tehsil {row['tehsil_name']} "
                                      f"({row['tehsil_code']}))")
        return row

    async def get(self, plan_id: UUID, principal: Principal) -> Plan:
        return as_plan(await self._visible(plan_id, principal), utcnow())

    async def list_plans(self, principal: Principal, *, tehsil: str | None = None,
                         district: str | None = None, region: str | None = None,
                         state: str | None = None, limit: int = DEFAULT_PAGE,
                         cursor: str | None = None) -> PlanPage:
        """Plans newest first within the principal's scope; a filter outside it is 403."""
        principal.require("plan.read")
        if not 1 <= limit <= MAX_PAGE:
            raise BadInputError(f"limit must be between 1 and {MAX_PAGE}")
        if state is not None and state not in PLAN_STATES:
            raise BadInputError(f"unknown state {state!r}; states are {', '.join(PLAN_STATES)}")
        conditions = self._areas().conditions(
            principal, _AREA_COLUMN, {"tehsil": tehsil, "district": district, "region": region})
        if state is not None:
            conditions.append(PlanRecord.state == state)
        after = decode_cursor(cursor) if cursor else None
        rows = await self.store.page(conditions, after, limit + 1)
        shown = rows[:limit]
        now = utcnow()
        return PlanPage(items=[as_plan(row, now) for row in shown],
                        next_cursor=encode_cursor(shown[-1]["created_at"], shown[-1]["id"])
                        if len(rows) > limit else None)

    async def _finished(self, plan_id: UUID, principal: Principal, *extra: Any) -> dict[str, Any]:
        row = await self._visible(plan_id, principal, *extra)
        if row["state"] == "failed":
            raise ConflictError(f"plan {plan_id} failed: {row['error']}",
                                extra={"state": "failed", "error": row["error"]})
        if row["state"] != "succeeded":
            raise ConflictError(f"plan {plan_id} is {row['state']} ({row['stage']}, "
                                f"{row['progress']:.0%}); GET {API_PREFIX}/{plan_id} until it succeeds",
                                extra={"state": row["state"], "progress": row["progress"]})
        return row

    async def sites(self, plan_id: UUID, principal: Principal) -> dict[str, Any]:
        """The plan's sites as a GeoJSON FeatureCollection (409 until it succeeded)."""
        row = await self._finished(plan_id, principal, PlanRecord.result)
        result: dict[str, Any] = row["result"]
        return result

    async def map_data(self, plan_id: UUID, principal: Principal
                       ) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame]:
        """``(plan row, sites FeatureCollection, demand cells)`` for the map page."""
        row = await self._finished(plan_id, principal, PlanRecord.result, PlanRecord.demand)
        demand = pd.DataFrame(row["demand"] or [], columns=list(DEMAND_COLUMNS))
        return row, row["result"], demand

    @property
    def boundaries(self) -> BoundarySet:
        return self._boundaries()


def as_plan(row: dict[str, Any], now: datetime) -> Plan:
    """The wire shape of a job row; a running stage's seconds are counted up to ``now``."""
    timings = {str(k): float(v) for k, v in (row["timings"] or {}).items()}
    if row["state"] == "running" and row["stage"] in timings:
        timings[row["stage"]] = round((now - row["updated_at"]).total_seconds(), 3)
        if row["started_at"] is not None:
            timings["total"] = round((now - row["started_at"]).total_seconds(), 3)
    elif row["state"] == "queued":
        timings["queued"] = round((now - row["created_at"]).total_seconds(), 3)
    return Plan(id=row["id"], state=row["state"], stage=row["stage"], progress=float(row["progress"]),
                tehsil_code=row["tehsil_code"], tehsil=row["tehsil_name"],
                district_code=row["district_code"], region_code=row["region_code"],
                boundary_set=row["boundary_set"], params=row["params"], created_by=row["created_by"],
                created_at=row["created_at"], started_at=row["started_at"],
                finished_at=row["finished_at"], updated_at=row["updated_at"], timings=timings,
                error=row["error"], summary=row["summary"], links=links(row["id"]),
                warnings=list((row["summary"] or {}).get("warnings") or []))
