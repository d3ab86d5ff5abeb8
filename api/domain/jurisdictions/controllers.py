"""Jurisdiction layers (region, district, tehsil, station) as GeoJSON."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.di import Provide
from litestar.params import Parameter

from api.domain.jurisdictions.services import JurisdictionService


def provide_jurisdictions(request: Request[Any, Any, Any]) -> JurisdictionService:
    service: JurisdictionService = request.app.state.jurisdictions
    return service


class JurisdictionController(Controller):
    path = "/jurisdictions"
    tags = ["jurisdictions"]
    dependencies = {"jurisdictions": Provide(provide_jurisdictions, sync_to_thread=False)}

    @get("/{level:str}", operation_id="listJurisdictions", media_type="application/geo+json")
    async def list_level(
        self,
        level: str,
        jurisdictions: JurisdictionService,
        simplify: float | None = Parameter(default=None, ge=0, description="tolerance, degrees"),
    ) -> dict[str, Any]:
        """Every area of a level as a GeoJSON FeatureCollection."""
        return jurisdictions.feature_collection(level, simplify)

    @get("/{level:str}/{code:str}", operation_id="getJurisdiction",
         media_type="application/geo+json")
    async def get_one(self, level: str, code: str,
                      jurisdictions: JurisdictionService) -> dict[str, Any]:
        """One area as a GeoJSON Feature."""
        return jurisdictions.feature(level, code)
