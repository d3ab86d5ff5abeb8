"""``GET/POST /plans`` and ``GET /plans/{id}``: Safe City expansion plans as pages.

The same :class:`PlanService` as ``/api/v1/plans`` with the session's principal (so the
same roles, ``plan.read`` / ``plan.create``, and the same tehsil scope); the map is the
existing ``/maps/plans/{id}`` page, which takes the session.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from api.areas import Areas
from api.domain.accounts.services import PageUser, template_context
from api.domain.jurisdictions.services import JurisdictionService
from api.domain.planner.ranking import WINDOW_DAYS, tehsil_ranking
from api.domain.plans.schemas import Plan, PlanCreate
from api.domain.plans.services import PlanService
from api.errors import AppError
from api.pages import html_page, render
from api.workers import WorkerPool


def plans_clock() -> datetime:
    return datetime.now(UTC)


CURVE_W, CURVE_H, CURVE_PAD = 360, 200, 32
"""Size of the coverage curve's SVG (user units) and its margin for the axes."""


def tehsils_in_scope(page_user: PageUser, areas: Areas, jurisdictions: JurisdictionService
                     ) -> list[tuple[str, str]]:
    """(code, "tehsil, district") of every tehsil the user's scope covers, by name."""
    frame = jurisdictions.boundaries.layer("tehsil")
    found = []
    for code, name in zip(frame["code"].astype(str), frame["name"].astype(str), strict=True):
        area = areas.get("tehsil", code)
        if page_user.principal.covers(area.path):
            district = areas.name("district", area.path.get("district")) or ""
            found.append((code, f"{name}, {district}" if district else name))
    return sorted(found, key=lambda pair: pair[1])


def coverage_curve(sites: dict[str, Any], before: float) -> dict[str, Any]:
    """Points of the coverage curve (share covered after each new site, biggest first,
    starting from the existing sites' ``before``) scaled into the SVG."""
    shares = sorted((float(f["properties"].get("share_assigned") or 0.0)
                     for f in sites.get("features", []) if f["properties"].get("new")), reverse=True)
    values = [before]
    for share in shares:
        values.append(min(1.0, values[-1] + share))
    span = max(1, len(values) - 1)
    inner_w, inner_h = CURVE_W - 2 * CURVE_PAD, CURVE_H - 2 * CURVE_PAD
    points = [(CURVE_PAD + inner_w * i / span, CURVE_H - CURVE_PAD - inner_h * v)
              for i, v in enumerate(values)]
    return {"points": " ".join(f"{x:.1f},{y:.1f}" for x, y in points), "shares": values,
            "dots": points, "w": CURVE_W, "h": CURVE_H, "pad": CURVE_PAD, "sites": len(shares)}


class PlannerController(Controller):
    """The planner's pages."""

    path = "/plans"
    include_in_schema = False

    async def _list_page(self, page_user: PageUser, plans: PlanService, areas: Areas,
                         jurisdictions: JurisdictionService, workers: WorkerPool, *,
                         message: str | None = None, status: int = 200) -> Response[Any]:
        page_user.principal.require("plan.read")
        listed = await plans.list_plans(page_user.principal, limit=50)
        version = str(jurisdictions.boundaries.version)
        ranked = [row for row in await tehsil_ranking(workers, version, plans_clock())
                  if page_user.principal.covers(areas.get("tehsil", str(row["tehsil_code"])).path)]
        body = render("planner/list.html", **template_context(
            page_user, plans=listed.items, message=message, ranking=ranked[:20],
            ranked_count=len(ranked), window_days=WINDOW_DAYS,
            tehsils=tehsils_in_scope(page_user, areas, jurisdictions)
            if page_user.principal.role in {"planner", "ig", "rpo", "dpo", "cpo", "admin"} else []))
        return html_page(body, status=status)

    @get("/", media_type="text/html")
    async def plans_page(self, *, page_user: PageUser, plans: PlanService, areas: Areas,
                         jurisdictions: JurisdictionService, workers: WorkerPool) -> Response[Any]:
        """The tehsil ranking, the plans in scope (newest first) and the form that runs one."""
        return await self._list_page(page_user, plans, areas, jurisdictions, workers)

    @post("/", media_type="text/html", status_code=303)
    async def run_plan(self, *, request: Request[Any, Any, Any], page_user: PageUser, plans: PlanService,
                       areas: Areas, jurisdictions: JurisdictionService,
                       workers: WorkerPool) -> Response[Any]:
        """Run a plan (CSRF-checked by ``page_user``), then follow it on its page."""
        form = await request.form()
        fields = {k: str(form.get(k) or "") for k in ("tehsil", "sites", "radius_m", "model")}
        try:
            data = msgspec.convert({"tehsil": fields["tehsil"], "model": fields["model"] or "mclp",
                                    "sites": int(fields["sites"]) if fields["sites"] else None,
                                    "radius_m": float(fields["radius_m"] or 500)}, PlanCreate)
            accepted = await plans.create(data, page_user.principal)
        except (ValueError, msgspec.ValidationError, AppError) as exc:
            status = exc.status if isinstance(exc, AppError) else 422
            return await self._list_page(page_user, plans, areas, jurisdictions, workers,
                                         message=f"The plan was not started: {exc}", status=status)
        return Redirect(f"/plans/{accepted.id}", status_code=303)

    @get("/{plan_id:uuid}", media_type="text/html")
    async def plan_page(self, plan_id: UUID, page_user: PageUser, plans: PlanService) -> Response[Any]:
        """A plan's progress (refreshed while it runs), summary, coverage curve and map link."""
        plan: Plan = await plans.get(plan_id, page_user.principal)
        curve = None
        if plan.state == "succeeded" and plan.summary is not None:
            sites = await plans.sites(plan_id, page_user.principal)
            curve = coverage_curve(sites, float(plan.summary.get("covered_share_before") or 0.0))
        body = render("planner/plan.html", **template_context(page_user, plan=plan, curve=curve))
        return html_page(body)
