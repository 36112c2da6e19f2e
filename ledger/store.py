"""The log store: entries, stored hashes and checkpoints in one LMDB file.

Layout (one LMDB environment, a few named databases, integers big-endian):

- `bundles`: bundle index (8 bytes) -> C2SP tlog-tiles entry bundle, up to
  256 entries each with a 2-byte length prefix. The last bundle is partial
  and is rewritten by each batch, so a bundle read serves both
  `/tile/entries/...` and single entries.
- `hashes`: (level: 1 byte, row: 8 bytes) -> up to 127 consecutive stored
  hashes of that level. 127 hashes (4,064 bytes) fill one 4 KiB LMDB
  overflow page with its 16-byte header. Only even levels are stored: an
  odd-level hash is node_hash of its two stored children, which costs one
  SHA-256 and saves a third of the hash storage. Tiles of C2SP tlog-tiles
  sit at levels 8 * L, which are even.
- `leaves`: first 6 bytes of a leaf hash -> leaf_index (5 bytes), sorted
  duplicates allowed. A hit is checked against the full stored leaf hash,
  so a prefix collision costs one extra read and never returns a wrong leaf_index.
- `checkpoints`: tree_size -> signed checkpoint note, every one ever signed.
- `published`: tree_size -> CBOR map of the published note (cosigned when
  witnesses are configured) and its time-stamp token.
- `meta`: `tree_size`, `published` (tree_size of the latest published
  checkpoint) and the configuration (`origin`, `witnesses`, `quorum`).

The durability story is in STORE.md next to this file.
"""

from __future__ import annotations

import json
import struct
import threading
import time
from hashlib import sha256
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cbor2
import lmdb

from ledger.appender import AppendResult
from ledger.merkle import HASH_SIZE, node_hash
from ledger.merkle.stored import stored_hashes_for_range

MAX_ENTRY_SIZE = 65_535
ENTRIES_PER_BUNDLE = 256
TILE_WIDTH = 256
TILE_HEIGHT = 8
HASHES_PER_ROW = 127
LEAF_PREFIX_SIZE = 6
LEAF_INDEX_SIZE = 5

DEFAULT_MAP_SIZE = 1 << 40

_U64 = struct.Struct(">Q")
_ROW_KEY = struct.Struct(">BQ")
_LENGTH = struct.Struct(">H")

_TREE_SIZE = b"tree_size"
_PUBLISHED = b"published"
_ORIGIN = b"origin"
_WITNESSES = b"witnesses"
_QUORUM = b"quorum"
# RFC 9162 section 2.1.1 prefixes, as in ledger.merkle.leaf_hash and node_hash.
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class StoreError(Exception):
    """The store cannot serve a request: a missing record or a bad argument."""


class EntryTooLargeError(StoreError, ValueError):
    """An entry is longer than the 65,535 bytes an entry bundle can carry."""


class NotFoundError(StoreError, LookupError):
    """A tile, entry bundle, entry or checkpoint is not in the store."""


class CorruptStoreError(StoreError):
    """The store lacks a record its own tree_size requires: data was lost."""


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
        return _U64.unpack(value)[0] if value is not None else 0

    def _row(self, level: int, row: int) -> memoryview | bytes:
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

    def _even_hash(self, level: int, index: int) -> bytes:
        row, slot = divmod(index, HASHES_PER_ROW)
        data = self._rows.get((level, row))
        if data is None:
            data = self._row(level, row)
        start = slot * HASH_SIZE
        value = bytes(data[start : start + HASH_SIZE])
        if len(value) != HASH_SIZE:
            raise CorruptStoreError(f"stored hash ({level}, {index}) is missing")
        return value

    def _hash(self, level: int, index: int) -> bytes:
        if level & 1:
            left = self._even_hash(level - 1, 2 * index)
            right = self._even_hash(level - 1, 2 * index + 1)
            return sha256(_NODE_PREFIX + left + right).digest()
        return self._even_hash(level, index)

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
            yield _U64.unpack(key)[0], bytes(value)

    def iter_rows(self, level: int) -> Iterator[tuple[int, bytes]]:
        """Yield (row, hashes) of one stored level in row order."""
        cursor = self._txn.cursor(db=self._hashes)
        if not cursor.set_range(_ROW_KEY.pack(level, 0)):
            return
        for key, value in cursor:
            row_level, row = _ROW_KEY.unpack(key)
            if row_level != level:
                return
            yield row, bytes(value)

    def find_leaf(self, leaf_hash: bytes) -> int | None:
        """Return the leaf_index of the entry with this leaf hash, or None."""
        return _find_leaf(self._txn, self._store._dbs["leaves"], leaf_hash, self._hash)

    def latest_checkpoint(self) -> PublishedCheckpoint | None:
        """Return the latest published checkpoint, or None before the first."""
        value = self._txn.get(_PUBLISHED, db=self._store._dbs["meta"])
        if value is None:
            return None
        return self.published_checkpoint(_U64.unpack(value)[0])

    def published_checkpoint(self, tree_size: int) -> PublishedCheckpoint:
        """Return the checkpoint published for tree_size."""
        value = self._txn.get(_U64.pack(tree_size), db=self._store._dbs["published"])
        if value is None:
            raise NotFoundError(f"no checkpoint was published for tree_size {tree_size}")
        record = cbor2.loads(bytes(value))
        return PublishedCheckpoint(tree_size, record["note"], record.get("tsr"))

    def signed_checkpoints(self) -> list[tuple[int, bytes]]:
        """Return every signed checkpoint note as (tree_size, note), by size."""
        cursor = self._txn.cursor(db=self._store._dbs["checkpoints"])
        return [(_U64.unpack(key)[0], bytes(value)) for key, value in cursor]

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


