"""The errors of Safe City siting and tehsil ranking, one family.

Every error subclasses :class:`CoverageError` (so the CLI and the API catch the family
once) and the built-in it refines (so generic code expecting ``ValueError`` keeps working).
"""

from __future__ import annotations


class CoverageError(Exception):
    """Base class of every error raised by the coverage and planning functions."""


class CoverageInputError(CoverageError, ValueError):
    """Input that cannot be planned with: unknown categories, missing columns, bad options."""


class UnknownTehsilError(CoverageInputError):
    """No tehsil has the given code (or name)."""


class NoDemandError(CoverageError, ValueError):
    """A tehsil has no calls, or none of a category with a seriousness weight above zero."""


class SiteFileError(CoverageInputError):
    """A site file (candidates or existing sites) cannot be read or has no usable points."""


class InfeasiblePlanError(CoverageError, ValueError):
    """The requested plan cannot exist (target share out of reach, too few candidates)."""


class SolverError(CoverageError, RuntimeError):
    """The MILP solver failed or returned no solution."""
