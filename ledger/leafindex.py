"""The leaf-hash index: from a leaf_hash to its leaf_index, as sorted runs.

The index lives in one LMDB database of the log store and is written in
the append transaction, so it is always exactly as durable as the entries.
A B-tree keyed by hash would place every new record on a random page, so
each batch would copy pages all over the index and the file would grow by
those copies. Here each batch instead adds one run per partition, and runs
are merged in the background of later batches, as in a log-structured
merge tree:

- A leaf hash belongs to partition `hash[0] >> 4` (16 partitions), so no
  merge rewrites more than a sixteenth of the index.
- A run is one LMDB record keyed by (partition: 1 byte, first leaf_index:
  8 bytes, big-endian). Its value is two little-endian uint32 arrays of
  equal length: the sorted 32-bit prefixes (bits 4 to 35 of the leaf hash)
  and, in the same order, each leaf's offset from the run's first
  leaf_index. That is 8 bytes per leaf.
- Runs of a partition cover ascending, disjoint ranges of leaf indexes,
  because a batch appends after every earlier leaf and only adjacent runs
  are merged. A run's tier is floor(log4(length)). Tiers never increase
  from the oldest run to the newest, and four runs of one tier merge into
  one of a higher tier. So a partition of n leaves has at most
  3 * log4(n) + 1 runs, and each leaf is rewritten about log4(n) times.
- A prefix matches one leaf in about 2**32 / n, so every hit is checked
  against the full leaf hash before it counts.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

import lmdb
import numpy as np

PARTITIONS = 16
FANOUT = 4
RECORD_SIZE = 8
# An offset is a uint32, so runs whose leaves span 2**32 or more stay apart.
MAX_SPAN = 1 << 32

_KEY = struct.Struct(">BQ")
_PREFIX = np.dtype("<u4")

# Returns the stored leaf hash of a leaf_index.
LeafHashReader = Callable[[int], bytes]


def _split(leaf_hashes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Return the partition and 32-bit prefix of each 32-byte leaf hash."""
    heads = np.frombuffer(leaf_hashes, dtype=">u8").reshape(-1, 4)[:, 0]
    partitions = (heads >> np.uint64(60)).astype(np.uint8)
    prefixes = ((heads >> np.uint64(28)) & np.uint64(0xFFFFFFFF)).astype(_PREFIX)
    return partitions, prefixes


def _tier(length: int) -> int:
    return (length.bit_length() - 1) // 2


def _arrays(value: memoryview | bytes) -> tuple[np.ndarray, np.ndarray]:
    if len(value) % RECORD_SIZE:
        # Imported here because ledger.store imports this module.
        from ledger.store import CorruptStoreError

        raise CorruptStoreError(
            f"a leaf-hash index run is {len(value)} bytes, not a multiple of"
            f" {RECORD_SIZE}; run `ledger log check` to find the damage"
        )
    count = len(value) // RECORD_SIZE
    prefixes = np.frombuffer(value, dtype=_PREFIX, count=count)
    offsets = np.frombuffer(value, dtype=_PREFIX, count=count, offset=4 * count)
    return prefixes, offsets


