"""The RPO study notebook: runs top to bottom, reads the source the CLI and API read, shows
maps and charts with their credits, never gives a z or p where too few calls lie, and is
committed with its outputs (small PNGs)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "rpo_hotspot_study.ipynb"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def execute(monkeypatch: pytest.MonkeyPatch, database_url: str | None) -> tuple[Any, str, float]:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.delenv("MPLBACKEND", raising=False)
    if database_url is None:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("DATABASE_URL", database_url)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    began = time.perf_counter()
    NotebookClient(notebook, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    elapsed = time.perf_counter() - began
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    return outputs, text, elapsed


@pytest.mark.slow
def test_rpo_notebook_executes_with_maps_charts_and_honest_minimums(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs, text, elapsed = execute(monkeypatch, None)
    assert "source: generated history" in text  # no database with calls: says so
    assert "dispatched cases in region LHR" in text
    assert "weekly steps" in text
    assert "with too few calls (< 5 around them)" in text
    assert "GeoNames (geonames.org), CC BY 4.0" in text
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 3  # the hot-spot map, the classes chart, the hour x weekday chart
    page = ROOT / ".safecity" / "rpo_hotspots_interactive.html"
    assert page.is_file()
    assert "H3HexagonLayer" in page.read_text()
    print(f"notebook executed in {elapsed:.1f} s")
    assert elapsed < 150


@pytest.mark.integration
def test_rpo_notebook_reads_the_database_when_it_holds_calls(loaded_postgis: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    from tests.test_analytics_api import load_small_history

    load_small_history(loaded_postgis)
    _, text, _ = execute(monkeypatch, loaded_postgis)
    assert "source: database: postgresql://" in text
    with psycopg.connect(loaded_postgis) as conn:
        from api.domain.analytics.services import case_codes

        expected = conn.execute("SELECT count(*) FROM calls WHERE region_code = 'LHR' AND category = ANY(%s)",
                                (list(case_codes()),)).fetchone()[0]
    assert f"{expected:,} dispatched cases in region LHR" in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_are_committed_with_small_outputs(path: Path) -> None:
    """Every code cell ran (in order) and the figures are PNGs; no embedded HTML pages."""
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in code]
    assert None not in counts, f"{path.name} has cells that were not run"
    assert counts == sorted(counts)
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3
    assert not [o for o in outputs if "text/html" in o.get("data", {}) and
                len("".join(o["data"]["text/html"])) > 100_000]
    assert path.stat().st_size < 600_000
