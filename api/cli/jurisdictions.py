"""``safecity jurisdictions``: build, check, import and load boundary sets."""

from __future__ import annotations

import importlib
import json
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from api.cli.progress import console, progress_bar

if TYPE_CHECKING:

    from jurisdictions.boundaries import BoundarySet
    from jurisdictions.qa import QAReport

app = typer.Typer(help="Boundary sets: build the stand-in stations, QA, import, load.",
                  no_args_is_help=True)


class Level(StrEnum):
    """The importable levels (``jurisdictions.boundaries.LEVELS``, spelled out here so
    ``--help`` does not import geopandas)."""

    region = "region"
    district = "district"
    tehsil = "tehsil"
    station = "station"


out = Console()
"""The report is the command's output: stdout (progress and notes go to stderr)."""

ThresholdOption = Annotated[float, typer.Option(
    "--threshold-m2", min=0.0,
    help="Gaps, overlaps and out-of-parent parts at or above this area (m²) are errors")]
JsonOption = Annotated[Path | None, typer.Option(
    "--json", help="Also write the QA report as JSON to this file")]


@app.command()
def build(refresh: bool = typer.Option(False, help="Rebuild even if cached")) -> None:
    """Build the Punjab set with stand-in stations and compile its routing index."""
    from jurisdictions.catalog import load_index, punjab_boundary_set  # noqa: PLC0415

    with progress_bar("boundary set") as update:
        boundaries = punjab_boundary_set(refresh=refresh, progress=update)
    with progress_bar("routing index") as update:
        index = load_index(boundaries, refresh=refresh, progress=update)
    console.print(
        f"boundary set [bold]{boundaries.version}[/bold]: {len(boundaries.regions)} regions, "
        f"{len(boundaries.districts)} districts, {len(boundaries.tehsils)} tehsils, "
        f"{len(boundaries.stations)} stand-in stations; index {len(index.lo):,} entries "
        f"({index.n_boundary_cells:,} boundary cells), {index.nbytes() / 1e6:.0f} MB"
    )


# ---------------------------------------------------------------------- the current set
def _boundary_store() -> ModuleType | None:
    """``api.db.boundary_store`` when the database layer is installed, else None."""
    try:
        return importlib.import_module("api.db.boundary_store")
    except ModuleNotFoundError as exc:  # the database layer is optional for file-only use
        if exc.name not in {"api.db", "api.db.boundary_store"}:
            raise  # a dependency of the store is missing: say so, don't hide it
        return None


def _engine() -> Any:
    """The shared engine on ``DATABASE_URL`` or the embedded SQLite file."""
    from api.db.engine import sync_engine  # noqa: PLC0415

    return sync_engine()


def _database_holds_a_set() -> bool:
    """Whether a database is configured (``DATABASE_URL``) or the embedded one exists."""
    from api.settings import get_settings  # noqa: PLC0415

    database = get_settings().database
    return database.is_postgres or database.sqlite_path.exists()


def current_boundary_set() -> tuple[BoundarySet, str]:
    """The set in service and where it came from: the database if it holds one, else files.

    Raises ``api.db.errors.DatabaseError`` when a configured database cannot be read (an
    unreachable ``DATABASE_URL`` is an error, not a reason to check other data).
    """
    store = _boundary_store() if _database_holds_a_set() else None
    if store is not None:
        from api.db.errors import NoBoundarySetError  # noqa: PLC0415

        try:
            boundaries = store.read_boundary_set(_engine())
        except NoBoundarySetError:
            boundaries = None
        if boundaries is not None:
            return boundaries, "database"
        console.print("the database holds no boundary set yet; using the shipped files")
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    with progress_bar("boundary set") as update:
        return punjab_boundary_set(progress=update), "shipped files"


