"""Errors of the jurisdictions domain.

Each error subclasses both :class:`JurisdictionsError` (so callers can catch the
package's failures as one family) and the built-in it refines (so generic code
that expects ``ValueError`` or ``FileNotFoundError`` keeps working).
"""

from __future__ import annotations


class JurisdictionsError(Exception):
    """Base class for every error raised by :mod:`jurisdictions`."""


class DataFileError(JurisdictionsError, ValueError):
    """A boundary or table file is missing, altered or malformed."""


class MissingDataError(JurisdictionsError, FileNotFoundError):
    """A file the loader needs is not in the data directory."""


class ChecksumMismatchError(DataFileError):
    """A source file's sha256 differs from the one recorded in ``data/SOURCES.md``."""


class InvalidBoundaryError(DataFileError):
    """A feature of an imported boundary file cannot be used (names the feature)."""


class OutsidePunjabError(JurisdictionsError, ValueError):
    """A location lies outside Punjab's extent: no station can serve it."""


class NoStationNearbyError(JurisdictionsError, ValueError):
    """A location is covered by no station and none lies within the nearest-station limit."""


class NegativeRadiusError(JurisdictionsError, ValueError):
    """An uncertainty radius below zero: a call's circle cannot be smaller than its point."""
