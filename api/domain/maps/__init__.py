"""Offline pydeck map pages of the analytics and of expansion plans (no CDN, no tiles,
no token in the address bar).

Public to other packages: ``services``; ``plans`` (the plan page) and ``controllers`` are
its own.
"""
