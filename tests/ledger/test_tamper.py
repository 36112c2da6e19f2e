"""Tamper test: one flipped byte in the LMDB file is found by `ledger log check`."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from ledger.leafindex import FLUSH
from ledger.log import init_log, open_log
from ledger.merkle import leaf_hash
from ledger.publisher import Publisher

from .damage import check, flip_everywhere


def make_entry(leaf_index: int) -> bytes:
    return f"tamper test entry {leaf_index:05d} ".encode() * 3


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pristine") / "log"
    init_log(folder, "example.com/tamper-test", b"pw")
    log = open_log(folder, passphrase=b"pw")
    try:
        entries = [make_entry(i) for i in range(1000)]
        for start in range(0, 1000, 300):
            log.store.append_batch(entries[start : start + 300])
        asyncio.run(Publisher(log.store, log.checkpoint_signer()).publish())
    finally:
        log.close()
    return folder


@pytest.fixture
def copy(pristine, tmp_path) -> Path:
    folder = tmp_path / "log"
    shutil.copytree(pristine, folder)
    return folder


def test_untouched_log_passes(copy):
    result = check(copy)
    assert result.returncode == 0, result.stderr
    assert b"ok: 1000 entries" in result.stdout


def test_flipped_entry_byte_named(copy):
    assert flip_everywhere(copy, make_entry(537), 10) >= 1
    result = check(copy)
    assert result.returncode == 1
    assert b"at leaf_index 537:" in result.stderr


def test_flipped_leaf_hash_byte_named(copy):
    # Byte 20 lies past the 6-byte prefix that the leaf-hash index keys on,
    # so only the stored leaf hash changes.
    assert flip_everywhere(copy, leaf_hash(make_entry(700)), 20) >= 1
    result = check(copy)
    assert result.returncode == 1
    assert b"at leaf_index 700:" in result.stderr


def test_flipped_interior_hash_named(copy):
    log = open_log(copy)
    try:
        stored = log.store.read_hashes([(4, 25)])[0]
    finally:
        log.close()
    assert flip_everywhere(copy, stored, 5) >= 1
    result = check(copy)
    assert result.returncode == 1
    assert b"at leaf_index 400:" in result.stderr
    assert b"stored hash (4, 25)" in result.stderr


def test_flipped_index_record_named(tmp_path):
    # The leaf-hash index writes runs only for full chunks of FLUSH leaves,
    # so this log is larger than the shared one.
    folder = tmp_path / "log"
    init_log(folder, "example.com/tamper-test", b"pw")
    log = open_log(folder, passphrase=b"pw")
    try:
        store = log.store
        count = FLUSH + 100
        for start in range(0, count, 10_000):
            end = min(start + 10_000, count)
            store.append_batch([make_entry(i) for i in range(start, end)])
        # Find leaf 500's record in the first run: the 32-bit prefixes come
        # first, then the offsets in the same order.
        with store.env.begin() as txn:
            first, value = next(iter(store._index.runs(txn)))
            value = bytes(value)
    finally:
        log.close()
    assert first == 0
    records = len(value) // 8
    offsets = [
        int.from_bytes(value[4 * (records + k) : 4 * (records + k + 1)], "little")
        for k in range(records)
    ]
    slot = offsets.index(500)
    assert flip_everywhere(folder, value, 4 * slot + 1) >= 1
    result = check(folder)
    assert result.returncode == 1
    assert b"leaf-hash index does not lead to leaf_index 500" in result.stderr


def test_flipped_checkpoint_byte_found(copy):
    log = open_log(copy)
    try:
        note = log.store.latest_checkpoint().note
    finally:
        log.close()
    root_line = note.split(b"\n")[2]
    assert flip_everywhere(copy, root_line, 3) >= 1
    result = check(copy)
    assert result.returncode == 1
    assert b"checkpoint of tree_size 1000" in result.stderr
