"""A learned model: gradient-boosted trees on lagged cell features (LightGBM)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.forecast.calendar import festival_days
from geo.forecast.events import Events
from geo.forecast.grid import Grid
from geo.forecast.methods.base import Forecaster, Risk

FloatArray = npt.NDArray[np.float64]

NIGHT_HOURS = (20, 4)
"""Local hours from 20:00 to 04:00 count as night for the hour-mix feature."""
WEEKEND_DAYS = (4, 6)
"""Friday (prayers, markets) and Sunday (the weekly holiday), Monday = 0."""


class LaggedLightGBM(Forecaster):
    """Poisson gradient-boosted trees on each cell's recent history and its calendar.

    For every cell and target period the features are: counts in each of the last
    ``lags`` periods; the mean over the last ``long_periods``; the same two for the
    cell's 1-ring neighbours (sum); the share of its events at night and at the
    weekend over the long window (the hour and weekday mix); and, for the target
    period, its days in each festival window (Eid ul-Fitr, Eid ul-Adha, Ashura:
    :mod:`geo.forecast.calendar`), its month and, for daily forecasts, its weekday.
    The model is trained at each origin on the ``training_periods`` periods just before
    it — features and labels both from events before the origin — with a Poisson
    objective, and predicts the expected count of every cell with events in its
    feature window; the other cells share the prediction for an all-zero history (in
    training they are one row per target period, weighted by their number).
    Lagged-count features for crime prediction follow Mohler & Porter (2018),
    *Rotational grid, PAI-maximizing crime forecasts*, Statistical Analysis and Data
    Mining 11(5), 227–236; the learner is Ke et al. (2017), *LightGBM: a highly
    efficient gradient boosting decision tree*, NeurIPS 30, 3146–3154.

    One thread by default: on a machine whose cores are shared, LightGBM's OpenMP
    workers spin while waiting and two threads ran several times slower than one
    (measured by ``bench/forecast.py``'s author on this 2-core machine under load);
    the fit is deterministic (``deterministic``, row-wise histograms, fixed seed).
    """

    name = "lightgbm"
    citation = ("Ke et al. (2017), LightGBM: a highly efficient gradient boosting decision tree, "
                "NeurIPS 30; lagged cell counts as in Mohler & Porter (2018), Statistical Analysis "
                "and Data Mining 11(5), 227–236")

    def __init__(self, *, training_periods: int = 8, lags: int = 4, long_periods: int = 26,
                 n_estimators: int = 60, learning_rate: float = 0.1, num_leaves: int = 31,
                 seed: int = 7, threads: int = 1) -> None:
        self.training_periods = training_periods
        self.lags = lags
        self.long_periods = long_periods
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.seed = seed
        self.threads = threads

    def _history(self, events: Events, grid: Grid, origin: np.datetime64, length: np.timedelta64
                 ) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.int64]]:
        """Counts, night counts and weekend counts per (active cell, period back from the
        origin: column k is the (k+1)-th period before it), and the active cells' rows."""
        depth = self.training_periods + max(self.lags, self.long_periods)
        recent = events.between(origin - depth * length, origin).inside()
        assert recent.cell is not None
        back = ((origin - recent.time).astype(np.int64) - 1) // length.astype(np.int64)
        active, row = np.unique(recent.cell, return_inverse=True)
        local = pd.DatetimeIndex(recent.time)
        hour, weekday = local.hour.to_numpy(), local.day_of_week.to_numpy()
        night = ((hour >= NIGHT_HOURS[0]) | (hour < NIGHT_HOURS[1])).astype(np.float64)
        weekend = np.isin(weekday, WEEKEND_DAYS).astype(np.float64)
        key = row * depth + back
        shape = (active.size, depth)
        size = active.size * depth

        def tally(weights: FloatArray | None) -> FloatArray:
            return np.bincount(key, weights=weights, minlength=size).reshape(shape).astype(np.float64)

        return tally(None), tally(night), tally(weekend), active.astype(np.int64)

    def _features(self, counts: FloatArray, around: FloatArray, night: FloatArray,
                  weekend: FloatArray, target: int) -> FloatArray:
        """Feature columns for the target period ``target`` periods before the origin's
        (0 = the forecast period): only columns ``k ≥ target`` (older periods) are read."""
        lagged = counts[:, target: target + self.lags]
        window = slice(target, target + self.long_periods)
        total = counts[:, window].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            night_share = np.where(total > 0, night[:, window].sum(axis=1) / total, np.nan)
            weekend_share = np.where(total > 0, weekend[:, window].sum(axis=1) / total, np.nan)
        return np.column_stack([
            lagged, total / self.long_periods,
            around[:, target: target + self.lags], around[:, window].mean(axis=1),
            night_share, weekend_share])

    def _calendar(self, starts: npt.NDArray[np.datetime64], days: int, rows: int) -> FloatArray:
        festivals = festival_days(starts, days)
        month = starts.astype("datetime64[M]").astype(np.int64) % 12 + 1
        weekday = (starts.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01: Thursday
        columns = [*festivals.values(), month] + ([weekday] if days == 1 else [])
        return np.repeat(np.column_stack(columns).astype(np.float64), rows, axis=0)

    def risk(self, events: Events, grid: Grid, origin: np.datetime64, length: np.timedelta64) -> Risk:
        counts, night, weekend, active = self._history(events, grid, origin, length)
        out = np.zeros(len(grid))
        if active.size == 0:
            return out
        adjacency = grid.adjacency(1)[:, active][active, :]  # neighbours among active cells
        around = np.asarray(adjacency @ counts, dtype=np.float64)
        days = int(length // np.timedelta64(1, "D"))
        targets = np.arange(1, self.training_periods + 1)
        starts = origin - targets * length
        # every target period: one row per active cell, and one row standing for all the
        # cells without an event in the whole window (zero history, zero label), weighted
        # by their number, so the model learns what a quiet cell does without a row each
        quiet = len(grid) - active.size
        zero_history = np.zeros((1, 2 * self.lags + 4))
        zero_history[0, -2:] = np.nan  # no events: no hour or weekday mix
        x_parts, y_parts, w_parts = [], [], []
        for t in targets:
            x_parts.append(np.vstack([self._features(counts, around, night, weekend, int(t)), zero_history]))
            y_parts.append(np.r_[counts[:, int(t) - 1], 0.0])
            w_parts.append(np.r_[np.ones(active.size), float(quiet)])
        labels = np.concatenate(y_parts)
        if not labels.any():  # the window's events all came before the training periods:
            return out        # nothing to learn (a Poisson model cannot fit only zeros)
        x_train = np.hstack([np.vstack(x_parts), self._calendar(starts, days, active.size + 1)])
        model = lgb.train(
            {"objective": "poisson", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
             "min_data_in_leaf": 50, "feature_fraction": 0.9, "bagging_fraction": 0.8,
             "bagging_freq": 1, "seed": self.seed, "deterministic": True, "force_row_wise": True,
             "num_threads": self.threads, "verbose": -1},
            lgb.Dataset(x_train, labels, weight=np.concatenate(w_parts)),
            num_boost_round=self.n_estimators)
        calendar = self._calendar(np.array([origin]), days, active.size + 1)
        x_now = self._features(counts, around, night, weekend, 0)
        x_now = np.hstack([np.vstack([x_now, zero_history]), calendar])
        predicted = np.asarray(model.predict(x_now), dtype=np.float64)
        out[:] = predicted[-1]
        out[active] = predicted[:-1]
        return out
