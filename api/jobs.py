"""The work the service does beside its requests, on one runner the app's lifespan starts
and stops.

- **Periodic jobs** (the alert tick, the emerging hot-spot scan, the boundary-set poll,
  the plan heartbeat and reaper) run every ``interval_s``. A failure (the database is
  down) is logged and the job runs again at its next turn, so nothing that fell due
  meanwhile is lost.
- **Background jobs** (plan runs) are started when submitted and run once.
- **Companions** run beside the jobs, started and stopped with them: the watcher process
  (:class:`api.watchers.WatcherProcess`), where the alert tick and the dashboard refresh
  run on PostgreSQL, away from the loop that takes calls.

:meth:`JobRunner.stop` cancels every job (a tick under way rolls its transaction back;
what it held stays due) and waits for them, then stops the companions, so a shutdown is
prompt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[Any]]


class Companion(Protocol):
    """Something that runs beside the jobs (a process of its own)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


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
        self._companions: list[Companion] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False

    def every(self, name: str, interval_s: float, run: Job, *, first_delay_s: float = 0.0) -> None:
        """Run ``run`` every ``interval_s`` seconds once started (``0``: never)."""
        if interval_s > 0:
            self._periodic.append(Periodic(name, interval_s, run, first_delay_s))

    def alongside(self, companion: Companion) -> None:
        """Start ``companion`` with the jobs and stop it after them."""
        self._companions.append(companion)

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
        for companion in self._companions:
            await companion.start()
        for job in self._periodic:
            self._spawn(repeat(job))

    async def stop(self) -> None:
        """Cancel every job and wait for them, then stop the companions."""
        was_started, self._started = self._started, False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if was_started:
            for companion in reversed(self._companions):
                await companion.stop()

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
