"""``safecity plan``: Safe City expansion planning (which tehsils first, how many sites, where).

Three commands over the call history the API plans from: the database (``DATABASE_URL``
or the embedded file) when it holds calls, read with the API's query and its demand rule
(only categories with a seriousness weight); a file only when ``--calls FILE`` names one
(GeoParquet, Parquet or CSV with ``lat, lon, category`` and, for the ranking,
``received_at, on_scene_at``):

- ``plan rank``: every tehsil's need score and its parts (:mod:`geo.planning`);
- ``plan sites``: one tehsil's new camera sites by the MCLP or LSCP (:mod:`geo.coverage`);
- ``plan curve``: one tehsil's covered share for 0..N new sites.

With neither ``--calls`` nor calls in the database, a small deterministic synthetic
history is generated (3 months at 1 % of full volume, seed 15, by
:func:`api.shipped.generate_calls`); results on it illustrate the method, they are not
findings. Existing sites are the documented stand-in layer
unless ``--existing FILE`` gives the real ones.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from api.cli.data import out_format, save
from api.cli.progress import console

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from jurisdictions.boundaries import BoundarySet

app = typer.Typer(help="Safe City expansion: rank tehsils by need, site cameras, coverage curves.",
                  no_args_is_help=True)

SYNTH_MONTHS, SYNTH_SEED, SYNTH_SCALE = 3, 15, 0.01
"""The synthetic history used when neither ``--calls`` nor the database gives calls."""
TABLES = ("csv", "parquet")
"""What ``--out`` of a table without geometry may be."""


class Model(StrEnum):
    """Siting models (``geo.coverage``)."""

    mclp = "mclp"
    lscp = "lscp"


class SolverChoice(StrEnum):
    """MILP solvers (``geo.coverage.SOLVERS``)."""

    highs = "highs"
    cbc = "cbc"


CallsOption = Annotated[Path | None, typer.Option(
    "--calls", help="Call history (GeoParquet/Parquet/CSV). Omitted: the database's calls (as the "
    "API); when it holds none, a small deterministic synthetic history "
    f"({SYNTH_MONTHS} months, {SYNTH_SCALE:.0%} volume, seed {SYNTH_SEED}) from geo.synth")]
ExistingOption = Annotated[Path | None, typer.Option(
    "--existing", help="Existing Safe City sites (GeoJSON/GPKG/CSV points). Omitted: the STAND-IN "
    "layer (a grid over each district headquarters' urban core), not the real cameras")]
RadiusOption = Annotated[float, typer.Option("--radius-m", min=1.0, help="Coverage radius of a site (m)")]
ResOption = Annotated[int, typer.Option("--res", min=5, max=11, help="H3 resolution of demand cells")]
SolverOption = Annotated[SolverChoice, typer.Option("--solver", help="MILP solver: HiGHS (highspy) or CBC")]
TimeLimitOption = Annotated[float, typer.Option("--time-limit", min=1.0,
                                                help="Time limit of one MILP solve (s)")]


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(2)


def _load_calls(path: Path | None) -> tuple[pd.DataFrame, str]:
    """The calls and a description of where they come from: the file, else the database
    (the categories that make demand, as the API), else the synthetic history."""
    from api.cli.data import history  # noqa: PLC0415
    from api.domain.plans.services import weighted_categories  # noqa: PLC0415

    found = history(path, columns=("lat", "lon", "category"), categories=weighted_categories(),
                    on_scene=True)
    if found is not None:
        return found
    from api.cli.progress import progress_bar  # noqa: PLC0415
    from api.shipped import generate_calls  # noqa: PLC0415

    with progress_bar("synthetic calls") as update:
        calls, _ = generate_calls(SYNTH_MONTHS, SYNTH_SEED, SYNTH_SCALE, progress=update)
    source = (f"synthetic: geo.synth.generate_calls(months={SYNTH_MONTHS}, seed={SYNTH_SEED}, "
              f"scale={SYNTH_SCALE}); illustrative, not real calls")
    console.print(f"[yellow]no --calls and no calls in the database: using {len(calls):,} synthetic "
                  f"calls[/yellow] ({source})")
    return calls, source


def _load_existing(path: Path | None, boundaries: BoundarySet) -> gpd.GeoDataFrame:
    from api.shipped import stand_in_sites  # noqa: PLC0415
    from geo.coverage import SiteFileError, read_sites  # noqa: PLC0415

    if path is None:
        sites = stand_in_sites(boundaries)
        console.print(f"[yellow]existing sites: the stand-in layer[/yellow] ({len(sites):,} points over "
                      "district headquarters' urban cores; give --existing FILE for the real ones)")
        return sites
    try:
        return read_sites(path, existing=True)
    except SiteFileError as exc:
        raise _fail(exc) from exc


def _summary_table(title: str, rows: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for key, value in rows.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        table.add_row(key, text)
    console.print(table)


@app.command()
def rank(
    *,
    calls: CallsOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Ranking table, format from the name: .csv, "
                                             ".parquet (default: CSV on stdout)")] = None,
    existing: ExistingOption = None,
    radius_m: RadiusOption = 500.0,
    res: ResOption = 9,
    weights: Annotated[Path | None, typer.Option(
        "--weights", help="Component weights CSV (default data/planning_weights.csv)")] = None,
) -> None:
    """Rank every tehsil by need: serious calls per 100k, p90 response, growth, coverage.

    Writes ``tehsil_code, tehsil, district, score``, one column per component and one
    ``*_points`` column per component (the points sum to the score, 0..100).
    """
    import sys  # noqa: PLC0415

    from api.shipped import load_categories, load_planning_weights  # noqa: PLC0415
    from geo.coverage import CoverageError  # noqa: PLC0415
    from geo.planning import rank_tehsils  # noqa: PLC0415
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    if out is not None:
        out_format(out, TABLES)
    frame, source = _load_calls(calls)
    boundaries = punjab_boundary_set()
    sites = _load_existing(existing, boundaries)
    try:
        table = rank_tehsils(frame, boundaries=boundaries, existing=sites, radius_m=radius_m, res=res,
                             weights=load_planning_weights(weights), categories=load_categories())
    except CoverageError as exc:
        raise _fail(exc) from exc
    if out is None:
        table.to_csv(sys.stdout, index=False)
    else:
        save(table, out, meta={"calls_source": source}, allowed=TABLES, credits=False)
        console.print(f"wrote {len(table)} tehsils to {out} (calls: {source})")
    top = Table(title="Tehsils by need (top 10)")
    for name in ("rank", "tehsil_code", "tehsil", "district", "score"):
        top.add_column(name, justify="right" if name in ("rank", "score") else "left")
    for row in table.head(10).itertuples():
        top.add_row(str(row.rank), str(row.tehsil_code), str(row.tehsil), str(row.district),
                    f"{row.score:.1f}")
    console.print(top)


@app.command()
def sites(
    *,
    tehsil: Annotated[str, typer.Option("--tehsil", help="Tehsil P-code (e.g. PK61702) or name")],
    out: Annotated[Path, typer.Option("--out", help="Plan GeoJSON (sites and summary)")],
    new_sites: Annotated[int | None, typer.Option(
        "--sites", min=0, help="New sites: the MCLP budget; with --model lscp, a cap")] = None,
    radius_m: RadiusOption = 500.0,
    model: Annotated[Model, typer.Option("--model", help="mclp: budget → most demand covered; "
                                         "lscp: target share → fewest sites")] = Model.mclp,
    target: Annotated[float | None, typer.Option(
        "--target", min=0.0, max=1.0, help="LSCP: share of demand to cover (default 1.0)")] = None,
    calls: CallsOption = None,
    existing: ExistingOption = None,
    candidates: Annotated[Path | None, typer.Option(
        "--candidates", help="Candidate sites file (default: centres of demand cells)")] = None,
    res: ResOption = 9,
    solver: SolverOption = SolverChoice.highs,
    time_limit: TimeLimitOption = 120.0,
) -> None:
    """Site a tehsil's new camera sites; writes the chosen sites (existing ones marked) as GeoJSON.

    Each site carries the demand it covers; the FeatureCollection's ``summary`` gives the
    covered share before and after, the greedy baseline, solver, optimality gap and time.
    """
    from api.domain.plans.planner import (  # noqa: PLC0415
        PlanOptionError,
        SiteOptions,
        plan_tehsil,
        summary_rows,
        summary_title,
    )
    from api.shipped import load_categories  # noqa: PLC0415
    from geo.coverage import CoverageError, read_sites  # noqa: PLC0415
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    out_format(out, ("geojson",))
    try:
        options = SiteOptions(new_sites=new_sites, radius_m=radius_m, model=model.value, target=target,
                              res=res, solver=solver.value, time_limit=time_limit).check()
    except PlanOptionError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"--{exc.option.replace('_', '-')}") from exc
    frame, source = _load_calls(calls)
    boundaries = punjab_boundary_set()
    existing_sites = _load_existing(existing, boundaries)
    try:
        candidate_sites = None if candidates is None else read_sites(candidates, existing=False)
        plan = plan_tehsil(frame, tehsil, options, candidates=candidate_sites, existing=existing_sites,
                           categories=load_categories(), boundaries=boundaries)
    except CoverageError as exc:
        raise _fail(exc) from exc
    plan.summary["calls_source"] = source
    out.write_text(json.dumps(plan.to_geojson(), default=str) + "\n", encoding="utf-8")
    s = plan.summary
    _summary_table(summary_title(s), summary_rows(s))
    if s["existing_sites_stand_in"]:
        console.print("[yellow]existing sites are the stand-in layer, not the real cameras[/yellow]")
    for warning in s.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(f"wrote {len(plan.sites)} sites to {out}")


@app.command()
def curve(
    *,
    tehsil: Annotated[str, typer.Option("--tehsil", help="Tehsil P-code (e.g. PK61702) or name")],
    max_sites: Annotated[int, typer.Option("--max-sites", min=0, help="Largest number of new sites")],
    out: Annotated[Path, typer.Option("--out", help="Curve table (sites, covered_share, ...), format "
                                      "from the name: .csv or .parquet")],
    radius_m: RadiusOption = 500.0,
    calls: CallsOption = None,
    existing: ExistingOption = None,
    candidates: Annotated[Path | None, typer.Option(
        "--candidates", help="Candidate sites file (default: centres of demand cells)")] = None,
    res: ResOption = 9,
    solver: SolverOption = SolverChoice.highs,
    time_limit: TimeLimitOption = 120.0,
) -> None:
    """A tehsil's coverage curve: covered share for 0..N new sites (MCLP each), with greedy."""
    from api.shipped import load_categories  # noqa: PLC0415
    from geo.coverage import CoverageError, plan_curve, read_sites  # noqa: PLC0415
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    out_format(out, TABLES)
    frame, _ = _load_calls(calls)
    boundaries = punjab_boundary_set()
    existing_sites = _load_existing(existing, boundaries)
    try:
        candidate_sites = None if candidates is None else read_sites(candidates, existing=False)
        result = plan_curve(frame, tehsil, max_sites=max_sites, radius_m=radius_m, res=res,
                            candidates=candidate_sites, existing=existing_sites,
                            categories=load_categories(), boundaries=boundaries,
                            solver=solver.value, time_limit=time_limit)
    except CoverageError as exc:
        raise _fail(exc) from exc
    table = result.table
    save(table, out, allowed=TABLES, credits=False)
    shown = Table(title=f"{result.tehsil.name} ({result.tehsil.code}): coverage curve, "
                  f"{radius_m:g} m")
    for name in ("sites", "covered_share", "greedy_share", "gap", "status"):
        shown.add_column(name, justify="left" if name == "status" else "right")
    for row in table.itertuples():
        shown.add_row(str(row.sites), f"{row.covered_share:.4f}", f"{row.greedy_share:.4f}",
                      f"{row.gap:.2g}", str(row.status))
    console.print(shown)
    console.print(f"wrote {len(table)} rows to {out}")
