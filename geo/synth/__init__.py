"""Synthetic helpline-15 call histories with ground truth (a plain library).

``generate_calls(months, seed, scale, start=..., config=...)`` returns the calls as a
GeoDataFrame and the truth (planted hotspots, slow stations, faulty records) as a dict.
No web or database imports: the CLI (``safecity synth``) and loaders live in ``api``.
"""

from geo.synth.config import HotspotPlan, ResponseModel, Surge, SynthConfig, SynthConfigError
from geo.synth.generate import (
    COLUMNS,
    DEFAULT_START,
    build_world,
    generate_calls,
    idempotency_key,
    save_calls,
    save_truth,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_START",
    "HotspotPlan",
    "ResponseModel",
    "Surge",
    "SynthConfig",
    "SynthConfigError",
    "build_world",
    "generate_calls",
    "idempotency_key",
    "save_calls",
    "save_truth",
]
