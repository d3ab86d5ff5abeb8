"""Jurisdiction layers (region, district, tehsil, station) as GeoJSON.

Boundaries are not caller data and are not limited to the caller's scope (a district's
map needs its neighbours, a transfer names another station), but like every read they
need a valid bearer token of any role: no token is 401.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import Parameter

from api.auth import SECURITY, Principal
from api.bodies import BODY_OPT, takes_gzip
from api.domain.jurisdictions.services import JurisdictionService
from api.workers import WorkerPool


class JurisdictionController(Controller):
    path = "/jurisdictions"
    tags = ["jurisdictions"]
    security = SECURITY

    @get("/{level:str}", operation_id="listJurisdictions", media_type="application/geo+json",
         opt=BODY_OPT)
    async def list_level(
        self,
        level: str,
        *,
        jurisdictions: JurisdictionService,
        principal: Principal,  # resolved for its check: any valid token
        request: Request[Any, Any, Any],
        workers: WorkerPool,
        simplify: float | None = Parameter(default=None, ge=0, description="tolerance, degrees"),
    ) -> Response[bytes]:
        """Every area of a level as a GeoJSON FeatureCollection (made in a worker process
        once per boundary set, level and ``simplify``, then kept)."""
        body = await jurisdictions.layer_body(level, simplify, workers=workers,
                                              gzip_it=takes_gzip(request))
        return body.response("application/geo+json")

    @get("/{level:str}/{code:str}", operation_id="getJurisdiction",
         media_type="application/geo+json")
    async def get_one(self, level: str, code: str, jurisdictions: JurisdictionService,
                      principal: Principal) -> dict[str, Any]:
        """One area as a GeoJSON Feature."""
        return jurisdictions.feature(level, code)
