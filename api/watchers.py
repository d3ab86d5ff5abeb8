"""The jobs that go through every call, the alert tick and the dashboard refresh, in a
process of their own beside the process that takes calls (PostgreSQL).

Both read every new call and lifecycle event within about a second. In the process that
takes calls their Python work (the rules, repeat matching, response intervals) held the
interpreter lock the request loop needs, about a third of the CPU a call costs there
(``bench/service.py``'s CPU table: 0.65 against 0.45 ms per call without them), and its
bursts, a second's worth of calls evaluated at once, were the intake's slowest answers.
In a process of their own they use the other core, and the request loop only takes calls.

:class:`WatcherProcess` starts the process from the worker pool's fork server
(:data:`api.workers.START_METHOD`: never a fork of the app with its threads); :func:`watch`
is its main. The process opens its own few connections and reads the real clock. The
alert events it publishes come back through a pipe, in order, and the request process's
channels deliver them (in memory with one worker, Redis with several) exactly as if they
had been published there; the request process sends it the urban tehsils again when the
boundary set changes. Each request process has one: ``FOR UPDATE SKIP LOCKED`` (alerts)
and the refresh mark's row lock (dashboard) share the work between them as they did
between workers. It stops when told to (within :data:`STOP_S`), on its own when the
request process goes away (the pipe closes), and is started again if it dies.

SQLite (one writer at a time) and a container given another clock than the real one
(the tests' moving clocks, which another process cannot read) keep the jobs in the
request process (:class:`api.container.Container`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import anyio
import msgspec
import uvloop
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.channels import FeedPublisher
from api.db.engine import async_engine, postgres_pool
from api.domain.alerts.engine import AlertContext, AlertEngine, json_text
from api.domain.alerts.rules import AlertPolicy
from api.domain.calls.services import utc_now
from api.domain.dashboard.services import DashboardRefresher
from api.jobs import JobRunner
from api.settings import Settings
from api.shipped import load_categories
from api.workers import START_METHOD
from geo.response import SlaTable

log = logging.getLogger(__name__)

DASHBOARD_REFRESH_S = 1.0
"""How often the dashboard's projection takes in new call events."""
CONNECTIONS = 2
"""The watcher process's database connections (the two jobs, one each)."""
STOP_S = 5.0
"""How long :meth:`WatcherProcess.stop` waits before terminating the process."""
CHECK_S = 5.0
"""How often the request process checks that its watcher is alive."""
NICENESS = 10
"""The watcher runs at a lower priority than the process that takes calls: when the cores
are short, calls are taken first and the tick runs a little later. 10 (the analytics
workers' too) rather than 5: in ``bench/service.py`` runs 1,880–1,967 calls/s with p99
35–36 ms against 1,768–1,846 and 39–41 ms, and the alert tick caught up as fast after
the load (1.1–1.5 s)."""

RELAY_BATCH = 256
"""Alert events handed to the request loop at once, at most (:meth:`WatcherProcess._relay`)."""

Urban = Mapping[str, bool]


class PipePublisher(FeedPublisher):
    """Publishes from the watcher process: each event goes down the pipe to the request
    process, which publishes it (:meth:`WatcherProcess._relay`)."""

    def __init__(self, pipe: Connection) -> None:  # no channels of its own
        self.pipe = pipe
        self.failures = 0
        self._encode = msgspec.msgpack.Encoder().encode

    async def publish(self, payload: bytes, channels: Iterable[str]) -> bool:
        names = list(channels)
        if not names:
            return True
        try:
            self.pipe.send_bytes(self._encode((names, payload)))
        except OSError:  # the request process is gone: the event is stored and replayable
            self.failures += 1
            return False
        return True


