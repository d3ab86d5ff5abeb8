"""How long ``safecity token`` takes from a new process, against the way it used to work
(import the app's areas, load the whole boundary set, find the scope there).

    .venv/bin/python bench/token_cli.py [--scope LHR] [--runs 3] [--json out.json]

Runs on the embedded database of this checkout (``jurisdictions load`` first) or on
``DATABASE_URL``. Prints the median wall time of each and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BEFORE = """
import os
from api.areas import Areas
from api.auth import mint_token
from api.boundaries import current_boundaries
area = Areas(current_boundaries()).find({scope!r})
print(mint_token(os.environ["SAFECITY_JWT_SECRET"], "rpo", area.code, area.level))
"""
"""The old command's body: the full boundary set just to learn the scope's level."""


def _median_s(command: list[str], runs: int) -> float:
    env = {**os.environ, "SAFECITY_JWT_SECRET": "bench-secret-" + "x" * 32}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scope", default="LHR", help="a region code (the token is an RPO's)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    before = _median_s([sys.executable, "-c", BEFORE.format(scope=args.scope)], args.runs)
    after = _median_s([sys.executable, "-m", "api.cli", "token", "--role", "rpo",
                       "--scope", args.scope], args.runs)
    figures = {"before_s": round(before, 3), "after_s": round(after, 3),
               "ratio": round(before / after, 1)}
    print(f"safecity token --role rpo --scope {args.scope}: before {before:.2f} s, "
          f"after {after:.2f} s, {figures['ratio']}x faster")
    if args.json:
        args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
