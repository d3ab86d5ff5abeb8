"""Where the boundary data lives and proof that it is the data we documented.

The real Punjab files are not in the project's git history; they are read from
``SAFECITY_DATA_DIR`` (default ``../shared/data/punjab`` beside the project root)
and checked against the sha256 sums recorded in ``data/SOURCES.md``.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import cache
from pathlib import Path

from jurisdictions.errors import ChecksumMismatchError, MissingDataError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""The repository root (the packages are installed in editable mode)."""

PROJECT_DATA = PROJECT_ROOT / "data"
"""Small tables the project authors itself (regions, census matching, categories)."""

SOURCES_FILE = PROJECT_DATA / "SOURCES.md"

_CHECKSUM_LINE = re.compile(r"^([0-9a-f]{64})\s+(\S+)\s*$")


def data_dir() -> Path:
    """The directory holding the shared Punjab boundary and census files."""
    configured = os.environ.get("SAFECITY_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return (PROJECT_ROOT.parent / "shared" / "data" / "punjab").resolve()


def cache_dir() -> Path:
    """Where derived artefacts (station layer, compiled index) are cached, outside git."""
    configured = os.environ.get("SAFECITY_CACHE_DIR")
    path = Path(configured).expanduser() if configured else PROJECT_ROOT / ".safecity" / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


@cache
def recorded_checksums() -> dict[str, str]:
    """File name → sha256 as recorded in ``data/SOURCES.md`` (lines ``<sha256>  <file>``)."""
    sums: dict[str, str] = {}
    for line in SOURCES_FILE.read_text(encoding="utf-8").splitlines():
        match = _CHECKSUM_LINE.match(line.strip())
        if match:
            sums[match.group(2)] = match.group(1)
    return sums


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_source(name: str, directory: Path | None = None) -> Path:
    """Path of a shared source file after checking it against its recorded sha256.

    Raises
    ------
    MissingDataError
        The file is not in the data directory.
    ChecksumMismatchError
        The file differs from the one documented in ``data/SOURCES.md``.
    """
    folder = directory or data_dir()
    path = folder / name
    if not path.is_file():
        raise MissingDataError(
            f"{name} not found in {folder}; set SAFECITY_DATA_DIR to the folder holding "
            "the Punjab boundary files (see data/SOURCES.md)"
        )
    expected = recorded_checksums().get(name)
    if expected is None:
        raise ChecksumMismatchError(f"{name} has no sha256 recorded in {SOURCES_FILE}")
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumMismatchError(
            f"{path} has sha256 {actual}, but data/SOURCES.md records {expected}: "
            "the file was changed or replaced"
        )
    return path


def fingerprint(*names: str) -> str:
    """A short digest of the recorded checksums of ``names`` (keys derived caches)."""
    sums = recorded_checksums()
    joined = "|".join(f"{n}:{sums.get(n, '')}" for n in sorted(names))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]
