"""Heavy work off the event loop that takes calls: one bounded pool of worker processes.

Helpline-15 calls and analysts' requests share one event loop per service process. What
an analyst asks for can take seconds to minutes of CPU (batch routing, Gi*, emerging hot
spots, heat maps over long ranges, map pages, plans, exports); run there, or on a thread
of the same process (which holds the interpreter's lock for most of it), it stalls every
call behind it. So that work runs here, in separate processes (``docs/isolation.md``):

- **Bounded.** :attr:`WorkerSettings.processes` worker processes, each running one job at
  a time, and at most :attr:`WorkerSettings.queue` requests waiting for one. One more is
  refused at once with :class:`~api.errors.UnavailableError` (503 with ``Retry-After``);
  the intake is never refused for it. Background work (plan stages, the hot-spot scan)
  waits for a worker instead: its own queue bounds it. While one kind of work is being
  refused, the others hold at most their fair share of the pool
  (:attr:`WorkerPool.fair_share`), so no kind starves.
- **Warm.** Workers start with the service (``forkserver``: the app process holds threads
  and database connections and is never forked) and live between jobs; each keeps a
  copy of the boundary set and the router it last served (:class:`WorkerState`). What
  crosses to a worker is the query, small and picklable; workers read calls from the
  database themselves and send back compact answers (encoded bodies, frames).
- **Cancelled.** A job ends when its client goes away (ASGI ``http.disconnect``), when its
  endpoint's deadline passes, or when the service stops. A job still waiting never
  reaches a worker; a running one is stopped by terminating its worker process, which
  the pool replaces (pebble's process pool does exactly this): no cooperative checks to
  forget in some long loop, and nothing it half did is sent anywhere.
- **Ceilinged.** Each worker's address space is capped (``RLIMIT_AS``,
  :attr:`WorkerSettings.memory_mb`), so one request cannot take the machine: past it the
  job fails with ``MemoryError``, answered 422. Workers run at a lower priority
  (:attr:`WorkerSettings.niceness`) so call intake wins the cores when they are short.
- **Stopped promptly.** :meth:`WorkerPool.cancel_on_signals` (the app's lifespan) cancels
  every job when SIGTERM or SIGINT arrives, before uvicorn waits for requests in flight,
  so those answer 503 at once and the graceful shutdown is not held by heavy work;
  :meth:`WorkerPool.close` then terminates the workers without running what was queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from concurrent.futures import CancelledError as FutureCancelledError
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, Literal, NoReturn, TypeVar, get_args

from api.errors import ClientGoneError, DeadlineError, UnavailableError, UnprocessableError
from api.settings import Settings, WorkerSettings

if TYPE_CHECKING:
    from pebble import ProcessPool
    from sqlalchemy import Engine

    from jurisdictions.boundaries import BoundarySet
    from jurisdictions.router import Router

log = logging.getLogger(__name__)

T = TypeVar("T")
Receive = Callable[[], Awaitable[Any]]
"""An ASGI ``receive``: what a request's job watches for the client going away."""

JobKind = Literal["route batch", "analytics", "emerging", "plan"]
"""What a job is, which names its deadline (:meth:`WorkerPool.deadline`) and its share of
the pool (:attr:`WorkerPool.fair_share`)."""
JOB_KINDS: tuple[JobKind, ...] = get_args(JobKind)

FAIR_WINDOW_S = 15.0
"""A kind refused this recently is waiting: kinds holding their share yield to it."""

CONNECTION_CHECK_MS = 1000
"""PostgreSQL's ``client_connection_check_interval`` on the workers' connections."""

START_METHOD: Final = "forkserver"
"""How workers start: from a clean server process, never by forking the app."""

PRELOAD = ("api.workers", "api.watchers", "api.domain.analytics.services", "api.domain.maps.services",
           "api.domain.routing.services", "api.domain.plans.planner")
"""Modules the fork server imports once, so a replaced worker starts in well under a second
(it still loads the boundary set and the router, :func:`_start_worker`)."""


# ---------------------------------------------------------------------------- in a worker


