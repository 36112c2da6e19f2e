"""Collects benchmark figures, prints them and writes `bench/results.json`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"


@dataclass
class Figure:
    """One measured value, with the peer measured in the same run if any."""

    name: str
    value: float
    unit: str
    peer: str | None = None
    peer_value: float | None = None
    ratio: float | None = None
    # The benchmark module that measured it, e.g. "bench_log".
    bench: str | None = None


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    # Set by the runner before each module runs.
    current_bench: str | None = None

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        peer: str | None = None,
        peer_value: float | None = None,
    ) -> None:
        """Record a figure; ratio is value / peer_value when a peer was measured."""
        ratio = None
        if peer_value:
            ratio = round(value / peer_value, 3)
        figure = Figure(
            name, round(value, 3), unit, peer, peer_value, ratio, self.current_bench
        )
        self.figures.append(figure)
        line = f"{name:<58} {figure.value:>14,.3f} {unit}"
        if peer is not None and peer_value is not None:
            line += f"   | {peer}: {peer_value:,.3f} (ratio {ratio})"
        print(line, flush=True)

    def write(self, path: Path = RESULTS_PATH) -> None:
        """Write the figures, keeping the rows of modules that did not run now."""
        ran = {figure.bench for figure in self.figures}
        kept = []
        if path.exists():
            try:
                kept = [
                    row
                    for row in json.loads(path.read_text())
                    if row.get("bench") is not None and row.get("bench") not in ran
                ]
            except (ValueError, AttributeError):
                kept = []
        rows = kept + [
            {key: value for key, value in asdict(f).items() if value is not None}
            for f in self.figures
        ]
        path.write_text(json.dumps(rows, indent=2) + "\n")
