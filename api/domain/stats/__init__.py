"""Response-time statistics of an area: the numbers senior officers review."""
