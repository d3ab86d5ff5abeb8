"""The work the service does beside its requests, on one runner the app's lifespan starts
and stops.

- **Periodic jobs** (the alert tick, the emerging hot-spot scan, the boundary-set poll,
  the plan heartbeat and reaper) run every ``interval_s``. A failure (the database is
  down) is logged and the job runs again at its next turn, so nothing that fell due
  meanwhile is lost.
- **Background jobs** (plan runs) are started when submitted and run once.
- A periodic job may run on a **thread with its own event loop**
  (:meth:`JobRunner.every_on_own_loop`). The alert tick does: on the request loop,
  evaluating a second's worth of new calls held the loop for tens of milliseconds at a
  time (every call waited behind it), and under load the engine, one coroutine among
  many, fell behind. On its own thread the interpreter switches between the two every few
  milliseconds and the engine keeps its share.

:meth:`JobRunner.stop` cancels every job (a tick under way rolls its transaction back;
what it held stays due) and waits for them, so a shutdown is prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[Any]]
OpenJob = Callable[[asyncio.AbstractEventLoop], AbstractAsyncContextManager[Job]]
"""Opens, on a job's own loop, what it needs there (its own connections: an asyncpg
connection belongs to one loop) and yields the job; it is given the app's loop."""

THREAD_JOIN_S = 30.0
"""How long :meth:`JobRunner.stop` waits for a job's own thread to end."""


@dataclass(frozen=True)
class Periodic:
    """A job run every ``interval_s`` seconds, the first time after ``first_delay_s``."""

    name: str
    interval_s: float
    run: Job
    first_delay_s: float = 0.0


async def repeat(job: Periodic) -> None:
    """Run ``job`` at its interval until cancelled; a failure is logged, not fatal."""
    await asyncio.sleep(job.first_delay_s)
    while True:
        try:
            await job.run()
        except Exception:
            log.exception("%s failed; running it again in %.0f s", job.name, job.interval_s)
        await asyncio.sleep(job.interval_s)


class JobRunner:
    """Periodic and background jobs of one process (see the module docstring)."""

    def __init__(self) -> None:
        self._periodic: list[Periodic] = []
        self._own_loop: list[tuple[str, float, OpenJob]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._threads: list[_LoopThread] = []
        self._started = False

    def every(self, name: str, interval_s: float, run: Job, *, first_delay_s: float = 0.0) -> None:
        """Run ``run`` every ``interval_s`` seconds once started (``0``: never)."""
        if interval_s > 0:
            self._periodic.append(Periodic(name, interval_s, run, first_delay_s))

    def every_on_own_loop(self, name: str, interval_s: float, open_job: OpenJob) -> None:
        """Like :meth:`every`, on a thread with its own event loop, where ``open_job``
        opens the job (``0``: never)."""
        if interval_s > 0:
            self._own_loop.append((name, interval_s, open_job))

    def submit(self, name: str, run: Job) -> None:
        """Start a background job now (the runner must be running)."""
        if not self._started:
            raise RuntimeError(f"{name}: the job runner is not running")
        self._spawn(self._once(name, run))

    async def start(self) -> None:
        """Start the periodic jobs (on the running loop: the app's)."""
        if self._started:
            return
        self._started = True
        app_loop = asyncio.get_running_loop()
        for job in self._periodic:
            self._spawn(repeat(job))
        for name, interval_s, open_job in self._own_loop:
            thread = _LoopThread(name, interval_s, open_job, app_loop)
            self._threads.append(thread)
            thread.start()

    async def stop(self) -> None:
        """Cancel every job and wait for them (and for the jobs' own threads)."""
        self._started = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        threads, self._threads = self._threads, []
        for thread in threads:
            await thread.stop()

    async def __aenter__(self) -> JobRunner:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _once(name: str, run: Job) -> None:
        try:
            await run()
        except Exception:
            log.exception("background job %s failed", name)


class _LoopThread:
    """One periodic job on a thread running its own event loop."""

    def __init__(self, name: str, interval_s: float, open_job: OpenJob,
                 app_loop: asyncio.AbstractEventLoop) -> None:
        self.name = name
        self.interval_s = interval_s
        self.open_job = open_job
        self.app_loop = app_loop
        self._stopping = threading.Event()
        self._task: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        self._thread = threading.Thread(target=self._main, name=f"safecity-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s: its thread stopped", self.name)

    async def _run(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._task = (asyncio.get_running_loop(), task)
        if self._stopping.is_set():
            return
        async with self.open_job(self.app_loop) as run:
            await repeat(Periodic(self.name, self.interval_s, run))

    async def stop(self) -> None:
        """Cancel the job on its loop (a run under way is interrupted) and join the thread."""
        self._stopping.set()
        if self._task is not None:
            loop, task = self._task
            with contextlib.suppress(RuntimeError):  # its loop has already ended
                loop.call_soon_threadsafe(task.cancel)
        await anyio.to_thread.run_sync(self._thread.join, THREAD_JOIN_S)
