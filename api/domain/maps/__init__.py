"""Offline map pages of the analytics and plans: one deck.gl client, a basemap, no CDN, no tiles."""
