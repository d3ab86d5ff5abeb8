"""Jurisdiction layers as GeoJSON, from the current boundary set."""

from __future__ import annotations

import json
from typing import Any

import shapely

from api.errors import BadInputError, NotFoundError
from jurisdictions.boundaries import LEVELS, BoundarySet

MAX_SIMPLIFY_DEG = 0.05


class JurisdictionService:
    """Serves the levels of one :class:`BoundarySet` (swapped when a new set loads)."""

    def __init__(self, boundaries: BoundarySet) -> None:
        self.boundaries = boundaries

    def _layer(self, level: str) -> Any:
        if level not in LEVELS:
            raise NotFoundError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
        return self.boundaries.layer(level)

    def feature_collection(self, level: str, simplify: float | None = None) -> dict[str, Any]:
        """A level as a GeoJSON FeatureCollection; ``simplify`` is a tolerance in degrees."""
        frame = self._layer(level)
        if simplify is not None:
            if not 0 <= simplify <= MAX_SIMPLIFY_DEG:
                raise BadInputError(f"simplify must be between 0 and {MAX_SIMPLIFY_DEG} degrees")
            frame = frame.assign(geometry=shapely.simplify(frame.geometry.values, simplify,
                                                           preserve_topology=True))
        collection: dict[str, Any] = json.loads(frame.to_json(drop_id=True))
        collection["level"] = level
        collection["boundary_set"] = self.boundaries.version
        collection["attribution"] = ATTRIBUTION
        return collection

    def feature(self, level: str, code: str) -> dict[str, Any]:
        frame = self._layer(level)
        hit = frame[frame["code"] == code]
        if hit.empty:
            raise NotFoundError(f"no {level} with code {code!r}")
        feature: dict[str, Any] = json.loads(hit.to_json(drop_id=True))["features"][0]
        feature["boundary_set"] = self.boundaries.version
        return feature


ATTRIBUTION = ("Administrative boundaries: OCHA / WFP / ITOS, Pakistan COD-AB (2022), via HDX, "
               "CC BY-IGO; divisions © OpenStreetMap contributors (ODbL); police-station areas "
               "are stand-ins unless imported")
