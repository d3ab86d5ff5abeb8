"""bench/forecast.py runs end to end on a small history and writes its --json contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_forecast_bench_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "forecast.json"
    done = subprocess.run(
        [sys.executable, "bench/forecast.py", "--scale", "0.01", "--origins", "8",
         "--baseline-origins", "2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["origins"] == 8
    assert data["cells"] > 50_000
    assert data["events"] > 1000
    assert set(data["methods"]) == {"naive", "historical_average", "kde", "prospective", "sepp", "lightgbm"}
    for figures in data["methods"].values():
        assert figures["seconds"] >= 0
        assert figures["peak_traced_mb"] > 0
    assert data["straightforward"]["max_abs_naive_difference"] == 0
    assert data["straightforward"]["max_rel_kde_difference"] < 1e-9
    assert data["ratio_naive"] > 0
    assert data["ratio_kde"] > 0
    backtest = data["backtest"]
    assert set(backtest["methods"]["sepp"]["pai"]) == {"0.01", "0.02", "0.05", "0.1", "0.2"}
    assert data["selection"]["method"] in backtest["methods"]
