"""Helpers shared by the benchmarks: throw-away PostGIS databases, uvicorn processes,
timing, tables. The tests start their servers with :func:`start_uvicorn` too."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

ADMIN_URL = os.environ.get("SAFECITY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
console = Console(stderr=True)


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A fresh PostGIS database on the local server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_boundaries_into(url: str) -> None:
    """Write the shipped Punjab set into ``url`` with the project's own loader (the CLI)."""
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "api.cli", "jurisdictions", "load"], env=env,
                   check=True, stdout=subprocess.DEVNULL)


def load_generated_history(url: str, months: int, seed: int, scale: float, start: str) -> int:
    """A generated call history (``api.shipped.generate_calls``) written into the database
    at ``url`` with ``synth load``'s function, migrating it first; how many calls. Loading
    the same arguments twice adds nothing (same seed, same ids)."""
    from api.cli.synth import load_history  # noqa: PLC0415
    from api.db.engine import create_sync_engine  # noqa: PLC0415
    from api.db.migrate import upgrade  # noqa: PLC0415
    from api.settings import DatabaseSettings  # noqa: PLC0415
    from api.shipped import generate_calls  # noqa: PLC0415

    calls, _ = generate_calls(months, seed, scale, start)
    engine = create_sync_engine(DatabaseSettings(url=url))
    try:
        upgrade(engine)
        load_history(calls, engine)
    finally:
        engine.dispose()
    return len(calls)


def free_port() -> int:
    """A TCP port nobody listens on at the moment (loopback)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """One uvicorn process (with its workers) on a loopback port; output in ``log``."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGINT (uvicorn's graceful shutdown, lifespans end), then kill if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def start_uvicorn(factory: str, *, env: Mapping[str, str | None] | None = None, workers: int = 1,
                  timeout_s: float = 240.0) -> Server:
    """``python -m uvicorn --factory FACTORY`` on a free loopback port, from the project root.

    ``env`` overrides this process's environment (``None`` removes a variable). Returns
    once the server answers ``GET /health`` with any HTTP status (uvicorn accepts no
    connection before a worker's start-up has finished, and a bare app may have no
    ``/health``); with several workers it then waits half a second per worker so each
    finishes its own start-up. Raises ``RuntimeError`` with the server's output when it
    exits or does not answer in ``timeout_s``.
    """
    port = free_port()
    merged = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    log = Path(tempfile.mkstemp(prefix=f"safecity-uvicorn-{port}-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", LOOPBACK, "--port",
             str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=merged, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://{LOOPBACK}:{port}", port, process, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{factory} exited with {process.returncode}:\n{server.log_text()}")
        if _answers_http(port):
            if workers > 1:
                time.sleep(0.5 * workers)
            return server
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{factory} did not start in {timeout_s:.0f} s:\n{server.log_text()}")


def _answers_http(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=2) as s:
            s.settimeout(5)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1")
    except OSError:
        return False


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for name in header:
        table.add_column(name, justify="right" if name != header[0] else "left")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(payload, indent=2, default=float) + "\n")
        console.print(f"wrote {path}")
