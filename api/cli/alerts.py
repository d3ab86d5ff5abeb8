"""``safecity alerts``: run the alert rules once (for cron or after an outage) and scan for
emerging hot spots. The service does both by itself (``SAFECITY_ALERT_TICK_S``,
``SAFECITY_HOTSPOT_SCAN_H``); these commands run the same engine against the database."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from api.cli.progress import console

app = typer.Typer(help="Alerts: evaluate due calls, scan for emerging hot spots.",
                  no_args_is_help=True)

AtOpt = Annotated[datetime | None, typer.Option("--at", help="Evaluate as of this time "
                                                             "(ISO 8601; default now)")]


@app.command("run")
def run(at: AtOpt = None) -> None:
    """Raise, escalate and resolve every alert that fell due (unacknowledged, breach, repeat)."""
    report = _run("engine", at)
    console.print(f"evaluated {report.calls:,} calls: {report.raised:,} raised, "
                  f"{report.escalated:,} escalated, {report.updated:,} updated, "
                  f"{report.resolved:,} resolved")


@app.command("scan-hotspots")
def scan_hotspots(at: AtOpt = None) -> None:
    """Emerging hot-spot analysis of the recent weeks; alerts for new and intensifying cells."""
    report = _run("hotspots", at)
    console.print(f"{report.raised:,} emerging hot-spot alerts raised")


def _run(what: str, at: datetime | None) -> Any:
    import asyncio  # noqa: PLC0415

    from api.errors import AppError  # noqa: PLC0415

    try:
        return asyncio.run(_async_run(what, at))
    except AppError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


async def _async_run(what: str, at: datetime | None) -> Any:
    from sqlalchemy.ext.asyncio import async_sessionmaker  # noqa: PLC0415

    from api.areas import Areas  # noqa: PLC0415
    from api.boundaries import current_boundaries  # noqa: PLC0415
    from api.db.engine import async_engine  # noqa: PLC0415
    from api.domain.alerts.engine import AlertContext, AlertEngine  # noqa: PLC0415
    from api.domain.alerts.rules import AlertPolicy  # noqa: PLC0415
    from api.domain.alerts.services import HotspotScanner  # noqa: PLC0415
    from api.domain.analytics.services import AnalyticsService, parse_time  # noqa: PLC0415
    from api.routing import current_router  # noqa: PLC0415
    from api.settings import get_settings  # noqa: PLC0415
    from api.shipped import load_categories  # noqa: PLC0415
    from api.workers import WorkerPool  # noqa: PLC0415
    from geo.response import SlaTable, urban_tehsils  # noqa: PLC0415

    settings = get_settings()
    boundaries = current_boundaries(settings)
    urban = urban_tehsils(boundaries.layer("tehsil"))
    when = parse_time(at.isoformat(), "--at") if at else None
    engine = async_engine(settings)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        ctx = AlertContext(sessions=sessions, policy=AlertPolicy.load(settings.alerts.policy_path),
                           sla=SlaTable.from_categories(load_categories()), urban=lambda: urban,
                           publisher=None)
        if what == "engine":
            return await AlertEngine(ctx).run_due(when)
        router = current_router(settings)
        areas = Areas(boundaries)
        workers = WorkerPool(settings)  # the scan runs where the service runs it: a worker
        try:
            analytics = AnalyticsService(lambda: boundaries, lambda: areas, workers)
            return await HotspotScanner(ctx, analytics, lambda: router).scan(when)
        finally:
            await workers.close()
    finally:
        await engine.dispose()
