"""The service benchmarks run end to end and write the JSON keys other tools read.

Short runs on the real servers and database: the numbers are not judged here (timed
tests would be flaky and prove nothing), only that every configuration answered, that
what was answered is stored, and that the ``--json`` contracts hold.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, *args: str, out: Path) -> dict[str, Any]:
    run = subprocess.run([sys.executable, f"bench/{script}", *args, "--json", str(out)],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


@pytest.mark.integration
def test_service_bench_runs_and_writes_its_json(tmp_path: Path) -> None:
    figures = _bench("service.py", "--requests", "300", "--seconds", "2",
                     out=tmp_path / "service.json")
    for key in ("ratio_one_worker", "p99_ms_one_worker", "ratio_two_workers",
                "p99_ms_two_workers", "floor_ratio_one_worker", "floor_ratio_two_workers",
                "floor_ratio_calls_one_worker", "floor_ratio_calls_two_workers"):
        assert isinstance(figures[key], float), key
        assert figures[key] > 0, key
    assert set(figures["rates"]) == {f"{name}_{workers}" for name in ("bare", "floor", "calls")
                                     for workers in (1, 2)}
    for config, statuses in figures["statuses"].items():
        assert set(statuses) == {"201"}, (config, statuses)  # nothing refused or failed
    assert figures["calls_stored"] == figures["calls_expected"] > 0
    floor_ratio = figures["rates"]["calls_1"] / figures["rates"]["floor_1"]
    assert figures["floor_ratio_calls_one_worker"] == pytest.approx(floor_ratio)
    cpu = figures["cpu_ms_per_request"]
    assert cpu["calls_1"]["server"] > cpu["bare_1"]["server"] > 0
    assert cpu["calls_1"]["postgres"] > 0 == cpu["bare_1"]["postgres"]


@pytest.mark.integration
def test_alerts_bench_runs_and_writes_its_json(tmp_path: Path) -> None:
    figures = _bench("alerts.py", "--scale", "0.02", "--events", "200", "--seconds", "2",
                     out=tmp_path / "alerts.json")
    assert figures["day_calls"] > 500  # one day at 2 % of Punjab's volume
    assert figures["day_alerts_raised"] > 0
    assert figures["day_rules_s"] > 0
    assert figures["events_rate_on"] > 0
    assert figures["events_rate_off"] > 0
    assert figures["events_ratio_on_off"] > 0


@pytest.mark.integration
def test_mixed_load_bench_runs_and_writes_its_json(tmp_path: Path) -> None:
    figures = _bench("mixed_load.py", "--seconds", "5", "--rate", "40", "--months", "2",
                     "--scale", "0.003", "--batch", "2000", out=tmp_path / "mixed.json")
    for phase in ("alone", "under_load"):
        intake = figures["intake"][phase]
        assert intake["sent"] == 200, phase
        assert intake["answered"] + intake["lost"] == intake["sent"], phase
        assert intake["p50_ms"] > 0, phase
        assert intake["max_ms"] >= intake["p99_ms"] >= intake["p50_ms"], phase
    assert figures["calls_stored"] == figures["calls_expected"] > 0  # every 201 is stored
    heavy = figures["heavy"]
    assert set(heavy) == {"batch routing", "emerging hot spots", "Gi* res 8", "heat maps", "plan"}
    for name, answers in heavy.items():
        assert answers["other"] == {}, (name, answers)  # only answers, busy and deadlines
    assert sum(answers["ok"] for answers in heavy.values()) > 0
    assert isinstance(figures["targets_met"], bool)
