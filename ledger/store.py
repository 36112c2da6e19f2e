"""The log store: entries, stored hashes and checkpoints in one LMDB file.

Layout (one LMDB environment, a few named databases, integers big-endian):

- `bundles`: bundle index (8 bytes) -> C2SP tlog-tiles entry bundle, up to
  256 entries each with a 2-byte length prefix. The last bundle is partial
  and is rewritten by each batch, so a bundle read serves both
  `/tile/entries/...` and single entries.
- `hashes`: (level: 1 byte, row: 8 bytes) -> up to 2,032 consecutive stored
  hashes of that level. 2,032 hashes (65,024 bytes) fill sixteen 4 KiB
  LMDB overflow pages with their 16-byte header, and 2,032 is a multiple
  of 16, so an aligned block of 16 hashes never spans two rows. Only levels
  that are multiples of 4 are stored, about 34 bytes per leaf: a hash of
  level 4k + j is the hash of 2**j stored hashes of level 4k, which costs
  2**j - 1 SHA-256. Tiles of C2SP tlog-tiles sit at levels 8 * L, which
  are stored.
- `leafruns`: the leaf-hash index, sorted runs of hash prefixes; the
  layout is in ledger/leafindex.py.
- `checkpoints`: tree_size -> signed checkpoint note, every one ever signed.
- `published`: tree_size -> CBOR map of the published note (cosigned when
  witnesses are configured) and its time-stamp token.
- `meta`: `format` (the layout version, 3), `tree_size`, `published`
  (tree_size of the latest published checkpoint) and the configuration
  (`origin`, `witnesses`, `quorum`).

The durability story is in STORE.md next to this file.
"""

from __future__ import annotations

import itertools
import json
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cbor2
import lmdb

from ledger.appender import AppendResult
from ledger.leafindex import LeafIndex
from ledger.merkle import HASH_SIZE, TreeRangeError, native

MAX_ENTRY_SIZE = 65_535
ENTRIES_PER_BUNDLE = 256
TILE_WIDTH = 256
TILE_HEIGHT = 8
HASHES_PER_ROW = 2032
# Stored hash levels are the multiples of LEVEL_STEP; a proof reads the
# levels below it from one aligned block of BLOCK leaf hashes.
LEVEL_STEP = 4
BLOCK = 1 << LEVEL_STEP
FORMAT = b"3"

DEFAULT_MAP_SIZE = 1 << 40

_U64 = struct.Struct(">Q")
# The duplicate field of every AppendResult of an all-new batch.
_NEW = itertools.repeat(False)
_RESULT_TYPE = itertools.repeat(AppendResult)
_ROW_KEY = struct.Struct(">BQ")
_LENGTH = struct.Struct(">H")

_FORMAT = b"format"
_TREE_SIZE = b"tree_size"
_PUBLISHED = b"published"
_ORIGIN = b"origin"
_WITNESSES = b"witnesses"
_QUORUM = b"quorum"


class StoreError(Exception):
    """The store cannot serve a request: a missing record or a bad argument."""


class EntryTooLargeError(StoreError, ValueError):
    """An entry is longer than the 65,535 bytes an entry bundle can carry."""


class NotFoundError(StoreError, LookupError):
    """A tile, entry bundle, entry or checkpoint is not in the store."""


class CorruptStoreError(StoreError):
    """The store lacks a record its own tree_size requires: data was lost."""


def _u64(value: bytes | memoryview, record: str) -> int:
    """Decode an 8-byte big-endian integer; raise CorruptStoreError otherwise."""
    if len(value) != _U64.size:
        raise CorruptStoreError(
            f"{record} is {len(value)} bytes, not {_U64.size}; the store is damaged:"
            " restore it from a copy"
        )
    return _U64.unpack(value)[0]


def _row_key(key: bytes | memoryview) -> tuple[int, int]:
    """Decode a (level, row) key of the hashes database."""
    if len(key) != _ROW_KEY.size:
        raise CorruptStoreError(
            f"a key of the stored hashes is {len(key)} bytes, not {_ROW_KEY.size};"
            " the store is damaged: restore it from a copy"
        )
    return _ROW_KEY.unpack(key)


@dataclass(frozen=True)
class LogConfig:
    """The log's configuration: origin, witnesses and cosignature quorum.

    Each witness is a (url, vkey) pair: the C2SP tlog-witness submission
    prefix and the witness's cosignature verifier key.
    """

    origin: str
    witnesses: tuple[tuple[str, str], ...] = ()
    quorum: int = 0


@dataclass(frozen=True)
class PublishedCheckpoint:
    """The published checkpoint note of one tree size and its time-stamp token."""

    tree_size: int
    note: bytes
    time_stamp_token: bytes | None = None


