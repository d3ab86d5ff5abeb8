"""``safecity roster``: load SHO duty rosters from a CSV file into the database."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from api.cli.progress import console

app = typer.Typer(help="SHO duty rosters: load a roster file.", no_args_is_help=True)

COLUMNS = ("station_code", "officer_name", "rank", "phone", "start", "end")


@app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="CSV with station_code, officer_name, rank, phone, "
                                               "start, end (ISO 8601 with offset)")],
    shift_to: Annotated[str | None, typer.Option(
        help="Move every shift by whole days so the earliest starts on this date "
             "(YYYY-MM-DD or 'today'); for demos")] = None,
    skip_unknown: Annotated[bool, typer.Option(
        help="Skip rows of stations the current boundary set lacks instead of failing")] = False,
) -> None:
    """Replace the roster of every station named in FILE (others are left as they are)."""
    import asyncio  # noqa: PLC0415

    import pandas as pd  # noqa: PLC0415

    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise typer.BadParameter(f"{file} lacks column(s) {', '.join(missing)}", param_hint="FILE")
    try:
        starts = pd.to_datetime(frame["start"], format="ISO8601", utc=False)
        ends = pd.to_datetime(frame["end"], format="ISO8601", utc=False)
    except (ValueError, TypeError) as exc:
        raise typer.BadParameter(f"start/end must be ISO 8601 times with an offset: {exc}",
                                 param_hint="FILE") from exc
    if shift_to is not None:
        target = date.today() if shift_to == "today" else _date(shift_to)
        first = min(s.date() for s in starts)
        delta = pd.Timedelta(days=(target - first).days)
        starts, ends = starts + delta, ends + delta
    frame = frame.assign(start=starts.map(pd.Timestamp.isoformat),
                         end=ends.map(pd.Timestamp.isoformat))
    count, stations, skipped = asyncio.run(_write(frame, skip_unknown))
    console.print(f"loaded {count:,} shifts for {stations:,} stations from {file}"
                  + (f"; [yellow]skipped {skipped:,} rows of unknown stations[/yellow]"
                     if skipped else ""))


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter("expected YYYY-MM-DD or 'today'", param_hint="--shift-to") from exc


async def _write(frame: object, skip_unknown: bool) -> tuple[int, int, int]:
    """Write each station's roster through the same service the API uses (checks, audit)."""
    import getpass  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    import msgspec  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415
    from sqlalchemy.ext.asyncio import async_sessionmaker  # noqa: PLC0415

    from api.areas import Areas  # noqa: PLC0415
    from api.audit import AuditService  # noqa: PLC0415
    from api.auth import Principal  # noqa: PLC0415
    from api.boundaries import current_boundaries  # noqa: PLC0415
    from api.db.engine import async_engine  # noqa: PLC0415
    from api.domain.stations.schemas import RosterPut  # noqa: PLC0415
    from api.domain.stations.services import RosterService  # noqa: PLC0415
    from api.errors import AppError, NotFoundError  # noqa: PLC0415
    from api.settings import get_settings  # noqa: PLC0415

    assert isinstance(frame, pd.DataFrame)
    settings = get_settings()
    areas = Areas(current_boundaries(settings))
    principal = Principal(f"cli:{getpass.getuser()}", "admin", "PK6", "province")
    engine = async_engine(settings)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    count = stations = skipped = 0
    try:
        for code, rows in frame.groupby("station_code", sort=True):
            try:
                station = areas.station(str(code))
            except NotFoundError as exc:
                if skip_unknown:
                    skipped += len(rows)
                    continue
                raise typer.BadParameter(f"{exc} (use --skip-unknown to skip it)") from exc
            try:
                shifts = [{"officer_name": r.officer_name, "rank": r.rank,
                           "phone": r.phone or None, "start": r.start, "end": r.end}
                          for r in rows.itertuples(index=False)]
                body = msgspec.convert({"shifts": shifts}, RosterPut, strict=False)
                async with sessions() as session:
                    rosters = RosterService(session=session, audit=AuditService(session=session))
                    await rosters.replace(station, body, principal, datetime.now(UTC))
            except (AppError, msgspec.ValidationError) as exc:
                raise typer.BadParameter(f"station {code}: {exc}", param_hint="FILE") from exc
            count += len(shifts)
            stations += 1
    finally:
        await engine.dispose()
    return count, stations, skipped
