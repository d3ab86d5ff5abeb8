"""``safecity stats response``: response-time review of an area, as ``GET /stats/response``.

Reads the database (``DATABASE_URL`` or the embedded file) through the same service as
the API, or a calls file with lifecycle columns (``--calls``: ``received_at,
acknowledged_at, dispatched_at, on_scene_at, closed_at, category, tehsil_code`` and the
area code columns, as ``safecity synth calls`` writes them); the numbers come from one
function, :func:`geo.response.response_report`, either way.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.progress import console

app = typer.Typer(help="Response-time statistics (queue, dispatch, travel, response, on scene).",
                  no_args_is_help=True)

INTERVAL_ORDER = ("queue", "dispatch", "travel", "response", "on_scene")


@app.command("response")
def response(
    *,
    level: Annotated[str, typer.Option(help="station, tehsil, district, region or province")] = "province",
    code: Annotated[str | None, typer.Option(help="The area's code (not for the province)")] = None,
    since: Annotated[datetime | None, typer.Option("--from", help="Received at or after (ISO 8601; "
                                                                  "naive is Pakistan time)")] = None,
    until: Annotated[datetime | None, typer.Option(help="Received before")] = None,
    category: Annotated[str | None, typer.Option(help="One call category")] = None,
    serious: Annotated[bool | None, typer.Option("--serious/--not-serious",
                                                 help="Only serious (or only other) crimes")] = None,
    by: Annotated[str | None, typer.Option(help="'child': per child area too")] = None,
    calls: Annotated[Path | None, typer.Option(help="Read this calls file instead of the database")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON the API answers")] = False,
) -> None:
    """Count, excluded, mean, p50, p90 (minutes) and share within SLA of each interval."""
    import asyncio  # noqa: PLC0415

    from api.errors import AppError  # noqa: PLC0415

    try:
        query = _query(level=level, code=code, since=since, until=until, category=category,
                       serious=serious, by=by)
        report = asyncio.run(_report(query, calls))
    except AppError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(report, default=str, indent=2))
        return
    _print(report)


def _query(*, level: str, code: str | None, since: datetime | None, until: datetime | None,
           category: str | None, serious: bool | None, by: str | None) -> Any:
    from api.domain.analytics.services import parse_time  # noqa: PLC0415
    from api.domain.stats.services import ResponseQuery  # noqa: PLC0415

    return ResponseQuery(level=level, code=code,
                         since=parse_time(since.isoformat() if since else None, "--from"),
                         until=parse_time(until.isoformat() if until else None, "--until"),
                         category=category, serious=serious, by=by)


async def _report(query: Any, calls: Path | None) -> dict[str, Any]:
    import getpass  # noqa: PLC0415

    from api.areas import Areas  # noqa: PLC0415
    from api.auth import Principal  # noqa: PLC0415
    from api.boundaries import current_boundaries  # noqa: PLC0415
    from api.domain.stats.services import ResponseStatsService  # noqa: PLC0415
    from api.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    boundaries = current_boundaries(settings)
    areas = Areas(boundaries)
    principal = Principal(f"cli:{getpass.getuser()}", "admin", "PK6", "province")
    if calls is not None:
        service = ResponseStatsService(None, lambda: boundaries, lambda: areas)  # type: ignore[arg-type]
        area = service.check(query, principal)
        frame = _filtered(_read(calls), query)
        return {"area": area, "from": query.since, "until": query.until,
                "category": query.category, "serious": query.serious,
                **service.report(frame, query)}
    from sqlalchemy.ext.asyncio import async_sessionmaker  # noqa: PLC0415

    from api.db.engine import async_engine  # noqa: PLC0415

    engine = async_engine(settings)
    try:
        service = ResponseStatsService(async_sessionmaker(engine), lambda: boundaries, lambda: areas)
        return await service.response(query, principal)
    finally:
        await engine.dispose()


def _read(path: Path) -> Any:
    import pandas as pd  # noqa: PLC0415

    from geo.aggregate import read_calls  # noqa: PLC0415

    columns = ("received_at", "acknowledged_at", "dispatched_at", "on_scene_at", "closed_at",
               "category", "serious", "station_code", "tehsil_code", "district_code",
               "region_code")
    try:
        frame = read_calls(path, columns=columns)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--calls") from exc
    for name in columns:
        if name.endswith("_at"):
            frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def _filtered(frame: Any, query: Any) -> Any:
    """The calls the database query would select (area, window, category, seriousness)."""
    keep = frame.index == frame.index
    if query.level != "province":
        keep &= frame[f"{query.level}_code"].astype(str) == query.code
    if query.since is not None:
        keep &= frame["received_at"] >= query.since
    if query.until is not None:
        keep &= frame["received_at"] < query.until
    if query.category is not None:
        keep &= frame["category"].astype(str) == query.category
    if query.serious is not None:
        keep &= frame["serious"].astype(bool) == query.serious
    return frame[keep].reset_index(drop=True)


def _print(report: dict[str, Any]) -> None:
    from rich.table import Table  # noqa: PLC0415

    area = report["area"]
    table = Table(title=f"{area['name']} ({area['level']} {area['code']}): {report['calls']:,} calls")
    for column in ("interval", "count", "excluded", "missing", "mean min", "p50 min", "p90 min",
                   "within SLA"):
        table.add_column(column, justify="left" if column == "interval" else "right")
    for name in INTERVAL_ORDER:
        s = report["intervals"][name]
        within = s.get("within_sla")
        table.add_row(name, f"{s['count']:,}", f"{s['excluded']:,}", f"{s['missing']:,}",
                      *(f"{s[k]:.1f}" if s[k] is not None else "–"
                        for k in ("mean_min", "p50_min", "p90_min")),
                      f"{within:.1%}" if within is not None else "–")
    console.print(table)
    for child in report.get("children", []):
        r = child["intervals"]["response"]
        within = r.get("within_sla")
        console.print(f"  {child['code']:<14} {child['name'] or '':<28} response p50 "
                      f"{r['p50_min'] or float('nan'):6.1f} min, p90 {r['p90_min'] or float('nan'):6.1f}"
                      f" min, within SLA {within if within is not None else float('nan'):.1%} "
                      f"({r['count']:,} calls)")
