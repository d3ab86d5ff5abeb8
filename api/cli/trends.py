"""``safecity trends``: an area's call trends, as ``GET /api/v1/trends`` answers them.

Reads the database (``DATABASE_URL`` or the embedded file) with the API's own query and
function (:func:`api.domain.trends.services.compute_trends`), or a calls file
(``--calls``: GeoParquet/Parquet/CSV with ``received_at, category`` and the area code
columns, as ``safecity synth calls`` writes them). Prints the comparisons, the trend,
the busiest categories, the rising areas and the summary sentence; ``--json F`` writes
the same fields the API answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.progress import console

LEVELS = ("province", "region", "district", "tehsil", "station")


def trends(
    *,
    level: Annotated[str, typer.Option(help="province, region, district, tehsil or station")] = "province",
    code: Annotated[str | None, typer.Option(help="The area's code (not for the province)")] = None,
    category: Annotated[list[str] | None, typer.Option(
        "--category", help="Category codes or groups (e.g. violent); repeatable. Default: "
                           "the dispatched cases")] = None,
    period: Annotated[str, typer.Option(help="day, week or month")] = "week",
    until: Annotated[datetime | None, typer.Option(help="End of the current period (exclusive; "
                                                        "default: the last complete period)")] = None,
    rising_level: Annotated[str | None, typer.Option(
        "--rising-level", help="Rank these areas inside the area (default: the next level down)")] = None,
    rising_within: Annotated[str | None, typer.Option(
        "--rising-within", help="Rank within each area of this level (e.g. region)")] = None,
    calls: Annotated[Path | None, typer.Option(help="Read this calls file instead of the database")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the JSON answer here")] = None,
) -> None:
    """Counts per period, this period against the last four and last year, Mann–Kendall
    trend, STL, change points and the areas rising most (BH-corrected)."""
    from api.domain.trends.schemas import TREND_PERIODS, TrendQuery  # noqa: PLC0415
    from api.domain.trends.services import expand_categories  # noqa: PLC0415
    from api.errors import AppError  # noqa: PLC0415

    if level not in LEVELS:
        raise typer.BadParameter(f"must be one of {', '.join(LEVELS)}", param_hint="--level")
    if period not in TREND_PERIODS:
        raise typer.BadParameter(f"must be one of {', '.join(TREND_PERIODS)}", param_hint="--period")
    if level != "province" and not code:
        raise typer.BadParameter(f"a {level} needs --code", param_hint="--code")
    query = TrendQuery(level=level, code=code if level != "province" else None,
                       categories=expand_categories(category), period=period,  # type: ignore[arg-type]
                       until=until, rising_level=rising_level, rising_within=rising_within)
    try:
        answer = _from_file(query, calls) if calls is not None else _from_database(query)
    except AppError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(answer, indent=2, default=str), encoding="utf-8")
    print_trends(answer)
    if json_out is not None:
        console.print(f"JSON → {json_out}")


def _principal() -> Any:
    import getpass  # noqa: PLC0415

    from api.auth import Principal  # noqa: PLC0415

    return Principal(f"cli:{getpass.getuser()}", "admin", "PK6", "province")


def _checked(query: Any, boundaries: Any) -> Any:
    """The query checked as the API checks it (codes, categories, levels)."""
    from api.areas import Areas  # noqa: PLC0415
    from api.domain.analytics.services import AnalyticsService  # noqa: PLC0415
    from api.domain.trends.services import TrendsService  # noqa: PLC0415
    from api.settings import get_settings  # noqa: PLC0415
    from api.workers import WorkerPool  # noqa: PLC0415

    areas = Areas(boundaries)
    analytics = AnalyticsService(lambda: boundaries, lambda: areas, WorkerPool(get_settings()))
    service = TrendsService(analytics)
    return service, service.check_trends(_principal(), query)


def _from_database(query: Any) -> dict[str, Any]:
    from api.boundaries import current_boundaries  # noqa: PLC0415
    from api.db.engine import create_sync_engine  # noqa: PLC0415
    from api.domain.trends.services import compute_trends  # noqa: PLC0415
    from api.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    boundaries = current_boundaries(settings)
    _, checked = _checked(query, boundaries)
    engine = create_sync_engine(settings.database)
    try:
        return compute_trends(engine, boundaries, checked, datetime.now(UTC))
    finally:
        engine.dispose()


def read_calls_file(path: Path, columns: tuple[str, ...] = ("received_at", "category")) -> Any:
    from geo.aggregate import read_calls  # noqa: PLC0415

    try:
        return read_calls(path, columns=columns)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--calls") from exc


def _from_file(query: Any, path: Path) -> dict[str, Any]:
    import pandas as pd  # noqa: PLC0415

    from api.domain.analytics.services import case_codes  # noqa: PLC0415
    from api.domain.trends.analysis import (  # noqa: PLC0415
        CHILD_LEVEL,
        LOOKBACK,
        TrendInputError,
        complete_end,
        to_local,
        trends_payload,
    )
    from api.domain.trends.services import area_names, area_ref, category_labels  # noqa: PLC0415
    from api.errors import UnprocessableError  # noqa: PLC0415
    from geo.aggregate import local_times  # noqa: PLC0415
    from geo.trends import TrendDataError  # noqa: PLC0415
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    boundaries = punjab_boundary_set()
    _, checked = _checked(query, boundaries)
    frame = read_calls_file(path)
    categories = checked.categories or case_codes()
    if checked.level != "province":
        frame = frame[(frame[f"{checked.level}_code"].astype(str) == checked.code).to_numpy()]
    began = local_times(frame["received_at"]).min() if len(frame) else None  # the record's start
    frame = frame[frame["category"].astype(str).isin(categories).to_numpy()].reset_index(drop=True)
    if frame.empty:
        raise UnprocessableError("no calls of the selection in the area")
    end = (to_local(checked.until) if checked.until is not None
           else complete_end(frame["received_at"], checked.period, pd.Timestamp.now(tz="Asia/Karachi")
                             .tz_localize(None)))
    local = local_times(frame["received_at"])
    frame = frame[(local >= end - LOOKBACK[checked.period]).to_numpy()]
    rising = checked.rising_level or CHILD_LEVEL[checked.level]
    try:
        return trends_payload(frame, area=area_ref(boundaries, checked.level, checked.code),
                              period=checked.period, until=end, categories=categories,
                              labels=category_labels(), rising_level=rising,
                              area_names=area_names(boundaries, rising), observed_from=began,
                              rising_within=checked.rising_within)
    except (TrendInputError, TrendDataError) as exc:
        raise UnprocessableError(str(exc)) from exc


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.0%}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.2g}"


def print_trends(answer: dict[str, Any]) -> None:
    """The answer as tables and the summary sentence."""
    from rich.table import Table  # noqa: PLC0415

    report = answer["report"]
    area = answer["area"]
    title = (f"{area['name']} ({area['level']}{' ' + area['code'] if area['code'] else ''}): "
             f"{answer['calls']:,} calls, {answer['period']}s {answer['from'][:10]} … "
             f"{answer['until'][:10]}")
    table = Table(title=title)
    for column in ("against", "current", "baseline mean", "change", "p", "significant"):
        table.add_column(column, justify="left" if column == "against" else "right")
    for key in ("vs_recent", "vs_last_year"):
        c = report[key]
        if c is None:
            table.add_row("the same period last year", str(report["current"]), "no data", "–", "–", "–")
            continue
        table.add_row(c["against"], str(c["current"]), f"{c['baseline_mean']:.1f}", _pct(c["change"]),
                      _p(c["p_value"]) if c["enough_calls"] else "too few calls",
                      "yes" if c["significant"] else "no")
    console.print(table)
    trend = report["trend"]
    if trend is not None:
        console.print(f"Trend: Mann–Kendall τ = {trend['tau']:+.2f}, p = {trend['p_value']:.2g}; Sen's "
                      f"slope {trend['sen_slope']:+.2f} calls a {answer['period']} (95 %: "
                      f"{trend['slope_low']:+.2f} … {trend['slope_high']:+.2f})")
    console.print(f"Seasonal decomposition: {report['decomposition_note']}")
    console.print("Change points: " + (", ".join(report["change_points"]) or "none") +
                  (f" (penalty {report['change_point_penalty']:.1f})"
                   if report["change_point_penalty"] is not None else ""))
    if answer["by_category"]:
        cats = Table(title="Busiest categories")
        for column in ("category", "calls", "current", "change", "p", "significant"):
            cats.add_column(column, justify="left" if column == "category" else "right")
        for row in answer["by_category"]:
            cats.add_row(row["category"], f"{row['calls']:,}", str(row["current"]), _pct(row["change"]),
                         _p(row["p_value"]), "yes" if row["significant"] else "no")
        console.print(cats)
    rising = answer["rising"]
    if rising["areas"]:
        within = rising.get("within")
        ranked = Table(title=f"Rising {rising['level']}s (latest {answer['period']} vs the previous 4; "
                             f"BH-corrected{' within each ' + within if within else ''})")
        for column in ("rank", *([within] if within else []), rising["level"], "current", "4-period mean",
                       "change", "p", "q", "significant"):
            ranked.add_column(column, justify="left" if column in (rising["level"], within) else "right")
        shown = rising["areas"] if within else rising["areas"][:10]
        for row in (r for r in shown if not within or r["rank"] <= 3):
            ranked.add_row(str(row["rank"]), *([row["group"]] if within else []),
                           f"{row['name']} ({row['code']})", str(row["current"]),
                           f"{row['baseline_mean']:.1f}", _pct(row["change"]), _p(row["p"]), _p(row["q"]),
                           "yes" if row["significant"] else "no")
        console.print(ranked)
    console.print(f"[bold]{answer['summary']}[/bold]")
