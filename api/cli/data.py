"""Where the CLI's calls come from and how its tables are written: the same as the API.

- :func:`history`: the calls of the database (``DATABASE_URL`` or the embedded file) when
  it holds any, read by the analytics endpoints' own query
  (:class:`~api.domain.analytics.services.CallHistoryRepository`); a file only when
  ``--calls`` names one.
- :func:`out_format` / :func:`save`: ``--out`` is written in the format its name says
  (``.csv``, ``.parquet``, ``.geojson``) by :mod:`geo.tables`, or refused before any work.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from api.cli.progress import console

if TYPE_CHECKING:
    import pandas as pd


def out_format(out: Path, allowed: Sequence[str] | None = None) -> str:
    """The format ``--out``'s name asks for; a usage error (exit 2) naming the endings."""
    from geo.tables import MEDIA_TYPES, TableFormatError, format_of  # noqa: PLC0415

    try:
        return format_of(out, tuple(allowed or MEDIA_TYPES))
    except TableFormatError as exc:
        raise typer.BadParameter(str(exc), param_hint="--out") from exc


def save(frame: pd.DataFrame, out: Path, *, meta: dict[str, Any] | None = None,
         allowed: Sequence[str] | None = None, credits: bool = True) -> str:
    """Write ``frame`` to ``out`` in the format its name says, credits in the file where the
    format has room (printed for CSV, which has none)."""
    from geo.basemap import ATTRIBUTION_LINES  # noqa: PLC0415
    from geo.tables import MEDIA_TYPES, write_table  # noqa: PLC0415

    fmt = out_format(out, allowed)
    lines = ATTRIBUTION_LINES if credits else ()
    write_table(frame, out, meta=meta, attribution=lines, allowed=tuple(allowed or MEDIA_TYPES))
    if fmt == "csv" and lines:
        console.print("[dim]credit when sharing: " + "; ".join(lines) + "[/dim]")
    return fmt


def database_holds_calls() -> bool:
    """Whether the configured database exists, answers and has at least one call."""
    from sqlalchemy import select  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from api.db.call_models import CallRecord  # noqa: PLC0415
    from api.db.engine import sync_engine  # noqa: PLC0415
    from api.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    if not settings.database.is_postgres and not settings.database.sqlite_path.is_file():
        return False  # no embedded database yet (and none is created by asking)
    try:
        with sync_engine(settings).connect() as conn:
            return conn.execute(select(CallRecord.id).limit(1)).first() is not None
    except SQLAlchemyError:
        return False


def database_calls(categories: tuple[str, ...] | None, *, on_scene: bool = False,
                   area: str = "province") -> pd.DataFrame:
    """The database's calls of ``categories`` (``None``: every category) routed to ``area``
    (``LEVEL:CODE`` or ``province``): the API's query."""
    from sqlalchemy import distinct, select  # noqa: PLC0415

    from api.db.call_models import CallRecord  # noqa: PLC0415
    from api.db.engine import sync_engine  # noqa: PLC0415
    from api.domain.analytics.schemas import CellQuery  # noqa: PLC0415
    from api.domain.analytics.services import CallHistoryRepository  # noqa: PLC0415

    engine = sync_engine()
    if categories is None:
        with engine.connect() as conn:
            categories = tuple(str(c) for c in conn.execute(select(distinct(CallRecord.category))).scalars())
    level, _, code = area.partition(":")
    query = CellQuery(level=level.strip().lower(), code=code.strip() or None)
    if query.level not in ("province", "region", "district", "tehsil", "station"):
        raise typer.BadParameter(f"{area!r}: the level is province, region, district, tehsil or "
                                 "station", param_hint="--area")
    return CallHistoryRepository.read(engine, query, categories, on_scene=on_scene)


def describe_database() -> str:
    from api.db.engine import describe, sync_engine  # noqa: PLC0415

    return f"database: {describe(sync_engine())}"


def history(path: Path | None, *, columns: Sequence[str], categories: tuple[str, ...] | None,
            on_scene: bool = False, area: str = "province") -> tuple[pd.DataFrame, str] | None:
    """The calls and where they came from: the file when given, else the database when it
    holds calls, else ``None`` (the caller decides). ``categories`` and ``area`` select
    database rows as the API does (the calls routed to the area); a file is filtered by
    the caller, by position, as it may lack the routing columns."""
    if path is not None:
        from geo.aggregate import CallDataError, read_calls  # noqa: PLC0415

        try:
            frame = read_calls(path, columns=tuple(columns))
        except CallDataError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
        console.print(f"read {len(frame):,} calls from {path}")
        return frame, f"file: {path}"
    if not database_holds_calls():
        return None
    frame = database_calls(categories, on_scene=on_scene, area=area)
    source = describe_database()
    console.print(f"read {len(frame):,} calls from the {source}")
    return frame, source
