"""What the analytics endpoints take and give: one query shape, one result shape, formats.

Rows are per H3 cell (the hex string, never the 64-bit integer, which JSON numbers
cannot carry exactly). No row holds anything about a caller: only counts and statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import pandas as pd
from litestar.params import Parameter

Kind = Literal["calls", "response", "hotspots", "emerging"]
KINDS: tuple[str, ...] = ("calls", "response", "hotspots", "emerging")

FORMATS: dict[str, str] = {
    "json": "application/json",
    "geojson": "application/geo+json",
    "geoparquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
}
"""Output formats by ``?format=`` name and the media type each is sent as (Litestar adds
``; charset=utf-8`` to every ``text/`` type itself)."""

FORMAT_ALIASES: dict[str, str] = {"parquet": "geoparquet"}

ACCEPT_TYPES: dict[str, str] = {
    "application/geo+json": "geojson",
    "application/vnd.geo+json": "geojson",
    "application/vnd.apache.parquet": "geoparquet",
    "application/parquet": "geoparquet",
    "application/x-parquet": "geoparquet",
    "text/csv": "csv",
    "application/json": "json",
}
"""``Accept`` media types understood (the first one listed by the client that matches wins)."""


LevelParam = Annotated[str, Parameter(description="province, region, district, tehsil or station")]
CodeParam = Annotated[str | None, Parameter(description="Area code (not for the province)")]
ResParam = Annotated[int, Parameter(description="H3 resolution, 5–10")]
FromParam = Annotated[str | None, Parameter(query="from", description="Start (inclusive), ISO 8601; "
                                            "naive times are Pakistan time")]
UntilParam = Annotated[str | None, Parameter(description="End (exclusive), ISO 8601")]
CategoryParam = Annotated[list[str] | None, Parameter(description="Call categories (repeat or "
                                                      "comma-separate); default: dispatched cases")]
SeriousParam = Annotated[bool | None, Parameter(description="Only serious (true) or non-serious "
                                                "(false) categories")]
FdrParam = Annotated[bool, Parameter(description="Benjamini–Hochberg FDR correction of the bins")]
FormatParam = Annotated[str | None, Parameter(query="format", description="json, geojson, "
                                              "geoparquet or csv (else by Accept)")]
KParam = Annotated[int, Parameter(description="k-ring size")]
"""Query parameters of the analytics endpoints and of the map pages drawn from them."""


@dataclass(frozen=True)
class CellQuery:
    """One analytics request, checked by :meth:`AnalyticsService.check` before any work.

    ``since``/``until`` are time-zone aware (naive input is read as Pakistan time);
    ``categories`` ``None`` means the dispatched cases (call class ``case``): hoax,
    dropped and information calls are not crime on the ground.
    """

    level: str = "province"
    code: str | None = None
    res: int = 7
    since: datetime | None = None
    until: datetime | None = None
    categories: tuple[str, ...] | None = None
    serious: bool | None = None
    fdr: bool = False
    k: int = 1
    step: Literal["week", "month"] = "week"
    min_count: int = 5


class AreaInfo(msgspec.Struct):
    """The study area of a result."""

    level: str
    code: str | None
    name: str


class ResultMeta(msgspec.Struct):
    """What a result covers: area, resolution, window, filters and how many calls went in."""

    kind: str
    area: AreaInfo
    res: int
    since: datetime | None
    until: datetime | None
    categories: list[str]
    serious: bool | None
    fdr: bool
    boundary_set: str
    cells: int
    calls: int
    """Calls selected from the database for the area, window and categories."""
    outside: int
    """Selected calls not in any study-area cell (routed to the area, placed outside it)."""
    step: str | None = None
    steps: int | None = None


@dataclass
class CellResult:
    """A per-cell table (one row per study-area cell, zero cells kept) and its metadata."""

    meta: ResultMeta
    frame: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)