class LogSource(Protocol):
    """The reads the HTTP API makes of a log: an LMDB store or a mirror's copy."""

    def tree_size(self) -> int: ...

    def read_hashes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]: ...

    def read_tile(self, level: int, index: int, width: int) -> bytes: ...

    def read_entry_bundle(self, index: int, width: int) -> bytes: ...

    def find_leaf(self, leaf_hash: bytes) -> int | None: ...

    def latest_checkpoint(self) -> PublishedCheckpoint | None: ...


def check_entry_size(entry: bytes) -> None:
    """Raise EntryTooLargeError unless len(entry) <= 65,535."""
    if len(entry) > MAX_ENTRY_SIZE:
        raise EntryTooLargeError(
            f"entry is {len(entry):,} bytes; a log entry carries at most"
            f" {MAX_ENTRY_SIZE:,} bytes"
        )


def check_entry_sizes(entries: Sequence[bytes]) -> None:
    """Raise EntryTooLargeError unless every entry is at most 65,535 bytes."""
    if entries and max(map(len, entries)) > MAX_ENTRY_SIZE:
        for entry in entries:
            check_entry_size(entry)


def split_bundle(bundle: bytes | memoryview) -> list[bytes]:
    """Split an entry bundle into its entries.

    Raises CorruptStoreError when a length prefix runs past the end.
    """
    entries = []
    offset = 0
    end = len(bundle)
    while offset < end:
        if offset + 2 > end:
            raise CorruptStoreError("entry bundle ends inside a length prefix")
        (length,) = _LENGTH.unpack_from(bundle, offset)
        offset += 2
        if offset + length > end:
            raise CorruptStoreError("entry bundle ends inside an entry")
        entries.append(bytes(bundle[offset : offset + length]))
        offset += length
    return entries


def _bundle_prefix_length(bundle: bytes | memoryview, count: int) -> int:
    """Return the byte length of the first `count` entries of a bundle."""
    offset = 0
    for _ in range(count):
        (length,) = _LENGTH.unpack_from(bundle, offset)
        offset += 2 + length
    return offset


