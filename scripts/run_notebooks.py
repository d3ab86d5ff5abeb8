"""Execute the notebooks in place so they are committed with their outputs.

    .venv/bin/python scripts/run_notebooks.py [notebooks/NAME.ipynb ...]

Run from the repository root without ``DATABASE_URL`` (and without an embedded database
holding calls) so the committed outputs come from the documented generated history;
figures are inline PNGs at a small size, nothing else is embedded.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path) -> float:
    """Execute ``path`` top to bottom on a fresh kernel and write it back with its outputs."""
    notebook = nbformat.read(path, as_version=4)
    began = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(notebook, path)
    return time.perf_counter() - began


if __name__ == "__main__":
    paths = [Path(a) for a in sys.argv[1:]] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for p in paths:
        print(f"{p.name}: executed in {run(p):.1f} s")
