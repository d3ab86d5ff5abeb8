"""Settings read once from the environment, grouped by concern."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from jurisdictions.limits import DEFAULT_NEAREST_LIMIT_M
from jurisdictions.sources import PROJECT_ROOT


@dataclass(frozen=True)
class DatabaseSettings:
    """``DATABASE_URL`` (plain ``postgresql://…``) or the embedded SQLite file."""

    url: str | None = None
    sqlite_path: Path = PROJECT_ROOT / ".safecity" / "safecity.sqlite"
    pool_size: int = 24
    """Connections per worker on PostgreSQL (``SAFECITY_DB_POOL``). No overflow: overflow
    connections are closed as soon as they are returned, and re-opening one (TLS probe,
    type introspection, statement preparation) costs more than waiting a moment for a
    pooled one."""

    @property
    def is_postgres(self) -> bool:
        return self.url is not None


@dataclass(frozen=True)
class RoutingSettings:
    nearest_limit_m: float = DEFAULT_NEAREST_LIMIT_M
    reload_poll_s: float = 30.0
    """How often the service checks the database for a newly loaded boundary set (0: never)."""


@dataclass(frozen=True)
class AlertSettings:
    enabled: bool = True
    """``SAFECITY_ALERTS=0`` turns the rules off (calls get no deadline; nothing is raised)."""
    tick_s: float = 1.0
    """How often each worker evaluates the calls that fell due (0: never by itself)."""
    hotspot_scan_h: float = 6.0
    """How often the emerging hot-spot scan runs (0: never by itself)."""
    policy_path: Path | None = None
    """``SAFECITY_ALERT_POLICY``: another file than the shipped ``api/domain/alerts/alerts.toml``."""


@dataclass(frozen=True)
class PlanSettings:
    workers: int = 1
    """Plans run at once per process (``SAFECITY_PLAN_WORKERS``): the solver is CPU-bound
    and the machine also serves calls."""


@dataclass(frozen=True)
class WorkerSettings:
    """The pool of worker processes that runs the heavy work (:mod:`api.workers`), its
    bounds and the deadline of each kind of job (``docs/isolation.md``)."""

    processes: int = 1
    """Worker processes (``SAFECITY_WORKERS``): each holds a warm copy of the boundary set
    and the router; on two cores one, so that the other core is left to call intake."""
    queue: int = 4
    """Heavy requests waiting for a worker beyond the running ones (``SAFECITY_WORKER_QUEUE``);
    one more is answered 503 with ``Retry-After``."""
    retry_after_s: int = 10
    """``Retry-After`` of that 503."""
    memory_mb: int = 6144
    """Address-space ceiling of each worker (``SAFECITY_WORKER_MEMORY_MB``): a job that
    needs more fails with a clear answer instead of taking the machine."""
    niceness: int = 10
    """Scheduling niceness of the workers: when the cores are busy, call intake goes first."""
    route_batch_s: float = 60.0
    """Deadline of ``POST /route/batch`` (``SAFECITY_DEADLINE_ROUTE_BATCH_S``)."""
    analytics_s: float = 120.0
    """Deadline of heat maps, Gi* hot spots and their map pages (``SAFECITY_DEADLINE_ANALYTICS_S``)."""
    emerging_s: float = 240.0
    """Deadline of emerging hot spots and their map page (``SAFECITY_DEADLINE_EMERGING_S``)."""
    plan_s: float = 900.0
    """Deadline of one plan, all its stages (``SAFECITY_DEADLINE_PLAN_S``)."""
    max_steps: int = 156
    """Most time steps an emerging hot-spot request may span (three years of weeks,
    thirteen years of months; ``SAFECITY_MAX_STEPS``): a 422 beyond."""
    max_cube: int = 12_000_000
    """Most cells × steps of one space-time cube (``SAFECITY_MAX_CUBE``), which bounds an
    emerging hot-spot request's memory (~40 bytes per cell-step at the peak)."""


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    plans: PlanSettings = field(default_factory=PlanSettings)
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    redis_url: str | None = None
    jwt_secret: str | None = None
    """``SAFECITY_JWT_SECRET``; when unset, the secret kept in :attr:`jwt_secret_file`."""
    jwt_secret_file: Path = PROJECT_ROOT / ".safecity" / "jwt-secret"
    """``SAFECITY_JWT_SECRET_FILE``: the local signing secret, created once (mode 0600) by
    the service or ``safecity token``, whichever runs first (:mod:`api.tokens`)."""
    allowed_origins: tuple[str, ...] = ()
    """Browser origins besides the service's own that may open its WebSockets
    (``SAFECITY_ALLOWED_ORIGINS``, comma-separated, e.g. ``https://control.punjab.example``)."""


@cache
def get_settings() -> Settings:
    """Settings from the environment (read once per process)."""
    return read_settings()


def read_settings() -> Settings:
    """Settings from the environment as it is now (:func:`get_settings` keeps the first)."""
    sqlite = os.environ.get("SAFECITY_SQLITE_PATH")
    return Settings(
        database=DatabaseSettings(
            url=os.environ.get("DATABASE_URL") or None,
            **({"sqlite_path": Path(sqlite)} if sqlite else {}),
            pool_size=int(os.environ.get("SAFECITY_DB_POOL", "24")),
        ),
        routing=RoutingSettings(
            nearest_limit_m=float(os.environ.get("SAFECITY_NEAREST_LIMIT_M",
                                                 DEFAULT_NEAREST_LIMIT_M)),
            reload_poll_s=float(os.environ.get("SAFECITY_ROUTER_POLL_S", "30")),
        ),
        alerts=AlertSettings(
            enabled=os.environ.get("SAFECITY_ALERTS", "1") not in ("0", "false", "off"),
            tick_s=float(os.environ.get("SAFECITY_ALERT_TICK_S", "1")),
            hotspot_scan_h=float(os.environ.get("SAFECITY_HOTSPOT_SCAN_H", "6")),
            policy_path=Path(policy) if (policy := os.environ.get("SAFECITY_ALERT_POLICY")) else None,
        ),
        plans=PlanSettings(workers=max(1, int(os.environ.get("SAFECITY_PLAN_WORKERS", "1")))),
        workers=read_worker_settings(),
        redis_url=os.environ.get("REDIS_URL") or None,
        jwt_secret=os.environ.get("SAFECITY_JWT_SECRET") or None,
        **({"jwt_secret_file": Path(secret_file)}
           if (secret_file := os.environ.get("SAFECITY_JWT_SECRET_FILE")) else {}),
        allowed_origins=tuple(o.strip() for o in os.environ.get("SAFECITY_ALLOWED_ORIGINS", "")
                              .split(",") if o.strip()),
    )


def read_worker_settings() -> WorkerSettings:
    """The worker pool's settings from the environment (defaults: :class:`WorkerSettings`)."""
    default = WorkerSettings()

    def number(name: str, value: float) -> float:
        return float(os.environ.get(name) or value)

    return WorkerSettings(
        processes=max(1, int(number("SAFECITY_WORKERS", default.processes))),
        queue=max(0, int(number("SAFECITY_WORKER_QUEUE", default.queue))),
        memory_mb=int(number("SAFECITY_WORKER_MEMORY_MB", default.memory_mb)),
        route_batch_s=number("SAFECITY_DEADLINE_ROUTE_BATCH_S", default.route_batch_s),
        analytics_s=number("SAFECITY_DEADLINE_ANALYTICS_S", default.analytics_s),
        emerging_s=number("SAFECITY_DEADLINE_EMERGING_S", default.emerging_s),
        plan_s=number("SAFECITY_DEADLINE_PLAN_S", default.plan_s),
        max_steps=int(number("SAFECITY_MAX_STEPS", default.max_steps)),
        max_cube=int(number("SAFECITY_MAX_CUBE", default.max_cube)),
    )
