"""Index runs whose keys have another layout: a StoreError, never struct.error.

The leaf-hash index first keyed each run by (partition: 1 byte, first
leaf_index: 8 bytes) and now keys it by the 8-byte first leaf_index, while
the store's layout version stayed at 2. A store written with 9-byte keys,
or one whose key was damaged, must be rejected with a StoreError that names
the problem, and `ledger log check` must fail with one line.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from ledger.log import init_log, open_log
from ledger.merkle import leaf_hash as leaf_hash_of
from ledger.store import StoreError

from .damage import assert_one_line_failure, check

TREE_SIZE = 200


def add_nine_byte_run(folder: Path) -> None:
    """Add a run keyed by (partition 0, leaf 0), as the 9-byte layout wrote it.

    Its value is one record: a 32-bit prefix of leaf 0's hash and offset 0.
    """
    log = open_log(folder)
    try:
        store = log.store
        leaf_hash = store.read_hashes([(0, 0)])[0]
        value = leaf_hash[:4][::-1] + struct.pack("<I", 0)
        with store.env.begin(write=True) as txn:
            txn.put(b"\x00" + struct.pack(">Q", 0), value, db=store._dbs["leafruns"])
    finally:
        log.close()


@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "log"
    init_log(folder, "example.com/layout-attack", b"pw")
    log = open_log(folder)
    try:
        log.store.append_batch([b"layout attack entry %d" % i for i in range(TREE_SIZE)])
    finally:
        log.close()
    add_nine_byte_run(folder)
    return folder


# The store may be rejected when it is opened or when the index is read,
# so each test expects the StoreError from either step.


def test_append_nine_byte_key_raises_store_error(folder):
    with pytest.raises(StoreError):
        log = open_log(folder)
        try:
            log.store.append_batch([b"one more entry"])
        finally:
            log.close()


def test_find_leaf_nine_byte_key_raises_store_error(folder):
    leaf_hash = leaf_hash_of(b"layout attack entry 0")
    with pytest.raises(StoreError):
        log = open_log(folder)
        try:
            log.store.find_leaf(leaf_hash)
        finally:
            log.close()


def test_log_check_nine_byte_key_one_line(folder):
    assert_one_line_failure(check(folder), "leaf-hash index")
