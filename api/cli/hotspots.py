"""``safecity hotspots``: Gi* hot spots and emerging hot spots of calls on H3 cells.

Both commands read the calls the API reads (the database when it holds calls; a
GeoParquet/Parquet/CSV file with ``lat, lon, received_at, category`` only when ``--calls``
names one), count the dispatched cases like the API (hoax, dropped and information calls
left out unless ``--all-calls`` or ``--category`` says otherwise) in every H3 cell of the
study area (cells without calls included) and write one row per cell in the format
``--out``'s name says (.csv, .parquet, .geojson).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from api.cli.progress import console, progress_bar

if TYPE_CHECKING:
    import pandas as pd

    from geo.aggregate import CallFilter, Step
    from geo.emerging import Window

app = typer.Typer(help="Hot spots of calls on H3 cells: Getis-Ord Gi*, emerging hot spots.",
                  no_args_is_help=True)

CallsOpt = Annotated[Path | None, typer.Option(
    "--calls", help="Calls file: GeoParquet/Parquet/CSV with lat, lon, received_at, category. "
    "Omitted: the database (DATABASE_URL or the embedded file), as the API")]
AllOpt = Annotated[bool, typer.Option("--all-calls", help="Count every call: hoax, dropped and "
                                      "information calls too (default: dispatched cases, as the API)")]
ResOpt = Annotated[int, typer.Option("--res", min=5, max=10, help="H3 resolution (5–10)")]
AreaOpt = Annotated[str, typer.Option("--area", help="Study area LEVEL:CODE (region, district, tehsil, "
                                                     "station) or 'province'")]
KOpt = Annotated[int, typer.Option("--k", min=1, max=10, help="Neighbourhood: k-ring size")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output, one row per cell; the format from the "
                                                   "name: .csv, .parquet or .geojson")]
CategoryOpt = Annotated[list[str] | None, typer.Option("--category", help="Only these call categories "
                                                                           "(repeatable)")]
FromOpt = Annotated[datetime | None, typer.Option("--from", help="First local time counted (inclusive)")]
UntilOpt = Annotated[datetime | None, typer.Option("--until", help="End of the window (exclusive)")]


def _categories(category: list[str] | None, all_calls: bool) -> tuple[str, ...] | None:
    """The categories counted: those asked for, every one (``None``) or the API's default."""
    from api.domain.analytics.services import case_codes  # noqa: PLC0415

    if category:
        return tuple(category)
    return None if all_calls else case_codes()


def _where(categories: tuple[str, ...] | None, since: datetime | None, until: datetime | None
           ) -> CallFilter | None:
    import pandas as pd  # noqa: PLC0415 -- heavy imports stay inside commands

    from geo.aggregate import CallFilter  # noqa: PLC0415

    if not categories and since is None and until is None:
        return None
    return CallFilter(categories=categories,
                      start=pd.Timestamp(since) if since is not None else None,
                      until=pd.Timestamp(until) if until is not None else None)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _calls(calls: Path | None, categories: tuple[str, ...] | None, area: str) -> pd.DataFrame:
    """The calls of the file or, without one, those the database routed to the area (as the
    API reads them); an error when the database has none."""
    from api.cli.data import history  # noqa: PLC0415

    found = history(calls, columns=_needed(categories), categories=categories, area=area)
    if found is None:
        raise _fail("the database holds no calls; load some (safecity synth load) or give --calls FILE")
    return found[0]