def _find_leaf(txn, leaves_db, leaf_hash: bytes, read_hash) -> int | None:
    prefix = leaf_hash[:LEAF_PREFIX_SIZE]
    # Most lookups are misses for new entries: one get() settles them.
    if txn.get(prefix, db=leaves_db) is None:
        return None
    cursor = txn.cursor(db=leaves_db)
    cursor.set_key(prefix)
    for value in cursor.iternext_dup():
        index = int.from_bytes(value, "big")
        if read_hash(0, index) == leaf_hash:
            return index
    return None


class _BatchWriter:
    """Appends entries and stored hashes inside one write transaction.

    append() hashes the entries, settles duplicates with one index lookup
    for the whole batch and writes the entry bundles; finish() then computes
    the stored hashes of the whole batch level by level and writes each
    touched row once. Serves as the HashReader of
    stored_hashes_for_range, which reads only hashes of the tree as it was
    before the batch.
    """

    def __init__(self, store: LogStore, txn: lmdb.Transaction, tree_size: int) -> None:
        self.txn = txn
        self.meta_db = store._dbs["meta"]
        self.hashes_db = store._dbs["hashes"]
        self.bundles_db = store._dbs["bundles"]
        self.leaves_db = store._dbs["leaves"]
        self.begin = tree_size
        self.tree_size = tree_size
        self.leaf_hashes: list[bytes] = []
        self.batch_leaves: dict[bytes, int] = {}
        self.bundle = bytearray()
        if tree_size % ENTRIES_PER_BUNDLE:
            index = tree_size // ENTRIES_PER_BUNDLE
            stored = txn.get(_U64.pack(index), db=self.bundles_db)
            if stored is None:
                raise CorruptStoreError(f"entry bundle {index} is missing")
            self.bundle = bytearray(stored)

    def _hash(self, level: int, index: int) -> bytes:
        if level & 1:
            return node_hash(
                self._hash(level - 1, 2 * index), self._hash(level - 1, 2 * index + 1)
            )
        row, slot = divmod(index, HASHES_PER_ROW)
        data = self.txn.get(_ROW_KEY.pack(level, row), db=self.hashes_db) or b""
        value = bytes(data[slot * HASH_SIZE : (slot + 1) * HASH_SIZE])
        if len(value) != HASH_SIZE:
            raise CorruptStoreError(f"stored hash ({level}, {index}) is missing")
        return value

    def read_hashes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self._hash(level, index) for level, index in ids]

    def _find_stored(self, hashes: list[bytes]) -> dict[bytes, int]:
        """Return leaf_index by leaf hash for those of hashes already stored."""
        prefixes = sorted({hash_[:LEAF_PREFIX_SIZE] for hash_ in hashes})
        # One C call settles the common case: no new prefix is in the index.
        cursor = self.txn.cursor(db=self.leaves_db)
        hits = {bytes(key) for key, _ in cursor.getmulti(prefixes)}
        found: dict[bytes, int] = {}
        if hits:
            for hash_ in hashes:
                if hash_[:LEAF_PREFIX_SIZE] in hits and hash_ not in found:
                    index = _find_leaf(self.txn, self.leaves_db, hash_, self._hash)
                    if index is not None:
                        found[hash_] = index
        return found

    def append(self, entries: Sequence[bytes]) -> list[AppendResult]:
        """Add entries after the stored tree; returns one result per entry."""
        sha = sha256
        hashes = [sha(_LEAF_PREFIX + entry).digest() for entry in entries]
        first_index = self._find_stored(hashes)
        results = []
        new_entries = []
        index = self.tree_size
        for entry, hash_ in zip(entries, hashes):
            first = first_index.get(hash_)
            if first is not None:
                results.append(AppendResult(first, hash_, True))
                continue
            first_index[hash_] = index
            self.batch_leaves[hash_] = index
            new_entries.append(entry)
            self.leaf_hashes.append(hash_)
            results.append(AppendResult(index, hash_))
            index += 1
        self._put_bundles(new_entries)
        self.tree_size = index
        return results

    def _put_bundles(self, entries: list[bytes]) -> None:
        """Append entries to the last bundle and write every bundle touched."""
        pack = _LENGTH.pack
        position = self.tree_size
        offset = 0
        records = []
        while offset < len(entries):
            take = min(ENTRIES_PER_BUNDLE - position % ENTRIES_PER_BUNDLE, len(entries) - offset)
            parts = [self.bundle] if position % ENTRIES_PER_BUNDLE else []
            for entry in entries[offset : offset + take]:
                parts.append(pack(len(entry)))
                parts.append(entry)
            records.append((_U64.pack(position // ENTRIES_PER_BUNDLE), b"".join(parts)))
            position += take
            offset += take
        if records:
            self.txn.cursor(db=self.bundles_db).putmulti(records)
            last = records[-1][1]
            self.bundle = bytearray(last) if position % ENTRIES_PER_BUNDLE else bytearray()

    def _put_level(self, level: int, first: int, hashes: list[bytes]) -> None:
        """Write the stored hashes (level, first + k) into their rows."""
        row, slot = divmod(first, HASHES_PER_ROW)
        data = b"".join(hashes)
        records = []
        take = (HASHES_PER_ROW - slot) * HASH_SIZE
        if slot:
            key = _ROW_KEY.pack(level, row)
            stored = self.txn.get(key, db=self.hashes_db)
            if stored is None or len(stored) != slot * HASH_SIZE:
                raise CorruptStoreError(
                    f"stored hash ({level}, {first}) is not next in its row"
                )
            records.append((key, bytes(stored) + data[:take]))
        else:
            records.append((_ROW_KEY.pack(level, row), data[:take]))
        row_size = HASHES_PER_ROW * HASH_SIZE
        for offset in range(take, len(data), row_size):
            row += 1
            records.append((_ROW_KEY.pack(level, row), data[offset : offset + row_size]))
        self.txn.cursor(db=self.hashes_db).putmulti(records)

    def finish(self) -> None:
        # Only even levels are stored; odd ones are rebuilt from their children.
        for level, first, hashes in stored_hashes_for_range(
            self.begin, self.leaf_hashes, self
        ):
            if not level & 1:
                self._put_level(level, first, hashes)
        # Index records go in at the end, in key order, so that each B-tree
        # page of the index is visited once per batch.
        records = sorted(
            [
                (hash_[:LEAF_PREFIX_SIZE], index.to_bytes(LEAF_INDEX_SIZE, "big"))
                for hash_, index in self.batch_leaves.items()
            ]
        )
        self.txn.cursor(db=self.leaves_db).putmulti(records, dupdata=True)
        self.txn.put(_TREE_SIZE, _U64.pack(self.tree_size), db=self.meta_db)


class _HashCache:
    """Serves read_hashes for proofs with few LMDB transactions and copies.

    Proofs are frequent and each reads about 2 * log2(tree_size) hashes,
    so beginning a transaction and a _View per proof would cost more than
    the reads. Each thread keeps one read transaction for at most
    MAX_SNAPSHOT_AGE seconds, so that it pins old pages only briefly, and
    begins a new one at once when a hash it needs is newer than its snapshot.
    Levels >= MEMORY_LEVEL, odd ones included, are kept in memory as one
    contiguous image per level, grown on demand: stored hashes never change
    once written, and at 10M leaves these levels take about 38 MiB
    (20 MB for level 4, half as much for each level above). A proof then
    reads one row each of levels 0 and 2 from LMDB.
    """

    MEMORY_LEVEL = 4
    MAX_SNAPSHOT_AGE = 0.05

    def __init__(self, env: lmdb.Environment, hashes_db: object) -> None:
        self._env = env
        self._db = hashes_db
        self._local = threading.local()
        self._images: dict[int, bytearray] = {}
        self._grow_lock = threading.Lock()

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

    def _row(self, level: int, row: int, need: int, views: dict) -> memoryview:
        """Return row `row` of an even level, holding at least `need` bytes."""
        key = _ROW_KEY.pack(level, row)
        data = self._local.txn.get(key, db=self._db)
        if data is None or len(data) < need:
            # The snapshot may predate the hash, so retry in a new one.
            # Views into the old snapshot become invalid with it.
            views.clear()
            data = self._snapshot(fresh=True).get(key, db=self._db)
            if data is None or len(data) < need:
                raise CorruptStoreError(
                    f"stored hashes of level {level} row {row} are missing;"
                    " run `ledger log check` to find the damage"
                )
        return data

    def _grow(self, level: int, count: int) -> bytearray:
        """Extend the image of `level` to at least `count` hashes."""
        with self._grow_lock:
            image = self._images.setdefault(level, bytearray())
            have = len(image) // HASH_SIZE
            if have >= count:
                return image
            if level & 1:
                below = self._images.get(level - 1)
                if below is None or len(below) < 2 * count * HASH_SIZE:
                    below = self._grow_even(level - 1, 2 * count)
                view = memoryview(below)
                parts = [
                    sha256(_NODE_PREFIX + view[2 * i * HASH_SIZE : (2 * i + 2) * HASH_SIZE]).digest()
                    for i in range(have, count)
                ]
                image += b"".join(parts)
                return image
            return self._grow_even(level, count)

    def _grow_even(self, level: int, count: int) -> bytearray:
        image = self._images.setdefault(level, bytearray())
        have = len(image) // HASH_SIZE
        views: dict = {}
        while have < count:
            row, slot = divmod(have, HASHES_PER_ROW)
            need = (min(count - row * HASHES_PER_ROW, HASHES_PER_ROW)) * HASH_SIZE
            data = self._row(level, row, need, views)
            image += data[slot * HASH_SIZE :]
            have = len(image) // HASH_SIZE
        return image

    def read_hashes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        """Return the stored hash of each (level, index) in ids, in order."""
        self._snapshot(fresh=False)
        images = self._images
        top = self.MEMORY_LEVEL
        views: dict[tuple[int, int], memoryview] = {}
        result = []

        def even(level: int, index: int) -> bytes:
            row, slot = divmod(index, HASHES_PER_ROW)
            key = (level, row)
            start = slot * HASH_SIZE
            data = views.get(key)
            if data is None or len(data) < start + HASH_SIZE:
                data = self._row(level, row, start + HASH_SIZE, views)
                views[key] = data
            return bytes(data[start : start + HASH_SIZE])

        append = result.append
        for level, index in ids:
            if level >= top:
                start = index * HASH_SIZE
                image = images.get(level)
                if image is None or len(image) < start + HASH_SIZE:
                    image = self._grow(level, index + 1)
                append(bytes(image[start : start + HASH_SIZE]))
            elif level & 1:
                append(
                    sha256(
                        _NODE_PREFIX
                        + even(level - 1, 2 * index)
                        + even(level - 1, 2 * index + 1)
                    ).digest()
                )
            else:
                append(even(level, index))
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
        names = ("meta", "bundles", "hashes", "leaves", "checkpoints", "published")
        for name in names:
            self._dbs[name] = self.env.open_db(
                name.encode(), create=not readonly, dupsort=name == "leaves"
            )
        self._hash_cache = _HashCache(self.env, self._dbs["hashes"])

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
        return self._hash_cache.read_hashes(ids)

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
        for entry in entries:
            check_entry_size(entry)
        with self.env.begin(write=True) as txn:
            meta_value = txn.get(_TREE_SIZE, db=self._dbs["meta"])
            tree_size = _U64.unpack(meta_value)[0] if meta_value else 0
            writer = _BatchWriter(self, txn, tree_size)
            results = writer.append(entries)
            writer.finish()
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
            if latest is not None and _U64.unpack(latest)[0] > checkpoint.tree_size:
                raise StoreError(
                    f"tree_size {checkpoint.tree_size} is below the latest published"
                    f" tree_size {_U64.unpack(latest)[0]}"
                )
            txn.put(
                _U64.pack(checkpoint.tree_size),
                cbor2.dumps(record),
                db=self._dbs["published"],
            )
            txn.put(_PUBLISHED, _U64.pack(checkpoint.tree_size), db=meta)

    def _check_committed(self, txn: lmdb.Transaction, tree_size: int) -> None:
        value = txn.get(_TREE_SIZE, db=self._dbs["meta"])
        committed = _U64.unpack(value)[0] if value else 0
        if not 0 <= tree_size <= committed:
            raise StoreError(
                f"tree_size {tree_size} is beyond the committed tree_size {committed};"
                " a checkpoint may only cover committed entries"
            )
