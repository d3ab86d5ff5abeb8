"""Trends and forecasts of an area's calls: checks in the app, the work in a worker.

:class:`TrendsService` checks a request (role, parameters and scope, through the
analytics service's own checks, so the rules are the analytics endpoints') and sends the
work to the worker pool (:mod:`api.workers`): reading up to two years of calls, STL,
change points, a backtest of six forecasting methods are seconds to minutes of CPU and
never run on the event loop. Forecasts are kept per area, categories, period, resolution,
methods and day (:data:`FORECAST_CACHE_SIZE` of them), so a dashboard opened by every
officer of a district refits once a day, not once a page view; identical requests that
arrive together share one job.

:class:`TrendCallsRepository` is the one query, shared with the CLI: position, time,
category and the area codes of the calls routed to the area, nothing about a caller.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from api.auth import Principal
from api.db.call_models import CallRecord
from api.domain.analytics.schemas import CellQuery
from api.domain.analytics.services import AnalyticsService, case_codes
from api.domain.trends.analysis import (
    CHILD_LEVEL,
    FORECAST_LOOKBACK_DAYS,
    LOOKBACK,
    AreaRef,
    TrendInputError,
    complete_end,
    next_origin,
    pick_methods,
    profile_payload,
    run_forecast,
    to_local,
    trends_payload,
)
from api.domain.trends.schemas import (
    FORECAST_PERIODS,
    TREND_PERIODS,
    ForecastQuery,
    ProfileQuery,
    TrendQuery,
)
from api.errors import BadInputError, UnprocessableError
from api.shipped import load_categories
from api.workers import Receive, worker_state
from geo.aggregate import LOCAL_TZ, area_geometry
from geo.aggregate import AreaRef as StudyArea
from geo.forecast.events import ForecastError
from geo.trends import TrendDataError
from jurisdictions.boundaries import PROVINCE_NAME, BoundarySet

FORECAST_CACHE_SIZE = 64
"""Forecasts kept in the app (per area, categories, period, resolution, methods, day)."""

MAX_FORECAST_CELLS = 150_000
"""Largest grid one forecast request may backtest (a region at res 8 is ~60 k cells)."""

MAX_ORIGINS = 52

MAX_PROFILE_DAYS = 366
"""Longest window one profile request may count (a year of days and hours)."""

RANKED_LEVELS = ("region", "district", "tehsil", "station")
_AREA_COLUMN: dict[str, Any] = {
    "region": CallRecord.region_code, "district": CallRecord.district_code,
    "tehsil": CallRecord.tehsil_code, "station": CallRecord.station_code,
}


def category_table() -> pd.DataFrame:
    return load_categories()


def expand_categories(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """Category codes from codes and/or category groups (``related_group``, e.g.
    ``violent``), comma-separated or repeated; ``None`` when none is given. Unknown
    names are left for the analytics check to refuse by name."""
    if not values:
        return None
    table = category_table()
    groups = table.groupby("related_group")["code"].apply(list).to_dict()
    codes: list[str] = []
    for value in values:
        for name in (v.strip() for v in value.split(",")):
            if name:
                codes.extend(str(c) for c in groups.get(name, [name]))
    return tuple(dict.fromkeys(codes)) or None


def category_labels() -> dict[str, str]:
    table = category_table()
    return dict(zip(table["code"].astype(str), table["label"].astype(str), strict=True))


class TrendCallsRepository:
    """The calls a trend or forecast reads (the calls table is the system of record)."""

    @staticmethod
    def latest(engine: Engine, *, level: str, code: str | None, categories: Sequence[str] | None,
               until: datetime, first: bool = False) -> datetime | None:
        """When the last (``first``: the first) call of the selection (``None``: any
        category) before ``until`` was received."""
        edge = func.min if first else func.max
        stmt = select(edge(CallRecord.received_at)).where(CallRecord.received_at < until)
        if categories is not None:
            stmt = stmt.where(CallRecord.category.in_(list(categories)))
        if level != "province":
            stmt = stmt.where(_AREA_COLUMN[level] == code)
        with engine.connect() as conn:
            value = conn.execute(stmt).scalar()
        if value is None:
            return None
        stamp = pd.Timestamp(value)
        return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).to_pydatetime()

    @staticmethod
    def read(engine: Engine, *, level: str, code: str | None, categories: Sequence[str],
             since: datetime | None, until: datetime | None) -> pd.DataFrame:
        """Position, time (UTC), category and area codes of the calls routed to the area
        in ``[since, until)``; nothing that identifies a caller."""
        stmt = select(CallRecord.lat, CallRecord.lon, CallRecord.received_at, CallRecord.category,
                      CallRecord.region_code, CallRecord.district_code, CallRecord.tehsil_code,
                      CallRecord.station_code).where(CallRecord.category.in_(list(categories)))
        if level != "province":
            stmt = stmt.where(_AREA_COLUMN[level] == code)
        if since is not None:
            stmt = stmt.where(CallRecord.received_at >= since)
        if until is not None:
            stmt = stmt.where(CallRecord.received_at < until)
        with engine.connect() as conn:
            result = conn.execute(stmt)
            frame = pd.DataFrame.from_records(result.all(), columns=list(result.keys()))
        frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True)
        return frame


def _aware(local: pd.Timestamp) -> datetime:
    return local.tz_localize(LOCAL_TZ).to_pydatetime()


def area_ref(boundaries: BoundarySet, level: str, code: str | None) -> AreaRef:
    if level == "province":
        return AreaRef("province", None, PROVINCE_NAME)
    layer = boundaries.layer(level)
    rows = layer.loc[layer["code"] == code, "name"]
    return AreaRef(level, code, str(rows.iloc[0]) if len(rows) else str(code))


def area_names(boundaries: BoundarySet, level: str | None) -> dict[str, str]:
    if level is None:
        return {}
    layer = boundaries.layer(level)
    return dict(zip(layer["code"].astype(str), layer["name"].astype(str), strict=True))


def compute_trends(engine: Engine, boundaries: BoundarySet, query: TrendQuery, now: datetime
                   ) -> dict[str, Any]:
    """The trend answer from the database (in a worker, or in the CLI's process)."""
    categories = query.categories or case_codes()
    end = to_local(query.until) if query.until is not None else None
    lookback = LOOKBACK[query.period]
    if end is None:  # a history may end long before now: the last complete period before either
        latest = TrendCallsRepository.latest(engine, level=query.level, code=query.code,
                                             categories=categories, until=now)
        if latest is None:
            raise UnprocessableError("no calls of the selection in the area")
        end = complete_end(pd.Series([pd.Timestamp(latest)]), query.period, to_local(now))
    calls = TrendCallsRepository.read(engine, level=query.level, code=query.code,
                                      categories=categories, since=_aware(end - lookback),
                                      until=_aware(end))
    rising = query.rising_level or CHILD_LEVEL[query.level]
    began = TrendCallsRepository.latest(engine, level=query.level, code=query.code, categories=None,
                                        until=_aware(end), first=True)
    try:
        return trends_payload(calls, area=area_ref(boundaries, query.level, query.code),
                              period=query.period, until=end, categories=categories,
                              labels=category_labels(), rising_level=rising,
                              area_names=area_names(boundaries, rising), rising_within=query.rising_within,
                              observed_from=to_local(began) if began is not None else None)
    except (TrendInputError, TrendDataError) as exc:
        raise UnprocessableError(str(exc)) from exc


def compute_forecast(engine: Engine, boundaries: BoundarySet, query: ForecastQuery, now: datetime
                     ) -> dict[str, Any]:
    """The forecast answer from the database (in a worker, or in the CLI's process)."""
    categories = query.categories or case_codes()
    latest = TrendCallsRepository.latest(engine, level=query.level, code=query.code,
                                         categories=categories, until=now)
    if latest is None:
        raise UnprocessableError("no calls of the selection in the area to forecast from")
    calls = TrendCallsRepository.read(  # a history that ended long ago: forecast the period after it
        engine, level=query.level, code=query.code, categories=categories,
        since=latest - timedelta(days=FORECAST_LOOKBACK_DAYS), until=now)
    polygon = area_geometry(StudyArea(query.level, query.code), boundaries)
    origin = next_origin(calls["received_at"], query.period, to_local(now))
    try:
        run = run_forecast(calls, polygon, res=query.res, period=query.period,
                           origins=query.origins, origin=origin, methods=pick_methods(query.methods))
    except (ForecastError, TrendInputError) as exc:
        raise UnprocessableError(f"forecast: {exc}") from exc
    return run.payload(area_ref(boundaries, query.level, query.code), query.categories)


def compute_profile(engine: Engine, boundaries: BoundarySet, query: ProfileQuery, now: datetime
                    ) -> dict[str, Any]:
    """The profile answer from the database: the same calls as a trend (the selected
    categories, by default the dispatched cases), the ``days`` complete days before
    ``until`` (by default those before today, or up to a finished history's last day)."""
    categories = query.categories or case_codes()
    if query.until is not None:
        end = to_local(query.until)
    else:
        # the store's last call, not the area's: a quiet station's days without calls are
        # zeros up to yesterday, not a window ending at its last call
        latest = TrendCallsRepository.latest(engine, level="province", code=None, categories=None,
                                             until=now)
        if latest is None:
            raise UnprocessableError("no calls in the store")
        end = complete_end(pd.Series([pd.Timestamp(latest)]), "day", to_local(now))
    calls = TrendCallsRepository.read(engine, level=query.level, code=query.code,
                                      categories=categories,
                                      since=_aware(end - pd.Timedelta(days=query.days)), until=_aware(end))
    return profile_payload(calls, area=area_ref(boundaries, query.level, query.code), until=end,
                           categories=categories, days=query.days)


# ---------------------------------------------------------------------------- in a worker


def trends_job(query: TrendQuery, version: str, now: datetime) -> dict[str, Any]:
    """Worker job: the trend answer."""
    state = worker_state()
    return compute_trends(state.engine(), state.boundaries(version), query, now)


def profile_job(query: ProfileQuery, version: str, now: datetime) -> dict[str, Any]:
    """Worker job: the profile answer."""
    state = worker_state()
    return compute_profile(state.engine(), state.boundaries(version), query, now)


def forecast_job(query: ForecastQuery, version: str, now: datetime) -> dict[str, Any]:
    """Worker job: the forecast answer with its backtest."""
    state = worker_state()
    return compute_forecast(state.engine(), state.boundaries(version), query, now)


# ---------------------------------------------------------------------------- in the app


class TrendsService:
    """The trend and forecast endpoints' service in the app: who may ask for what, and
    the work sent to the worker pool."""

    def __init__(self, analytics: AnalyticsService, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.analytics = analytics
        self.workers = analytics.workers
        self.clock = clock
        self._forecasts: OrderedDict[tuple[Any, ...], asyncio.Task[dict[str, Any]]] = OrderedDict()

    def _authorized(self, principal: Principal, level: str, code: str | None,
                    categories: tuple[str, ...] | None, res: int = 7) -> CellQuery:
        return self.analytics.authorized(principal, CellQuery(
            level=level.strip().lower(), code=code.strip() if code else None, res=res,
            categories=categories))

    def check_trends(self, principal: Principal, query: TrendQuery) -> TrendQuery:
        """The query with its area normalised, or 400/403/404 naming the problem."""
        if query.period not in TREND_PERIODS:
            raise BadInputError(f"period must be one of {', '.join(TREND_PERIODS)}, not {query.period!r}")
        checked = self._authorized(principal, query.level, query.code, query.categories)
        order = ("province", *RANKED_LEVELS)
        rising = query.rising_level or CHILD_LEVEL[checked.level]
        if query.rising_level is not None and (
                rising not in RANKED_LEVELS or order.index(rising) <= order.index(checked.level)):
            raise BadInputError(f"rising_level must be a level below {checked.level} "
                                f"({', '.join(order[order.index(checked.level) + 1:])})")
        within = query.rising_within
        if within is not None and (rising is None or within not in RANKED_LEVELS
                                   or not order.index(checked.level) < order.index(within)
                                   < order.index(rising)):
            raise BadInputError(f"rising_within must lie between {checked.level} and {rising}")
        return TrendQuery(level=checked.level, code=checked.code, categories=checked.categories,
                          period=query.period, until=query.until, rising_level=query.rising_level,
                          rising_within=within)

    def check_profile(self, principal: Principal, query: ProfileQuery) -> ProfileQuery:
        """The query with its area normalised, or 400/403/404 naming the problem."""
        if not 7 <= query.days <= MAX_PROFILE_DAYS:
            raise BadInputError(f"days must be 7–{MAX_PROFILE_DAYS}, not {query.days}")
        checked = self._authorized(principal, query.level, query.code, query.categories)
        return ProfileQuery(level=checked.level, code=checked.code, categories=checked.categories,
                            days=query.days, until=query.until)

    def check_forecast(self, principal: Principal, query: ForecastQuery) -> ForecastQuery:
        if query.period not in FORECAST_PERIODS:
            raise BadInputError(f"period must be day or week, not {query.period!r}")
        if not 2 <= query.origins <= MAX_ORIGINS:
            raise BadInputError(f"origins must be 2–{MAX_ORIGINS}")
        try:
            pick_methods(query.methods)
        except TrendInputError as exc:
            raise BadInputError(str(exc)) from exc
        checked = self._authorized(principal, query.level, query.code, query.categories, query.res)
        return ForecastQuery(level=checked.level, code=checked.code, categories=checked.categories,
                             period=query.period, res=checked.res, origins=query.origins,
                             methods=tuple(sorted(query.methods)) if query.methods else None)

    async def trends(self, principal: Principal, query: TrendQuery, *,
                     receive: Receive | None = None) -> dict[str, Any]:
        """Check, then compute in a worker."""
        checked = self.check_trends(principal, query)
        return await self.workers.run("analytics", trends_job, checked,
                                      str(self.analytics.boundaries.version), self.clock(),
                                      receive=receive)

    async def profile(self, principal: Principal, query: ProfileQuery, *,
                      receive: Receive | None = None) -> dict[str, Any]:
        """Check, then count in a worker."""
        checked = self.check_profile(principal, query)
        return await self.workers.run("analytics", profile_job, checked,
                                      str(self.analytics.boundaries.version), self.clock(),
                                      receive=receive)

    async def forecast(self, principal: Principal, query: ForecastQuery) -> dict[str, Any]:
        """Check, then the day's forecast from the cache or from one worker job.

        Not cancelled when one client goes: others may be waiting on the same job, and
        the answer is kept for the rest of the day."""
        checked = self.check_forecast(principal, query)
        self._check_size(checked)
        now = self.clock()
        version = str(self.analytics.boundaries.version)
        key = (checked, version, to_local(now).date())
        task = self._forecasts.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(self.workers.run("emerging", forecast_job, checked, version, now))
            self._forecasts[key] = task
            while len(self._forecasts) > FORECAST_CACHE_SIZE:
                self._forecasts.popitem(last=False)
        self._forecasts.move_to_end(key)
        return await asyncio.shield(task)

    def _check_size(self, query: ForecastQuery) -> None:
        import h3  # noqa: PLC0415
        from pyproj import Geod  # noqa: PLC0415

        polygon = area_geometry(StudyArea(query.level, query.code), self.analytics.boundaries)
        km2 = abs(Geod(ellps="WGS84").geometry_area_perimeter(polygon)[0]) / 1e6
        cells = km2 / h3.average_hexagon_area(query.res, "km^2")
        if cells > MAX_FORECAST_CELLS:
            raise UnprocessableError(f"a forecast over about {cells:,.0f} cells (res {query.res}) is more "
                                     f"than the {MAX_FORECAST_CELLS:,} one request may backtest; "
                                     "choose a coarser res or a smaller area")

