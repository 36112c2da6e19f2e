"""Fork evidence: two signed checkpoints of one log that cannot both be true.

Mirrors and gossip write each fork they find as one JSON file under
`DIR/forks/`, named by the SHA-256 of the conflicting note, so the same fork
seen again is stored once. An operator can hand the file to anyone, because
both notes carry the log's signature, which is what makes them evidence.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ForkEvidence:
    """Two signed checkpoint notes of one log that cannot both be true."""

    origin: str
    reason: str
    verified_note: bytes
    conflicting_note: bytes
    # The log's consistency proof between the two, when it served one.
    consistency_proof: tuple[bytes, ...] = ()
    # Where the conflicting note came from: the log or a gossip peer URL.
    source: str = ""

    def to_json(self) -> dict[str, object]:
        """Return a JSON-ready dictionary of the evidence."""
        return {
            "origin": self.origin,
            "reason": self.reason,
            "verified_note": self.verified_note.decode(),
            "conflicting_note": self.conflicting_note.decode(),
            "consistency_proof": [
                base64.b64encode(node).decode() for node in self.consistency_proof
            ],
            "source": self.source,
        }


def write_evidence(folder: Path, evidence: ForkEvidence) -> Path:
    """Write fork evidence to folder as JSON, with fsync; return its path.

    The file name is the SHA-256 of the conflicting note, so the same fork
    seen again is written once.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(evidence.conflicting_note).hexdigest()[:32] + ".json"
    path = folder / name
    if path.exists():
        return path
    record = evidence.to_json()
    record["time"] = int(time.time())
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def read_evidence(folder: Path) -> list[dict[str, object]]:
    """Return every fork evidence record in folder, oldest first."""
    if not folder.is_dir():
        return []
    records = [json.loads(path.read_text()) for path in folder.glob("*.json")]
    return sorted(records, key=lambda record: record["time"])
