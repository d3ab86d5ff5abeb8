"""The README's first block works as written, from a new shell, on a fresh clone.

The committed tree is cloned, the README's first fenced block is run by ``bash -lc`` in an
environment holding only ``HOME`` and ``PATH`` (plus the port, and the derived-artefact
cache the suite already built, so the routing index is not compiled again), and then the
service it started is asked what a new user would ask: the response statistics of a
region with the token the demo printed, recent calls (staffed), live alerts, and a token
made by ``safecity token`` in yet another new shell. The README's second block is CI's
own command, so it runs the suite this test is part of.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from jurisdictions.sources import cache_dir, data_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 900.0
"""The demo installs, generates, loads and starts; on a busy two-core machine that can
take several minutes (measured here: see docs/demo.md)."""


def first_block(readme: str) -> str:
    """The first fenced code block of the README."""
    match = re.search(r"^```[a-z]*\n(.*?)^```", readme, flags=re.MULTILINE | re.DOTALL)
    assert match, "the README has no fenced block"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _new_shell_env(**extra: str) -> dict[str, str]:
    return {"HOME": os.environ.get("HOME", "/root"), "PATH": "/usr/bin:/bin", **extra}


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone of the committed tree, with the shared data folder beside it."""
    base = tmp_path_factory.mktemp("readme")
    target = base / "safecity"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)],
                   check=True, timeout=300)
    shared = base / "shared" / "data"
    shared.mkdir(parents=True)
    (shared / "punjab").symlink_to(data_dir().resolve())  # the README's ../shared/data/punjab
    return target


@pytest.fixture(scope="module")
def demo(clone: Path) -> Iterator[tuple[str, str, Path]]:
    """The README's first block running in ``clone`` (base URL, its output, the clone)."""
    port = _free_port()
    log = clone.parent / "demo.log"
    env = _new_shell_env(PORT=str(port), SAFECITY_CACHE_DIR=str(cache_dir()))
    with log.open("w") as out:
        process = subprocess.Popen(["env", "-i", *(f"{k}={v}" for k, v in env.items()),
                                    "bash", "-lc", first_block((clone / "README.md").read_text())],
                                   cwd=clone, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    began = time.monotonic()
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the demo exited with {process.returncode}:\n"
                            f"{log.read_text()[-4000:]}")
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - began > START_TIMEOUT_S:
                pytest.fail(f"no /health after {START_TIMEOUT_S:.0f} s:\n{log.read_text()[-4000:]}")
            time.sleep(2)
        print(f"\nREADME demo: /health after {time.monotonic() - began:.0f} s")
        yield base, log.read_text(), clone
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def printed_token(output: str, label: str) -> str:
    match = re.search(rf"^\s*{re.escape(label)}\s+(\S+)$", output, flags=re.MULTILINE)
    assert match, f"the demo printed no token for {label!r}:\n{output[-3000:]}"
    return match.group(1)


def test_the_readme_demo_tells_the_truth(demo: tuple[str, str, Path]) -> None:
    base, output, clone = demo
    now = datetime.now(UTC)
    rpo = {"Authorization": f"Bearer {printed_token(output, 'RPO (Lahore region)')}"}
    admin = {"Authorization": f"Bearer {printed_token(output, 'admin')}"}

    # the region's response times, over the whole history and over the last week
    whole = httpx.get(f"{base}/api/v1/stats/response", params={"level": "region", "code": "LHR"},
                      headers=rpo, timeout=120)
    assert whole.status_code == 200, whole.text
    week = httpx.get(f"{base}/api/v1/stats/response",
                     params={"level": "region", "code": "LHR",
                             "from": (now - timedelta(days=7)).isoformat()},
                     headers=rpo, timeout=120)
    assert week.status_code == 200, week.text
    assert week.json()["calls"] > 0
    assert week.json()["intervals"]["response"]["count"] > 0
    assert whole.json()["calls"] > week.json()["calls"] * 10  # months of history, not one week

    # the last hour holds calls (the history's end and the live ones), none unstaffed
    hour = httpx.get(f"{base}/api/v1/stats/response",
                     params={"from": (now - timedelta(hours=1)).isoformat()},
                     headers=admin, timeout=120)
    assert hour.status_code == 200, hour.text
    assert hour.json()["calls"] > 0
    listed = httpx.get(f"{base}/api/v1/calls", params={"limit": 100}, headers=admin, timeout=60)
    assert listed.status_code == 200, listed.text
    recent = [c for c in listed.json()["items"]
              if datetime.fromisoformat(c["received_at"]) > now - timedelta(hours=1)]
    assert recent, "no call in the last hour"
    assert not [c["id"] for c in recent if c["unstaffed"]]

    # open calls raise alerts from the start
    alerts: list[object] = []
    for _ in range(60):
        answer = httpx.get(f"{base}/api/v1/alerts", headers=admin, timeout=60)
        assert answer.status_code == 200, answer.text
        alerts = answer.json()["items"]
        if alerts:
            break
        time.sleep(2)
    assert alerts, "no alert a minute after the demo started"

    # the README's token command from yet another new shell, accepted by the service
    made = subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in _new_shell_env(
        SAFECITY_CACHE_DIR=str(cache_dir())).items()), "bash", "-lc",
        ".venv/bin/safecity token --role rpo --scope LHR"],
        cwd=clone, capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    again = httpx.get(f"{base}/api/v1/stats/response", params={"level": "region", "code": "LHR"},
                      headers={"Authorization": f"Bearer {made.stdout.strip()}"}, timeout=120)
    assert again.status_code == 200, again.text
    secret = clone / ".safecity" / "jwt-secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    tracked = subprocess.run(["git", "ls-files", ".safecity"], cwd=clone, capture_output=True,
                             text=True, check=True).stdout
    assert not tracked.strip()
