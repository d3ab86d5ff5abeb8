"""``safecity db`` (migrations, status) and ``safecity jurisdictions load``.

The database is ``DATABASE_URL`` (PostGIS) or, when it is unset, the embedded SQLite
file. Every failure to reach or prepare it is one red line and exit status 1, with
nothing half-written (migrations and loads are single transactions).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from api.cli.progress import console, progress_bar

app = typer.Typer(help="The database: Alembic migrations and what it holds.",
                  no_args_is_help=True)

PUNJAB_SOURCE = ("OCHA COD-AB Punjab districts and tehsils (P-codes), police regions from "
                 "data/police_regions.csv, census 2023 population; stand-in station areas "
                 "(jurisdictions.stations)")


@contextmanager
def _exit_on_database_error() -> Iterator[None]:
    """One clear line and exit 1 for database and data failures (no traceback)."""
    from api.db.errors import DatabaseError  # noqa: PLC0415
    from jurisdictions.errors import JurisdictionsError  # noqa: PLC0415

    try:
        yield
    except DatabaseError as exc:
        console.print(f"[red]database:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    except JurisdictionsError as exc:
        console.print(f"[red]data:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc


@app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Apply the Alembic migrations (one transaction; PostGIS is enabled when missing)."""
    from api.db.engine import describe, sync_engine  # noqa: PLC0415
    from api.db.migrate import upgrade as run_upgrade  # noqa: PLC0415

    with _exit_on_database_error():
        engine = sync_engine()
        reached = run_upgrade(engine, revision)
    console.print(f"{describe(engine)}: schema at revision [bold]{reached}[/bold]")


@app.command()
def status() -> None:
    """Schema revision, and the boundary sets the database holds (current one last)."""
    from api.db.boundary_store import boundary_sets  # noqa: PLC0415
    from api.db.engine import describe, sync_engine  # noqa: PLC0415
    from api.db.migrate import current_revision, head_revision  # noqa: PLC0415

    with _exit_on_database_error():
        engine = sync_engine()
        revision = current_revision(engine)
        sets = boundary_sets(engine) if revision is not None else []
    head = head_revision()
    state = "up to date" if revision == head else f"behind {head}: run safecity db upgrade"
    console.print(f"{describe(engine)}: schema revision {revision or 'none'} ({state})")
    if not sets:
        console.print("no boundary set loaded (safecity jurisdictions load)")
    for info in sets:
        period = f"{info.effective_from:%Y-%m-%d %H:%M} – " + (
            "[green]current[/green]" if info.is_current else f"{info.expires_at:%Y-%m-%d %H:%M}")
        console.print(f"  {info.version}  {period}" + ("  (stand-in stations)" if info.stand_in else ""))


def load(
    refresh: Annotated[bool, typer.Option(
        "--refresh", help="Rebuild the stand-in stations and rewrite the set even if current")
    ] = False,
) -> None:
    """Write the Punjab set with stand-in stations into the database.

    Into ``DATABASE_URL`` (PostGIS), or the embedded SQLite file when it is unset. The
    schema is migrated first; the set is written in one transaction, the previous set
    (if any) kept in the history tables.
    """
    from api.db.engine import describe, sync_engine  # noqa: PLC0415
    from api.db.migrate import upgrade as run_upgrade  # noqa: PLC0415

    with _exit_on_database_error():
        engine = sync_engine()
        where = describe(engine)
        run_upgrade(engine)  # fails fast (unreachable, no PostGIS) before the heavy work
        from api.db.boundary_store import current_version, write_boundary_set  # noqa: PLC0415
        from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

        current = current_version(engine)
        with progress_bar("boundary set") as update:
            boundaries = punjab_boundary_set(refresh=refresh, progress=update)
            update("ready", 1.0)
        if current == boundaries.version and not refresh:
            console.print(f"{where} already holds boundary set [bold]{current}[/bold]; "
                          "nothing to do (--refresh rewrites it)")
            return
        started = time.perf_counter()
        with progress_bar("writing") as update:
            version = write_boundary_set(engine, boundaries, source=PUNJAB_SOURCE,
                                         progress=update)
        seconds = time.perf_counter() - started
    console.print(
        f"{where}: boundary set [bold]{version}[/bold] is current ({len(boundaries.regions)} "
        f"regions, {len(boundaries.districts)} districts, {len(boundaries.tehsils)} tehsils, "
        f"{len(boundaries.stations)} stand-in stations) in {seconds:.1f} s"
        + (f"; {current} moved to history" if current and current != version else "")
    )