class LeafIndex:
    """The leaf-hash index in one LMDB database; every call takes a transaction."""

    def __init__(self, db: object) -> None:
        self.db = db

    def runs(self, txn: lmdb.Transaction, partition: int) -> Iterator[tuple[int, memoryview]]:
        """Yield (first leaf_index, value) of each run of a partition, oldest first."""
        cursor = txn.cursor(db=self.db)
        if not cursor.set_range(bytes((partition,))):
            return
        for key, value in cursor:
            key_partition, first = _KEY.unpack(key)
            if key_partition != partition:
                return
            yield first, value

    def lookup(
        self, txn: lmdb.Transaction, leaf_hashes: bytes, read_leaf_hash: LeafHashReader
    ) -> dict[int, int]:
        """Find which of a batch of leaf hashes the index already holds.

        leaf_hashes is the concatenation of 32-byte hashes. Returns
        {position in the batch: leaf_index} for each stored one.
        """
        found: dict[int, int] = {}
        if not leaf_hashes:
            return found
        partitions, prefixes = _split(leaf_hashes)
        queries_of: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for partition in np.unique(partitions).tolist():
            positions = np.flatnonzero(partitions == partition)
            queries_of[partition] = (positions, prefixes[positions])
        # One pass over every run, in key order, costs less than a cursor
        # positioned per partition.
        for key, value in txn.cursor(db=self.db):
            partition, first = _KEY.unpack(key)
            batch_queries = queries_of.get(partition)
            if batch_queries is None:
                continue
            positions, queries = batch_queries
            stored, offsets = _arrays(value)
            if not len(stored):
                continue
            slots = np.searchsorted(stored, queries)
            hits = np.flatnonzero(stored[np.minimum(slots, len(stored) - 1)] == queries)
            for hit in hits.tolist():
                position = int(positions[hit])
                if position in found:
                    continue
                leaf_hash = leaf_hashes[32 * position : 32 * position + 32]
                slot = int(slots[hit])
                while slot < len(stored) and stored[slot] == queries[hit]:
                    leaf_index = first + int(offsets[slot])
                    if read_leaf_hash(leaf_index) == leaf_hash:
                        found[position] = leaf_index
                        break
                    slot += 1
        return found

    def find(
        self, txn: lmdb.Transaction, leaf_hash: bytes, read_leaf_hash: LeafHashReader
    ) -> int | None:
        """Return the leaf_index of leaf_hash, or None when it is not stored."""
        return self.lookup(txn, bytes(leaf_hash), read_leaf_hash).get(0)

    def add(self, txn: lmdb.Transaction, first_leaf: int, leaf_hashes: bytes) -> None:
        """Index the new leaves [first_leaf, first_leaf + n), then merge runs.

        leaf_hashes concatenates their 32-byte hashes in leaf order; every
        leaf must be after every leaf already indexed.
        """
        if not leaf_hashes:
            return
        partitions, prefixes = _split(leaf_hashes)
        for partition in np.unique(partitions).tolist():
            positions = np.flatnonzero(partitions == partition)
            run_prefixes = prefixes[positions]
            order = np.argsort(run_prefixes, kind="stable")
            offsets = (positions - positions[0]).astype(_PREFIX)[order]
            first = first_leaf + int(positions[0])
            txn.put(
                _KEY.pack(partition, first),
                run_prefixes[order].tobytes() + offsets.tobytes(),
                db=self.db,
            )
            self._settle(txn, partition)

    def _settle(self, txn: lmdb.Transaction, partition: int) -> None:
        """Merge the newest runs of a partition until the tiers are in order."""
        runs = [(first, len(value) // RECORD_SIZE) for first, value in self.runs(txn, partition)]
        while True:
            if len(runs) >= 2 and _tier(runs[-1][1]) > _tier(runs[-2][1]):
                take = 2
            elif len(runs) >= FANOUT and _tier(runs[-FANOUT][1]) == _tier(runs[-1][1]):
                take = FANOUT
            else:
                return
            group = runs[-take:]
            if not self._merge(txn, partition, [first for first, _ in group]):
                return
            runs[-take:] = [(group[0][0], sum(length for _, length in group))]

    def _merge(self, txn: lmdb.Transaction, partition: int, firsts: list[int]) -> bool:
        """Replace adjacent runs by one; False when their span is too wide."""
        prefixes = []
        offsets = []
        base = firsts[0]
        for first in firsts:
            value = txn.get(_KEY.pack(partition, first), db=self.db)
            stored, stored_offsets = _arrays(value)
            if len(stored_offsets) and first - base + int(stored_offsets.max()) >= MAX_SPAN:
                return False
            prefixes.append(stored)
            offsets.append(stored_offsets.astype(np.uint64) + np.uint64(first - base))
        merged = np.concatenate(prefixes)
        order = np.argsort(merged, kind="stable")
        value = merged[order].tobytes() + np.concatenate(offsets)[order].astype(_PREFIX).tobytes()
        for first in firsts[1:]:
            txn.delete(_KEY.pack(partition, first), db=self.db)
        txn.put(_KEY.pack(partition, base), value, db=self.db)
        return True

    def entries(self, txn: lmdb.Transaction) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield (partition, prefixes, leaf indexes) of every run, for checking."""
        for partition in range(PARTITIONS):
            for first, value in self.runs(txn, partition):
                stored, offsets = _arrays(value)
                yield partition, stored, offsets.astype(np.int64) + first

    def verify(self, txn: lmdb.Transaction, leaf_hashes: bytes) -> int | None:
        """Check the index against the leaf hashes of leaves [0, n).

        Returns the smallest leaf_index whose record is missing, wrong or
        repeated, or None when every leaf has exactly its own record.
        """
        count = len(leaf_hashes) // 32
        partitions, prefixes = _split(leaf_hashes)
        seen = np.zeros(count, dtype=np.int8)
        bad = count
        for partition, stored, leaves in self.entries(txn):
            # A record that points past the tree leaves its own leaf unseen,
            # and that leaf is reported below.
            inside = (leaves >= 0) & (leaves < count)
            stored, leaves = stored[inside], leaves[inside]
            wrong = (partitions[leaves] != partition) | (prefixes[leaves] != stored)
            np.add.at(seen, leaves, 1)
            if wrong.any():
                bad = min(bad, int(leaves[wrong].min()))
                continue
            descents = np.flatnonzero(np.diff(stored.astype(np.int64)) < 0)
            if len(descents):
                # Records in the wrong order hide each other from lookups.
                bad = min(bad, int(leaves[descents + 1].min()))
        repeated = np.flatnonzero(seen != 1)
        if len(repeated):
            bad = min(bad, int(repeated[0]))
        return bad if bad < count else None
