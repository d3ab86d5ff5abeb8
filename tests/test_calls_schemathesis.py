"""Schemathesis over the whole OpenAPI schema of a running service: no 5xx, ever, and
every answer as documented (status code, content type, body schema, headers).

Bounded (``--max-examples`` and ``--max-time``) so the run itself takes under a minute.
It authenticates as an administrator so generated requests reach the handlers instead of
stopping at 401; the SSE feeds are left out (an endless stream is not a response).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.callservice import ROOT, Server, token

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_TIME_S = 45
CHECKS = ",".join(("not_a_server_error", "status_code_conformance", "content_type_conformance",
                   "response_schema_conformance", "response_headers_conformance"))
"""The document tells the truth (``api/openapi_truth.py``): each answer is checked against it."""


def test_no_server_errors_anywhere_in_the_schema(server: Server, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run",
        f"{server.url}/schema/openapi.json",
        "--header", f"Authorization: Bearer {token('admin')}",
        "--checks", CHECKS,
        "--max-examples", "15", "--max-time", str(MAX_TIME_S), "--seed", "15",
        "--exclude-operation-id", "stationFeed", "--exclude-operation-id", "areaFeed",
        "--request-timeout", "30", "--no-color", "--generation-allow-x00", "true",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=MAX_TIME_S + 60)
    summary = done.stdout[-4000:]
    assert done.returncode == 0, f"{summary}\n{done.stderr[-2000:]}\n{server.log_text()}"
    assert " passed" in summary
    assert "server error" not in summary.lower()
