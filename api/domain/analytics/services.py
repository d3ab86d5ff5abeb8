"""Analytics over the stored call history: read the calls once, hand them to ``geo``.

The repository is the only place that touches the database: one query that selects just
the columns a statistic needs (never a caller's number), filtered in SQL by the area's
code, the time window, categories and seriousness. The service checks the request in the
app (role, parameters, scope, the emerging window's bound) and sends the work to the
worker pool (:mod:`api.workers`): there :class:`CellAnalysis` builds the study area
(every H3 cell whose centre lies in the area, zero cells kept), reads the calls, runs
:mod:`geo.aggregate`, :mod:`geo.hotspots` or :mod:`geo.emerging`, and encodes the answer,
so the event loop that takes calls never does any of it.

A call is selected when it was *routed* to the area (its stored code); it is counted in
the cell its position falls in. Calls routed to the area whose position lies in a cell
whose centre is outside the area are reported as ``outside``, not dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.areas import Areas
from api.auth import Principal
from api.bodies import Body, body_job
from api.db.call_models import CallEventRecord, CallRecord
from api.domain.analytics.schemas import KINDS, AreaInfo, CellQuery, CellResult, ResultMeta
from api.errors import AppError, BadInputError, NotFoundError, UnprocessableError
from api.shipped import load_categories
from api.types import plausible
from api.workers import Receive, WorkerPool, worker_state
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
    local_times,
    response_heatmap,
    step_index,
    study_area_cells,
)
from geo.emerging import EmergingHotSpots
from geo.h3cells import Cells
from geo.hotspots import GiStar, kring_weights
from geo.response import SlaTable, urban_tehsils
from jurisdictions.boundaries import PROVINCE_CODE, PROVINCE_NAME, BoundarySet

T = TypeVar("T")

MAX_CELLS = 600_000
"""Largest study area served in one request (the province at res 8 is about 260 k cells)."""

Computed = tuple[pd.DataFrame, int, dict[str, Any]]
"""A per-cell frame, the calls outside the study area, and extra metadata."""

_AREA_COLUMN: dict[str, Any] = {
    "region": CallRecord.region_code, "district": CallRecord.district_code,
    "tehsil": CallRecord.tehsil_code, "station": CallRecord.station_code,
}


class CallHistoryRepository:
    """Reads the call history for analytics (the calls table is the system of record).

    :meth:`statement` is the one query; :meth:`read` runs it in a worker process on that
    process's own engine (the rows become a frame there, not on the app's event loop);
    ``sessions`` serve the app's quick existence checks.
    """

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

    @staticmethod
    def read(engine: Engine, query: CellQuery, categories: tuple[str, ...], *,
             on_scene: bool = False) -> pd.DataFrame:
        """The selected calls as a frame (``received_at``/``on_scene_at`` in UTC)."""
        stmt = CallHistoryRepository.statement(query, categories, on_scene=on_scene)
        with engine.connect() as conn:
            result = conn.execute(stmt)
            rows = result.all()
            names = list(result.keys())
        frame = pd.DataFrame.from_records(rows, columns=names)
        for name in ("received_at", "on_scene_at"):
            if name in frame.columns:
                frame[name] = pd.to_datetime(frame[name], utc=True)
        return frame


def case_codes() -> tuple[str, ...]:
    """The dispatched cases (call class ``case``): the categories read by default."""
    table = load_categories()
    return tuple(table.loc[table["call_class"] == "case", "code"].astype(str))


def span_steps(start: datetime, until: datetime, step: str) -> int:
    """How many week or month steps a window from ``start`` to before ``until`` touches."""
    first, last = step_index(local_times(pd.Series([pd.Timestamp(start),
                                                    pd.Timestamp(until) - pd.Timedelta(1, "us")])),
                             step)  # type: ignore[arg-type]
    return int(last - first + 1)


class AnalyticsService:
    """The analytics endpoints' service in the app: who may ask for what, and the work
    sent to the worker pool (:mod:`api.workers`), never done on the app's event loop."""

    def __init__(self, boundaries: Callable[[], BoundarySet], areas: Callable[[], Areas],
                 workers: WorkerPool, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
                 ) -> None:
        self._boundaries = boundaries
        self._areas = areas
        self.workers = workers
        self.max_steps = workers.config.max_steps
        self.clock = clock
        self.categories = tuple(load_categories()["code"].astype(str))

    @property
    def boundaries(self) -> BoundarySet:
        return self._boundaries()

    # ------------------------------------------------------------------ checks
    def check(self, query: CellQuery, kind: str | None = None) -> CellQuery:
        """The query with its code normalised, or a 4xx naming the first problem (for
        ``kind`` emerging, also the bound on its steps)."""
        if kind is not None and kind not in KINDS:
            raise NotFoundError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
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
            unknown = sorted(set(query.categories) - set(self.categories))
            if unknown:
                raise BadInputError(f"unknown category {', '.join(unknown)}; categories are "
                                    f"{', '.join(self.categories)}")
        if kind == "emerging" and query.since is not None:
            until = query.until or self.clock()
            steps = span_steps(query.since, until, query.step)
            if steps > self.max_steps:
                raise UnprocessableError(too_many_steps(steps, self.max_steps, query.step))
        if query.level == "province":
            return query if query.code is None else CellQuery(**{**query.__dict__, "code": None})
        if not query.code:
            raise BadInputError(f"level {query.level} needs a code")
        layer = self.boundaries.layer(query.level)
        if not bool((layer["code"] == query.code).any()):
            raise NotFoundError(f"no {query.level} with code {query.code!r} in boundary set "
                                f"{self.boundaries.version}")
        return query

    def authorized(self, principal: Principal, query: CellQuery, kind: str | None = None
                   ) -> CellQuery:
        """The checked query, once the principal may read analytics of its area.

        The role is checked first (403 whatever is asked), then the parameters (400/404/422
        naming the problem), then the scope: the area and its path upwards from the boundary
        set being served must lie inside the token's scope (403 naming both).
        """
        principal.require("analytics.read")
        checked = self.check(query, kind)
        code = checked.code if checked.code is not None else PROVINCE_CODE
        principal.require_scope(self._areas().get(checked.level, code).path, f"{checked.level} {code}")
        return checked

    # ------------------------------------------------------------------ results
    async def offload(self, kind: str, query: CellQuery, job: Callable[..., T], *args: Any,
                      receive: Receive | None = None, background: bool = False) -> T:
        """``job(kind, query, boundary set version, *args)`` in a worker, under the deadline
        of ``kind`` (emerging hot spots have their own), cancelled if the client goes."""
        return await self.workers.run("emerging" if kind == "emerging" else "analytics", job,
                                      kind, query, str(self.boundaries.version), *args,
                                      receive=receive, background=background)

    async def offload_body(self, kind: str, query: CellQuery, job: Callable[..., bytes | str],
                           *args: Any, gzip_it: bool, receive: Receive | None = None) -> Body:
        """:meth:`offload` of a job that returns an answer's body, made ready for the wire
        (gzipped when ``gzip_it``) in the worker (:mod:`api.bodies`)."""
        return await self.workers.run("emerging" if kind == "emerging" else "analytics", body_job,
                                      gzip_it, job, kind, query, str(self.boundaries.version),
                                      *args, receive=receive)

    async def compute(self, kind: str, query: CellQuery, *, background: bool = False) -> CellResult:
        """Check, then compute ``kind`` (calls, response, hotspots, emerging) in a worker."""
        return await self.offload(kind, self.check(query, kind), cells_job, background=background)

    async def encoded(self, kind: str, query: CellQuery, fmt: str, *, gzip_it: bool,
                      receive: Receive | None = None) -> tuple[Body, str, dict[str, str]]:
        """``(body, media type, headers)`` of ``kind`` in ``fmt``, computed, encoded and
        (when ``gzip_it``) gzipped in a worker (encoding a province's cells is seconds of
        work too)."""
        return await self.offload(kind, query, encoded_cells_job, fmt, gzip_it, receive=receive)


