"""Forecasting methods, all behind :class:`~geo.forecast.methods.base.Forecaster`.

========================  ==========================================================
``naive``                 last period's counts (:class:`Naive`)
``historical_average``    mean count per period over the history (:class:`HistoricalAverage`)
``kde``                   time-decayed kernel density (:class:`TimeDecayedKDE`)
``prospective``           prospective hot-spotting, Bowers et al. 2004 (:class:`ProspectiveHotSpots`)
``sepp``                  self-exciting point process, Mohler et al. 2011
                          (:class:`SelfExcitingPointProcess`)
``lightgbm``              gradient-boosted trees on lagged cell features (:class:`LaggedLightGBM`)
========================  ==========================================================
"""

from geo.forecast.methods.base import PERIODS, Forecaster, Period, Risk, period_length
from geo.forecast.methods.baselines import HistoricalAverage, Naive
from geo.forecast.methods.kde import TimeDecayedKDE
from geo.forecast.methods.learned import LaggedLightGBM
from geo.forecast.methods.prospective import ProspectiveHotSpots
from geo.forecast.methods.sepp import SelfExcitingPointProcess, SeppFit

BASELINES = ("naive", "historical_average")
"""The methods every other one is tested against."""



def default_methods() -> dict[str, Forecaster]:
    """One of each method with its documented defaults, baselines first."""
    methods: list[Forecaster] = [Naive(), HistoricalAverage(), TimeDecayedKDE(), ProspectiveHotSpots(),
                                 SelfExcitingPointProcess(), LaggedLightGBM()]
    return {m.name: m for m in methods}


__all__ = [
    "BASELINES",
    "PERIODS",
    "Forecaster",
    "HistoricalAverage",
    "LaggedLightGBM",
    "Naive",
    "Period",
    "ProspectiveHotSpots",
    "Risk",
    "SelfExcitingPointProcess",
    "SeppFit",
    "TimeDecayedKDE",
    "default_methods",
    "period_length",
]
