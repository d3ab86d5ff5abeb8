"""Offline map pages of the analytics and of expansion plans: one deck.gl client, a basemap,
no CDN, no tiles, no token in the address bar.

Public to other packages: ``services``; ``page``, ``plans``, ``basemap``, ``assets`` and
``controllers`` are its own.
"""