@app.command()
def gi(*, res: ResOpt, out: OutOpt, calls: CallsOpt = None, area: AreaOpt = "province", k: KOpt = 1,
       fdr: Annotated[bool, typer.Option("--fdr", help="FDR-correct the bins (as ArcGIS)")] = False,
       category: CategoryOpt = None, all_calls: AllOpt = False, since: FromOpt = None,
       until: UntilOpt = None) -> None:
    """Getis-Ord Gi* per cell: columns h3, count, z, p, bin (±3/±2/±1 = 99/95/90 %)."""
    from api.cli.data import out_format, save  # noqa: PLC0415
    from geo.aggregate import HotspotError, cell_counts, study_area_cells  # noqa: PLC0415
    from geo.hotspots import GiStar, kring_weights  # noqa: PLC0415
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    out_format(out)  # refuse an unknown ending before any work
    categories = _categories(category, all_calls)
    try:
        frame = _calls(calls, categories, area)
        with progress_bar("hot spots") as update:
            update("study area cells", 0.3)
            cells = study_area_cells(area, res, punjab_boundary_set())
            update(f"counting {len(frame):,} calls in {len(cells):,} cells", 0.5)
            counts = cell_counts(frame, cells, where=_where(categories, since, until))
            update("Gi*", 0.8)
            result = GiStar(counts.frame["count"].to_numpy(dtype=float), kring_weights(cells, k),
                            fdr=fdr).frame()
            update("writing", 0.95)
            save(result, out, meta=_meta("gi", area, res, categories))
            update("done", 1.0)
    except (HotspotError, OSError) as exc:
        raise _fail(str(exc)) from exc
    if int(result["count"].sum()) == 0:
        console.print("[yellow]warning:[/yellow] no call of the selection lies in the area; every z is 0")
    bins = result["bin"].value_counts()
    console.print(f"{len(result):,} cells ({counts.outside:,} calls outside {area}) → {out}; "
                  f"hot 99/95/90 %: {bins.get(3, 0)}/{bins.get(2, 0)}/{bins.get(1, 0)}, "
                  f"cold: {bins.get(-3, 0)}/{bins.get(-2, 0)}/{bins.get(-1, 0)}"
                  + (" (FDR)" if fdr else ""))


@app.command()
def emerging(*, res: ResOpt, out: OutOpt, calls: CallsOpt = None,
             step: Annotated[str, typer.Option("--step", help="Time step: week or month")] = "month",
             area: AreaOpt = "province", k: KOpt = 1,
             time_k: Annotated[int, typer.Option("--time-k", min=0, help="Previous steps in the "
                                                 "neighbourhood")] = 1,
             window: Annotated[str, typer.Option("--window", help="Global window: cube or step")] = "cube",
             alpha: Annotated[float, typer.Option("--alpha", min=0.0001, max=0.5,
                                                  help="Significance of a hot/cold bin")] = 0.05,
             fdr: Annotated[bool, typer.Option("--fdr/--no-fdr", help="FDR-correct the bins")] = True,
             category: CategoryOpt = None, all_calls: AllOpt = False, since: FromOpt = None,
             until: UntilOpt = None) -> None:
    """Emerging hot spots: h3, count, z, p, bin (final step), category, trend_tau, trend_p."""
    from api.cli.data import out_format, save  # noqa: PLC0415
    from geo.aggregate import HotspotError, cube_counts, study_area_cells  # noqa: PLC0415
    from geo.emerging import EmergingHotSpots  # noqa: PLC0415
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    if step not in {"week", "month"}:
        raise typer.BadParameter("--step must be week or month")
    if window not in {"cube", "step"}:
        raise typer.BadParameter("--window must be cube or step")
    out_format(out)
    categories = _categories(category, all_calls)
    try:
        frame = _calls(calls, categories, area)
        with progress_bar("emerging hot spots") as update:
            update("study area cells", 0.2)
            cells = study_area_cells(area, res, punjab_boundary_set())
            update(f"space-time cube of {len(frame):,} calls", 0.35)
            cube = cube_counts(frame, cells, cast("Step", step), where=_where(categories, since, until))
            update(f"Gi* on {cube.shape[0]:,} cells × {cube.shape[1]} {step}s, trends, classes", 0.6)
            analysis = EmergingHotSpots(cube, k=k, time_k=time_k, window=cast("Window", window),
                                        alpha=alpha, fdr=fdr)
            result = analysis.frame()
            update("writing", 0.95)
            save(result, out, meta=_meta("emerging", area, res, categories))
            update("done", 1.0)
    except (HotspotError, OSError) as exc:
        raise _fail(str(exc)) from exc
    except ValueError as exc:  # too few steps for the time window
        raise _fail(str(exc)) from exc
    classes = result["category"].value_counts()
    console.print(f"{len(result):,} cells × {cube.shape[1]} {step}s "
                  f"({cube.starts[0]:%Y-%m-%d} … {cube.starts[-1]:%Y-%m-%d}) → {out}")
    for name, n in classes.items():
        if n and name != "no pattern detected":
            console.print(f"  {name}: {n:,}")


def _needed(categories: tuple[str, ...] | None) -> tuple[str, ...]:
    return ("lat", "lon", "received_at", "category") if categories else ("lat", "lon", "received_at")


def _meta(kind: str, area: str, res: int, categories: tuple[str, ...] | None) -> dict[str, object]:
    return {"kind": kind, "area": area, "res": res,
            "categories": list(categories) if categories else "all"}
