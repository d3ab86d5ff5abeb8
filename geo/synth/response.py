"""Lifecycle times of each call and the data faults real CAD records carry.

Dispatched calls (class ``case``) go received → acknowledged → dispatched → on scene →
closed, each stage log-normal (:class:`geo.synth.config.ResponseModel`). Calls that are
not dispatched (information, hoax, dropped) are only closed by the call taker. Faults
at configured rates: ``on_scene`` missing (never entered), and ``on_scene`` recorded
before ``dispatched`` (entered late from memory, or a wrong clock); the closed time is
kept, as a real record would keep it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.synth.config import SynthConfig


@dataclass(frozen=True)
class Lifecycle:
    """Seconds from call receipt to each event (NaN where the event does not exist)."""

    acknowledged: npt.NDArray[np.float64]
    dispatched: npt.NDArray[np.float64]
    on_scene: npt.NDArray[np.float64]
    closed: npt.NDArray[np.float64]
    missing_on_scene: npt.NDArray[np.bool_]
    on_scene_before_dispatched: npt.NDArray[np.bool_]


def _lognormal(median: npt.NDArray[np.float64], sigma: float, rng: np.random.Generator
               ) -> npt.NDArray[np.float64]:
    return median * np.exp(sigma * rng.standard_normal(median.size))


def draw_lifecycle(*, call_class: npt.NDArray[np.str_], urban: npt.NDArray[np.bool_],
                   serious: npt.NDArray[np.bool_], local_hour: npt.NDArray[np.int64],
                   slow: npt.NDArray[np.bool_], config: SynthConfig,
                   rng: np.random.Generator) -> Lifecycle:
    """Stage durations for every call, vectorised over calls."""
    model = config.response
    n = call_class.size
    rural = (~urban).astype(np.int64)
    nan = np.full(n, np.nan)
    ack, disp, scene, closed = nan.copy(), nan.copy(), nan.copy(), nan.copy()

    case = np.flatnonzero(call_class == "case")
    r, h = rural[case], local_hour[case]
    slow_f = np.where(slow[case], config.slow_factor, 1.0)
    prio = np.where(serious[case], model.serious_factor, 1.0)
    ack_s = _lognormal(np.asarray(model.ack_median_s)[r] * np.asarray(model.ack_hour_factor)[h]
                       * slow_f, model.ack_sigma, rng)
    disp_s = _lognormal(np.asarray(model.dispatch_median_s)[r] * prio * slow_f,
                        model.dispatch_sigma, rng)
    travel_s = _lognormal(np.asarray(model.travel_median_s)[r]
                          * np.asarray(model.travel_hour_factor)[h] * prio * slow_f,
                          model.travel_sigma, rng)
    stay_s = _lognormal(np.asarray(model.on_scene_median_s)[r], model.on_scene_sigma, rng)
    ack[case] = ack_s
    disp[case] = ack_s + disp_s
    scene[case] = ack_s + disp_s + travel_s
    closed[case] = scene[case] + stay_s

    for name, median in model.handling_median_s:
        rows = np.flatnonzero(call_class == name)
        closed[rows] = _lognormal(np.full(rows.size, median), model.handling_sigma, rng)

    # faults on dispatched calls, disjoint: one draw decides which (if any)
    u = rng.random(case.size)
    missing = np.zeros(n, dtype=bool)
    early = np.zeros(n, dtype=bool)
    missing[case[u < config.missing_on_scene_rate]] = True
    early[case[(u >= config.missing_on_scene_rate)
               & (u < config.missing_on_scene_rate + config.on_scene_before_dispatch_rate)]] = True
    scene[missing] = np.nan
    # an early entry lies between acknowledgement and dispatch: before dispatch, yet
    # still after the call was received and acknowledged
    scene[early] = ack[early] + rng.uniform(0.1, 0.9, int(early.sum())) * (disp[early] - ack[early])
    return Lifecycle(ack, disp, scene, closed, missing, early)
