"""``safecity forecast backtest|predict``: crime forecasts on H3 cells, always with their score.

Events are any point events with a time: a CSV, Parquet or GeoParquet file with named
columns (``--lat --lon --time``; a GeoParquet's point geometry stands in for missing
lat/lon columns), or ``db``, the calls store (the API's query). ``backtest`` scores every
method over rolling origins against the baselines and prints a table (``--json F``: per
method ``hit_rate`` and ``pai`` keyed by coverage strings, plus ``origins``, ``events``,
``cells``). ``predict`` backtests the same way, picks the method that beat both
baselines (or shows the better baseline and says that none did) and writes the next
period's risk per cell to GeoJSON, GeoParquet or CSV, every row carrying the method, its
score and the baseline's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.progress import console, progress_bar

app = typer.Typer(help="Forecast calls per H3 cell: backtest the methods, predict the next period.",
                  no_args_is_help=True)

OUT_FORMATS = {".geojson": "geojson", ".json": "geojson", ".parquet": "geoparquet",
               ".geoparquet": "geoparquet", ".csv": "csv"}

EventsOpt = Annotated[str, typer.Option("--events", help="CSV/Parquet/GeoParquet file, or 'db' for "
                                                         "the calls store")]
LatOpt = Annotated[str, typer.Option("--lat", help="Latitude column")]
LonOpt = Annotated[str, typer.Option("--lon", help="Longitude column")]
TimeOpt = Annotated[str, typer.Option("--time", help="Time column (naive times are Pakistan time)")]
AreaOpt = Annotated[str | None, typer.Option(
    "--area", help="Study area LEVEL:CODE or 'province' (default: the events' convex hull for a "
                   "file, the province for db)")]
ResOpt = Annotated[int, typer.Option("--res", min=5, max=10, help="H3 resolution")]
PeriodOpt = Annotated[str, typer.Option("--period", help="day or week")]
OriginsOpt = Annotated[int, typer.Option("--origins", min=2, max=104, help="Rolling origins")]
CoverageOpt = Annotated[str, typer.Option("--coverage", help="Shares of the area, comma-separated "
                                                             "(0.05 is always included: methods are "
                                                             "chosen at 5 %)")]
MethodsOpt = Annotated[list[str] | None, typer.Option(
    "--methods", help="Methods besides the baselines (repeatable or comma-separated): kde, "
                      "prospective, sepp, lightgbm; default all")]
CategoryOpt = Annotated[list[str] | None, typer.Option(
    "--category", help="Only these categories or groups (file: needs --category-column)")]
CategoryColOpt = Annotated[str, typer.Option("--category-column", help="Category column of a file")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the backtest's JSON here")]


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _coverages(text: str) -> tuple[float, ...]:
    try:
        values = tuple(sorted({float(v) for v in text.split(",") if v.strip()} | {0.05}))
    except ValueError as exc:
        raise typer.BadParameter(f"not a list of numbers: {text!r}", param_hint="--coverage") from exc
    if not all(0 < v < 1 for v in values):
        raise typer.BadParameter("coverages are shares of the area in (0, 1)", param_hint="--coverage")
    return values


def _methods(values: list[str] | None) -> tuple[str, ...] | None:
    names = tuple(m.strip() for v in values or () for m in v.split(",") if m.strip())
    return names or None


def _read_file(path: Path, *, lat: str, lon: str, time: str, category_column: str,
               categories: tuple[str, ...] | None) -> Any:
    import pandas as pd  # noqa: PLC0415

    from geo.aggregate import CallDataError, read_calls  # noqa: PLC0415

    try:
        frame = read_calls(path, columns=(time,))
    except CallDataError as exc:
        raise _fail(str(exc)) from exc
    if not {lat, lon} <= set(frame.columns) and "geometry" in frame.columns:
        points = frame.geometry.to_crs("EPSG:4326") if frame.crs is not None else frame.geometry
        frame = pd.DataFrame(frame.drop(columns="geometry")).assign(**{lat: points.y, lon: points.x})
    if categories is not None:
        if category_column not in frame.columns:
            raise _fail(f"--category needs a category column; {path} has no {category_column!r}")
        frame = frame[frame[category_column].astype(str).isin(categories).to_numpy()]
    return frame


def _events(events: str, *, area: str | None, lat: str, lon: str, time: str, category_column: str,
            category: list[str] | None) -> tuple[Any, Any, str, str, str, Any]:
    """``(frame, study polygon, lat, lon, time column, area reference)``."""
    import shapely  # noqa: PLC0415

    from api.domain.trends.analysis import AreaRef  # noqa: PLC0415
    from api.domain.trends.services import area_ref, expand_categories  # noqa: PLC0415
    from geo.aggregate import AreaRef as StudyArea  # noqa: PLC0415
    from geo.aggregate import StudyAreaError, area_geometry  # noqa: PLC0415

    categories = expand_categories(category)
    study = StudyArea.parse(area) if area else None
    if events == "db":
        from api.boundaries import current_boundaries  # noqa: PLC0415
        from api.db.engine import create_sync_engine  # noqa: PLC0415
        from api.domain.analytics.services import case_codes  # noqa: PLC0415
        from api.domain.trends.services import TrendCallsRepository  # noqa: PLC0415
        from api.settings import get_settings  # noqa: PLC0415

        settings = get_settings()
        boundaries = current_boundaries(settings)
        study = study or StudyArea("province", None)
        engine = create_sync_engine(settings.database)
        try:
            frame = TrendCallsRepository.read(engine, level=study.level, code=study.code,
                                              categories=categories or case_codes(), since=None,
                                              until=datetime.now(UTC))
        finally:
            engine.dispose()
        lat, lon, time = "lat", "lon", "received_at"
    else:
        path = Path(events)
        frame = _read_file(path, lat=lat, lon=lon, time=time, category_column=category_column,
                           categories=categories)
        if study is None:
            import numpy as np  # noqa: PLC0415

            coords = np.c_[frame[lon].to_numpy(float), frame[lat].to_numpy(float)]
            hull = shapely.convex_hull(shapely.multipoints(coords)).buffer(0.005)
            where = AreaRef("hull", None, f"the events' convex hull ({path.name})")
            return frame, hull, lat, lon, time, where
        from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

        boundaries = punjab_boundary_set()
    try:
        polygon = area_geometry(study, boundaries)
    except StudyAreaError as exc:
        raise _fail(str(exc)) from exc
    return frame, polygon, lat, lon, time, area_ref(boundaries, study.level, study.code)


def _run(events: str, *, area: str | None, lat: str, lon: str, time: str, res: int, period: str,
         origins: int, coverage: str, methods: list[str] | None, category: list[str] | None,
         category_column: str) -> tuple[Any, Any]:
    import pandas as pd  # noqa: PLC0415

    from api.domain.trends.analysis import (  # noqa: PLC0415
        TrendInputError,
        next_origin,
        pick_methods,
        run_forecast,
    )
    from geo.forecast.events import ForecastError  # noqa: PLC0415

    if period not in ("day", "week"):
        raise typer.BadParameter("must be day or week", param_hint="--period")
    covs = _coverages(coverage)
    try:
        chosen = pick_methods(_methods(methods))
    except TrendInputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--methods") from exc
    with progress_bar("forecast") as update:
        update("reading events", 0.05)
        frame, polygon, lat, lon, time, where = _events(events, area=area, lat=lat, lon=lon, time=time,
                                                        category_column=category_column,
                                                        category=category)
        if len(frame) == 0:
            raise _fail("no events to forecast from")
        now = pd.Timestamp.now(tz="Asia/Karachi").tz_localize(None)
        from geo.aggregate import local_times  # noqa: PLC0415

        origin = next_origin(local_times(frame[time]), period, now)  # type: ignore[arg-type]
        update(f"backtesting {len(chosen)} methods over {origins} {period}s of {len(frame):,} events", 0.2)
        try:
            run = run_forecast(frame, polygon, res=res, period=period,  # type: ignore[arg-type]
                               origins=origins, origin=origin, methods=chosen, lat=lat, lon=lon,
                               time=time, coverages=covs)
        except (ForecastError, ValueError) as exc:
            raise _fail(str(exc)) from exc
        update("done", 1.0)
    return run, where


def backtest_json(run: Any) -> dict[str, Any]:
    """The backtest's JSON (``Backtest.to_dict()``) with the selection it leads to."""
    data: dict[str, Any] = run.backtest.to_dict()
    data["selection"] = run.risk_map.selection.to_dict()
    return data


