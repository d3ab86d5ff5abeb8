"""Synthetic helpline-15 call histories with ground truth (a plain library).

``generate_calls(months, seed, scale, start=..., config=..., world=..., categories=...)``
returns the calls as a GeoDataFrame and the truth (planted hotspots, slow stations, faulty
records) as a dict. The world (router, settlements, station classes: :func:`build_world`
from a router, a boundary set and towns, or :func:`load_world` from a file) and the
category table are arguments. No web or database imports, no file read on its own: the
CLI (``safecity synth``) and the loaders of the shipped data live in ``api``
(``api.shipped.generate_calls``).
"""

from geo.synth.config import HotspotPlan, ResponseModel, Surge, SynthConfig, SynthConfigError
from geo.synth.generate import (
    COLUMNS,
    DEFAULT_START,
    World,
    build_world,
    generate_calls,
    idempotency_key,
    load_world,
    save_calls,
    save_truth,
    save_world,
    world_file,
    world_key,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_START",
    "HotspotPlan",
    "ResponseModel",
    "Surge",
    "SynthConfig",
    "SynthConfigError",
    "World",
    "build_world",
    "generate_calls",
    "idempotency_key",
    "load_world",
    "save_calls",
    "save_truth",
    "save_world",
    "world_file",
    "world_key",
]
