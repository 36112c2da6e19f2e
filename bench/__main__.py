"""Run every benchmark module `bench/bench_*.py` and write `bench/results.json`.

Each module defines `run(report)`. `python -m bench NAME...` runs only the
modules whose names contain one of the given words, and keeps the rows that
other modules wrote to `bench/results.json` earlier.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from bench.report import Report


def main(words: list[str]) -> int:
    report = Report()
    here = Path(__file__).resolve().parent
    for path in sorted(here.glob("bench_*.py")):
        if words and not any(word in path.stem for word in words):
            continue
        print(f"== {path.stem}", flush=True)
        module = importlib.import_module(f"bench.{path.stem}")
        report.current_bench = path.stem
        module.run(report)
        report.write()
    report.write()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
