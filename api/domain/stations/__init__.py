"""Stations as the call service sees them: SHO duty rosters and who is on duty.

Public to other packages: ``schemas`` and ``services``; ``controllers`` is its own. The
area hierarchy itself is :mod:`api.areas` (every package checks scopes with it).
"""
