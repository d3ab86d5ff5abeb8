"""Group commit: one SQL statement run for many concurrent callers in one transaction.

Call intake takes calls through it (:class:`api.db.intake.PostgresCallStore`), and
``bench/service.py`` measures the least a durable intake can cost with it (the bench's
"floor"). PostgreSQL only: it drives asyncpg's pipelined ``fetchmany``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import UnavailableError, is_connection_failure

MAX_BATCH = 64
"""Calls written by one pipelined transaction at most."""

WRITERS = 2
"""Transactions writing calls at once per process (each holds a pooled connection). A
batch spends most of its time waiting (for the event loop to read its answers between
requests, for a core), not in PostgreSQL: 16 calls took 15–18 ms with one writer, in
flight 93–98 % of the time, while PostgreSQL spends ~0.3 ms on each. A second writer
fills that wait: in paired ``bench/service.py``-style runs (one worker, 32 connections,
the alert tick and dashboard refresh in the watcher process) 685 → 822 and 786 → 1,009
calls/s, p99 171 → 112 and 95 → 68 ms, for 5–20 % more PostgreSQL CPU per call (more,
smaller commits). Three or four writers measured no better than two. (Before the
watcher process, with the alert engine in the request process, one writer had
measured best.)"""


class GroupCommit:
    """One SQL statement run for many callers with group commit.

    Arguments that arrive while a write is in flight queue up; the next writer sends all
    of them (up to :data:`MAX_BATCH`) as one pipelined batch on a pooled connection's
    asyncpg driver: one round trip, one implicit transaction, one commit (one WAL flush)
    for the lot. Each statement runs after the one before it in the batch and sees what
    it wrote; nothing is answered before the commit. A batch that fails writes nothing
    (one transaction), and its statements are retried one by one so one bad call cannot
    fail the others. A lone statement is simply autocommitted. :meth:`run` answers the
    statement's one row.
    """

    def __init__(self, engine: AsyncEngine, sql: str, *, max_batch: int = MAX_BATCH,
                 writers: int = WRITERS) -> None:
        self.engine = engine
        self.sql = sql
        self.max_batch = max_batch
        self.max_writers = writers
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._writers = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.written = 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """The asyncpg connection of a pooled connection; 503 when the database cannot be
        reached (a broken connection is invalidated, so the pool does not hand it out)."""
        try:
            async with self.engine.connect() as pooled:
                driver = (await pooled.get_raw_connection()).driver_connection
                try:
                    yield driver
                except Exception as exc:
                    if is_connection_failure(exc):
                        await pooled.invalidate(exc)
                    raise
        except Exception as exc:
            if is_connection_failure(exc):
                raise UnavailableError("the database is unreachable; retry (with the same "
                                       "Idempotency-Key for calls)") from exc
            raise

    async def run(self, args: tuple[Any, ...]) -> Any:
        """Queue one statement's arguments; its row once the batch holding it committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((args, future))
        if self._writers < self.max_writers:
            self._writers += 1
            task = asyncio.create_task(self._write())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _write(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:self.max_batch]
                del self._queue[:self.max_batch]
                await self._write_batch(batch)
        finally:
            self._writers -= 1

    async def _write_batch(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]
                           ) -> None:
        try:
            async with self.connection() as connection:
                if len(batch) == 1:
                    rows = [await connection.fetchrow(self.sql, *batch[0][0])]
                else:
                    rows = await connection.fetchmany(self.sql, [args for args, _ in batch])
        except UnavailableError as exc:
            _fail(batch, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch, exc)
                return
            for item in batch:  # nothing was written: each statement on its own
                await self._write_batch([item])
            return
        except BaseException as exc:  # cancelled at shutdown: nobody waits for ever
            _fail(batch, exc)
            raise
        self.batches += 1
        self.written += len(batch)
        for (_, future), row in zip(batch, rows, strict=True):
            if not future.done():
                future.set_result(row)



def _fail(batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]],
          exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
