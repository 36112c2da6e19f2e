"""A log's data folder: the store, the encrypted log key and the verifier key.

`ledger init` lays out DIR/log.lmdb/, DIR/log.key (PKCS#8 PEM encrypted
under LEDGER_PASSPHRASE) and DIR/log.vkey (the C2SP signed-note verifier
key). `open_log` opens them again, and `check_log` re-derives every stored
hash and every signed checkpoint from the entries.
"""

from __future__ import annotations

import hmac
import logging
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ledger.checkpoint import Checkpoint, CheckpointError, sign_checkpoint
from ledger.keys import generate_key_file, read_key_file
from ledger.merkle import HASH_SIZE, consistency_proof, native, root_hash
from ledger.note import (
    Ed25519Signer,
    Ed25519Verifier,
    NoteError,
    check_key_name,
    parse_note,
    verify_note,
)
from ledger.publisher import (
    DEFAULT_IDLE_INTERVAL,
    DEFAULT_INTERVAL,
    CheckpointSigner,
    NoteHook,
    Publisher,
)
from ledger.store import (
    BLOCK,
    ENTRIES_PER_BUNDLE,
    LEVEL_STEP,
    LogConfig,
    LogStore,
    StoreError,
    split_bundle,
)

STORE_NAME = "log.lmdb"
KEY_NAME = "log.key"
VKEY_NAME = "log.vkey"
DEFAULT_ORIGIN = "ledger.localhost/log"

# LMDB 0.9 data file layout on 64-bit hosts (lmdb.h and mdb.c, MDB_meta):
# pages 0 and 1 are meta pages. Each starts with a 16-byte page header, then
# mm_magic (u32), mm_version (u32), mm_address (u64), mm_mapsize (u64), two
# 48-byte MDB_db records and mm_last_pg (u64), then mm_txnid (u64). The
# free-page MDB_db's md_pad field contains the page size. LMDB uses the meta
# page with the larger mm_txnid.
LMDB_DATA_FILE = "data.mdb"
LMDB_MAGIC = 0xBEEFC0DE
LMDB_PAGE_HEADER_SIZE = 16
LMDB_PAGE_SIZE_OFFSET = LMDB_PAGE_HEADER_SIZE + 24
LMDB_LAST_PAGE_OFFSET = LMDB_PAGE_HEADER_SIZE + 120
LMDB_DEFAULT_PAGE_SIZE = 4096


class DamagedStoreError(StoreError):
    """An LMDB data file is shorter than its newer meta page requires, or is not LMDB."""


class OriginError(ValueError):
    """An origin that is not valid both as a checkpoint origin and a key name."""


def check_origin(origin: str) -> None:
    """Raise OriginError unless origin is a valid checkpoint origin and key name.

    A log's origin is also its signed-note key name, so it must be non-empty,
    without newlines, spaces, '+' or control characters.
    """
    try:
        Checkpoint(origin, 0, bytes(HASH_SIZE))
        check_key_name(origin)
    except (CheckpointError, NoteError) as error:
        raise OriginError(f"invalid origin {origin!r}: {error}") from error


def _read_meta_page(data: bytes, offset: int) -> tuple[int, int, int] | None:
    """Return (page size, last page number, txnid) of one meta page, or None."""
    end = offset + LMDB_LAST_PAGE_OFFSET + 16
    if len(data) < end:
        return None
    (magic,) = struct.unpack_from("<I", data, offset + LMDB_PAGE_HEADER_SIZE)
    if magic != LMDB_MAGIC:
        return None
    (page_size,) = struct.unpack_from("<I", data, offset + LMDB_PAGE_SIZE_OFFSET)
    last_page, txnid = struct.unpack_from("<QQ", data, offset + LMDB_LAST_PAGE_OFFSET)
    return page_size, last_page, txnid


