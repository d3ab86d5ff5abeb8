"""Jobs the isolation tests send to worker processes (importable there by name): slow ones
whose side effect, a file, shows whether they ran to their end."""

from __future__ import annotations

import os
import time
from pathlib import Path


def sleep_then_touch(seconds: float, path: str) -> int:
    """Sleep, then create ``path``; the worker's pid."""
    time.sleep(seconds)
    Path(path).touch()
    return os.getpid()


def allocate(megabytes: int) -> float:
    """Hold ``megabytes`` of memory at once (the worker's ceiling refuses too much)."""
    import numpy as np

    block = np.ones(megabytes * 2**20 // 8)
    return float(block.sum())
