"""Crime forecasting on H3 grids, every forecast scored against baselines (a plain library).

Events (:mod:`geo.forecast.events`) on a grid (:mod:`geo.forecast.grid`) go to methods
behind one interface (:mod:`geo.forecast.methods`); :mod:`geo.forecast.backtest` scores
them over rolling origins; :mod:`geo.forecast.select` picks the method to show per area
and category, or the baseline when nothing beats it. No web or database imports, no
file reading: callers pass frames and polygons.
"""