def too_many_steps(steps: int, limit: int, step: str) -> str:
    return (f"emerging hot spots cover at most {limit} {step}s (SAFECITY_MAX_STEPS); this window "
            f"spans {steps:,} {step}s: give a later from= (or an earlier until=), or step=month")


# ---------------------------------------------------------------------------- in a worker


class CellAnalysis:
    """The analytics themselves, in a worker process: the study area, the calls read from
    the database, and :mod:`geo.aggregate`, :mod:`geo.hotspots` or :mod:`geo.emerging`.

    One per worker and boundary set (:func:`cell_analysis`); study areas are kept.
    """

    def __init__(self, boundaries: BoundarySet, engine: Engine, *, max_steps: int,
                 max_cube: int) -> None:
        self.boundaries = boundaries
        self.engine = engine
        self.max_steps = max_steps
        self.max_cube = max_cube
        self.categories = load_categories().set_index("code")
        self.case_codes = case_codes()
        self._cells: dict[tuple[str, str | None, int], Cells] = {}

    def area_name(self, query: CellQuery) -> str:
        if query.level == "province":
            return PROVINCE_NAME
        layer = self.boundaries.layer(query.level)
        return str(layer.loc[layer["code"] == query.code, "name"].iloc[0])

    def study_cells(self, query: CellQuery) -> Cells:
        """Cells of the study area (kept per area and resolution); 422 when there would be
        more than :data:`MAX_CELLS`."""
        import h3  # noqa: PLC0415

        key = (query.level, query.code, query.res)
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
        self._cells[key] = cells
        return cells

    def area_geometry(self, query: CellQuery) -> Any:
        """The study area's polygon (EPSG:4326)."""
        from geo.aggregate import area_geometry  # noqa: PLC0415

        return area_geometry(AreaRef(query.level, query.code), self.boundaries)

    def selected_categories(self, query: CellQuery) -> tuple[str, ...]:
        return query.categories if query.categories is not None else self.case_codes

    def compute(self, kind: str, query: CellQuery) -> CellResult:
        """Read the calls and compute ``kind`` (calls, response, hotspots, emerging)."""
        categories = self.selected_categories(query)
        cells = self.study_cells(query)
        calls = CallHistoryRepository.read(self.engine, query, categories,
                                           on_scene=kind == "response")
        work = {"calls": self._calls, "response": self._response, "hotspots": self._hotspots,
                "emerging": self._emerging}[kind]
        frame, outside, extra = work(calls, cells, query)
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

    def _emerging(self, calls: pd.DataFrame, cells: Cells, query: CellQuery) -> Computed:
        self.check_cube(calls, len(cells), query)
        try:
            cube = cube_counts(calls, cells, query.step, where=_window(query))
            analysis = EmergingHotSpots(cube, k=query.k, fdr=query.fdr)
        except (CallDataError, ValueError) as exc:
            raise UnprocessableError(f"emerging hot spots: {exc}") from exc
        frame = analysis.frame()
        frame["category"] = frame["category"].astype(str)
        return frame, cube.outside, {"step": query.step, "steps": int(cube.counts.shape[1])}

    def check_cube(self, calls: pd.DataFrame, cells: int, query: CellQuery) -> None:
        """422 before the space-time cube is built when it would span more steps, or more
        cells × steps, than allowed (its window runs from the first call without ``from``,
        to the last call without ``until``)."""
        times = calls["received_at"]
        if times.empty and (query.since is None or query.until is None):
            return  # no call: the cube's own check says so
        start = query.since or times.min()
        until = query.until or times.max() + pd.Timedelta(1, "us")
        steps = span_steps(start, until, query.step)
        if steps > self.max_steps:
            raise UnprocessableError(too_many_steps(steps, self.max_steps, query.step))
        if cells * steps > self.max_cube:
            raise UnprocessableError(
                f"emerging hot spots over {cells:,} cells × {steps:,} {query.step}s is more than "
                f"the {self.max_cube:,} cell-steps one request may take (SAFECITY_MAX_CUBE); "
                "choose a coarser res, a smaller area or a shorter window")

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


