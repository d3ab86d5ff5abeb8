"""Every vendored front-end file is the one ``api/static/vendor/VENDORED.md`` names, with its licence."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

VENDOR = Path(__file__).resolve().parents[1] / "api" / "static" / "vendor"
ROW = re.compile(r"^\| (?P<name>[^|]+) \| (?P<version>[0-9][^|]*) \| `(?P<file>[^`]+)`[^|]* \|"
                 r"[^|]*\|[^|]*\| `(?P<sha>[0-9a-f]{64})` \| (?P<licence>[^|]+) \|$")


def table() -> list[dict[str, str]]:
    rows = [m.groupdict() for line in (VENDOR / "VENDORED.md").read_text(encoding="utf-8").splitlines()
            if (m := ROW.match(line.strip()))]
    assert rows, "VENDORED.md has no table rows"
    return rows


def test_every_listed_file_has_its_sha256_and_a_licence() -> None:
    for row in table():
        path = VENDOR / row["file"]
        assert path.is_file(), row["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha"], row["file"]
        assert (path.parent / "LICENSE").is_file(), f"no licence beside {row['file']}"


def test_every_script_in_the_vendor_folder_is_listed() -> None:
    listed = {row["file"] for row in table()}
    shipped = {str(p.relative_to(VENDOR)) for p in VENDOR.rglob("*.js")}
    assert shipped == listed


def test_no_vendored_file_is_a_source_map_or_unminified_copy() -> None:
    names = [p.name for p in VENDOR.rglob("*") if p.is_file()]
    assert not [n for n in names if n.endswith(".map")]
    assert sum(p.stat().st_size for p in VENDOR.rglob("*.js")) < 5_000_000
