"""``safecity serve``: several workers need REDIS_URL (in-memory channels do not cross
processes) unless ``--allow-memory-channels`` says otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import app

pytestmark = pytest.mark.unit


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``uvicorn.run`` was asked to start (nothing is started)."""
    import uvicorn

    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: runs.append(
        {"target": target, **options}))
    return runs


def invoke(args: list[str], redis_url: str | None) -> Any:
    """``safecity serve ARGS`` with REDIS_URL set to ``redis_url`` (``None``: unset)."""
    return CliRunner().invoke(app, ["serve", *args], env={"REDIS_URL": redis_url})


@pytest.mark.parametrize("redis_url", [None, ""])
def test_several_workers_without_redis_are_refused(started: list[dict[str, Any]],
                                                   redis_url: str | None) -> None:
    result = invoke(["--workers", "2"], redis_url)
    assert result.exit_code == 2, result.output
    assert "REDIS_URL" in result.output
    assert "--allow-memory-channels" in result.output
    assert started == []


def test_allow_memory_channels_starts_them_with_a_warning(started: list[dict[str, Any]]) -> None:
    result = invoke(["--workers", "3", "--allow-memory-channels"], None)
    assert result.exit_code == 0, result.output
    assert "in-memory channels" in result.output
    assert [(r["target"], r["workers"]) for r in started] == [("api.app:app_factory", 3)]


def test_several_workers_with_redis_start(started: list[dict[str, Any]]) -> None:
    result = invoke(["--workers", "2", "--port", "8123"], "redis://127.0.0.1:6379/0")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    assert started == [{"target": "api.app:app_factory", "factory": True, "host": "127.0.0.1",
                        "port": 8123, "workers": 2, "log_level": "info"}]


def test_one_worker_needs_no_redis(started: list[dict[str, Any]]) -> None:
    result = invoke([], None)
    assert result.exit_code == 0, result.output
    assert [r["workers"] for r in started] == [1]
    assert invoke(["--workers", "0"], None).exit_code == 2
