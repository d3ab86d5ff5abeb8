"""The service's one job runner: periodic jobs survive their failures, companions start
and stop with the jobs, background jobs run once, and stopping is prompt."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from api.jobs import JobRunner

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


def test_companions_start_before_the_jobs_and_stop_after_them() -> None:
    seen: list[str] = []

    class Companion:
        async def start(self) -> None:
            seen.append("companion started")

        async def stop(self) -> None:
            seen.append("companion stopped")

    async def tick() -> None:
        if "tick" not in seen:
            seen.append("tick")

    async def main() -> None:
        jobs = JobRunner()
        jobs.alongside(Companion())
        jobs.every("ticker", 0.01, tick)
        await run_until(jobs, lambda: "tick" in seen)
        await jobs.stop()  # stopped twice: the companion once

    asyncio.run(main())
    assert seen == ["companion started", "tick", "companion stopped"]


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
