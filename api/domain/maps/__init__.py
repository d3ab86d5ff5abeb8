"""Offline pydeck map pages of the analytics (no CDN, no tiles, no token)."""
