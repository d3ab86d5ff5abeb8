"""Notebooks run top to bottom on a fresh kernel (nbclient), as a reader would run them.

Each notebook writes its figures and files under ``SAFECITY_NOTEBOOK_OUT`` (a temporary
directory here); an exception in any cell fails the test with that cell's traceback.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"

NOTEBOOKS = {
    # notebook: files it must leave in its output directory
    "safe_city_expansion.ipynb": ("ranking.csv", "ranking_top15.png", "coverage_curves.png",
                                  "plans_top5.png"),
}
"""Notebooks executed here, with the outputs each must produce."""

BUDGET_S = 120.0
"""Wall-clock limit per notebook (they are meant to run in well under a minute)."""


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SAFECITY_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    client = NotebookClient(notebook, timeout=BUDGET_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR.parent)}})
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    assert elapsed < BUDGET_S
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    produced = {p.name for p in (tmp_path / name.removesuffix(".ipynb")).iterdir()}
    assert set(NOTEBOOKS[name]) <= produced
