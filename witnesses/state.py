"""The witness's durable state: the latest cosigned checkpoint per log origin.

One LMDB environment in `DIR/witness.lmdb/` with three databases:

- `latest`: origin -> tree_size (8 bytes, big-endian) || root_hash || note,
  the latest checkpoint this witness cosigned for that origin, with the log's
  signature and the cosignature it returned;
- `history`: SHA-256(origin) || tree_size -> root_hash || note, every size
  it ever cosigned, so that gossip can compare a peer's checkpoint of any
  past size and show both notes;
- `evidence`: SHA-256(origin) || SHA-256(note) -> a JSON record with a
  checkpoint the log signed but the witness rejected (a bad consistency proof
  or a second root for a size) and the time it was first seen. Keying by the
  note keeps one record per log-signed note, so a client that replays a note
  cannot grow this database: only the log's own signing can.

Durability: `advance` reads the stored state, runs the caller's check, signs
and writes the new state in one LMDB write transaction, which commits with
fsync before it returns, so before any cosignature leaves the witness. LMDB admits one writer at
a time, also across processes, so two requests can never both pass the check
against the same stored size. A crash before the commit leaves the previous
state, and the cosignature made in that transaction was never sent. A crash
after it leaves the new state. Either way every cosignature ever sent matches
a committed state, so this witness never cosigns two roots for one tree_size.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lmdb

# 1 GiB of address space; LMDB grows the file only as pages are written.
DEFAULT_MAP_SIZE = 1 << 30
_SIZE = struct.Struct(">Q")


@dataclass(frozen=True)
class CosignedState:
    """The latest checkpoint a witness cosigned for one origin."""

    origin: str
    tree_size: int
    root_hash: bytes
    # The checkpoint note with the log's signature and this witness's
    # cosignature, or the bare checkpoint the operator seeded the state with.
    note: bytes


@dataclass(frozen=True)
class EvidenceRecord:
    """A log-signed checkpoint the witness rejected, and why."""

    origin: str
    time_ns: int
    reason: str
    note: bytes
    # The note this one conflicts with, when there is one (a second root for
    # a tree_size, or the stored checkpoint a proof failed against).
    conflicting_note: bytes | None


def _origin_key(origin: str) -> bytes:
    return hashlib.sha256(origin.encode()).digest()


def _pack_latest(tree_size: int, root_hash: bytes, note: bytes) -> bytes:
    return _SIZE.pack(tree_size) + root_hash + note


def _unpack_latest(origin: str, value: bytes) -> CosignedState:
    (tree_size,) = _SIZE.unpack_from(value)
    root_hash = bytes(value[8:40])
    return CosignedState(origin, tree_size, root_hash, bytes(value[40:]))


class WitnessState:
    """The LMDB store of one witness; safe to share between threads."""

    def __init__(self, path: Path, map_size: int = DEFAULT_MAP_SIZE) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(
            str(path), map_size=map_size, max_dbs=4, sync=True, metasync=True
        )
        self._latest = self._env.open_db(b"latest")
        self._history = self._env.open_db(b"history")
        self._evidence = self._env.open_db(b"evidence")

    def close(self) -> None:
        """Close the environment; the object is unusable afterwards."""
        self._env.close()

    def latest(self, origin: str) -> CosignedState | None:
        """Return the latest cosigned checkpoint for origin, or None."""
        with self._env.begin() as txn:
            value = txn.get(origin.encode(), db=self._latest)
        if value is None:
            return None
        return _unpack_latest(origin, value)

    def all_latest(self) -> list[CosignedState]:
        """Return the latest cosigned checkpoint of every origin."""
        states = []
        with self._env.begin() as txn:
            for key, value in txn.cursor(db=self._latest):
                states.append(_unpack_latest(bytes(key).decode(), value))
        return states

    def cosigned(self, origin: str, tree_size: int) -> CosignedState | None:
        """Return the checkpoint this witness cosigned for tree_size, or None."""
        key = _origin_key(origin) + _SIZE.pack(tree_size)
        with self._env.begin() as txn:
            value = txn.get(key, db=self._history)
        if value is None:
            return None
        return CosignedState(origin, tree_size, bytes(value[:32]), bytes(value[32:]))

    def advance(
        self,
        origin: str,
        check: Callable[[CosignedState | None], None],
        tree_size: int,
        root_hash: bytes,
        cosign: Callable[[], bytes],
    ) -> bytes:
        """Check a new checkpoint against the stored one and record it.

        Calls `check(stored)`, with None for an origin never cosigned, which
        raises to reject; then `cosign()`, whose result is the note to store
        and return. Both run inside the write transaction, which
        commits with fsync before this returns.
        Precondition: len(root_hash) == 32.
        """
        with self._env.begin(write=True) as txn:
            value = txn.get(origin.encode(), db=self._latest)
            check(None if value is None else _unpack_latest(origin, value))
            note = cosign()
            txn.put(
                origin.encode(),
                _pack_latest(tree_size, root_hash, note),
                db=self._latest,
            )
            history_key = _origin_key(origin) + _SIZE.pack(tree_size)
            txn.put(history_key, root_hash + note, db=self._history)
        return note

    def record_evidence(
        self, origin: str, reason: str, note: bytes, conflicting_note: bytes | None
    ) -> None:
        """Store a rejected log-signed checkpoint as evidence, with fsync.

        A note already recorded keeps its first record.
        """
        time_ns = time.time_ns()
        record = {
            "time_ns": time_ns,
            "reason": reason,
            "note": note.decode(),
            "conflicting_note": None
            if conflicting_note is None
            else conflicting_note.decode(),
        }
        key = _origin_key(origin) + hashlib.sha256(note).digest()
        with self._env.begin(write=True) as txn:
            txn.put(
                key, json.dumps(record).encode(), db=self._evidence, overwrite=False
            )

    def evidence(self, origin: str) -> list[EvidenceRecord]:
        """Return the evidence recorded for origin, oldest first."""
        prefix = _origin_key(origin)
        records = []
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._evidence)
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if not bytes(key).startswith(prefix):
                        break
                    record = json.loads(bytes(value))
                    conflicting = record["conflicting_note"]
                    records.append(
                        EvidenceRecord(
                            origin,
                            record["time_ns"],
                            record["reason"],
                            record["note"].encode(),
                            None if conflicting is None else conflicting.encode(),
                        )
                    )
        records.sort(key=lambda evidence: evidence.time_ns)
        return records
