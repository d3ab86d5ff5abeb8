"""The tehsil ranking of the planner page: ``geo.planning.rank_tehsils`` (the ranking of
``safecity plan rank``) over the calls stored in the last :data:`WINDOW_DAYS` days, in a
worker process (a province's calls are seconds of work), kept for :data:`KEEP_S`."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from api.domain.analytics.schemas import CellQuery
from api.domain.analytics.services import CallHistoryRepository, cell_analysis
from api.shipped import load_categories, load_planning_weights, stand_in_sites
from api.workers import WorkerPool

WINDOW_DAYS = 90
"""Calls of this many days back are ranked (the growth component compares its halves)."""
KEEP_S = 600.0
"""A ranking is computed again after this long (new calls move it slowly)."""
COLUMNS = ("rank", "tehsil_code", "tehsil", "district", "score")

_KEPT: dict[str, tuple[float, list[dict[str, Any]]]] = {}


def ranking_job(version: str, since: datetime) -> list[dict[str, Any]]:
    """Worker job: every tehsil ranked by need from the calls received since ``since``."""
    from geo.planning import rank_tehsils  # noqa: PLC0415

    analysis = cell_analysis(version)
    categories = load_categories()
    codes = tuple(categories["code"].astype(str))
    calls = CallHistoryRepository.read(analysis.engine, CellQuery(level="province", since=since),
                                       codes, on_scene=True)
    if calls.empty:
        return []
    table = rank_tehsils(calls, boundaries=analysis.boundaries,
                         existing=stand_in_sites(analysis.boundaries),
                         weights=load_planning_weights(), categories=categories)
    return [{str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in table[list(COLUMNS)].to_dict("records")]


async def tehsil_ranking(workers: WorkerPool, version: str, now: datetime) -> list[dict[str, Any]]:
    """The province's ranking (computed in a worker, then kept a while)."""
    kept = _KEPT.get(version)
    if kept is not None and time.monotonic() - kept[0] < KEEP_S:
        return kept[1]
    rows: list[dict[str, Any]] = await workers.run("analytics", ranking_job, version,
                                                   now - timedelta(days=WINDOW_DAYS))
    _KEPT.clear()
    _KEPT[version] = (time.monotonic(), rows)
    return rows
