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


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)

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
        figure = Figure(name, round(value, 3), unit, peer, peer_value, ratio)
        self.figures.append(figure)
        line = f"{name:<58} {figure.value:>14,.3f} {unit}"
        if peer is not None and peer_value is not None:
            line += f"   | {peer}: {peer_value:,.3f} (ratio {ratio})"
        print(line, flush=True)

    def write(self, path: Path = RESULTS_PATH) -> None:
        rows = [
            {key: value for key, value in asdict(f).items() if value is not None}
            for f in self.figures
        ]
        path.write_text(json.dumps(rows, indent=2) + "\n")