class WorkerState:
    """What one worker process keeps between jobs: the settings, its own database engine,
    and warm copies of the boundary set and router it served last (replaced when a job
    asks for another version, as happens after a new set is loaded)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._boundaries: BoundarySet | None = None
        self._router: Router | None = None
        self._engine: Engine | None = None
        self._memo: dict[Hashable, Any] = {}

    def engine(self) -> Engine:
        """This process's synchronous engine (psycopg or SQLite, the service's database).

        On PostgreSQL its sessions ask the server to check every second that the worker
        is still there: a query of a job that was stopped (its worker terminated) is
        abandoned within a second instead of running on for its own sake.
        """
        if self._engine is None:
            from api.db.engine import create_sync_engine  # noqa: PLC0415

            options = ({"connect_args": {"options": "-c client_connection_check_interval="
                                                    f"{CONNECTION_CHECK_MS}"}}
                       if self.settings.database.is_postgres else {})
            self._engine = create_sync_engine(self.settings.database, **options)
        return self._engine

    def boundaries(self, version: str | None = None) -> BoundarySet:
        """The database's current boundary set; read again when ``version`` is not the one
        held (a set loaded since; what the job gets is the newest)."""
        from api.boundaries import current_boundaries  # noqa: PLC0415

        held = self._boundaries
        if held is None or (version is not None and str(held.version) != version):
            self._boundaries = held = current_boundaries(self.settings)
            self._memo.clear()
        return held

    def router(self, version: str | None = None) -> Router:
        """The router of the database's current set (compiled index from the cache), read
        again when ``version`` is not the one held."""
        from api.routing import current_router  # noqa: PLC0415

        held = self._router
        if held is None or (version is not None and str(held.index.version) != version):
            self._router = held = current_router(self.settings)
        return held

    def memo(self, key: Hashable, build: Callable[[], T]) -> T:
        """A value kept for this process until the boundary set changes (study areas,
        services built on the set)."""
        if key not in self._memo:
            self._memo[key] = build()
        value: T = self._memo[key]
        return value


_this_process: dict[str, WorkerState] = {}
"""The one :class:`WorkerState` of this process, set by :func:`_start_worker`."""


def worker_state() -> WorkerState:
    """This worker's state (a job calls this; outside a worker, one for the environment's
    settings, so jobs also run in the calling process for the CLI and tests)."""
    state = _this_process.get("state")
    if state is None:
        from api.settings import get_settings  # noqa: PLC0415

        state = _this_process["state"] = WorkerState(get_settings())
    return state


def _start_worker(settings: Settings) -> None:
    """A new worker's initializer: the memory ceiling, a lower priority, one thread per
    numeric library, then the boundary set and router loaded before the first job.

    Never raises: a failing initializer would mark pebble's whole pool broken. A warm-up
    that fails (the database is down) is logged and the first job loads what it needs.
    """
    workers = settings.workers
    try:
        limit = workers.memory_mb * 2**20
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS,
                           (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
        os.nice(workers.niceness)
    except (OSError, ValueError):
        log.exception("worker %d: cannot set its memory ceiling or priority", os.getpid())
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415

        threadpool_limits(1)  # one job per worker, one core per job
    except Exception:
        log.exception("worker %d: cannot limit the numeric libraries' threads", os.getpid())
    state = _this_process["state"] = WorkerState(settings)
    started = time.perf_counter()
    try:
        state.boundaries()
        state.router()
    except Exception:
        log.exception("worker %d: warming up failed; its first job loads what it needs",
                      os.getpid())
    log.info("worker %d warm in %.2f s", os.getpid(), time.perf_counter() - started)


def _call(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """Run a job in this worker. An exception that would not survive the trip back (one
    whose constructor takes other arguments than its message) is sent as a
    ``RuntimeError`` naming it: an answer the pool cannot read would break the pool."""
    try:
        return fn(*args)
    except Exception as exc:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            raise RuntimeError(f"{type(exc).__name__}: {exc}") from None
        raise


def ping() -> int:
    """A job that only answers (the worker's pid): tests and start-up checks."""
    return os.getpid()


# ---------------------------------------------------------------------------- in the app


@dataclass
class PoolCounts:
    """Jobs of one pool now and since it started (tests, the benchmark, logs)."""

    running: int = 0
    waiting: int = 0
    done: int = 0
    refused: int = 0
    cancelled: dict[str, int] = field(default_factory=dict)


class WorkerPool:
    """The service's worker processes (see the module docstring); one per app process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config: WorkerSettings = settings.workers
        self.counts = PoolCounts()
        self._pool: ProcessPool | None = None
        self._turns: asyncio.Semaphore | None = None
        self._jobs: set[asyncio.Task[Any]] = set()
        self._stopping: str | None = None
        self._held: dict[JobKind, int] = {}
        """Requests and background jobs of each kind admitted and not finished."""
        self._refused_at: dict[JobKind, float] = {}

    # -- start and stop
    def start(self) -> None:
        """Start the worker processes (they warm up while the service starts serving)."""
        self._stopping = None
        self._ensure_pool()

    def _ensure_pool(self) -> ProcessPool:
        from pebble import ProcessPool  # noqa: PLC0415

        pool = self._pool
        if pool is None or not pool.active:
            if pool is not None:
                log.error("the worker pool broke (a worker died outside a job); starting a new one")
                pool.stop()
            context = multiprocessing.get_context(START_METHOD)
            context.set_forkserver_preload(list(PRELOAD))
            pool = self._pool = ProcessPool(max_workers=self.config.processes,
                                            initializer=_start_worker, initargs=(self.settings,),
                                            context=context)
            pool.schedule(ping)  # starts the processes now, not at the first heavy request
        return pool

    def cancel_all(self, reason: str) -> None:
        """Refuse new jobs and cancel every job (waiting or running) with ``reason``."""
        self._stopping = reason
        for job in list(self._jobs):
            job.cancel()

    async def close(self) -> None:
        """Cancel every job and terminate the workers; queued work is never run."""
        self.cancel_all("the service is stopping")
        jobs = list(self._jobs)
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            await asyncio.to_thread(pool.join, 10)

    @contextlib.contextmanager
    def cancel_on_signals(self) -> Iterator[None]:
        """While open: SIGTERM and SIGINT cancel every job at once (then reach the handler
        that was there before: uvicorn's graceful shutdown). Only in the main thread."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        previous: dict[int, Any] = {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            loop.call_soon_threadsafe(self.cancel_all, f"the service is stopping ({name})")
            handler = previous.get(signum)
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)

        for signum in (signal.SIGTERM.value, signal.SIGINT.value):
            previous[signum] = signal.signal(signum, on_signal)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                if signal.getsignal(signum) is on_signal:
                    signal.signal(signum, handler)

    # -- jobs
    def deadline(self, kind: JobKind) -> float:
        """Seconds a job of ``kind`` may take, waiting included (settings)."""
        config = self.config
        return {"route batch": config.route_batch_s, "analytics": config.analytics_s,
                "emerging": config.emerging_s, "plan": config.plan_s}[kind]

    @property
    def capacity(self) -> int:
        """Requests admitted at once: one per worker plus the queue."""
        return self.config.processes + self.config.queue

    @property
    def fair_share(self) -> int:
        """Requests of one kind admitted at once while other kinds wait: the capacity
        shared by the kinds of work, rounded up."""
        return -(-self.capacity // len(JOB_KINDS))

    def admit(self, kind: JobKind | None = None, *, background: bool = False) -> None:
        """Raise the 503 :meth:`run` would (the service is stopping, a request's job finds
        the pool and its queue full, or its kind holds its :attr:`fair_share` while
        another kind was refused within the last :data:`FAIR_WINDOW_S` seconds); a
        handler calls it before reading a large body it would then have read for nothing.

        The share keeps one kind from holding the pool: an analyst whose answer arrives
        asks again at once, one who was refused waits, so without it the kinds that
        finish often (heat maps) took every slot and a 100,000-point batch never found
        one (``docs/isolation.md``). Alone, a kind may use the whole pool."""
        if self._stopping is not None:
            raise UnavailableError(f"{self._stopping}; retry shortly",
                                   retry_after=self.config.retry_after_s)
        if background:
            return
        counts = self.counts
        if counts.running + counts.waiting >= self.capacity:
            self._refuse(kind, f"the analytics workers are busy ({counts.running} jobs "
                               f"running, {counts.waiting} waiting)")
        held = self._held.get(kind, 0) if kind is not None else 0
        if kind is not None and held >= self.fair_share and self._others_waiting(kind):
            self._refuse(kind, f"other kinds of work are waiting for the analytics workers "
                               f"and {kind} jobs hold their share ({held} of {self.capacity})")

    def _refuse(self, kind: JobKind | None, why: str) -> NoReturn:
        self.counts.refused += 1
        if kind is not None:
            self._refused_at[kind] = time.monotonic()
        raise UnavailableError(f"{why}; retry in {self.config.retry_after_s} s",
                               retry_after=self.config.retry_after_s)

    def _others_waiting(self, kind: JobKind) -> bool:
        since = time.monotonic() - FAIR_WINDOW_S
        return any(other != kind and at >= since for other, at in self._refused_at.items())

    @contextlib.contextmanager
    def _holding(self, kind: JobKind) -> Iterator[None]:
        self._held[kind] = self._held.get(kind, 0) + 1
        try:
            yield
        finally:
            self._held[kind] -= 1

    async def run(self, kind: JobKind, fn: Callable[..., T], *args: Any,
                  receive: Receive | None = None, background: bool = False,
                  deadline_s: float | None = None) -> T:
        """``fn(*args)`` in a worker process; its result, or its exception raised here.

        A request's job (``background`` false) is refused with 503 when the pool is full;
        a background job waits for a worker. The job is cancelled, and this raises, when
        ``receive`` reports the client gone (:class:`ClientGoneError`), when its deadline
        passes (:class:`DeadlineError`; ``deadline_s``, else ``kind``'s), or when the
        service stops (503).
        """
        self.admit(kind, background=background)
        with self._holding(kind):
            return await self._run(kind, fn, args, receive, deadline_s)

    async def _run(self, kind: JobKind, fn: Callable[..., T], args: tuple[Any, ...],
                   receive: Receive | None, deadline_s: float | None) -> T:
        limit = self.deadline(kind) if deadline_s is None else deadline_s
        job = asyncio.ensure_future(self._execute(fn, args))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        gone = asyncio.ensure_future(_disconnected(receive)) if receive is not None else None
        try:
            done, _ = await asyncio.wait({job} | ({gone} if gone else set()), timeout=limit,
                                         return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            job.cancel()
            raise
        finally:
            if gone is not None:
                gone.cancel()
        if job in done and not job.cancelled():
            return job.result()
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
        if gone is not None and gone in done:
            self._count_cancel("client gone")
            raise ClientGoneError(f"the client went away; its {kind} job was stopped")
        if job in done:  # cancelled from outside the request: the service is stopping
            self._count_cancel("stopping")
            raise UnavailableError(f"{self._stopping or 'the job was cancelled'}; retry shortly",
                                   retry_after=self.config.retry_after_s)
        self._count_cancel("deadline")
        raise DeadlineError(
            f"the {kind} job did not finish within its deadline of {limit:g} s and was "
            "stopped; ask for less (a smaller area, a coarser res, a shorter window)",
            retry_after=self.config.retry_after_s)

    def _count_cancel(self, why: str) -> None:
        self.counts.cancelled[why] = self.counts.cancelled.get(why, 0) + 1

    async def _execute(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """Wait for a worker's turn, then run the job there (cancelling this task stops it:
        a waiting job never reaches a worker, a running one's worker is terminated)."""
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.config.processes)
        from pebble import ProcessExpired  # noqa: PLC0415

        counts = self.counts
        counts.waiting += 1
        waiting = True
        try:
            async with self._turns:
                counts.waiting -= 1
                waiting = False
                counts.running += 1
                try:
                    future = self._ensure_pool().schedule(_call, args=(fn, args))
                    try:
                        result: T = await asyncio.wrap_future(future)
                    except asyncio.CancelledError:
                        future.cancel()  # pebble terminates the worker running it, starts another
                        raise
                    except FutureCancelledError:
                        raise asyncio.CancelledError from None
                    except (ProcessExpired, BrokenProcessPool) as exc:
                        raise UnavailableError(
                            f"the worker running this job stopped unexpectedly ({exc}); retry",
                            retry_after=self.config.retry_after_s) from exc
                    except MemoryError as exc:
                        raise UnprocessableError(
                            f"the request needs more memory than a worker may use "
                            f"({self.config.memory_mb:,} MB); ask for less (a smaller area, a "
                            "coarser res, a shorter window)") from exc
                    counts.done += 1
                    return result
                finally:
                    counts.running -= 1
        finally:
            if waiting:
                counts.waiting -= 1


async def _disconnected(receive: Receive) -> None:
    """Return when the client has gone (ASGI ``http.disconnect``); request body parts that
    were not read are skipped."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return