def check_lmdb_file(store_dir: Path) -> None:
    """Raise DamagedStoreError if store_dir/data.mdb is not safe to map.

    LMDB maps the whole data file, and a read of a page past the end of a
    truncated file kills the process with SIGBUS. So the file must be at
    least (mm_last_pg + 1) * page size bytes long, by the newer meta page. A
    missing data file passes, so that LMDB can create it.
    """
    path = Path(store_dir) / LMDB_DATA_FILE
    try:
        with open(path, "rb") as file:
            head = file.read(2 * LMDB_DEFAULT_PAGE_SIZE)
            size = file.seek(0, 2)
    except FileNotFoundError:
        return
    except OSError as error:
        raise DamagedStoreError(f"cannot read {path}: {error}") from error
    metas = [_read_meta_page(head, 0)]
    if metas[0] is not None:
        metas.append(_read_meta_page(head, metas[0][0]))
    valid = [meta for meta in metas if meta is not None]
    if not valid:
        raise DamagedStoreError(
            f"{path} is not an LMDB data file (no valid meta page); restore the"
            " folder from a backup or a mirror"
        )
    page_size, last_page, _ = max(valid, key=lambda meta: meta[2])
    expected = (last_page + 1) * page_size
    if size < expected:
        raise DamagedStoreError(
            f"{path} is truncated: it has {size} bytes but its meta page needs"
            f" {expected}; restore the folder from a backup or a mirror"
        )


