"""``safecity route``: resolve points to police-station jurisdictions.

One point prints the same JSON as ``POST /api/v1/route`` (codes and names, ``stand_in``,
``outside_punjab`` and ``transfer_suggested``), checked against the same bounds; a CSV
gets the batch's answer columns, names and the out-of-province flags included.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.data import out_format, save
from api.cli.progress import console, progress_bar

if TYPE_CHECKING:
    from jurisdictions.router import Router

OUTPUT_COLUMNS = ("station_code", "station_name", "tehsil_code", "tehsil_name", "district_code",
                  "district_name", "region_code", "region_name", "method", "out_of_coverage",
                  "distance_m", "reason", "outside_punjab", "transfer_suggested")
"""Columns ``--csv`` adds to the input's (the batch answer's fields, in the API's order)."""


def route(
    lat: Annotated[float | None, typer.Argument(help="Latitude (WGS84)")] = None,
    lon: Annotated[float | None, typer.Argument(help="Longitude (WGS84)")] = None,
    radius_m: Annotated[float | None, typer.Option(help="Location uncertainty radius in metres "
                                                        "(0 to 50,000)")] = None,
    csv: Annotated[Path | None, typer.Option(help="CSV with columns lat,lon[,radius_m]")] = None,
    out: Annotated[Path | None, typer.Option(help="Output (with --csv); format from the name: .csv, "
                                                  ".parquet, .geojson")] = None,
) -> None:
    """Route one point (prints the API's JSON answer) or a CSV of points (writes the
    answer columns, names and out-of-province flags included)."""
    from api.routing import current_router  # noqa: PLC0415

    if csv is None and (lat is None or lon is None):
        raise typer.BadParameter("give LAT LON, or --csv IN.csv --out OUT.csv")
    if csv is not None and out is None:
        raise typer.BadParameter("--csv needs --out OUT.csv")
    if out is not None:
        out_format(out)
    with progress_bar("loading router") as update:
        router = current_router(progress=update)
    if csv is None:
        assert lat is not None
        assert lon is not None
        _route_one(router, lat, lon, radius_m)
        return
    assert out is not None
    _route_csv(router, csv, out)


def _route_one(router: Router, lat: float, lon: float, radius_m: float | None) -> None:
    """Print one point's answer as the API gives it; exit 2 with the reason when refused."""
    import msgspec  # noqa: PLC0415

    from api.domain.routing.schemas import RoutePoint  # noqa: PLC0415
    from api.domain.routing.services import RoutingService  # noqa: PLC0415
    from jurisdictions.errors import JurisdictionsError  # noqa: PLC0415

    try:
        point = msgspec.convert({"lat": lat, "lon": lon, "radius_m": radius_m}, RoutePoint)
        answer = RoutingService(router).route_one(point)
    except (msgspec.ValidationError, JurisdictionsError, ValueError) as exc:
        console.print(f"[red]rejected:[/red] {exc}")
        raise typer.Exit(2) from exc
    sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(answer), indent=2) + b"\n")
    sys.stdout.flush()
    if answer.outside_punjab:
        console.print(f"[yellow]outside Punjab: {answer.outside_punjab}[/yellow] — transfer the "
                      f"call; {answer.station_code} ({answer.station_name}) is only the nearest "
                      f"Punjab station, {answer.distance_m or 0:,.0f} m away")


def _route_csv(router: Router, source: Path, target: Path) -> None:
    import pandas as pd  # noqa: PLC0415

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
    answers["transfer_suggested"] = (answers["outside_punjab"] != "").to_numpy()
    answers = answers[list(OUTPUT_COLUMNS)]
    result = pd.concat([frame.drop(columns=[c for c in answers.columns if c in frame]),
                        answers], axis=1)
    save(result, target, credits=False)
    rejected = int((answers["method"] == "rejected").sum())
    transfers = int(answers["transfer_suggested"].sum())
    console.print(f"routed {len(frame):,} rows to {target}"
                  + (f"; [yellow]{rejected:,} rejected[/yellow] (see column reason)" if rejected else "")
                  + (f"; [yellow]{transfers:,} outside Punjab[/yellow] (column outside_punjab: "
                     "transfer them)" if transfers else ""))
