"""``safecity route``: resolve points to police-station jurisdictions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from api.cli.data import out_format, save
from api.cli.progress import console, progress_bar

OUTPUT_COLUMNS = ("station_code", "tehsil_code", "district_code", "region_code",
                  "method", "out_of_coverage", "distance_m")


def route(
    lat: Annotated[float | None, typer.Argument(help="Latitude (WGS84)")] = None,
    lon: Annotated[float | None, typer.Argument(help="Longitude (WGS84)")] = None,
    radius_m: Annotated[float | None, typer.Option(help="Location uncertainty radius in metres")] = None,
    csv: Annotated[Path | None, typer.Option(help="CSV with columns lat,lon[,radius_m]")] = None,
    out: Annotated[Path | None, typer.Option(help="Output (with --csv); format from the name: .csv, "
                                                  ".parquet, .geojson")] = None,
) -> None:
    """Route one point (prints JSON) or a CSV of points (writes the answer columns)."""
    from api.routing import current_router  # noqa: PLC0415
    from jurisdictions.errors import JurisdictionsError  # noqa: PLC0415

    if csv is None and (lat is None or lon is None):
        raise typer.BadParameter("give LAT LON, or --csv IN.csv --out OUT.csv")
    if csv is not None and out is None:
        raise typer.BadParameter("--csv needs --out OUT.csv")
    if out is not None:
        out_format(out)
    with progress_bar("loading router") as update:
        router = current_router(progress=update)
    if csv is None:
        try:
            answer = router.resolve(lat, lon, radius_m)  # type: ignore[arg-type]
        except (JurisdictionsError, ValueError) as exc:
            console.print(f"[red]rejected:[/red] {exc}")
            raise typer.Exit(2) from exc
        json.dump(answer.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    _route_csv(router, csv, out)  # type: ignore[arg-type]


def _route_csv(router: object, source: Path, target: Path) -> None:
    import pandas as pd  # noqa: PLC0415

    from jurisdictions.router import Router  # noqa: PLC0415

    assert isinstance(router, Router)
    try:
        frame = pd.read_csv(source)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read {source}: {exc}") from exc
    missing = {"lat", "lon"} - set(frame.columns)
    if missing:
        raise typer.BadParameter(f"{source} lacks column(s) {', '.join(sorted(missing))}")
    lat = pd.to_numeric(frame["lat"], errors="coerce")
    lon = pd.to_numeric(frame["lon"], errors="coerce")
    radius = pd.to_numeric(frame["radius_m"], errors="coerce") if "radius_m" in frame else None
    answers = router.resolve_many(lat.to_numpy(), lon.to_numpy(),
                                  None if radius is None else radius.to_numpy())
    result = pd.concat([frame.drop(columns=[c for c in answers.columns if c in frame]),
                        answers], axis=1)
    save(result, target, credits=False)
    rejected = int((answers["method"] == "rejected").sum())
    console.print(f"routed {len(frame):,} rows to {target}"
                  + (f"; [yellow]{rejected:,} rejected[/yellow] (see column reason)" if rejected else ""))
