"""Near repeats: crimes that follow a crime nearby within days, planted with known parameters.

Burglary and robbery cluster in space and time: after one, the risk nearby is raised
for days (Townsley, Homel & Chaseling 2003; Johnson et al. 2007). The generator plants
this as a Hawkes cascade, the process the self-exciting forecaster
(:class:`geo.forecast.methods.sepp.SelfExcitingPointProcess`) assumes: every call of a
near-repeat category triggers ``Poisson(branching_ratio)`` offspring of its own
category, each after an exponential delay of mean ``decay_days`` and displaced by a
Gaussian of ``sigma_m`` metres per axis; offspring trigger in turn. So that the volume
stays calibrated, the background of those categories is thinned by ``1 − branching_ratio``
(a cascade has ``1 / (1 − branching_ratio)`` calls on average). The parameters go into
the truth file beside the offspring's call ids. ``generate_calls`` plants them when
passed a plan (``near_repeat=NearRepeatPlan()``); without one it plants none, so the
histories of existing seeds stay as they were.

Townsley, M., Homel, R. and Chaseling, J. (2003). Infectious burglaries: a test of the
near repeat hypothesis. *British Journal of Criminology* 43(3), 615–633. Johnson, S. D.
et al. (2007). Space–time patterns of risk: a cross national assessment of residential
burglary victimization. *Journal of Quantitative Criminology* 23(3), 201–219.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from geo.synth.places import M_PER_DEG_LAT, M_PER_DEG_LON_EQ

SECONDS_PER_DAY = 86_400.0
G = TypeVar("G", bound=np.generic)


@dataclass(frozen=True)
class NearRepeatPlan:
    """Which categories repeat near, and how (``branching_ratio = 0`` plants nothing)."""

    categories: tuple[str, ...] = ("dacoity_robbery", "other_crime")
    """Robbery and the category that holds burglary and theft."""
    branching_ratio: float = 0.15
    """Expected offspring per call (θ < 1, or cascades never end)."""
    sigma_m: float = 150.0
    """Standard deviation of an offspring's displacement, per axis, in metres."""
    decay_days: float = 3.0
    """Mean delay between a call and each of its offspring (1/ω)."""
    max_generations: int = 30
    """A cascade is cut after this many generations (θ^30 of a call's line survives)."""

    def validate(self, category_codes: list[str]) -> None:
        """Raise ``ValueError`` for a plan the generator cannot honour."""
        unknown = sorted(set(self.categories) - set(category_codes))
        if unknown:
            raise ValueError(f"near-repeat categories not in the category table: {unknown}")
        if not 0.0 <= self.branching_ratio < 1.0:
            raise ValueError(f"branching_ratio must lie in [0, 1), got {self.branching_ratio}")
        if self.sigma_m <= 0 or self.decay_days <= 0:
            raise ValueError("sigma_m and decay_days must be positive")

    @property
    def background_factor(self) -> float:
        """What the categories' background intensity is multiplied by (1 − θ)."""
        return 1.0 - self.branching_ratio

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class NearRepeats:
    """Planted offspring, generation by generation, in the order they were drawn.

    ``parent`` indexes the concatenation of the input calls and these offspring (an
    offspring's parent may itself be an offspring, always one listed earlier).
    """

    parent: npt.NDArray[np.int64]
    seconds: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    generation: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.parent.size)

    def inherit(self, values: npt.NDArray[G]) -> npt.NDArray[G]:
        """``values`` of the input calls extended with each offspring's parent's value."""
        out = np.concatenate([values, np.empty(len(self), dtype=values.dtype)])
        n = values.size
        for g in range(1, int(self.generation.max(initial=0)) + 1):  # parents come first
            rows = np.flatnonzero(self.generation == g)
            out[n + rows] = out[self.parent[rows]]
        return out

    def truth(self, plan: NearRepeatPlan, call_id_of: npt.NDArray[np.int64], first: int) -> dict[str, object]:
        """The truth file's record: the plan, how many were planted, and their call ids.

        ``call_id_of`` maps positions in the generator's arrays to call ids; the
        offspring sit at positions ``first …``.
        """
        ids = call_id_of[first + np.arange(len(self))]
        parents = call_id_of[self.parent]
        order = np.argsort(ids)
        return {**plan.to_dict(), "offspring_calls": len(self),
                "generations": int(self.generation.max(initial=0)),
                "call_ids": ids[order].tolist(), "parent_call_ids": parents[order].tolist()}


def plant_near_repeats(seconds: npt.NDArray[np.float64], lat: npt.NDArray[np.float64],
                       lon: npt.NDArray[np.float64], eligible: npt.NDArray[np.bool_], *,
                       plan: NearRepeatPlan, rng: np.random.Generator, end_seconds: float
                       ) -> NearRepeats:
    """Offspring of the ``eligible`` calls (times in seconds from the period start).

    Vectorised per generation: counts, delays and displacements are drawn for all
    parents of a generation at once; offspring after ``end_seconds`` are dropped (and
    trigger nothing).
    """
    n = seconds.size
    parents = np.flatnonzero(eligible)
    p_sec, p_lat, p_lon = seconds[parents], lat[parents], lon[parents]
    out: list[tuple[npt.NDArray[np.generic], ...]] = []
    total = n
    for generation in range(1, plan.max_generations + 1):
        if plan.branching_ratio <= 0 or parents.size == 0:
            break
        count = rng.poisson(plan.branching_ratio, size=parents.size)
        who = np.repeat(np.arange(parents.size), count)
        t = p_sec[who] + rng.exponential(plan.decay_days * SECONDS_PER_DAY, size=who.size)
        dy, dx = rng.normal(0.0, plan.sigma_m, size=(2, who.size))
        c_lat = p_lat[who] + dy / M_PER_DEG_LAT
        c_lon = p_lon[who] + dx / (M_PER_DEG_LON_EQ * np.cos(np.radians(p_lat[who])))
        keep = t < end_seconds
        who, t, c_lat, c_lon = who[keep], t[keep], c_lat[keep], c_lon[keep]
        out.append((parents[who], t, c_lat, c_lon, np.full(who.size, generation, dtype=np.int64)))
        parents = total + np.arange(who.size)
        total += who.size
        p_sec, p_lat, p_lon = t, c_lat, c_lon
    if not out:
        empty_f = np.empty(0, dtype=np.float64)
        return NearRepeats(np.empty(0, dtype=np.int64), empty_f, empty_f, empty_f,
                           np.empty(0, dtype=np.int64))
    parent, sec, o_lat, o_lon, gen = (np.concatenate(parts) for parts in zip(*out, strict=True))
    return NearRepeats(parent.astype(np.int64), sec.astype(np.float64), o_lat.astype(np.float64),
                       o_lon.astype(np.float64), gen.astype(np.int64))
