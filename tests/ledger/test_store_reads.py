"""LogStore.read_hashes, the proof path: snapshots, in-memory levels, growth."""

from __future__ import annotations

import threading

import pytest

from ledger.merkle import (
    TreeRangeError,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_inclusion,
)
from ledger.store import CorruptStoreError, LogStore


def _entries(count: int, start: int = 0) -> list[bytes]:
    return [b"read entry %d" % i for i in range(start, start + count)]


def _stored_ids(tree_size: int) -> list[tuple[int, int]]:
    return [
        (level, index)
        for level in range(tree_size.bit_length())
        for index in range(tree_size >> level)
    ]


@pytest.fixture
def store(tmp_path):
    with LogStore(tmp_path / "log.lmdb", create=True) as opened:
        yield opened


def test_store_reads_match_snapshot_reads(store):
    # 5,000 leaves fill levels 0 to 12, so levels 4 and up come from memory.
    store.append_batch(_entries(5_000))
    ids = _stored_ids(5_000)
    with store.view() as view:
        expected = view.read_hashes(ids)
    assert store.read_hashes(ids) == expected
    # A second pass reads the in-memory levels it grew in the first.
    assert store.read_hashes(list(reversed(ids))) == list(reversed(expected))


def test_reads_see_hashes_committed_after_snapshot(store):
    entries = _entries(300)
    store.append_batch(entries[:100])
    assert store.read_hashes([(0, 99), (4, 5)]) == [
        leaf_hash(entries[99]),
        store.read_hashes([(4, 5)])[0],
    ]
    # The cached snapshot predates these hashes, so the read begins a new one.
    store.append_batch(entries[100:])
    with store.view() as view:
        expected = view.read_hashes([(0, 299), (6, 3), (7, 1), (8, 0)])
    assert store.read_hashes([(0, 299), (6, 3), (7, 1), (8, 0)]) == expected
    assert expected[0] == leaf_hash(entries[299])


def test_proofs_through_store_verify_while_growing(store):
    stored: list[bytes] = []
    for batch in (1, 2, 125, 256, 1_000, 3):
        new = _entries(batch, len(stored))
        store.append_batch(new)
        stored.extend(new)
        tree_size = len(stored)
        root = root_hash(tree_size, store)
        with store.view() as view:
            assert root == root_hash(tree_size, view)
        for leaf_index in range(0, tree_size, max(1, tree_size // 17)):
            proof = inclusion_proof(leaf_index, tree_size, store)
            verify_inclusion(leaf_hash(stored[leaf_index]), leaf_index, tree_size, proof, root)


def test_missing_hash_raises_corrupt(store):
    store.append_batch(_entries(40))
    # Delete the rows of levels 0 and 4 that hold the first hashes.
    with store.env.begin(write=True) as txn:
        for level in (0, 4):
            key = level.to_bytes(1, "big") + (0).to_bytes(8, "big")
            assert txn.delete(key, db=store._dbs["hashes"])
    with pytest.raises(CorruptStoreError, match="level 0 row 0"):
        store.read_hashes([(0, 10)])
    with pytest.raises(CorruptStoreError, match="level 4 row 0"):
        store.read_hashes([(4, 0)])


def test_hash_beyond_tree_raises_range(store):
    store.append_batch(_entries(10))
    with pytest.raises(TreeRangeError, match="beyond the committed tree_size 10"):
        store.read_hashes([(0, 10)])
    with pytest.raises(TreeRangeError, match="beyond the committed tree_size 10"):
        store.read_hashes([(4, 0)])


def test_reads_from_other_thread(store):
    store.append_batch(_entries(600))
    ids = _stored_ids(600)
    expected = store.read_hashes(ids)
    results: list[list[bytes]] = []
    worker = threading.Thread(target=lambda: results.append(store.read_hashes(ids)))
    worker.start()
    worker.join()
    assert results == [expected]
