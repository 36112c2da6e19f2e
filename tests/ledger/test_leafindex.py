"""The leaf-hash index (runs plus the tail) against a dict, on real LMDB stores.

The chunk and run sizes are made small here, so that a few thousand leaves
go through many flushes and merges.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import leafindex
from ledger.leafindex import FANOUT
from ledger.merkle import leaf_hash
from ledger.store import CorruptStoreError, LogStore

SMALL_FLUSH = 16
SMALL_MAX_RUN = 256


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(leafindex, "FLUSH", SMALL_FLUSH)
    monkeypatch.setattr(leafindex, "MAX_RUN", SMALL_MAX_RUN)


def entry(number: int) -> bytes:
    return b"index entry %d" % number


def run_lengths(store: LogStore) -> list[tuple[int, int]]:
    with store.env.begin() as txn:
        return [(first, len(value) // 8) for first, value in store._index.runs(txn)]


def all_leaf_hashes(store: LogStore) -> bytes:
    with store.view() as view:
        return b"".join(view.read_hashes([(0, i) for i in range(view.tree_size())]))


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.lists(st.integers(0, 600), min_size=1, max_size=80), min_size=1, max_size=25))
def test_random_batches_match_a_dict(tmp_path_factory, small_chunks, batches):
    first_index: dict[bytes, int] = {}
    with LogStore(tmp_path_factory.mktemp("index") / "log", create=True) as store:
        for numbers in batches:
            results = store.append_batch([entry(n) for n in numbers])
            for number, result in zip(numbers, results):
                is_new = entry(number) not in first_index
                expected = first_index.setdefault(entry(number), len(first_index))
                assert result.leaf_index == expected
                assert result.duplicate == (not is_new)
        size = store.tree_size()
        assert size == len(first_index)
        for value, index in first_index.items():
            assert store.find_leaf(leaf_hash(value)) == index
        assert store.find_leaf(leaf_hash(b"never appended")) is None
        with store.view() as view:
            assert view.check_leaf_index(all_leaf_hashes(store)) is None
        runs = run_lengths(store)
        # Runs are consecutive from leaf 0 and cover the full chunks.
        position = 0
        for first, length in runs:
            assert first == position
            position += length
        assert sum(length for _, length in runs) == size - size % SMALL_FLUSH
        tiers = [(length.bit_length() - 1) // 2 for _, length in runs if length < SMALL_MAX_RUN]
        assert all(tiers.count(t) < FANOUT for t in set(tiers))


def test_duplicate_found_in_run_and_tail(tmp_path, small_chunks):
    with LogStore(tmp_path / "log", create=True) as store:
        store.append_batch([entry(n) for n in range(100)])
        assert run_lengths(store)
        results = store.append_batch([entry(3), entry(99), entry(100), entry(3)])
    assert [r.leaf_index for r in results] == [3, 99, 100, 3]
    assert [r.duplicate for r in results] == [True, True, False, True]


def test_reopened_store_rebuilds_the_tail(tmp_path, small_chunks):
    path = tmp_path / "log"
    with LogStore(path, create=True) as store:
        store.append_batch([entry(n) for n in range(40)])
    with LogStore(path) as store:
        assert store._index._tail.size == -1
        result = store.append_batch([entry(39)])[0]
        assert result.leaf_index == 39
        assert result.duplicate


def test_tail_catches_up_with_other_writers(tmp_path, small_chunks):
    # Another process's appends show as a tail dict that is behind the
    # committed tree; the next batch reads the missing leaf hashes.
    with LogStore(tmp_path / "log", create=True) as store:
        store.append_batch([entry(n) for n in range(20)])
        stale = store._index._tail
        store.append_batch([entry(n) for n in range(20, 30)])
        store._index._tail = stale
        results = store.append_batch([entry(25), entry(30)])
        assert [r.leaf_index for r in results] == [25, 30]
        assert store._index._tail.size == 31


def test_reader_scans_the_tail_without_the_dict(tmp_path, small_chunks):
    path = tmp_path / "log"
    with LogStore(path, create=True) as store:
        store.append_batch([entry(n) for n in range(45)])
    with LogStore(path, readonly=True) as store:
        assert store.find_leaf(leaf_hash(entry(44))) == 44
        assert store.find_leaf(leaf_hash(entry(3))) == 3
        assert store.find_leaf(leaf_hash(entry(45))) is None


def test_verify_names_leaf_with_wrong_record(tmp_path, small_chunks):
    with LogStore(tmp_path / "log", create=True) as store:
        store.append_batch([entry(n) for n in range(64)])
        db = store._dbs["leafruns"]
        with store.env.begin(write=True) as txn:
            ((first, value),) = [(f, bytes(v)) for f, v in store._index.runs(txn)]
            count = len(value) // 8
            offsets = np.frombuffer(value, dtype="<u4", offset=4 * count)
            slot = int(np.flatnonzero(offsets == 37 - first)[0])
            damaged = bytearray(value)
            damaged[4 * slot] ^= 0x10
            txn.put(first.to_bytes(8, "big"), bytes(damaged), db=db)
        with store.view() as view:
            assert view.check_leaf_index(all_leaf_hashes(store)) == 37


def test_verify_names_first_leaf_of_missing_run(tmp_path, small_chunks):
    with LogStore(tmp_path / "log", create=True) as store:
        store.append_batch([entry(n) for n in range(40)])
        with store.env.begin(write=True) as txn:
            txn.delete((0).to_bytes(8, "big"), db=store._dbs["leafruns"])
        with store.view() as view:
            assert view.check_leaf_index(all_leaf_hashes(store)) == 0


def test_malformed_run_raises(tmp_path, small_chunks):
    with LogStore(tmp_path / "log", create=True) as store:
        store.append_batch([entry(n) for n in range(20)])
        with store.env.begin(write=True) as txn:
            txn.put((0).to_bytes(8, "big"), b"12345", db=store._dbs["leafruns"])
        with pytest.raises(CorruptStoreError, match="5 bytes"):
            store.append_batch([entry(0)])


def test_prefix_collision_checks_full_hash(tmp_path, small_chunks):
    with LogStore(tmp_path / "log", create=True) as store:
        store.append_batch([entry(n) for n in range(40)])
        # Give leaf 20's record the prefix of a hash that is not stored: the
        # lookup reads leaf 20's full hash and rejects the match.
        absent = hashlib.sha256(b"absent").digest()
        db = store._dbs["leafruns"]
        with store.env.begin(write=True) as txn:
            value = bytes(txn.get((16).to_bytes(8, "big"), db=db))
            prefixes = np.frombuffer(value[:64], dtype="<u4").copy()
            offsets = np.frombuffer(value[64:], dtype="<u4").copy()
            prefixes[offsets == 4] = int.from_bytes(absent[:4], "big")
            order = np.argsort(prefixes, kind="stable")
            forged = prefixes[order].tobytes() + offsets[order].tobytes()
            txn.put((16).to_bytes(8, "big"), forged, db=db)
        assert store.find_leaf(absent) is None
        result = store.append_batch([b"absent"])[0]
        assert not result.duplicate
        with store.view() as view:
            assert view.check_leaf_index(all_leaf_hashes(store)[: 40 * 32]) == 20