def watch(settings: Settings, urban: dict[str, bool], commands: Connection,
          events: Connection) -> None:
    """The watcher process's main: the jobs until the request process says stop (``None``)
    or goes away; a new urban mapping replaces the old one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the
    # request process stops us in order
    os.nice(NICENESS)
    logging.basicConfig(level=logging.INFO,
                        format="%(levelname)s: safecity-watcher: %(name)s: %(message)s")
    # on uvloop, as uvicorn runs the request process
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_watch(settings, urban, commands, events))


async def _watch(settings: Settings, urban: dict[str, bool], commands: Connection,
                 events: Connection) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    latest: list[Urban] = [urban]

    def listen() -> None:
        with contextlib.suppress(EOFError, OSError):  # EOF: the request process is gone
            while (message := commands.recv()) is not None:
                latest[0] = message
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=listen, name="safecity-watcher-commands", daemon=True).start()
    engine = async_engine(settings, json_serializer=json_text, **postgres_pool(
        CONNECTIONS, plan_cache_mode="force_custom_plan"))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    sla = SlaTable.from_categories(load_categories())
    jobs = JobRunner()
    alerts = settings.alerts
    if alerts.enabled:
        context = AlertContext(sessions=sessions, policy=AlertPolicy.load(alerts.policy_path),
                               sla=sla, urban=lambda: latest[0], publisher=PipePublisher(events),
                               clock=utc_now)
        jobs.every("alert tick", alerts.tick_s, AlertEngine(context).run_due)
    jobs.every("dashboard refresh", DASHBOARD_REFRESH_S,
               DashboardRefresher(sessions, sla, lambda: latest[0], utc_now).run)
    try:
        async with jobs:
            await stop.wait()
    finally:
        await engine.dispose()
        events.close()


class WatcherProcess:
    """The request process's side: starts :func:`watch` in its own process, relays the
    alert events it publishes, passes on boundary-set changes, restarts it if it died."""

    def __init__(self, settings: Settings, publisher: FeedPublisher,
                 urban: Callable[[], Urban]) -> None:
        self.settings = settings
        self.publisher = publisher
        self.urban = urban
        self.restarts = 0
        self._process: BaseProcess | None = None
        self._commands: Connection | None = None
        self._relay_thread: threading.Thread | None = None
        self._sent_urban: dict[str, bool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wanted = False
        """Started and not stopped: :meth:`check` keeps it running."""

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the process (on the app's loop, where the relayed events are published).
        A failure is logged, never fatal: the service takes calls without its watcher,
        and :meth:`check` tries again."""
        self._wanted = True
        try:
            await self._start()
        except Exception:
            log.exception("the watcher process did not start; trying again in %.0f s", CHECK_S)

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        context = multiprocessing.get_context(START_METHOD)
        child_commands, commands = context.Pipe(duplex=False)  # (receiving end, sending end)
        parent_events, child_events = context.Pipe(duplex=False)
        self._sent_urban = dict(self.urban())
        process = context.Process(target=watch, name="safecity-watcher", daemon=True,
                                  args=(self.settings, self._sent_urban, child_commands,
                                        child_events))
        await anyio.to_thread.run_sync(process.start)
        child_commands.close()  # the child's ends: so that each side sees the other go
        child_events.close()
        self._process, self._commands = process, commands
        self._relay_thread = threading.Thread(target=self._relay, args=(parent_events,),
                                              name="safecity-watcher-relay", daemon=True)
        self._relay_thread.start()
        log.info("watcher process %s started (alert tick, dashboard refresh)", process.pid)

    async def stop(self) -> None:
        """Tell the process to stop, wait up to :data:`STOP_S`, then terminate it."""
        self._wanted = False
        await self._stop()

    async def _stop(self) -> None:
        process, commands, relay = self._process, self._commands, self._relay_thread
        self._process = self._commands = self._relay_thread = None
        if process is None:
            return
        if commands is not None:
            with contextlib.suppress(OSError):
                commands.send(None)
            commands.close()
        await anyio.to_thread.run_sync(process.join, STOP_S)
        if process.is_alive():
            log.warning("watcher process %s did not stop in %.0f s; terminating it",
                        process.pid, STOP_S)
            process.terminate()
            await anyio.to_thread.run_sync(process.join, STOP_S)
        if relay is not None:
            await anyio.to_thread.run_sync(relay.join, STOP_S)

    async def check(self) -> None:
        """Start the process again if it died (or did not start); send a changed urban
        mapping."""
        if not self._wanted:
            return
        process = self._process
        if process is None or not process.is_alive():
            self.restarts += 1
            if process is not None:
                log.error("watcher process %s died (exit code %s); starting it again",
                          process.pid, process.exitcode)
            await self._stop()
            await self.start()
            return
        urban = dict(self.urban())
        if self._commands is not None and urban != self._sent_urban:
            self._sent_urban = urban
            with contextlib.suppress(OSError):
                self._commands.send(urban)

    async def _publish_all(self, batch: list[tuple[list[str], bytes]]) -> None:
        for names, payload in batch:
            await self.publisher.publish(payload, names)

    def _relay(self, events: Connection) -> None:
        """Publish what the process sends, in order, on the app's loop (a thread).

        What has arrived meanwhile goes over in one hand-off (up to :data:`RELAY_BATCH`
        events): each hand-off wakes the loop and waits for it, so a burst of alert
        events (a tick's worth) costs the request loop one wake-up, not one each."""
        decode = msgspec.msgpack.Decoder(tuple[list[str], bytes]).decode
        loop = self._loop
        ended = False
        try:
            while loop is not None and not ended:
                batch: list[tuple[list[str], bytes]] = []
                try:
                    batch.append(decode(events.recv_bytes()))
                    while len(batch) < RELAY_BATCH and events.poll(0):
                        batch.append(decode(events.recv_bytes()))
                except (EOFError, OSError):  # the process ended: what it sent still goes
                    ended = True
                if not batch:
                    return
                try:
                    done = asyncio.run_coroutine_threadsafe(self._publish_all(batch), loop)
                except RuntimeError:  # the app's loop is gone: the events are replayable
                    return
                with contextlib.suppress(Exception):  # publish logs its own failures
                    done.result(timeout=STOP_S)
        finally:
            events.close()

