"""Stations as the call service sees them: the area hierarchy and SHO duty rosters."""
