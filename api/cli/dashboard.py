"""``safecity dashboard refresh``: fill the area dashboard's projection (``dashboard_calls``).

The service's refresh job keeps the projection up to date by itself, 20,000 call events
a second; on a database that already holds a history (a restore, a bulk load with
``safecity synth load``) it would take minutes to catch up, and the dashboard's figures
are incomplete meanwhile. This command takes the events after the projection's mark in
large batches (:meth:`api.domain.dashboard.services.DashboardRefresher.catch_up`, the
same computation and transactions as the job; the mark's row lock orders it with a
running service) and reports what it did. Run it again at any time: it takes only what
is new.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from api.cli.progress import console, progress_bar

app = typer.Typer(help="The area dashboard: its projection of the calls.",
                  no_args_is_help=True)


@app.command("refresh")
def refresh(
    batch: Annotated[int, typer.Option(
        min=1_000, help="Call events per transaction (larger: faster, longer locks)")] = 200_000,
) -> None:
    """Take every call event after the projection's mark into dashboard_calls (the
    Key figures and Areas of the dashboard), in batches, and say how many calls and
    events it took and how long that was."""
    import asyncio  # noqa: PLC0415

    from api.db.errors import DatabaseError  # noqa: PLC0415

    try:
        calls, events, mark, seconds = asyncio.run(_refresh(batch))
    except DatabaseError as exc:
        console.print(f"[red]database:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    if events == 0:
        console.print(f"dashboard projection already up to date (call event {mark:,}); "
                      f"nothing to take in ({seconds:.1f} s)")
        return
    rate = f", {calls / seconds:,.0f} calls/s" if seconds > 0 else ""
    console.print(f"dashboard projection: {calls:,} calls recomputed from {events:,} call events "
                  f"in {seconds:.1f} s{rate}; up to call event {mark:,}")


async def _refresh(batch: int) -> tuple[int, int, int, float]:
    """Calls recomputed, events taken in, the mark reached, seconds."""
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415
    from sqlalchemy.ext.asyncio import async_sessionmaker  # noqa: PLC0415

    from api.boundaries import current_boundaries  # noqa: PLC0415
    from api.db.engine import async_engine  # noqa: PLC0415
    from api.db.errors import DatabaseError  # noqa: PLC0415
    from api.domain.calls.services import utc_now  # noqa: PLC0415
    from api.domain.dashboard.services import DashboardRefresher  # noqa: PLC0415
    from api.settings import get_settings  # noqa: PLC0415
    from api.shipped import load_categories  # noqa: PLC0415
    from geo.response import SlaTable, urban_tehsils  # noqa: PLC0415

    settings = get_settings()
    started = time.perf_counter()
    engine = async_engine(settings)
    try:
        urban = urban_tehsils(current_boundaries(settings).layer("tehsil"))
        refresher = DashboardRefresher(async_sessionmaker(engine, expire_on_commit=False),
                                       SlaTable.from_categories(load_categories()),
                                       lambda: urban, utc_now)
        first, last = await refresher.position()
        if last <= first:
            return 0, 0, first, time.perf_counter() - started
        with progress_bar("dashboard projection") as update:
            update(f"0 of {last - first:,} call events", 0.0)

            def report(calls: int, mark: int) -> None:
                done = min(mark, last) - first
                update(f"{done:,} of {last - first:,} call events, {calls:,} calls", done / (last - first))

            calls = await refresher.catch_up(batch, report)
        mark, _ = await refresher.position()
        return calls, mark - first, mark, time.perf_counter() - started
    except SQLAlchemyError as exc:
        text = _first_line(exc)
        missing = "does not exist" in text or "no such table" in text
        raise DatabaseError(text + (" (is the schema upgraded? safecity db upgrade)"
                                    if missing else "")) from exc
    finally:
        await engine.dispose()


def _first_line(exc: Any) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