def print_backtest(run: Any, where: Any) -> None:
    from rich.table import Table  # noqa: PLC0415

    from geo.forecast.metrics import coverage_key  # noqa: PLC0415

    result = run.backtest
    keys = [coverage_key(c) for c in result.coverages]
    table = Table(title=f"Backtest, {where.name}: {result.scored_origins} of {len(result.origins)} "
                        f"{result.period}s scored, {result.history_events:,} events, "
                        f"{result.cells:,} cells at res {result.res}")
    table.add_column("method", no_wrap=True)
    for k in keys:
        table.add_column(f"hit {float(k):.0%}", justify="right")
    for k in keys:
        table.add_column(f"PAI {float(k):.0%}", justify="right")
    table.add_column("p vs naive 5%", justify="right")
    table.add_column("p vs hist. avg 5%", justify="right")
    table.add_column("s", justify="right")
    j = result.coverages.index(0.05)
    for name, m in result.methods.items():
        hit, pai = m.mean("hit_rate"), m.mean("pai")
        ps = [f"{m.p_vs[b][j]:.2g}" if b in m.p_vs else "–" for b in ("naive", "historical_average")]
        table.add_row(name, *(f"{v:.3f}" for v in hit), *(f"{v:.2f}" for v in pai), *ps, f"{m.seconds:.1f}")
    console.print(table)
    console.print(f"[bold]{run.risk_map.selection.reason}[/bold]")


