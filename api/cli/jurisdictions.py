"""``safecity jurisdictions``: build, check, import and load boundary sets."""

from __future__ import annotations

import typer

from api.cli.progress import console, progress_bar

app = typer.Typer(help="Boundary sets: build the stand-in stations, QA, import, load.",
                  no_args_is_help=True)


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
