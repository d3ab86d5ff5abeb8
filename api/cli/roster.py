"""``safecity roster``: load SHO duty rosters from a CSV file into the database, or generate
a stand-in roster for every station around the present (for demos)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.progress import console

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(help="SHO duty rosters: load a roster file, or generate a demo roster.",
                  no_args_is_help=True)

COLUMNS = ("station_code", "officer_name", "rank", "phone", "start", "end")
SHIFTS = (("Inspector", 8), ("Sub-Inspector", 20))
"""The demo's two SHO shifts a day, local time: the SHO by day, an acting SHO by night."""
DEMO_PHONE_PREFIX = "0399"
"""Officer numbers of generated rosters: the ``039`` block no operator uses (never dialled)."""


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


@app.command("generate")
def generate(
    days: Annotated[int, typer.Option(min=1, max=60, help="Days of shifts after today")] = 3,
    names: Annotated[Path | None, typer.Option(
        help="Stand-in names (part,name; default data/officer_names.csv)")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Also write the roster as CSV here (the shape `roster load` reads)")] = None,
    load_it: Annotated[bool, typer.Option("--load/--no-load",
                                          help="Load it into the database")] = True,
) -> None:
    """A stand-in roster for EVERY station of the current boundary set: a day (08-20) and a
    night (20-08) shift, Pakistan time, from yesterday 08:00 to DAYS days ahead; names
    from a small authored table, so no demo call is unstaffed."""
    import asyncio  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    import pandas as pd  # noqa: PLC0415

    from api.boundaries import current_boundaries  # noqa: PLC0415
    from jurisdictions.sources import PROJECT_DATA  # noqa: PLC0415

    table = pd.read_csv(names or PROJECT_DATA / "officer_names.csv", dtype=str)
    stations = current_boundaries().stations["code"].astype(str).sort_values().tolist()
    frame = demo_roster(stations, table, datetime.now(UTC), days)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
    if load_it:
        count, loaded, _ = asyncio.run(_write(frame, skip_unknown=False))
        console.print(f"generated and loaded {count:,} shifts for {loaded:,} stations "
                      f"({frame['start'].min()} to {frame['end'].max()})"
                      + (f"; written to {out}" if out is not None else ""))
    else:
        console.print(f"generated {len(frame):,} shifts for {len(stations):,} stations"
                      + (f" → {out}" if out is not None else " (not loaded, not written)"))


def demo_roster(stations: list[str], names: pd.DataFrame, now: datetime, days: int
                ) -> pd.DataFrame:
    """Shifts (:data:`COLUMNS`, times as ISO 8601 with +05:00) of every station from the
    local day before ``now`` at 08:00 for ``days + 1`` days; each station's day and night
    officers are picked from ``names`` by its code, so a station keeps its officers from
    one run to the next."""
    import zlib  # noqa: PLC0415
    from datetime import timedelta, timezone  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    from geo.synth.config import LOCAL_UTC_OFFSET_HOURS  # noqa: PLC0415

    given = names.loc[names["part"] == "given", "name"].tolist()
    family = names.loc[names["part"] == "family", "name"].tolist()
    if not given or not family:
        raise typer.BadParameter("the names table needs rows of part 'given' and 'family'",
                                 param_hint="--names")
    local = timezone(timedelta(hours=LOCAL_UTC_OFFSET_HOURS))
    first_day = now.astimezone(local).date() - timedelta(days=1)
    starts = [datetime(first_day.year, first_day.month, first_day.day, hour, tzinfo=local)
              + timedelta(days=d) for d in range(days + 1) for _, hour in SHIFTS]
    ranks = [rank for _ in range(days + 1) for rank, _ in SHIFTS]
    # one draw per station and shift kind (day officer, night officer), stable across runs
    pick = np.array([[zlib.crc32(f"{code}/{rank}".encode()) for rank, _ in SHIFTS]
                     for code in stations], dtype=np.int64).reshape(len(stations), len(SHIFTS))
    officer = (np.asarray(given, dtype=object)[pick % len(given)] + " "
               + np.asarray(family, dtype=object)[(pick // len(given)) % len(family)])
    per_station = len(starts)
    kind = np.tile(np.arange(per_station) % len(SHIFTS), len(stations))
    row = np.repeat(np.arange(len(stations)), per_station)
    start_at = pd.Series(starts * len(stations))
    return pd.DataFrame({
        "station_code": np.repeat(np.asarray(stations, dtype=object), per_station),
        "officer_name": officer[row, kind],
        "rank": np.tile(np.asarray(ranks, dtype=object), len(stations)),
        "phone": DEMO_PHONE_PREFIX + pd.Series(row * len(SHIFTS) + kind).astype(str).str.zfill(7),
        "start": start_at.map(datetime.isoformat),
        "end": (start_at + pd.Timedelta(hours=12)).map(datetime.isoformat),
    }, columns=list(COLUMNS))


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