class RepeatedRecordFilter(logging.Filter):
    """A logging filter that passes the first of identical warnings, then counts.

    A record of level WARNING or above whose message equals an earlier one is
    dropped, except once per `window` seconds, when it passes with the number
    of repeats since the last one that passed. A service that retries an
    unreachable peer every second thus logs one line a minute, not sixty.
    """

    MAX_MESSAGES = 256

    def __init__(
        self, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        # message -> [time it last passed, repeats dropped since then]
        self._seen: dict[str, list] = {}

    def key(self, record: logging.LogRecord) -> str | None:
        """Return what makes two records repeats, or None to let the record pass."""
        if record.levelno < logging.WARNING:
            return None
        return record.getMessage()

    def filter(self, record: logging.LogRecord) -> bool:
        key = self.key(record)
        if key is None:
            return True
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= self.MAX_MESSAGES:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = [now, 0]
            return True
        seen[1] += 1
        if now - seen[0] < self.window:
            return False
        message = record.getMessage()
        record.msg = f"{message} (repeated {seen[1]} times in {now - seen[0]:.0f} s)"
        record.args = None
        seen[0], seen[1] = now, 0
        return True


class TimeStampWarningFilter(RepeatedRecordFilter):
    """A logging filter that collapses failed time-stamp warnings across tree sizes.

    The publisher names the tree_size in each warning, so while the TSA is
    down every new checkpoint would log a new line. A warning whose
    arguments contain the stamping error is keyed on that error alone: the
    first passes, repeats within `window` seconds are dropped, and the next
    one after it passes with the number dropped. Other records pass.
    """

    def key(self, record: logging.LogRecord) -> str | None:
        """Return the first time-stamping error among the record's arguments."""
        from ledger.tsa.errors import TimeStampError

        if record.levelno < logging.WARNING or not isinstance(record.args, tuple):
            return None
        errors = [
            arg for arg in record.args if isinstance(arg, (TimeStampError, TimeoutError))
        ]
        if not errors:
            return None
        return f"{type(errors[0]).__name__}: {errors[0]}"


class LogCheckError(Exception):
    """A stored record does not match what the entries give.

    `leaf_index` is the first leaf whose entry, stored hash or index record
    is wrong, or None when the mismatch is in a checkpoint.
    """

    def __init__(self, message: str, leaf_index: int | None = None) -> None:
        super().__init__(message)
        self.leaf_index = leaf_index


@dataclass
class Log:
    """An opened data folder; signer is None when opened without the passphrase."""

    data_dir: Path
    store: LogStore
    config: LogConfig
    verifier: Ed25519Verifier
    signer: Ed25519Signer | None = None
    _witnessing: object | None = field(default=None, repr=False)

    def checkpoint_signer(self) -> CheckpointSigner:
        """Return the function that signs a checkpoint of (tree_size, root_hash)."""
        if self.signer is None:
            raise StoreError(
                "the log was opened without its key; set LEDGER_PASSPHRASE to sign"
                " checkpoints"
            )
        signer = self.signer
        origin = self.config.origin

        def sign(tree_size: int, root: bytes) -> bytes:
            return sign_checkpoint(Checkpoint(origin, tree_size, root), [signer])

        return sign

    def make_publisher(
        self,
        *,
        interval: float = DEFAULT_INTERVAL,
        idle_interval: float = DEFAULT_IDLE_INTERVAL,
        time_stamp: NoteHook | None = None,
    ) -> Publisher:
        """Build the publisher, with witnessing when the configuration has a quorum.

        Requires the signing key (open_log with a passphrase).
        """
        cosign = None
        if self.config.quorum > 0:
            from ledger.witnessing import WitnessEndpoint, Witnessing

            store = self.store

            def proof_source(size1: int, size2: int) -> list[bytes]:
                return consistency_proof(size1, size2, store)

            endpoints = [WitnessEndpoint(url, vkey) for url, vkey in self.config.witnesses]
            self._witnessing = Witnessing(endpoints, self.config.quorum, proof_source)
            cosign = self._witnessing
        return Publisher(
            self.store,
            self.checkpoint_signer(),
            interval=interval,
            idle_interval=idle_interval,
            time_stamp=time_stamp,
            cosign=cosign,
            quorum=self.config.quorum,
        )

    async def close_hooks(self) -> None:
        """Close the witnessing client that make_publisher created, if any."""
        if self._witnessing is not None:
            await self._witnessing.close()
            self._witnessing = None

    def close(self) -> None:
        """Close the store."""
        self.store.close()


def init_log(data_dir: Path, origin: str, passphrase: bytes) -> str:
    """Create a log in data_dir and return its vkey.

    Creates the encrypted key, the store with its configuration and the
    vkey file. Raises OriginError for an invalid origin and StoreError when
    data_dir already contains a log, in both cases before writing anything.
    On a later failure, removes what it created and re-raises.
    """
    check_origin(origin)
    data_dir = Path(data_dir)
    if (data_dir / STORE_NAME).exists() or (data_dir / KEY_NAME).exists():
        raise StoreError(
            f"{data_dir} already contains a log; choose an empty folder for a new one"
        )
    created_dir = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        key = generate_key_file(data_dir / KEY_NAME, passphrase)
        signer = Ed25519Signer(origin, key)
        with LogStore(data_dir / STORE_NAME, create=True) as store:
            store.write_config(LogConfig(origin))
        vkey = signer.vkey
        (data_dir / VKEY_NAME).write_text(vkey + "\n")
    except BaseException:
        _remove_log_files(data_dir, created_dir)
        raise
    return vkey


def _remove_log_files(data_dir: Path, remove_dir: bool) -> None:
    """Delete the files init_log writes, and data_dir when init_log made it."""
    for name in (KEY_NAME, VKEY_NAME):
        (data_dir / name).unlink(missing_ok=True)
    store_dir = data_dir / STORE_NAME
    if store_dir.is_dir():
        for path in store_dir.iterdir():
            path.unlink(missing_ok=True)
        store_dir.rmdir()
    if remove_dir:
        try:
            data_dir.rmdir()
        except OSError:
            pass  # something else was put there meanwhile; leave it


def open_log(
    data_dir: Path, *, passphrase: bytes | None = None, readonly: bool = False
) -> Log:
    """Open the log in data_dir; with a passphrase also load its signing key.

    Raises StoreError when data_dir contains no log, DamagedStoreError when
    its data file is truncated or not LMDB, and KeyFileError when the key
    cannot be decrypted.
    """
    data_dir = Path(data_dir)
    try:
        vkey = (data_dir / VKEY_NAME).read_text().strip()
    except OSError as error:
        raise StoreError(
            f"no log in {data_dir}: {VKEY_NAME} is missing; create one with"
            " `ledger init`"
        ) from error
    verifier = Ed25519Verifier.from_vkey(vkey)
    signer = None
    if passphrase is not None:
        signer = Ed25519Signer(verifier.name, read_key_file(data_dir / KEY_NAME, passphrase))
        if signer.vkey != vkey:
            raise StoreError(
                f"{KEY_NAME} does not match {VKEY_NAME} in {data_dir}; restore the"
                " key that belongs to this log"
            )
    check_lmdb_file(data_dir / STORE_NAME)
    store = LogStore(data_dir / STORE_NAME, readonly=readonly)
    try:
        config = store.config()
    except StoreError:
        store.close()
        raise
    return Log(data_dir, store, config, verifier, signer)


def _level_stream(view, level: int) -> Iterator[bytes]:
    """Yield the stored hashes of one level, a row at a time, concatenated."""
    for _, data in view.iter_rows(level):
        yield data


def _first_difference(expected, stored, start: int, end: int) -> int | None:
    """Return the index of the first 32-byte hash in [start, end) that differs.

    Offsets are in bytes; a stored buffer that ends early differs there.
    Hashes are public, so plain comparison is enough.
    """
    if expected[start:end] == stored[start:end]:
        return None
    for offset in range(start, end, HASH_SIZE):
        if expected[offset : offset + HASH_SIZE] != stored[offset : offset + HASH_SIZE]:
            return offset // HASH_SIZE
    return None


def check_log(log: Log) -> int:
    """Re-derive every stored hash and checkpoint from the entries.

    Returns the tree_size checked. Raises LogCheckError naming the first
    leaf_index whose entry, leaf hash, index record or higher stored hash
    disagrees, or the checkpoint whose root_hash or signature is wrong.
    """
    with log.store.view() as view:
        tree_size = view.tree_size()

        # 1. Each entry hashes to its stored leaf hash.
        stored_rows = _level_stream(view, 0)
        stored = bytearray()
        computed = bytearray()
        leaf_index = 0
        for bundle_index, bundle in view.iter_bundles():
            if bundle_index * ENTRIES_PER_BUNDLE != leaf_index:
                raise LogCheckError(
                    f"entry bundle {bundle_index} follows a missing bundle",
                    leaf_index,
                )
            try:
                entries = split_bundle(bundle)
            except StoreError as error:
                raise LogCheckError(
                    f"entry bundle {bundle_index} is malformed: {error}", leaf_index
                ) from error
            hashes = native.leaf_hashes(entries)
            start = len(computed)
            computed += hashes
            while len(stored) < len(computed):
                row = next(stored_rows, None)
                if row is None:
                    break
                stored += row
            first = _first_difference(computed, stored, start, len(computed))
            if first is not None:
                raise LogCheckError(
                    f"the entry at leaf_index {first} does not match its stored"
                    " leaf_hash",
                    first,
                )
            leaf_index += len(entries)
        if leaf_index != tree_size:
            raise LogCheckError(
                f"the store contains {leaf_index} entries but its tree_size is"
                f" {tree_size}",
                min(leaf_index, tree_size),
            )

        # 2. The leaf-hash index contains exactly one record for each leaf.
        missing = view.check_leaf_index(bytes(computed))
        if missing is not None:
            raise LogCheckError(
                f"the leaf-hash index does not lead to leaf_index {missing}", missing
            )

        # 3. Each stored hash of level 4k is the hash of sixteen checked
        #    hashes of level 4k - 4 (other levels are not stored).
        below = bytes(computed)
        level = LEVEL_STEP
        while tree_size >> level:
            count = tree_size >> level
            expected = below[: count * BLOCK * HASH_SIZE]
            for _ in range(LEVEL_STEP):
                expected = native.parent_level(expected)
            stored = b"".join(_level_stream(view, level))
            index = _first_difference(expected, stored, 0, len(expected))
            if index is not None:
                raise LogCheckError(
                    f"stored hash ({level}, {index}) over leaves from leaf_index"
                    f" {index << level} does not match the entries",
                    index << level,
                )
            below = stored
            level += LEVEL_STEP

        # 4. Every signed checkpoint and the published one carry the log's
        #    signature and the root_hash of the checked tree of their size.
        notes = view.signed_checkpoints()
        try:
            latest = view.latest_checkpoint()
        except StoreError as error:
            raise LogCheckError(f"the latest published checkpoint is unreadable: {error}") from error
        if latest is not None:
            notes.append((latest.tree_size, latest.note))
        for size, note in notes:
            _check_checkpoint(log, view, tree_size, size, note)
    return tree_size


def _check_checkpoint(log: Log, view, tree_size: int, size: int, note: bytes) -> None:
    try:
        parsed = parse_note(note)
        verify_note(parsed, [log.verifier])
        checkpoint = Checkpoint.parse(parsed.text)
    except (NoteError, CheckpointError) as error:
        raise LogCheckError(f"checkpoint of tree_size {size} is invalid: {error}") from error
    if checkpoint.tree_size != size or size > tree_size:
        raise LogCheckError(
            f"checkpoint stored under tree_size {size} has tree_size"
            f" {checkpoint.tree_size}, and the log has {tree_size} entries"
        )
    computed = root_hash(size, view)
    if not hmac.compare_digest(computed, checkpoint.root_hash):
        raise LogCheckError(
            f"checkpoint of tree_size {size} has root_hash"
            f" {checkpoint.root_hash.hex()} but the entries give {computed.hex()}"
        )
