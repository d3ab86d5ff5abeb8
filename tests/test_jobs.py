"""The service's one job runner: periodic jobs survive their failures, a job may have a
thread and loop of its own, background jobs run once, and stopping is prompt."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from api.jobs import Job, JobRunner

pytestmark = pytest.mark.unit


async def run_until(jobs: JobRunner, done: Callable[[], bool]) -> None:
    """Start ``jobs``, wait for ``done()``, stop them."""
    async with jobs:
        while not done():
            await asyncio.sleep(0.01)


def test_a_failing_periodic_job_is_logged_and_runs_again(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[float] = []

    async def flaky() -> None:
        runs.append(time.monotonic())
        if len(runs) < 3:
            raise ConnectionError("the database is down")

    jobs = JobRunner()
    jobs.every("flaky", 0.01, flaky)
    asyncio.run(run_until(jobs, lambda: len(runs) >= 4))
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 2
    assert "flaky failed; running it again" in failures[0].getMessage()


def test_first_delay_and_zero_interval() -> None:
    runs: list[str] = []

    async def record(name: str) -> None:
        runs.append(name)

    async def main() -> None:
        jobs = JobRunner()
        jobs.every("late", 0.01, lambda: record("late"), first_delay_s=60)
        jobs.every("never", 0, lambda: record("never"))
        jobs.every("soon", 60, lambda: record("soon"))
        async with jobs:
            await asyncio.sleep(0.1)

    asyncio.run(main())
    assert runs == ["soon"]


def test_stop_cancels_a_job_under_way_promptly() -> None:
    async def main() -> tuple[bool, float]:
        stopped = asyncio.Event()

        async def slow() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                stopped.set()
                raise

        jobs = JobRunner()
        jobs.every("slow", 1, slow)
        await jobs.start()
        await asyncio.sleep(0.05)
        began = time.monotonic()
        await jobs.stop()
        return stopped.is_set(), time.monotonic() - began

    was_cancelled, took = asyncio.run(main())
    assert was_cancelled
    assert took < 1


def test_a_job_on_its_own_loop_runs_off_the_app_thread_and_stops() -> None:
    seen: list[tuple[str, bool]] = []
    closed = threading.Event()

    async def main() -> None:
        app_loop = asyncio.get_running_loop()

        @asynccontextmanager
        async def open_job(given: asyncio.AbstractEventLoop) -> AsyncIterator[Job]:
            assert given is app_loop
            assert asyncio.get_running_loop() is not app_loop

            async def tick() -> None:
                seen.append((threading.current_thread().name, asyncio.get_running_loop() is app_loop))

            try:
                yield tick
            finally:
                closed.set()

        jobs = JobRunner()
        jobs.every_on_own_loop("ticker", 0.01, open_job)
        await run_until(jobs, lambda: len(seen) >= 3)

    asyncio.run(main())
    assert {name for name, _ in seen} == {"safecity-ticker"}
    assert not any(on_app_loop for _, on_app_loop in seen)
    assert closed.is_set()  # what the job opened on its loop was closed there


def test_background_jobs_run_once_and_only_while_running(caplog: pytest.LogCaptureFixture) -> None:
    done: list[str] = []

    async def main() -> None:
        jobs = JobRunner()

        async def work() -> None:
            done.append("work")

        async def broken() -> None:
            raise ValueError("no")

        with pytest.raises(RuntimeError, match="not running"):
            jobs.submit("early", work)
        async with jobs:
            jobs.submit("work", work)
            jobs.submit("broken", broken)
            await asyncio.sleep(0.05)

    asyncio.run(main())
    assert done == ["work"]
    assert "background job broken failed" in caplog.text
