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
    "trends_and_forecast.ipynb": ("daily_trend.png", "rising_tehsils.png", "backtest.csv",
                                  "forecast_map.png"),
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


def test_trends_notebook_is_committed_with_its_outputs() -> None:
    """An RPO opening the file sees the figures and the backtest without running it."""
    import nbformat

    notebook = nbformat.read(NOTEBOOKS_DIR / "trends_and_forecast.ipynb", as_version=4)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3
    assert all(len(o["data"]["image/png"]) < 300_000 for o in images)  # small PNGs
    text = " ".join(o.get("text", "") for o in outputs)
    assert "dispatched cases in Lahore: " in text
    assert "baseline" in text or "beat both baselines" in text
    tables = " ".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "PAI 5 %" in tables
    assert not [o for o in outputs if o.get("output_type") == "error"]