class _View:
    """Reads one consistent snapshot of the store through an LMDB transaction."""

    def __init__(self, store: LogStore, txn: lmdb.Transaction) -> None:
        self._store = store
        self._txn = txn
        self._hashes = store._dbs["hashes"]
        self._rows: dict[tuple[int, int], memoryview | bytes] = {}

    def tree_size(self) -> int:
        value = self._txn.get(_TREE_SIZE, db=self._store._dbs["meta"])
        return _u64(value, "the stored tree_size") if value is not None else 0

    def _row(self, level: int, row: int, need: int = 0) -> memoryview | bytes:
        key = (level, row)
        data = self._rows.get(key)
        if data is None:
            data = self._txn.get(_ROW_KEY.pack(level, row), db=self._hashes)
            if data is None:
                raise CorruptStoreError(
                    f"stored hashes of level {level} row {row} are missing"
                )
            self._rows[key] = data
        return data

    def read_hashes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        """Return the stored hash of each (level, index) in ids, in order."""
        read = self._hash
        return [read(level, index) for level, index in ids]

    def read_tile(self, level: int, index: int, width: int) -> bytes:
        """Return the hashes of tile (level, index) of the given width.

        Requires 0 <= level <= 63 and 1 <= width <= 256; raises
        NotFoundError when the tree lacks those hashes.
        """
        hash_level = level * TILE_HEIGHT
        first = index * TILE_WIDTH
        available = self.tree_size() >> hash_level if hash_level < 64 else 0
        if first + width > available:
            raise NotFoundError(
                f"tile {level}/{index} of width {width} is not in the tree of"
                f" size {self.tree_size()}"
            )
        parts = []
        position = first
        end = first + width
        while position < end:
            row, slot = divmod(position, HASHES_PER_ROW)
            take = min(end - position, HASHES_PER_ROW - slot)
            data = self._row(hash_level, row)
            parts.append(bytes(data[slot * HASH_SIZE : (slot + take) * HASH_SIZE]))
            position += take
        return b"".join(parts)

    def read_entry_bundle(self, index: int, width: int) -> bytes:
        """Return the first `width` entries of bundle `index` as a bundle.

        Requires 1 <= width <= 256; raises NotFoundError when the tree has
        fewer than index * 256 + width entries.
        """
        tree_size = self.tree_size()
        if index * ENTRIES_PER_BUNDLE + width > tree_size:
            raise NotFoundError(
                f"entry bundle {index} of width {width} is not in the tree of"
                f" size {tree_size}"
            )
        bundle = self._txn.get(_U64.pack(index), db=self._store._dbs["bundles"])
        if bundle is None:
            raise CorruptStoreError(f"entry bundle {index} is missing")
        stored = min(ENTRIES_PER_BUNDLE, tree_size - index * ENTRIES_PER_BUNDLE)
        if width == stored:
            return bytes(bundle)
        return bytes(bundle[: _bundle_prefix_length(bundle, width)])

    def read_entry(self, leaf_index: int) -> bytes:
        """Return the entry at leaf_index; requires 0 <= leaf_index < tree_size."""
        tree_size = self.tree_size()
        if not 0 <= leaf_index < tree_size:
            raise NotFoundError(
                f"leaf_index {leaf_index} is out of range for tree_size {tree_size}"
            )
        index, slot = divmod(leaf_index, ENTRIES_PER_BUNDLE)
        bundle = self._txn.get(_U64.pack(index), db=self._store._dbs["bundles"])
        if bundle is None:
            raise CorruptStoreError(f"entry bundle {index} is missing")
        offset = _bundle_prefix_length(bundle, slot)
        (length,) = _LENGTH.unpack_from(bundle, offset)
        return bytes(bundle[offset + 2 : offset + 2 + length])

    def iter_bundles(self) -> Iterator[tuple[int, bytes]]:
        """Yield (bundle index, bundle bytes) in index order."""
        cursor = self._txn.cursor(db=self._store._dbs["bundles"])
        for key, value in cursor:
            yield _u64(key, "an entry bundle key"), bytes(value)

    def iter_rows(self, level: int) -> Iterator[tuple[int, bytes]]:
        """Yield (row, hashes) of one stored level in row order."""
        cursor = self._txn.cursor(db=self._hashes)
        if not cursor.set_range(_ROW_KEY.pack(level, 0)):
            return
        for key, value in cursor:
            row_level, row = _row_key(key)
            if row_level != level:
                return
            yield row, bytes(value)

    def _hash(self, level: int, index: int) -> bytes:
        return _read_hash(self._row, level, index)

    def find_leaf(self, leaf_hash: bytes) -> int | None:
        """Return the leaf_index of the entry with this leaf hash, or None."""
        return self._store._index.find(self._txn, self.tree_size(), leaf_hash)

    def check_leaf_index(self, leaf_hashes: bytes) -> int | None:
        """Check the leaf-hash index against every leaf hash, concatenated.

        Returns the first leaf_index without exactly its own index record,
        or None when the index is whole.
        """
        return self._store._index.verify(self._txn, leaf_hashes)

    def latest_checkpoint(self) -> PublishedCheckpoint | None:
        """Return the latest published checkpoint, or None before the first."""
        value = self._txn.get(_PUBLISHED, db=self._store._dbs["meta"])
        if value is None:
            return None
        if len(value) != _U64.size:
            raise CorruptStoreError(
                f"the pointer to the latest published checkpoint is {len(value)}"
                " bytes, not 8; restore the store from a copy"
            )
        return self.published_checkpoint(_U64.unpack(value)[0])

    def published_checkpoint(self, tree_size: int) -> PublishedCheckpoint:
        """Return the checkpoint published for tree_size."""
        value = self._txn.get(_U64.pack(tree_size), db=self._store._dbs["published"])
        if value is None:
            raise NotFoundError(f"no checkpoint was published for tree_size {tree_size}")
        try:
            record = cbor2.loads(bytes(value))
            note = record["note"]
            token = record.get("tsr")
        except (cbor2.CBORDecodeError, KeyError, TypeError, AttributeError) as error:
            raise CorruptStoreError(
                f"the published checkpoint of tree_size {tree_size} is malformed"
                f" ({type(error).__name__}: {error}); restore the store from a copy"
            ) from error
        if not isinstance(note, bytes) or not isinstance(token, bytes | None):
            raise CorruptStoreError(
                f"the published checkpoint of tree_size {tree_size} is malformed:"
                " its note or time-stamp token is not a byte string; restore the"
                " store from a copy"
            )
        return PublishedCheckpoint(tree_size, note, token)

    def signed_checkpoints(self) -> list[tuple[int, bytes]]:
        """Return every signed checkpoint note as (tree_size, note), by size."""
        cursor = self._txn.cursor(db=self._store._dbs["checkpoints"])
        return [(_u64(key, "a signed checkpoint key"), bytes(value)) for key, value in cursor]

    def config(self) -> LogConfig:
        """Return the stored configuration; raises StoreError before `init`."""
        meta = self._store._dbs["meta"]
        origin = self._txn.get(_ORIGIN, db=meta)
        if origin is None:
            raise StoreError("the store has no origin; create the log with `ledger init`")
        witnesses = json.loads(bytes(self._txn.get(_WITNESSES, db=meta) or b"[]"))
        quorum = int(bytes(self._txn.get(_QUORUM, db=meta) or b"0"))
        return LogConfig(
            bytes(origin).decode("utf-8"),
            tuple((url, vkey) for url, vkey in witnesses),
            quorum,
        )


def _check_node(level: int, index: int) -> None:
    if not (0 <= level < 64 and index >= 0):
        raise TreeRangeError(
            f"stored hash ({level}, {index}) does not exist; a stored hash needs"
            " 0 <= level < 64 and 0 <= index"
        )


