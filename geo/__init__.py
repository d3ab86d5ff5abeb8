"""Geospatial analytics over calls: H3 helpers, metric projections, hotspots, coverage.

Plain functions over (Geo)DataFrames and numpy arrays; no web or database imports.
"""