@app.command()
def backtest(*, events: EventsOpt, res: ResOpt, period: PeriodOpt = "week", origins: OriginsOpt = 8,
             coverage: CoverageOpt = "0.01,0.02,0.05,0.1,0.2", methods: MethodsOpt = None,
             area: AreaOpt = None, lat: LatOpt = "lat", lon: LonOpt = "lon", time: TimeOpt = "received_at",
             category: CategoryOpt = None, category_column: CategoryColOpt = "category",
             json_out: JsonOpt = None) -> None:
    """Hit rate and PAI per method and coverage over rolling origins, and which method
    (if any) beat both baselines."""
    run, where = _run(events, area=area, lat=lat, lon=lon, time=time, res=res, period=period,
                      origins=origins, coverage=coverage, methods=methods, category=category,
                      category_column=category_column)
    print_backtest(run, where)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(backtest_json(run), indent=2), encoding="utf-8")
        console.print(f"JSON → {json_out}")


def prediction_frame(run: Any) -> Any:
    """One row per cell: h3, risk, rank, top_* flags, and the method's and the baseline's
    scores on every row (a file that travels alone still says how good it is)."""
    selection = run.risk_map.selection
    frame = run.risk_map.frame()
    return frame.assign(
        method=selection.method, beats_baselines=not selection.is_baseline,
        method_hit_rate=selection.score.hit_rate, method_pai=selection.score.pai,
        baseline=selection.baseline.method, baseline_hit_rate=selection.baseline.hit_rate,
        baseline_pai=selection.baseline.pai, coverage=selection.coverage,
        origin=str(run.risk_map.to_dict()["origin"]))


def write_prediction(run: Any, where: Any, out: Path) -> None:
    """GeoJSON, GeoParquet or CSV by ``out``'s extension."""
    import geopandas as gpd  # noqa: PLC0415

    from api.domain.analytics.formats import hexagons  # noqa: PLC0415

    fmt = OUT_FORMATS[out.suffix.lower()]
    frame = prediction_frame(run)
    summary = {"area": where.to_dict(), **run.risk_map.to_dict(),
               "beats_baselines": not run.risk_map.selection.is_baseline,
               "reason": run.risk_map.selection.reason}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if fmt == "csv":
        frame.to_csv(tmp, index=False)
    else:
        table = gpd.GeoDataFrame(frame, geometry=hexagons(frame["h3"]), crs="EPSG:4326")
        if fmt == "geojson":
            collection = json.loads(table.to_json(drop_id=True))
            collection["forecast"] = summary
            tmp.write_text(json.dumps(collection), encoding="utf-8")
        else:
            table.attrs["forecast"] = summary
            table.to_parquet(tmp, index=False)
            _add_parquet_metadata(tmp, summary)
    tmp.replace(out)


def _add_parquet_metadata(path: Path, summary: dict[str, Any]) -> None:
    import pyarrow.parquet as pq  # noqa: PLC0415

    table = pq.read_table(path)
    metadata = {**(table.schema.metadata or {}), b"safecity:forecast": json.dumps(summary).encode()}
    pq.write_table(table.replace_schema_metadata(metadata), path)


@app.command()
def predict(*, events: EventsOpt, res: ResOpt, out: Annotated[Path, typer.Option(
                "--out", help="GeoJSON (.geojson), GeoParquet (.parquet/.geoparquet) or CSV (.csv)")],
            period: PeriodOpt = "week", origins: OriginsOpt = 8,
            coverage: CoverageOpt = "0.01,0.02,0.05,0.1,0.2", methods: MethodsOpt = None,
            area: AreaOpt = None, lat: LatOpt = "lat", lon: LonOpt = "lon", time: TimeOpt = "received_at",
            category: CategoryOpt = None, category_column: CategoryColOpt = "category",
            json_out: JsonOpt = None) -> None:
    """Risk per cell for the next day or week by the method that backtested best (or the
    baseline, saying so), with its score and the baseline's on every row."""
    if out.suffix.lower() not in OUT_FORMATS:
        raise typer.BadParameter(f"{out.name}: write .geojson, .parquet/.geoparquet or .csv",
                                 param_hint="--out")
    run, where = _run(events, area=area, lat=lat, lon=lon, time=time, res=res, period=period,
                      origins=origins, coverage=coverage, methods=methods, category=category,
                      category_column=category_column)
    print_backtest(run, where)
    write_prediction(run, where, out)
    if json_out is not None:
        json_out.write_text(json.dumps(backtest_json(run), indent=2), encoding="utf-8")
    summary = run.risk_map.to_dict()
    selection = run.risk_map.selection
    console.print(f"{summary['method']} forecast for {summary['origin'][:10]} … {summary['until'][:10]}: "
                  f"{summary['expected_events']:.1f} events expected over {summary['cells']:,} cells; "
                  f"PAI at 5 %: {selection.score.pai:.2f} ({selection.baseline.method}: "
                  f"{selection.baseline.pai:.2f}) → {out}")