def _read_hash(row_of, level: int, index: int) -> bytes:
    """Return stored hash (level, index) through row_of(level, row, need).

    row_of returns the row's buffer and may raise when it contains fewer than
    `need` bytes.
    A level that is not a multiple of LEVEL_STEP is hashed up from the
    aligned run of stored hashes below it, which lies in one row.
    Requires 0 <= level < 64 and 0 <= index; raises TreeRangeError otherwise.
    """
    _check_node(level, index)
    base = level - level % LEVEL_STEP
    width = 1 << (level - base)
    first = index * width
    row, slot = divmod(first, HASHES_PER_ROW)
    data = row_of(base, row, (slot + width) * HASH_SIZE)
    value = bytes(data[slot * HASH_SIZE : (slot + width) * HASH_SIZE])
    if len(value) != width * HASH_SIZE:
        raise CorruptStoreError(
            f"stored hash ({level}, {index}) is missing; run `ledger log check`"
            " to find the damage"
        )
    while len(value) > HASH_SIZE:
        value = native.parent_level(value)
    return value


class _BatchWriter:
    """Appends entries, stored hashes and index runs in one write transaction.

    Reads only the tree as it was before the batch: the last partial entry
    bundle and row of each stored level, the left siblings of the first new
    node of each level, and the index runs that settle duplicates.
    """

    def __init__(
        self,
        store: LogStore,
        txn: lmdb.Transaction,
        snapshot: lmdb.Transaction,
        tree_size: int,
    ) -> None:
        self.txn = txn
        self.snapshot = snapshot
        self.meta_db = store._dbs["meta"]
        self.hashes_db = store._dbs["hashes"]
        self.bundles_db = store._dbs["bundles"]
        self.index = store._index
        self.tree_size = tree_size
        # The leaf hashes stored by this batch and the leaves the index
        # runs cover after it, for LeafIndex.committed.
        self.new_hashes: Sequence[bytes] = ()
        self.flushed = 0

    def _row(self, level: int, row: int, need: int = 0) -> bytes:
        data = self.txn.get(_ROW_KEY.pack(level, row), db=self.hashes_db)
        if data is None:
            raise CorruptStoreError(f"stored hashes of level {level} row {row} are missing")
        return data

    def _hash(self, level: int, index: int) -> bytes:
        return _read_hash(self._row, level, index)

    def append(self, entries: Sequence[bytes]) -> list[AppendResult]:
        """Add entries after the stored tree; returns one result per entry."""
        begin = self.tree_size
        blob = native.leaf_hashes(entries)
        hashes = [blob[offset : offset + HASH_SIZE] for offset in range(0, len(blob), HASH_SIZE)]
        stored, flushed = self.index.lookup(self.snapshot, begin, blob, hashes)
        if not stored and len(set(hashes)) == len(hashes):
            # Every entry is new: the common case, with no loop per entry.
            # tuple.__new__ builds each NamedTuple without a Python-level call.
            fields = zip(range(begin, begin + len(hashes)), hashes, _NEW)
            results = list(map(tuple.__new__, _RESULT_TYPE, fields))
            new_entries = entries
            new_blob = blob
            self.new_hashes = hashes
        else:
            results, new_entries, self.new_hashes = self._settle_duplicates(
                entries, hashes, stored
            )
            new_blob = b"".join(self.new_hashes)
        end = begin + len(new_entries)
        if end == begin:
            return results
        self._put_bundles(new_entries)
        siblings = []
        level = 0
        while (end >> (level + 1)) > (begin >> (level + 1)):
            first = begin >> level
            siblings.append(self._hash(level, first - 1) if first & 1 else None)
            level += 1
        for level, first, data in native.range_levels(begin, new_blob, siblings):
            if level % LEVEL_STEP == 0:
                self._put_level(level, first, data)
        self.flushed = self.index.add(self.txn, self.snapshot, flushed, end)
        self.tree_size = end
        self.txn.put(_TREE_SIZE, _U64.pack(end), db=self.meta_db)
        return results

    def _settle_duplicates(
        self, entries: Sequence[bytes], hashes: list[bytes], stored: dict[int, int]
    ) -> tuple[list[AppendResult], list[bytes], list[bytes]]:
        """Give a duplicate the first copy's leaf_index; keep the new entries."""
        results = []
        new_entries = []
        new_hashes = []
        batch: dict[bytes, int] = {}
        index = self.tree_size
        for position, (entry, hash_) in enumerate(zip(entries, hashes)):
            first = stored.get(position)
            if first is None:
                first = batch.get(hash_)
            if first is not None:
                results.append(AppendResult(first, hash_, True))
                continue
            batch[hash_] = index
            new_entries.append(entry)
            new_hashes.append(hash_)
            results.append(AppendResult(index, hash_))
            index += 1
        return results, new_entries, new_hashes

    def _put_bundles(self, entries: Sequence[bytes]) -> None:
        """Append entries to the last bundle and write every bundle touched."""
        position = self.tree_size
        offset = 0
        records = []
        last = b""
        if position % ENTRIES_PER_BUNDLE:
            index = position // ENTRIES_PER_BUNDLE
            last = self.txn.get(_U64.pack(index), db=self.bundles_db)
            if last is None:
                raise CorruptStoreError(f"entry bundle {index} is missing")
        while offset < len(entries):
            take = min(ENTRIES_PER_BUNDLE - position % ENTRIES_PER_BUNDLE, len(entries) - offset)
            chunk = entries[offset : offset + take]
            parts: list = [None] * (2 * take)
            parts[0::2] = map(_LENGTH.pack, map(len, chunk))
            parts[1::2] = chunk
            if position % ENTRIES_PER_BUNDLE:
                parts.insert(0, last)
            records.append((_U64.pack(position // ENTRIES_PER_BUNDLE), b"".join(parts)))
            position += take
            offset += take
        self.txn.cursor(db=self.bundles_db).putmulti(records)

    def _put_level(self, level: int, first: int, data: bytes) -> None:
        """Write the stored hashes (level, first + k), concatenated, into their rows."""
        row, slot = divmod(first, HASHES_PER_ROW)
        records = []
        take = (HASHES_PER_ROW - slot) * HASH_SIZE
        key = _ROW_KEY.pack(level, row)
        if slot:
            stored = self.txn.get(key, db=self.hashes_db)
            if stored is None or len(stored) != slot * HASH_SIZE:
                raise CorruptStoreError(
                    f"stored hash ({level}, {first}) is not next in its row"
                )
            records.append((key, bytes(stored) + data[:take]))
        else:
            records.append((key, data[:take]))
        row_size = HASHES_PER_ROW * HASH_SIZE
        for offset in range(take, len(data), row_size):
            row += 1
            records.append((_ROW_KEY.pack(level, row), data[offset : offset + row_size]))
        self.txn.cursor(db=self.hashes_db).putmulti(records)


class _HashCache:
    """Serves proofs and read_hashes with few LMDB transactions and copies.

    Proofs are frequent and each needs about 2 * log2(tree_size) hashes,
    so beginning a transaction and a _View per proof would cost more than
    the reads. Each thread keeps one read transaction for at most
    MAX_SNAPSHOT_AGE seconds, so that it pins old pages only briefly, and
    begins a new one at once when a hash it needs is newer than its snapshot.

    Every level >= LEVEL_STEP is kept in memory as one contiguous image,
    grown on demand: stored hashes never change once written, and at 10M
    leaves these images take about 40 MiB (20 MB for level 4, half as much
    for each level above). A proof then reads at most two aligned blocks of
    16 leaf hashes from LMDB, the one around its leaf and the last one of
    the tree, and hashes the levels below LEVEL_STEP from them.
    """

    MAX_SNAPSHOT_AGE = 0.05

    def __init__(self, env: lmdb.Environment, hashes_db: object) -> None:
        self._env = env
        self._db = hashes_db
        self._local = threading.local()
        # images[level] contains the hashes (level, 0), (level, 1), ... of
        # every level >= LEVEL_STEP; levels below are None.
        self.images: list[bytearray | None] = [None] * LEVEL_STEP + [
            bytearray() for _ in range(LEVEL_STEP, 64)
        ]
        self._covered = 0
        self._grow_lock = threading.Lock()
        self._last_span: tuple[int, tuple[int, bytes]] = (-1, (0, b""))

    def _snapshot(self, fresh: bool) -> lmdb.Transaction:
        local = self._local
        txn = getattr(local, "txn", None)
        now = time.monotonic()
        if txn is not None and (fresh or now - local.began > self.MAX_SNAPSHOT_AGE):
            txn.abort()
            txn = None
        if txn is None:
            txn = self._env.begin(buffers=True)
            local.txn = txn
            local.began = now
        return txn

    def release(self) -> None:
        """End this thread's read transaction, if any."""
        txn = getattr(self._local, "txn", None)
        if txn is not None:
            txn.abort()
            self._local.txn = None

    def _row(self, level: int, row: int, need: int) -> memoryview:
        """Return row `row` of a stored level, holding at least `need` bytes.

        Call _snapshot first. A buffer from an earlier call becomes invalid
        when this one has to begin a new snapshot.
        """
        key = _ROW_KEY.pack(level, row)
        data = self._local.txn.get(key, db=self._db)
        if data is None or len(data) < need:
            # The snapshot may predate the hash, so retry in a new one.
            data = self._snapshot(fresh=True).get(key, db=self._db)
            if data is None or len(data) < need:
                raise CorruptStoreError(
                    f"stored hashes of level {level} row {row} are missing;"
                    " run `ledger log check` to find the damage"
                )
        return data

    def cover(self, tree_size: int) -> None:
        """Grow the images to hold every complete subtree of tree_size."""
        if tree_size <= self._covered:
            return
        with self._grow_lock:
            if tree_size <= self._covered:
                return
            self._snapshot(fresh=False)
            images = self.images
            bottom = images[LEVEL_STEP]
            need = tree_size >> LEVEL_STEP
            while len(bottom) < need * HASH_SIZE:
                have = len(bottom) // HASH_SIZE
                row, slot = divmod(have, HASHES_PER_ROW)
                count = min(need - row * HASHES_PER_ROW, HASHES_PER_ROW)
                data = self._row(LEVEL_STEP, row, count * HASH_SIZE)
                bottom += data[slot * HASH_SIZE : count * HASH_SIZE]
            for level in range(LEVEL_STEP + 1, 64):
                need = tree_size >> level
                image = images[level]
                have = len(image) // HASH_SIZE
                if need <= have:
                    continue
                below = images[level - 1]
                image += native.parent_level(
                    memoryview(below)[2 * have * HASH_SIZE : 2 * need * HASH_SIZE]
                )
            self._covered = tree_size

    def _block(self, first: int, end: int) -> memoryview:
        """Return the leaf hashes [first, end) of one aligned block."""
        row, slot = divmod(first, HASHES_PER_ROW)
        data = self._row(0, row, (slot + end - first) * HASH_SIZE)
        return data[slot * HASH_SIZE : (slot + end - first) * HASH_SIZE]

    def spans(self, leaf_index: int, tree_size: int) -> list[tuple[int, memoryview]]:
        """Return the leaf-hash blocks a proof about leaf_index reads.

        They are the aligned block of BLOCK leaves around leaf_index and the
        last block of the tree; requires 0 <= leaf_index < tree_size.
        """
        self._snapshot(fresh=False)
        last = (tree_size - 1) & -BLOCK
        around = leaf_index & -BLOCK
        # Most proofs are for the latest tree, so its last block is kept as
        # a copy: the leaf hashes of a tree of one size never change.
        cached_size, last_span = self._last_span
        if cached_size != tree_size:
            last_span = (last, bytes(self._block(last, tree_size)))
            self._last_span = (tree_size, last_span)
        if around == last:
            return [last_span]
        return [(around, self._block(around, min(around + BLOCK, tree_size))), last_span]

    def read_hashes(self, ids: Sequence[tuple[int, int]], tree_size: int) -> list[bytes]:
        """Return the stored hash of each (level, index) in ids, in order.

        tree_size is a committed size whose tree contains every id; the
        caller has checked the ids.
        """
        images = self.images
        self.cover(tree_size)
        self._snapshot(fresh=False)
        result = []
        for level, index in ids:
            if level >= LEVEL_STEP:
                start = index * HASH_SIZE
                result.append(bytes(images[level][start : start + HASH_SIZE]))
            else:
                result.append(_read_hash(self._row, level, index))
        return result


class LogStore:
    """One log in one LMDB environment: the sequencer's durable state.

    Open a store once per process and path (an LMDB rule). Several processes
    may open the same path: LMDB serialises their write transactions, and
    every write reads tree_size inside its own transaction.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        create: bool = False,
        readonly: bool = False,
        map_size: int = DEFAULT_MAP_SIZE,
    ) -> None:
        self.path = Path(path)
        if not create and not (self.path / "data.mdb").exists():
            raise StoreError(
                f"no log store at {self.path}; create one with `ledger init`"
            )
        # sync=True makes every commit fsync the data and then the meta page,
        # which is what lets a batch be acknowledged right after commit.
        # readahead=False keeps random proof reads from faulting in
        # neighbouring pages, which would only inflate the resident set.
        self.env = lmdb.open(
            str(self.path),
            map_size=map_size,
            max_dbs=8,
            subdir=True,
            readonly=readonly,
            sync=True,
            metasync=True,
            readahead=False,
            meminit=False,
            create=create,
        )
        self._dbs: dict[str, object] = {}
        names = ("meta", "bundles", "hashes", "leafruns", "checkpoints", "published")
        try:
            for name in names:
                self._dbs[name] = self.env.open_db(name.encode(), create=not readonly)
            self._check_format(readonly)
        except lmdb.IncompatibleError as error:
            # A database of this name exists with other flags: an older layout.
            self.env.close()
            raise StoreError(
                f"the store at {self.path} does not have the layout of this"
                f" version ({error}); it was written by another version"
            ) from error
        except BaseException:
            self.env.close()
            raise
        self._index = LeafIndex(self._dbs["leafruns"], self._read_leaf_hashes)
        self._stored_size = 0
        self._hash_cache = _HashCache(self.env, self._dbs["hashes"])

    def _read_leaf_hashes(self, txn: lmdb.Transaction, first: int, end: int) -> bytes:
        """Return the stored leaf hashes of leaves [first, end), concatenated."""
        db = self._dbs["hashes"]
        parts = []
        position = first
        while position < end:
            row, slot = divmod(position, HASHES_PER_ROW)
            take = min(end - position, HASHES_PER_ROW - slot)
            data = txn.get(_ROW_KEY.pack(0, row), db=db)
            part = bytes(data[slot * HASH_SIZE : (slot + take) * HASH_SIZE]) if data else b""
            if len(part) != take * HASH_SIZE:
                raise CorruptStoreError(
                    f"stored leaf hashes from leaf_index {position} are missing;"
                    " run `ledger log check` to find the damage"
                )
            parts.append(part)
            position += take
        return b"".join(parts)

    def _check_format(self, readonly: bool) -> None:
        """Stamp a new store with FORMAT; reject a store of another layout."""
        meta = self._dbs["meta"]
        with self.env.begin(write=not readonly) as txn:
            stamp = txn.get(_FORMAT, db=meta)
            if stamp is None and txn.get(_TREE_SIZE, db=meta) is None and not readonly:
                txn.put(_FORMAT, FORMAT, db=meta)
                return
            if stamp != FORMAT:
                found = "none" if stamp is None else repr(bytes(stamp).decode(errors="replace"))
                raise StoreError(
                    f"the store at {self.path} has layout version {found}, and"
                    f" this version reads only {FORMAT.decode()}; export its"
                    " entries with the version that wrote it and import them"
                    " with `ledger log append`"
                )

    def close(self) -> None:
        """Close the LMDB environment; the store is unusable afterwards."""
        self._hash_cache.release()
        self.env.close()

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def view(self) -> Iterator[_View]:
        """Yield a consistent read-only snapshot of the committed store."""
        with self.env.begin(buffers=True) as txn:
            yield _View(self, txn)

    # Reads through a fresh snapshot each; use view() for several related reads.

    def tree_size(self) -> int:
        """Return the committed tree size."""
        with self.view() as view:
            return view.tree_size()

    def read_hashes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        """Return the stored hash of each (level, index) in ids, in order.

        Every id must be a complete subtree of the committed tree. Proofs
        and the read API take this path (see _HashCache).
        """
        for level, index in ids:
            _check_node(level, index)
        tree_size = max(((index + 1) << level for level, index in ids), default=0)
        self._check_stored(tree_size)
        return self._hash_cache.read_hashes(ids, tree_size)

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        """Build the RFC 9162 inclusion proof of leaf_index in a tree of tree_size.

        The same proof as ledger.merkle.inclusion_proof over read_hashes,
        built by the native module from the in-memory levels and at most
        two LMDB reads. Requires 0 <= leaf_index < tree_size <= the
        committed tree size; raises TreeRangeError otherwise.
        """
        if not 0 <= leaf_index < tree_size:
            return native.inclusion_proof(leaf_index, tree_size, [], [])
        self._check_stored(tree_size)
        cache = self._hash_cache
        cache.cover(tree_size)
        return native.inclusion_proof(
            leaf_index, tree_size, cache.spans(leaf_index, tree_size), cache.images
        )

    def _check_stored(self, tree_size: int) -> None:
        """Raise TreeRangeError unless tree_size <= the committed tree size."""
        if tree_size <= self._stored_size:
            return
        # The committed size only grows, so the largest one seen is a bound
        # that needs no read while proofs ask for older trees.
        self._stored_size = max(self._stored_size, self.tree_size())
        if tree_size > self._stored_size:
            raise TreeRangeError(
                f"tree_size {tree_size} is beyond the committed tree_size"
                f" {self._stored_size}; only stored trees can be read or proved"
            )

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """Build the RFC 9162 consistency proof between trees of size1 and size2.

        The same proof as ledger.merkle.consistency_proof over read_hashes.
        Requires 0 < size1 <= size2 <= the committed tree size (or
        size1 == size2); raises TreeRangeError otherwise.
        """
        if not 0 < size1 < size2:
            if size1 == size2:
                self._check_stored(size2)
            return native.consistency_proof(size1, size2, [], [])
        self._check_stored(size2)
        cache = self._hash_cache
        cache.cover(size2)
        return native.consistency_proof(
            size1, size2, cache.spans(size1 - 1, size2), cache.images
        )

    def read_tile(self, level: int, index: int, width: int) -> bytes:
        """Return the hashes of tile (level, index) of the given width."""
        with self.view() as view:
            return view.read_tile(level, index, width)

    def read_entry_bundle(self, index: int, width: int) -> bytes:
        """Return the first `width` entries of entry bundle `index`."""
        with self.view() as view:
            return view.read_entry_bundle(index, width)

    def read_entry(self, leaf_index: int) -> bytes:
        """Return the entry at leaf_index."""
        with self.view() as view:
            return view.read_entry(leaf_index)

    def find_leaf(self, leaf_hash: bytes) -> int | None:
        """Return the leaf_index of the entry with this leaf hash, or None."""
        with self.view() as view:
            return view.find_leaf(leaf_hash)

    def latest_checkpoint(self) -> PublishedCheckpoint | None:
        """Return the latest published checkpoint, or None before the first."""
        with self.view() as view:
            return view.latest_checkpoint()

    def config(self) -> LogConfig:
        """Return the stored configuration."""
        with self.view() as view:
            return view.config()

    # Writes: one transaction each, committed with fsync before returning.

    def write_config(self, config: LogConfig) -> None:
        """Store the origin, witnesses and quorum.

        Requires 0 <= quorum <= len(witnesses).
        """
        if not 0 <= config.quorum <= len(config.witnesses):
            raise StoreError(
                f"quorum {config.quorum} is out of range for"
                f" {len(config.witnesses)} witnesses"
            )
        meta = self._dbs["meta"]
        with self.env.begin(write=True) as txn:
            txn.put(_ORIGIN, config.origin.encode("utf-8"), db=meta)
            txn.put(_WITNESSES, json.dumps([list(w) for w in config.witnesses]).encode(), db=meta)
            txn.put(_QUORUM, str(config.quorum).encode(), db=meta)

    def append_batch(self, entries: Sequence[bytes]) -> list[AppendResult]:
        """Append entries in one write transaction and return their positions.

        An entry whose leaf hash is already in the log, or earlier in the
        batch, is not stored again: its result carries the first leaf_index
        and duplicate=True. Returns only after the commit is on disk.
        Requires len(entry) <= 65,535 for every entry; raises
        EntryTooLargeError before writing anything otherwise.
        """
        check_entry_sizes(entries)
        with self.env.begin(write=True) as txn:
            meta_value = txn.get(_TREE_SIZE, db=self._dbs["meta"])
            tree_size = _u64(meta_value, "the stored tree_size") if meta_value else 0
            # No other writer can commit while this write transaction is
            # open, so a read transaction begun now reads the same tree. Its
            # buffers let the index search runs without copying them.
            with self.env.begin(buffers=True) as snapshot:
                writer = _BatchWriter(self, txn, snapshot, tree_size)
                results = writer.append(entries)
        if writer.tree_size > tree_size:
            self._index.committed(
                tree_size, writer.new_hashes, writer.tree_size, writer.flushed
            )
        return results

    def put_signed_checkpoint(self, tree_size: int, note: bytes) -> None:
        """Record a signed checkpoint note of tree_size.

        Requires tree_size <= the committed tree size.
        """
        with self.env.begin(write=True) as txn:
            self._check_committed(txn, tree_size)
            txn.put(_U64.pack(tree_size), note, db=self._dbs["checkpoints"])

    def publish_checkpoint(self, checkpoint: PublishedCheckpoint) -> None:
        """Store a checkpoint as published and make it the latest.

        Requires checkpoint.tree_size <= the committed tree size and
        checkpoint.tree_size >= the tree size of the latest published one.
        """
        meta = self._dbs["meta"]
        record = {"note": checkpoint.note}
        if checkpoint.time_stamp_token is not None:
            record["tsr"] = checkpoint.time_stamp_token
        with self.env.begin(write=True) as txn:
            self._check_committed(txn, checkpoint.tree_size)
            latest = txn.get(_PUBLISHED, db=meta)
            latest_size = _u64(latest, "the published pointer") if latest is not None else -1
            if latest_size > checkpoint.tree_size:
                raise StoreError(
                    f"tree_size {checkpoint.tree_size} is below the latest published"
                    f" tree_size {latest_size}"
                )
            if latest_size == checkpoint.tree_size and checkpoint.time_stamp_token is None:
                # Another process may have published this tree_size with a
                # time-stamp token; a note without one must not replace it.
                stored = txn.get(_U64.pack(latest_size), db=self._dbs["published"])
                try:
                    if stored is not None and cbor2.loads(bytes(stored)).get("tsr"):
                        return
                except (cbor2.CBORDecodeError, AttributeError):
                    pass  # a damaged record is replaced
            txn.put(
                _U64.pack(checkpoint.tree_size),
                cbor2.dumps(record),
                db=self._dbs["published"],
            )
            txn.put(_PUBLISHED, _U64.pack(checkpoint.tree_size), db=meta)

    def _check_committed(self, txn: lmdb.Transaction, tree_size: int) -> None:
        value = txn.get(_TREE_SIZE, db=self._dbs["meta"])
        committed = _u64(value, "the stored tree_size") if value else 0
        if not 0 <= tree_size <= committed:
            raise StoreError(
                f"tree_size {tree_size} is beyond the committed tree_size {committed};"
                " a checkpoint may only cover committed entries"
            )
