"""The leaf-hash index: from a leaf_hash to its leaf_index.

A B-tree keyed by hash would place every new record on a random page, so
each batch would copy pages all over the index, and the file would grow by
those copies. This index is instead a log-structured merge of sorted runs,
whose newest part is the log itself:

- The tail: the leaves after the last full chunk of FLUSH leaves are not in
  any run. Their leaf hashes are already durable as stored hashes of level
  0, so the appending process keeps them in a dict. It rebuilds the dict
  from those stored hashes after opening the store or after another
  process appended.
  A reader without that dict scans the stored hashes of the tail, at most
  FLUSH + one batch of them.
- The runs: when the tail contains a full chunk, the append transaction that
  completes it writes the chunk as one run. A run is one LMDB record keyed
  by its first leaf_index (8 bytes, big-endian). Its value is two
  little-endian uint32 arrays of equal length: the leaves' 32-bit hash
  prefixes, sorted, and in the same order each leaf's offset from the
  run's first leaf_index. That is 8 bytes per leaf.
- Runs cover consecutive ranges of leaves from leaf 0, and only adjacent
  runs are merged. A run's tier is floor(log4(length)). Four runs of one
  tier merge into one of the next tier, until a run reaches MAX_RUN
  leaves. So a log of n leaves has about n / MAX_RUN + 6 runs, a batch
  does one binary search per run, and each leaf is rewritten at most
  three times.
- A prefix matches a given other leaf with probability 2**-32, so every
  hit is checked against the full stored leaf hash before it counts.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence

import lmdb
import numpy as np

HASH_SIZE = 32
FLUSH = 1 << 15
MAX_RUN = 1 << 19
FANOUT = 4
RECORD_SIZE = 8

_KEY = struct.Struct(">Q")
_U32 = np.dtype("<u4")

# Returns the concatenated stored leaf hashes of leaves [first, end), read
# in the given transaction.
LeafHashReader = Callable[[lmdb.Transaction, int, int], bytes]


def _prefixes(leaf_hashes: bytes) -> np.ndarray:
    """Return the first 4 bytes of each 32-byte leaf hash as a uint32."""
    return np.frombuffer(leaf_hashes, dtype=">u4").reshape(-1, 8)[:, 0].astype(_U32)


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
    prefixes = np.frombuffer(value, dtype=_U32, count=count)
    offsets = np.frombuffer(value, dtype=_U32, count=count, offset=4 * count)
    return prefixes, offsets


def _run_first(key: memoryview | bytes) -> int:
    """Return the first leaf_index of a run from its 8-byte key."""
    if len(key) != _KEY.size:
        # Imported here because ledger.store imports this module.
        from ledger.store import CorruptStoreError

        raise CorruptStoreError(
            f"a leaf-hash index run has a {len(key)}-byte key, not {_KEY.size};"
            " the store is damaged or was written by another version"
        )
    return _KEY.unpack(key)[0]


class _Tail:
    """The appending process's dict of the tail: leaf_hash -> leaf_index.

    It covers the leaves [flushed, size) of a committed tree. A reader
    thread may find leaves of later batches in it too, so it trusts a
    leaf_index only when it is below its own snapshot's tree_size.
    """

    def __init__(self, flushed: int, size: int, leaves: dict[bytes, int]) -> None:
        self.flushed = flushed
        self.size = size
        self.leaves = leaves


class LeafIndex:
    """The leaf-hash index in one LMDB database, with the tail in memory."""

    def __init__(self, db: object, read_leaf_hashes: LeafHashReader) -> None:
        self.db = db
        self._read = read_leaf_hashes
        self._tail = _Tail(-1, -1, {})

    # Runs.

    def runs(self, txn: lmdb.Transaction) -> Iterator[tuple[int, memoryview]]:
        """Yield (first leaf_index, value) of each run, oldest first."""
        for key, value in txn.cursor(db=self.db):
            yield _run_first(key), value

    def run_lengths(self, txn: lmdb.Transaction) -> list[tuple[int, int]]:
        """Return (first leaf_index, length) of each run, oldest first."""
        return [(first, len(value) // RECORD_SIZE) for first, value in self.runs(txn)]

    def flushed(self, txn: lmdb.Transaction) -> int:
        """Return the number of leaves the runs cover: leaves [0, flushed)."""
        cursor = txn.cursor(db=self.db)
        if not cursor.last():
            return 0
        prefixes, _ = _arrays(cursor.value())
        return _run_first(cursor.key()) + len(prefixes)

    def _search_runs(
        self, txn: lmdb.Transaction, leaf_hashes: bytes, found: dict[int, int]
    ) -> None:
        """Add {position: leaf_index} to found for hashes that runs contain."""
        # Sorted queries let each binary search start where the previous
        # one ended, which keeps a search over a large run in cache.
        unsorted = _prefixes(leaf_hashes)
        order = np.argsort(unsorted)
        queries = unsorted[order]
        for first, value in self.runs(txn):
            stored, offsets = _arrays(value)
            if not len(stored):
                continue
            slots = np.searchsorted(stored, queries)
            matches = np.flatnonzero(stored[np.minimum(slots, len(stored) - 1)] == queries)
            for match in matches.tolist():
                hit = int(order[match])
                if hit in found:
                    continue
                leaf_hash = leaf_hashes[HASH_SIZE * hit : HASH_SIZE * (hit + 1)]
                slot = int(slots[match])
                while slot < len(stored) and stored[slot] == queries[match]:
                    leaf_index = first + int(offsets[slot])
                    if self._read(txn, leaf_index, leaf_index + 1) == leaf_hash:
                        found[hit] = leaf_index
                        break
                    slot += 1

    # The tail.

    def _synced_tail(self, txn: lmdb.Transaction, tree_size: int) -> _Tail:
        """Return the tail dict of the committed tree that txn reads."""
        tail = self._tail
        flushed = self.flushed(txn)
        if tail.flushed == flushed and tail.size == tree_size:
            return tail
        if tail.flushed == flushed and 0 <= tail.size < tree_size:
            # Another process appended: add its leaves.
            first = tail.size
            leaves = dict(tail.leaves)
        else:
            first = flushed
            leaves = {}
        blob = self._read(txn, first, tree_size)
        hashes = [blob[k : k + HASH_SIZE] for k in range(0, len(blob), HASH_SIZE)]
        # setdefault keeps the first leaf_index should the tail ever hold a
        # hash twice; appends never store a duplicate.
        for leaf_index, leaf_hash in zip(range(first, tree_size), hashes):
            leaves.setdefault(leaf_hash, leaf_index)
        tail = _Tail(flushed, tree_size, leaves)
        self._tail = tail
        return tail

    # Appends: lookup and add run in the write transaction; committed
    # runs after it returned.

    def lookup(
        self,
        snapshot: lmdb.Transaction,
        tree_size: int,
        leaf_hashes: bytes,
        hashes: Sequence[bytes],
    ) -> tuple[dict[int, int], int]:
        """Find which of a batch of leaf hashes the tree already contains.

        snapshot is a read transaction with buffers=True, begun after the
        write transaction, so that it reads the same tree without copying
        runs; tree_size is that tree's size. leaf_hashes concatenates the
        32-byte hashes of `hashes`. Returns ({position in the batch:
        leaf_index} for each stored one, the leaves the runs cover).
        """
        txn = snapshot
        tail = self._synced_tail(txn, tree_size)
        found: dict[int, int] = {}
        hits = list(map(tail.leaves.get, hashes))
        if hits.count(None) != len(hits):
            found = {k: index for k, index in enumerate(hits) if index is not None}
        if tail.flushed:
            self._search_runs(txn, leaf_hashes, found)
        return found, tail.flushed

    def add(
        self, txn: lmdb.Transaction, snapshot: lmdb.Transaction, flushed: int, end: int
    ) -> int:
        """Write a run for each full chunk of the tail of a tree of size end.

        Call after the batch's stored hashes are written in txn; snapshot
        and flushed are those of lookup(). Returns the number of leaves the
        runs then cover.
        """
        if end - flushed < FLUSH:
            return flushed
        runs = self.run_lengths(snapshot)
        while end - flushed >= FLUSH:
            blob = self._read(txn, flushed, flushed + FLUSH)
            prefixes = _prefixes(blob)
            order = np.argsort(prefixes, kind="stable")
            value = prefixes[order].tobytes() + order.astype(_U32).tobytes()
            txn.put(_KEY.pack(flushed), value, db=self.db)
            runs.append((flushed, FLUSH))
            self._settle(txn, runs)
            flushed += FLUSH
        return flushed

    def committed(self, begin: int, hashes: Sequence[bytes], end: int, flushed: int) -> None:
        """Take the leaves [begin, end) of a committed batch into the tail dict.

        flushed is what add() returned for that batch.
        """
        tail = self._tail
        if tail.size != begin:
            # The dict is out of date; the next lookup rebuilds it.
            return
        if flushed != tail.flushed:
            leaves = {h: i for h, i in tail.leaves.items() if i >= flushed}
            leaves.update(
                (h, i) for h, i in zip(hashes, range(begin, end)) if i >= flushed
            )
        else:
            # A batch stores only hashes that are new to the tree, so none
            # is in the dict yet. Updating in place is one C call, and a
            # reader never trusts a leaf_index beyond its own snapshot.
            leaves = tail.leaves
            leaves.update(zip(hashes, range(begin, end)))
        self._tail = _Tail(flushed, end, leaves)

    def _settle(self, txn: lmdb.Transaction, runs: list[tuple[int, int]]) -> None:
        """Merge the newest runs until no FANOUT runs share a tier.

        runs lists (first, length) of every run in txn and is updated.
        """
        # Runs of MAX_RUN leaves or more are final.
        while len(runs) >= FANOUT:
            group = runs[-FANOUT:]
            tiers = {_tier(length) for _, length in group}
            total = sum(length for _, length in group)
            if len(tiers) != 1 or total > MAX_RUN:
                return
            self._merge(txn, [first for first, _ in group])
            runs[-FANOUT:] = [(group[0][0], total)]

    def _merge(self, txn: lmdb.Transaction, firsts: list[int]) -> None:
        """Replace adjacent runs by one."""
        prefixes = []
        offsets = []
        base = firsts[0]
        for first in firsts:
            stored, stored_offsets = _arrays(txn.get(_KEY.pack(first), db=self.db))
            prefixes.append(stored)
            offsets.append(stored_offsets + np.uint32(first - base))
        merged = np.concatenate(prefixes)
        order = np.argsort(merged, kind="stable")
        value = merged[order].tobytes() + np.concatenate(offsets)[order].tobytes()
        for first in firsts[1:]:
            txn.delete(_KEY.pack(first), db=self.db)
        txn.put(_KEY.pack(base), value, db=self.db)

    # Reads.

    def find(self, txn: lmdb.Transaction, tree_size: int, leaf_hash: bytes) -> int | None:
        """Return the leaf_index of leaf_hash in the tree that txn reads, or None."""
        leaf_hash = bytes(leaf_hash)
        leaf_index = self._tail.leaves.get(leaf_hash)
        if leaf_index is not None and leaf_index < tree_size:
            return leaf_index
        found: dict[int, int] = {}
        self._search_runs(txn, leaf_hash, found)
        if found:
            return found[0]
        # The tail of this snapshot, which the dict may not cover.
        flushed = self.flushed(txn)
        blob = self._read(txn, flushed, tree_size)
        position = blob.find(leaf_hash)
        while position >= 0:
            if position % HASH_SIZE == 0:
                return flushed + position // HASH_SIZE
            position = blob.find(leaf_hash, position + 1)
        return None

    def verify(self, txn: lmdb.Transaction, leaf_hashes: bytes) -> int | None:
        """Check the runs against the leaf hashes of leaves [0, n).

        Returns the smallest leaf_index whose record is missing, wrong or
        repeated, or None when the runs cover exactly the full chunks of
        FLUSH leaves and each leaf has exactly its own record.
        """
        count = len(leaf_hashes) // HASH_SIZE
        covered = count - count % FLUSH
        prefixes = _prefixes(leaf_hashes)
        seen = np.zeros(count, dtype=np.int8)
        bad = count
        for first, value in self.runs(txn):
            stored, offsets = _arrays(value)
            leaves = offsets.astype(np.int64) + first
            # A record that points past the tree leaves its own leaf unseen,
            # and that leaf is reported below.
            inside = leaves < count
            stored, leaves = stored[inside], leaves[inside]
            np.add.at(seen, leaves, 1)
            wrong = prefixes[leaves] != stored
            if wrong.any():
                bad = min(bad, int(leaves[wrong].min()))
                continue
            descents = np.flatnonzero(np.diff(stored.astype(np.int64)) < 0)
            if len(descents):
                # Records in the wrong order hide each other from lookups.
                bad = min(bad, int(leaves[descents + 1].min()))
        expected = np.zeros(count, dtype=np.int8)
        expected[:covered] = 1
        differs = np.flatnonzero(seen != expected)
        if len(differs):
            bad = min(bad, int(differs[0]))
        return bad if bad < count else None
