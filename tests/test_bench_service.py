"""``bench/service.py`` runs end to end and writes the JSON keys other tools read.

A short run (a few hundred requests per configuration) on the real servers: the bench's
numbers are not judged here, only that every configuration answered, every call that was
answered is stored, and the ``--json`` contract (``ratio_one_worker``,
``p99_ms_one_worker`` and the rest) holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_service_bench_runs_and_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "service.json"
    run = subprocess.run(
        [sys.executable, "bench/service.py", "--requests", "300", "--seconds", "2",
         "--json", str(out)], check=False, cwd=ROOT, capture_output=True, text=True,
        timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    figures = json.loads(out.read_text())
    for key in ("ratio_one_worker", "p99_ms_one_worker", "ratio_two_workers",
                "p99_ms_two_workers", "floor_ratio_one_worker", "floor_ratio_two_workers"):
        assert isinstance(figures[key], float), key
        assert figures[key] > 0, key
    assert set(figures["rates"]) == {f"{name}_{workers}" for name in ("bare", "floor", "calls")
                                     for workers in (1, 2)}
    for config, statuses in figures["statuses"].items():
        assert set(statuses) == {"201"}, (config, statuses)  # nothing refused or failed
    assert figures["calls_stored"] == figures["calls_expected"] > 0
    cpu = figures["cpu_ms_per_request"]
    assert cpu["calls_1"]["server"] > cpu["bare_1"]["server"] > 0
    assert cpu["calls_1"]["postgres"] > 0 == cpu["bare_1"]["postgres"]
