"""The jurisdiction layers of the boundary set being served, as GeoJSON.

Public to other packages: ``services``; ``controllers`` is its own.
"""
