"""Wire shapes of the planner: the request (``plan sites``'s options) and the job as it stands.

Nothing here holds caller data: demand is counted per H3 cell, sites are points.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

PlanState = Literal["queued", "running", "succeeded", "failed"]

MAX_NEW_SITES = 5_000
"""Most new sites one request may ask for (the largest tehsil has about 2,600 demand cells)."""
MIN_RES, MAX_RES = 7, 10
"""H3 resolutions of demand cells offered by the API (res 7 cells are ~5 km², res 10 ~0.015 km²)."""
MAX_RADIUS_M = 5_000.0
"""Largest coverage radius: the coverage matrix grows with its square."""
MAX_TIME_LIMIT_S = 600.0

TimeText = Annotated[str, msgspec.Meta(
    max_length=40, pattern=r"^[0-9][0-9:T .+\-Z]*$",
    description="ISO 8601 date or date-time; naive values are Pakistan time")]


class PlanCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A tehsil's new camera sites: the options of ``safecity plan sites``.

    ``model`` ``mclp`` covers the most demand with ``sites`` new sites (required);
    ``lscp`` finds the fewest new sites covering ``target`` of the demand (default 1.0),
    at most ``sites`` when given. Demand is the stored calls routed to the tehsil, in
    ``[from, until)`` when given, weighted by seriousness. Existing sites are the stand-in
    layer the service knows.
    """

    tehsil: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00]*$",
                                        description="Tehsil P-code (PK61702) or name")]
    sites: Annotated[int, msgspec.Meta(ge=0, le=MAX_NEW_SITES)] | None = None
    radius_m: Annotated[float, msgspec.Meta(gt=0, le=MAX_RADIUS_M,
                                            description="Coverage radius of a site (m)")] = 500.0
    model: Literal["mclp", "lscp"] = "mclp"
    target: Annotated[float, msgspec.Meta(gt=0, le=1, description="LSCP: share of demand "
                                          "to cover")] | None = None
    since: TimeText | None = msgspec.field(default=None, name="from")
    until: TimeText | None = None
    res: Annotated[int, msgspec.Meta(ge=MIN_RES, le=MAX_RES,
                                     description="H3 resolution of demand cells")] = 9
    solver: Literal["highs", "cbc"] = "highs"
    time_limit_s: Annotated[float, msgspec.Meta(ge=1, le=MAX_TIME_LIMIT_S,
                                                description="Limit of the MILP solve (s)")] = 120.0


class PlanLinks(msgspec.Struct):
    """Where to read the job and its results."""

    self: str
    sites: str
    map: str


class PlanAccepted(msgspec.Struct):
    """The answer to ``POST /plans`` (202): the job's id and where to poll it."""

    id: UUID
    state: PlanState
    tehsil_code: str
    tehsil: str
    links: PlanLinks


class Plan(msgspec.Struct):
    """A plan job as it stands: state, stage, progress, timings, and the summary when done."""

    id: UUID
    state: PlanState
    stage: str
    """queued, loading demand, building coverage, solving, writing results or done (a failed
    job keeps the stage it failed in)."""
    progress: float
    """Share of the job done, 0..1 (by stage)."""
    tehsil_code: str
    tehsil: str
    district_code: str
    region_code: str
    boundary_set: str
    params: dict[str, Any]
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    timings: dict[str, float]
    """Seconds spent queued and in each stage (the current one so far), and in all."""
    error: str | None
    summary: dict[str, Any] | None
    """Covered share before and after, greedy baseline, solver, status, gap, solve time, …"""
    links: PlanLinks
    warnings: list[str] = msgspec.field(default_factory=list)
    """Why the plan's numbers should not be read as findings (too little demand: fewer than
    ``summary.min_calls`` calls); empty when there is nothing to warn of."""


class PlanPage(msgspec.Struct):
    """One page of plans, newest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[Plan]
    next_cursor: str | None