def cell_analysis(version: str) -> CellAnalysis:
    """This worker's :class:`CellAnalysis` of boundary set ``version`` (or a newer one)."""
    state = worker_state()
    boundaries = state.boundaries(version)
    config = state.settings.workers
    return state.memo(("analytics", str(boundaries.version)), lambda: CellAnalysis(
        boundaries, state.engine(), max_steps=config.max_steps, max_cube=config.max_cube))


def cells_job(kind: str, query: CellQuery, version: str) -> CellResult:
    """Worker job: the per-cell result of ``kind``."""
    return cell_analysis(version).compute(kind, query)


def encoded_cells_job(kind: str, query: CellQuery, version: str, fmt: str, gzip_it: bool
                      ) -> tuple[Body, str, dict[str, str]]:
    """Worker job: the result of ``kind`` encoded in ``fmt`` (the body the client gets,
    gzipped when ``gzip_it``)."""
    from api.domain.analytics.formats import encode  # noqa: PLC0415

    result = cells_job(kind, query, version)
    if fmt == "csv":  # a spreadsheet has no map: say where each cell is, in numbers and names
        result = CellResult(result.meta, with_places(result.frame, version), result.extra)
    body, media_type, headers = encode(result, fmt)
    return Body.made(body, gzip_it), media_type, headers


def with_places(frame: pd.DataFrame, version: str) -> pd.DataFrame:
    """``frame`` with each cell's centre (``lat``, ``lon``) and the station, tehsil and
    district its centre lies in (codes and names, as the router places a call there)."""
    from geo.h3cells import cells_to_latlng, from_hex  # noqa: PLC0415

    state = worker_state()
    lat, lon = cells_to_latlng(from_hex(frame["h3"].astype(str).to_numpy()))
    placed = state.router(version).resolve_many(lat, lon, None)
    names = state.boundaries(version).station_hierarchy().set_index("station_code")
    codes = placed["station_code"].astype(object)
    out = frame.copy()
    at = list(out.columns).index("h3") + 1
    columns = {"lat": np.round(lat, 6), "lon": np.round(lon, 6), "station_code": codes.to_numpy(),
               "station_name": codes.map(names["station"]).to_numpy(),
               "tehsil_name": codes.map(names["tehsil"]).to_numpy(),
               "district_name": codes.map(names["district"]).to_numpy()}
    for offset, (name, values) in enumerate(columns.items()):
        out.insert(at + offset, name, values)
    return out


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
