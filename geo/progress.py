"""How long-running library work reports progress: a plain callback, no UI attached.

Compiling a routing index, building stand-in layers and generating call histories take
seconds to minutes; the CLI shows a bar, the service logs, tests stay silent. Each such
function takes a :data:`Progress` callback ``(step, fraction)`` — ``step`` names what is
happening, ``fraction`` runs from 0 to 1 — and defaults to :func:`no_progress`. It lives
in the lowest layer of ``geo`` so that ``jurisdictions`` and ``geo.synth`` share it
without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, float], None]
"""A progress callback: ``progress("compiling", 0.4)``."""


def no_progress(_step: str, _fraction: float) -> None:
    """The :data:`Progress` callback that reports nothing (the default everywhere)."""
    return
