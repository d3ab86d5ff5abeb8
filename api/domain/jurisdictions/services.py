"""Jurisdiction layers as GeoJSON, from the current boundary set.

A whole level is megabytes of GeoJSON (the stand-in stations: 4.2 MB, half a second to
encode): it is made in a worker process, JSON and gzip together, and kept for the
boundary set (:meth:`JurisdictionService.layer_body`), so no request for it holds up
the loop that takes calls.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Final

import msgspec
import shapely

from api.bodies import Body, gzipped
from api.errors import BadInputError, NotFoundError
from api.workers import WorkerPool, worker_state
from jurisdictions.boundaries import LEVELS, BoundarySet

MAX_SIMPLIFY_DEG = 0.05
LAYERS_KEPT: Final = 16
"""Encoded levels kept per boundary set (each level with each ``simplify`` asked for)."""


class JurisdictionService:
    """Serves the levels of one :class:`BoundarySet` (swapped when a new set loads)."""

    def __init__(self, boundaries: BoundarySet) -> None:
        self.boundaries = boundaries
        self._layers: OrderedDict[tuple[str, float | None], tuple[bytes, bytes]] = OrderedDict()

    def _layer(self, level: str) -> Any:
        if level not in LEVELS:
            raise NotFoundError(f"unknown level {level!r}; levels are {', '.join(LEVELS)}")
        return self.boundaries.layer(level)

    async def layer_body(self, level: str, simplify: float | None, *, workers: WorkerPool,
                         gzip_it: bool) -> Body:
        """:meth:`feature_collection` as the answer's body: made (JSON and gzip) in a
        worker the first time it is asked for, then kept."""
        self._layer(level)
        _check_simplify(simplify)
        key = (level, simplify)
        kept = self._layers.get(key)
        if kept is None:
            kept = await workers.run("analytics", layer_job, str(self.boundaries.version),
                                     level, simplify)
            self._layers[key] = kept
            if len(self._layers) > LAYERS_KEPT:
                self._layers.popitem(last=False)
        self._layers.move_to_end(key)
        return Body(kept[1], gzipped=True) if gzip_it else Body(kept[0])

    def feature_collection(self, level: str, simplify: float | None = None) -> dict[str, Any]:
        """A level as a GeoJSON FeatureCollection; ``simplify`` is a tolerance in degrees."""
        frame = self._layer(level)
        _check_simplify(simplify)
        if simplify is not None:
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


def _check_simplify(simplify: float | None) -> None:
    if simplify is not None and not 0 <= simplify <= MAX_SIMPLIFY_DEG:
        raise BadInputError(f"simplify must be between 0 and {MAX_SIMPLIFY_DEG} degrees")


def layer_job(version: str, level: str, simplify: float | None) -> tuple[bytes, bytes]:
    """Worker job: a level of boundary set ``version`` as GeoJSON bytes, and gzipped."""
    service = JurisdictionService(worker_state().boundaries(version))
    body = msgspec.json.encode(service.feature_collection(level, simplify))
    return body, gzipped(body)


ATTRIBUTION = ("Administrative boundaries: OCHA / WFP / ITOS, Pakistan COD-AB (2022), via HDX, "
               "CC BY-IGO; divisions © OpenStreetMap contributors (ODbL); police-station areas "
               "are stand-ins unless imported")