def _current_or_exit() -> tuple[BoundarySet, str]:
    """:func:`current_boundary_set`, turning a database failure into a message and exit 1."""
    try:
        from api.db.errors import DatabaseError  # noqa: PLC0415
    except ImportError:  # no database layer: only the files can be read
        return current_boundary_set()
    try:
        return current_boundary_set()
    except DatabaseError as exc:
        console.print(f"[red]database:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc


def _run_qa(boundaries: BoundarySet, threshold_m2: float, json_path: Path | None) -> QAReport:
    """QA with a progress bar; print the report and write its JSON when asked."""
    from jurisdictions.qa import check_boundary_set  # noqa: PLC0415

    with progress_bar("QA") as update:
        report = check_boundary_set(boundaries, threshold_m2, progress=update)
    out.print(report)
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        console.print(f"report written to {json_path}")
    return report


# ---------------------------------------------------------------------- commands
@app.command()
def check(json_path: JsonOption = None, threshold_m2: ThresholdOption = 1000.0) -> None:
    """QA of the current boundary set; exit 1 when it has errors.

    Invalid geometries, empty or duplicate codes, unknown parents, gaps and overlaps
    between siblings, children outside their parent. Slivers under the threshold are
    warnings with the rule that resolves them (nothing is changed).
    """
    boundaries, source = _current_or_exit()
    console.print(f"checking boundary set {boundaries.version} (from the {source})")
    report = _run_qa(boundaries, threshold_m2, json_path)
    if not report.ok:
        raise typer.Exit(1)


@app.command("import")
def import_layer(
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile or GeoParquet")],
    *,
    level: Annotated[Level, typer.Option("--level", help="Which level the file replaces")],
    code_column: Annotated[str, typer.Option(help="Column with each feature's code")] = "code",
    name_column: Annotated[str, typer.Option(help="Column with each feature's name")] = "name",
    parent_column: Annotated[str | None, typer.Option(
        help="Column with the parent's code (default region_code, district_code or "
             "tehsil_code)")] = None,
    layer: Annotated[str | None, typer.Option(help="Layer of a multi-layer file")] = None,
    threshold_m2: ThresholdOption = 1000.0,
    json_path: JsonOption = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Read, validate and QA only; write nothing")] = False,
) -> None:
    """Replace one level of the current set with a file, if the result passes QA.

    The file is read and checked feature by feature, swapped into the current set and
    the whole set is QA'd; any error refuses the import (exit 1) and nothing is
    written. Otherwise the level is replaced in the database.
    """
    from jurisdictions.boundaries import LEVELS, PARENT_COLUMN  # noqa: PLC0415
    from jurisdictions.errors import InvalidBoundaryError  # noqa: PLC0415
    from jurisdictions.importer import imported_version, read_boundary_file  # noqa: PLC0415

    boundaries, source = _current_or_exit()
    name = level.value
    parents = None
    if name in PARENT_COLUMN:
        parents = boundaries.layer(LEVELS[LEVELS.index(name) - 1])
    try:
        frame = read_boundary_file(file, name, code_column=code_column,
                                   name_column=name_column, parent_column=parent_column,
                                   layer=layer, parents=parents)
    except InvalidBoundaryError as exc:
        console.print(f"[red]refused:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from exc
    version = imported_version(boundaries.version, name, frame)
    console.print(f"read {len(frame):,} {name}s from {file.name}; checking the set from the "
                  f"{source} with them swapped in (version {version})")
    candidate = boundaries.with_layer(name, frame, version)
    report = _run_qa(candidate, threshold_m2, json_path)
    if not report.ok:
        console.print(f"[red]refused:[/red] QA found {len(report.errors):,} error(s); "
                      "nothing was written")
        raise typer.Exit(1)
    if dry_run:
        console.print("[green]passes QA[/green] (dry run: nothing written)")
        return
    store = _boundary_store()
    if store is None:
        console.print("[red]cannot write:[/red] the database layer (api.db.boundary_store) "
                      "is not installed; nothing was written")
        raise typer.Exit(1)
    from api.db.errors import DatabaseError  # noqa: PLC0415

    try:
        stored = store.replace_level(_engine(), name, frame,
                                     source=f"{len(frame)} {name}s imported from {file.name}")
    except DatabaseError as exc:
        console.print(f"[red]not written:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    console.print(f"[green]imported[/green] {len(frame):,} {name}s; boundary set now {stored}")
