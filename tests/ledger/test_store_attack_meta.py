"""Damaged record lengths: a StoreError and a one-line check, not struct.error.

`meta` stores the key b"tree_size" and the 8-byte big-endian tree_size,
`checkpoints` keys each signed note by its 8-byte tree_size, and
`bundles` keys each entry bundle by its 8-byte index. One flipped bit in
the LMDB node header turns such a value or key from 8 into 9 bytes. The readers unpack both with struct, so `ledger log check`
ends in a traceback and `ledger log append` reports "unpack requires a
buffer of 8 bytes".
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from ledger.log import init_log, open_log
from ledger.publisher import Publisher
from ledger.store import LogStore, StoreError

from .damage import assert_one_line_failure, check

TREE_SIZE = 300


def flip_value_length(folder: Path) -> int:
    """Change the length of every copy of the tree_size record from 8 to 9 bytes.

    An LMDB leaf node starts 8 bytes before its key. Its first two bytes
    are the low 16 bits of the value's length, little-endian on x86-64 as
    the assert checks, so bit 0 of the first byte turns 8 into 9.
    """
    path = folder / "log.lmdb" / "data.mdb"
    data = bytearray(path.read_bytes())
    pattern = b"tree_size" + struct.pack(">Q", TREE_SIZE)
    count = 0
    position = data.find(pattern)
    while position >= 0:
        assert data[position - 8] == 8, "the node header is not where LMDB puts it"
        data[position - 8] ^= 0x01
        count += 1
        position = data.find(pattern, position + 1)
    path.write_bytes(bytes(data))
    return count


@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "log"
    init_log(folder, "example.com/meta-attack", b"pw")
    log = open_log(folder)
    try:
        log.store.append_batch([b"meta attack entry %d" % i for i in range(TREE_SIZE)])
    finally:
        log.close()
    assert flip_value_length(folder) >= 1
    return folder


def test_tree_size_nine_bytes_raises_store_error(folder):
    with pytest.raises(StoreError), LogStore(folder / "log.lmdb") as store:
        store.tree_size()


def test_append_nine_byte_tree_size_raises(folder):
    with pytest.raises(StoreError), LogStore(folder / "log.lmdb") as store:
        store.append_batch([b"one more entry"])


def test_log_check_nine_byte_tree_size(folder):
    assert_one_line_failure(check(folder), "tree_size")


def flip_key_length(folder: Path, key: bytes, value_start: bytes) -> int:
    """Change the length of every copy of a key followed by value_start from 8 to 9.

    The key's length is the last 16-bit word of the 8-byte node header,
    little-endian on x86-64 as the assert checks.
    """
    path = folder / "log.lmdb" / "data.mdb"
    data = bytearray(path.read_bytes())
    pattern = key + value_start
    count = 0
    position = data.find(pattern)
    while position >= 0:
        assert data[position - 2] == len(key), "the node header is not where LMDB puts it"
        data[position - 2] ^= 0x01
        count += 1
        position = data.find(pattern, position + 1)
    path.write_bytes(bytes(data))
    return count


@pytest.fixture
def signed_folder(tmp_path) -> Path:
    folder = tmp_path / "signed"
    init_log(folder, "example.com/meta-attack", b"pw")
    log = open_log(folder, passphrase=b"pw")
    try:
        log.store.append_batch([b"meta attack entry %d" % i for i in range(TREE_SIZE)])
        asyncio.run(Publisher(log.store, log.checkpoint_signer()).publish())
        with log.store.view() as view:
            notes = view.signed_checkpoints()
    finally:
        log.close()
    assert [size for size, _ in notes] == [TREE_SIZE]
    key = struct.pack(">Q", TREE_SIZE)
    assert flip_key_length(folder, key, notes[0][1][:40]) >= 1
    return folder


def test_log_check_nine_byte_checkpoint_key(signed_folder):
    assert_one_line_failure(check(signed_folder), "checkpoint")


def flip_bundle_key_length(folder: Path, bundle_index: int) -> int:
    """Change the key length of every node of entry bundle bundle_index from 8 to 9.

    A bundle is larger than a page, so its node is the 8-byte header, the
    key and the number of its first overflow page. The header's flags
    word is F_BIGDATA (1) and its last word is the key length.
    """
    path = folder / "log.lmdb" / "data.mdb"
    data = bytearray(path.read_bytes())
    key = struct.pack(">Q", bundle_index)
    count = 0
    position = data.find(key, 8)
    while position >= 0:
        header = data[position - 8 : position]
        if header[4:6] == b"\x01\x00" and header[6:8] == b"\x08\x00":
            data[position - 2] ^= 0x01
            count += 1
        position = data.find(key, position + 1)
    path.write_bytes(bytes(data))
    return count


def test_log_check_nine_byte_bundle_key(tmp_path):
    folder = tmp_path / "bundles"
    init_log(folder, "example.com/meta-attack", b"pw")
    log = open_log(folder)
    try:
        # Entries of 200 bytes make both bundles larger than a 4 KiB page.
        entries = [b"%05d" % i + b"x" * 195 for i in range(TREE_SIZE)]
        log.store.append_batch(entries)
    finally:
        log.close()
    assert flip_bundle_key_length(folder, 1) >= 1
    assert_one_line_failure(check(folder), "entry bundle")
