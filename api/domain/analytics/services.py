"""Analytics over the stored call history: read the calls once, hand them to ``geo``.

The repository is the only place that touches the database: one query that selects just
the columns a statistic needs (never a caller's number), filtered in SQL by the area's
code, the time window, categories and seriousness. The service checks the request,
builds the study area (every H3 cell whose centre lies in the area, zero cells kept),
and runs :mod:`geo.aggregate`, :mod:`geo.hotspots` or :mod:`geo.emerging` in a worker
thread so the event loop keeps serving.

A call is selected when it was *routed* to the area (its stored code); it is counted in
the cell its position falls in. Calls routed to the area whose position lies in a cell
whose centre is outside the area are reported as ``outside``, not dropped silently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.areas import Areas
from api.auth import Principal
from api.db.call_models import CallEventRecord, CallRecord
from api.domain.analytics.schemas import KINDS, AreaInfo, CellQuery, CellResult, ResultMeta
from api.errors import AppError, BadInputError, NotFoundError, UnprocessableError
from api.shipped import load_categories
from api.types import plausible
from geo.aggregate import (
    AREA_LEVELS,
    LOCAL_TZ,
    MAX_RES,
    MIN_RES,
    AreaRef,
    CallDataError,
    ResponseSpec,
    StudyAreaError,
    cell_counts,
    cube_counts,
    response_heatmap,
    study_area_cells,
)
from geo.emerging import EmergingHotSpots
from geo.h3cells import Cells
from geo.hotspots import GiStar, kring_weights
from geo.response import SlaTable, urban_tehsils
from jurisdictions.boundaries import PROVINCE_CODE, PROVINCE_NAME, BoundarySet

MAX_CELLS = 600_000
"""Largest study area served in one request (the province at res 8 is about 260 k cells)."""

Computed = tuple[pd.DataFrame, int, dict[str, Any]]
"""A per-cell frame, the calls outside the study area, and extra metadata."""

_AREA_COLUMN: dict[str, Any] = {
    "region": CallRecord.region_code, "district": CallRecord.district_code,
    "tehsil": CallRecord.tehsil_code, "station": CallRecord.station_code,
}


class CallHistoryRepository:
    """Reads the call history for analytics (the calls table is the system of record)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @staticmethod
    def statement(query: CellQuery, categories: tuple[str, ...], *, on_scene: bool) -> Select[Any]:
        """The one SELECT: position, time, category[, tehsil, first on-scene time] of the
        calls routed to the area in the window; nothing that identifies a caller."""
        columns: list[Any] = [CallRecord.lat, CallRecord.lon, CallRecord.received_at,
                              CallRecord.category]
        if on_scene:
            first_on_scene = (select(func.min(CallEventRecord.at))
                              .where(CallEventRecord.call_id == CallRecord.id,
                                     CallEventRecord.type == "on_scene")
                              .scalar_subquery())
            columns += [CallRecord.tehsil_code, first_on_scene.label("on_scene_at")]
        stmt = select(*columns).where(CallRecord.category.in_(categories))
        if query.level != "province":
            stmt = stmt.where(_AREA_COLUMN[query.level] == query.code)
        if query.since is not None:
            stmt = stmt.where(CallRecord.received_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(CallRecord.received_at < query.until)
        if query.serious is not None:
            stmt = stmt.where(CallRecord.serious.is_(query.serious))
        return stmt

    async def calls(self, query: CellQuery, categories: tuple[str, ...], *,
                    on_scene: bool = False) -> pd.DataFrame:
        """The selected calls as a frame (``received_at``/``on_scene_at`` in UTC)."""
        stmt = self.statement(query, categories, on_scene=on_scene)
        async with self.sessions() as session:
            result = await session.execute(stmt)
            rows = result.all()
            names = list(result.keys())
        frame = pd.DataFrame.from_records(rows, columns=names)
        for name in ("received_at", "on_scene_at"):
            if name in frame.columns:
                frame[name] = pd.to_datetime(frame[name], utc=True)
        return frame


class AnalyticsService:
    """Per-cell call counts, response times, Gi* hot spots and emerging hot spots."""

    def __init__(self, repository: CallHistoryRepository, boundaries: Callable[[], BoundarySet],
                 areas: Callable[[], Areas]) -> None:
        self.repository = repository
        self._boundaries = boundaries
        self._areas = areas
        table = load_categories()
        self.categories = table.set_index("code")
        self.case_codes = tuple(table.loc[table["call_class"] == "case", "code"].astype(str))
        self._cells: dict[tuple[str, str, str | None, int], Cells] = {}
        self._lock = threading.Lock()

    @property
    def boundaries(self) -> BoundarySet:
        return self._boundaries()

    # ------------------------------------------------------------------ checks
    def check(self, query: CellQuery) -> CellQuery:
        """The query with its code normalised, or a 4xx naming the first problem."""
        if query.level not in AREA_LEVELS:
            raise BadInputError(f"unknown level {query.level!r}; levels are {', '.join(AREA_LEVELS)}")
        if not MIN_RES <= query.res <= MAX_RES:
            raise BadInputError(f"res {query.res} outside {MIN_RES}–{MAX_RES}")
        if query.since is not None and query.until is not None and query.since > query.until:
            raise BadInputError(f"from ({query.since.isoformat()}) is after until "
                                f"({query.until.isoformat()})")
        if not 1 <= query.k <= 3:
            raise BadInputError("k must be 1, 2 or 3")
        if query.min_count < 1:
            raise BadInputError("min_count must be at least 1")
        if query.categories is not None:
            unknown = sorted(set(query.categories) - set(self.categories.index))
            if unknown:
                raise BadInputError(f"unknown category {', '.join(unknown)}; categories are "
                                    f"{', '.join(self.categories.index)}")
        if query.level == "province":
            return query if query.code is None else CellQuery(**{**query.__dict__, "code": None})
        if not query.code:
            raise BadInputError(f"level {query.level} needs a code")
        layer = self.boundaries.layer(query.level)
        if not bool((layer["code"] == query.code).any()):
            raise NotFoundError(f"no {query.level} with code {query.code!r} in boundary set "
                                f"{self.boundaries.version}")
        return query

    def authorized(self, principal: Principal, query: CellQuery) -> CellQuery:
        """The checked query, once the principal may read analytics of its area.

        The role is checked first (403 whatever is asked), then the parameters (400/404
        naming the problem), then the scope: the area and its path upwards from the boundary
        set being served must lie inside the token's scope (403 naming both).
        """
        principal.require("analytics.read")
        checked = self.check(query)
        code = checked.code if checked.code is not None else PROVINCE_CODE
        principal.require_scope(self._areas().get(checked.level, code).path, f"{checked.level} {code}")
        return checked

    def area_name(self, query: CellQuery) -> str:
        if query.level == "province":
            return PROVINCE_NAME
        layer = self.boundaries.layer(query.level)
        return str(layer.loc[layer["code"] == query.code, "name"].iloc[0])

    def study_cells(self, query: CellQuery) -> Cells:
        """Cells of the study area (cached per boundary set, area and resolution)."""
        import h3  # noqa: PLC0415

        boundaries = self.boundaries
        key = (str(boundaries.version), query.level, query.code, query.res)
        with self._lock:
            found = self._cells.get(key)
        if found is not None:
            return found
        area = AreaRef(query.level, query.code)
        geometry = self.area_geometry(query)
        km2 = _area_km2(geometry)
        expected = km2 / h3.average_hexagon_area(query.res, "km^2")
        if expected > MAX_CELLS:
            raise UnprocessableError(
                f"{area} at res {query.res} has about {expected:,.0f} cells (limit {MAX_CELLS:,}); "
                "choose a coarser res or a smaller area")
        try:
            cells = study_area_cells(geometry, query.res)
        except StudyAreaError as exc:
            raise UnprocessableError(str(exc)) from exc
        with self._lock:
            self._cells[key] = cells
        return cells

    def area_geometry(self, query: CellQuery) -> Any:
        """The study area's polygon (EPSG:4326)."""
        from geo.aggregate import area_geometry  # noqa: PLC0415

        return area_geometry(AreaRef(query.level, query.code), self.boundaries)

    def selected_categories(self, query: CellQuery) -> tuple[str, ...]:
        return query.categories if query.categories is not None else self.case_codes

    # ------------------------------------------------------------------ results
    async def compute(self, kind: str, query: CellQuery) -> CellResult:
        """Check, read the calls, and compute ``kind`` (calls, response, hotspots, emerging)."""
        import anyio  # noqa: PLC0415

        if kind not in KINDS:
            raise NotFoundError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
        query = self.check(query)
        categories = self.selected_categories(query)
        cells = await anyio.to_thread.run_sync(lambda: self.study_cells(query))
        calls = await self.repository.calls(query, categories, on_scene=kind == "response")
        work = {"calls": self._calls, "response": self._response, "hotspots": self._hotspots,
                "emerging": self._emerging}[kind]
        frame, outside, extra = await anyio.to_thread.run_sync(lambda: work(calls, cells, query))
        meta = ResultMeta(
            kind=kind, area=AreaInfo(query.level, query.code, self.area_name(query)), res=query.res,
            since=query.since, until=query.until, categories=list(categories),
            serious=query.serious, fdr=query.fdr, boundary_set=str(self.boundaries.version),
            cells=len(cells), calls=len(calls), outside=outside,
            step=extra.get("step"), steps=extra.get("steps"))
        return CellResult(meta, frame, extra)

    @staticmethod
    def _calls(calls: pd.DataFrame, cells: Cells, query: CellQuery) -> Computed:
        counts = cell_counts(calls, cells)
        return counts.frame[["h3", "count"]], counts.outside, {}

    @staticmethod
    def _hotspots(calls: pd.DataFrame, cells: Cells, query: CellQuery) -> Computed:
        counts = cell_counts(calls, cells)
        gi = GiStar(counts.frame["count"].to_numpy(dtype=np.float64), kring_weights(cells, query.k),
                    fdr=query.fdr)
        return gi.frame(), counts.outside, {}

    @staticmethod
    def _emerging(calls: pd.DataFrame, cells: Cells, query: CellQuery) -> Computed:
        try:
            cube = cube_counts(calls, cells, query.step, where=_window(query))
            analysis = EmergingHotSpots(cube, k=query.k, fdr=query.fdr)
        except (CallDataError, ValueError) as exc:
            raise UnprocessableError(f"emerging hot spots: {exc}") from exc
        frame = analysis.frame()
        frame["category"] = frame["category"].astype(str)
        return frame, cube.outside, {"step": query.step, "steps": int(cube.counts.shape[1])}

    def _response(self, calls: pd.DataFrame, cells: Cells, query: CellQuery) -> Computed:
        calls, spec = self.response_spec(calls)
        frame = response_heatmap(calls, cells, spec, min_count=query.min_count)
        outside = int(len(calls) - frame["calls"].sum() - frame["invalid"].sum())
        return frame.drop(columns=["cell"]), outside, {"min_count": query.min_count}

    def response_spec(self, calls: pd.DataFrame) -> tuple[pd.DataFrame, ResponseSpec]:
        """Calls keyed ``category|urban`` or ``category|rural`` and the SLA of each key.

        The SLA of a call depends on its category and on whether its tehsil is mostly
        urban (census 2023 urban residents above rural ones): the category table has an
        urban and a rural limit. Categories without an SLA are left out of the share.
        """
        urban = urban_tehsils(self.boundaries.layer("tehsil"))
        setting = calls["tehsil_code"].map(urban).fillna(False).map({True: "urban", False: "rural"})
        keyed = calls.assign(category=calls["category"].astype(str) + "|" + setting.astype(str))
        sla = SlaTable.from_categories(self.categories.reset_index())
        limits = {**{f"{code}|urban": m for code, m in sla.urban.items()},
                  **{f"{code}|rural": m for code, m in sla.rural.items()}}
        return keyed, ResponseSpec(sla_minutes=limits)


def _window(query: CellQuery) -> Any:
    from geo.aggregate import CallFilter  # noqa: PLC0415

    if query.since is None and query.until is None:
        return None
    return CallFilter(start=pd.Timestamp(query.since) if query.since else None,
                      until=pd.Timestamp(query.until) if query.until else None)


def _area_km2(geometry: Any) -> float:
    """Area of a lon/lat polygon in km² on the WGS84 ellipsoid."""
    from pyproj import Geod  # noqa: PLC0415

    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(geometry)
    return abs(area) / 1e6


def parse_time(value: str | None, name: str, *,
               unreadable: type[AppError] = BadInputError) -> datetime | None:
    """An ISO 8601 date or date-time in UTC; naive values are Pakistan time. ``unreadable``
    (400 by default) when it does not parse, 422 outside 2000–2100."""
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise unreadable(f"{name}: {value!r} is not an ISO 8601 date or date-time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(LOCAL_TZ))
    return plausible(parsed, name)


def cell_query(*, level: str, code: str | None, res: int, since: str | None, until: str | None,
               category: list[str] | None, serious: bool | None, fdr: bool, k: int = 1,
               step: str = "week", min_count: int = 5) -> CellQuery:
    """The query from raw parameters (times and categories parsed; 400 when unreadable)."""
    if step not in ("week", "month"):
        raise BadInputError(f"step must be week or month, not {step!r}")
    return CellQuery(level=level.strip().lower(), code=code.strip() if code else None, res=res,
                     since=parse_time(since, "from"), until=parse_time(until, "until"),
                     categories=parse_categories(category), serious=serious, fdr=fdr, k=k,
                     step=step,  # type: ignore[arg-type]
                     min_count=min_count)


def parse_categories(values: list[str] | None) -> tuple[str, ...] | None:
    """Categories from repeated and/or comma-separated parameters (``None`` when absent)."""
    if not values:
        return None
    codes = tuple(dict.fromkeys(c.strip() for v in values for c in v.split(",") if c.strip()))
    return codes or None
