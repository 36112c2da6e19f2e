"""The leaf-hash index runs against a dict, on a real LMDB file."""

from __future__ import annotations

import hashlib

import lmdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.leafindex import FANOUT, PARTITIONS, LeafIndex
from ledger.store import CorruptStoreError


def leaf(number: int) -> bytes:
    return hashlib.sha256(b"\x00" + number.to_bytes(8, "big")).digest()


@pytest.fixture
def env(tmp_path):
    environment = lmdb.open(str(tmp_path / "index"), max_dbs=2, map_size=1 << 30)
    yield environment
    environment.close()


def run_lengths(index: LeafIndex, txn, partition: int) -> list[int]:
    return [len(value) // 8 for _, value in index.runs(txn, partition)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 300), min_size=1, max_size=40))
def test_batches_found_like_a_dict(tmp_path_factory, batches):
    folder = tmp_path_factory.mktemp("index")
    environment = lmdb.open(str(folder), max_dbs=2, map_size=1 << 30)
    try:
        index = LeafIndex(environment.open_db(b"runs"))
        hashes: list[bytes] = []
        for size in batches:
            batch = b"".join(leaf(n) for n in range(len(hashes), len(hashes) + size))
            with environment.begin(write=True) as txn:
                assert index.lookup(txn, batch, lambda i: hashes[i]) == {}
                index.add(txn, len(hashes), batch)
            hashes.extend(batch[k : k + 32] for k in range(0, len(batch), 32))
        with environment.begin() as txn:
            for number in range(0, len(hashes), 7):
                assert index.find(txn, hashes[number], lambda i: hashes[i]) == number
            assert index.find(txn, leaf(len(hashes)), lambda i: hashes[i]) is None
            assert index.verify(txn, b"".join(hashes)) is None
            # Tiers never increase from the oldest run to the newest and at
            # most FANOUT - 1 runs share a tier.
            for partition in range(PARTITIONS):
                tiers = [(n.bit_length() - 1) // 2 for n in run_lengths(index, txn, partition)]
                assert tiers == sorted(tiers, reverse=True)
                assert all(tiers.count(t) < FANOUT for t in set(tiers))
    finally:
        environment.close()


def test_lookup_reports_positions_of_stored_hashes(env):
    index = LeafIndex(env.open_db(b"runs"))
    hashes = [leaf(n) for n in range(1000)]
    with env.begin(write=True) as txn:
        index.add(txn, 0, b"".join(hashes[:600]))
        index.add(txn, 600, b"".join(hashes[600:]))
    query = hashes[5] + leaf(5000) + hashes[999] + hashes[5]
    with env.begin() as txn:
        assert index.lookup(txn, query, lambda i: hashes[i]) == {0: 5, 2: 999, 3: 5}


def test_runs_merge_into_few(env):
    index = LeafIndex(env.open_db(b"runs"))
    hashes = [leaf(n) for n in range(20_000)]
    with env.begin(write=True) as txn:
        for start in range(0, 20_000, 100):
            index.add(txn, start, b"".join(hashes[start : start + 100]))
    with env.begin() as txn:
        counts = [len(run_lengths(index, txn, p)) for p in range(PARTITIONS)]
        total = sum(sum(run_lengths(index, txn, p)) for p in range(PARTITIONS))
        assert total == 20_000
        # 200 batches made 200 runs per partition before merging; about
        # 1,250 leaves per partition leave at most 3 * 5 + 1 runs.
        assert max(counts) <= 3 * 5 + 1
        assert index.verify(txn, b"".join(hashes)) is None


def test_verify_names_leaf_with_wrong_record(env):
    db = env.open_db(b"runs")
    index = LeafIndex(db)
    hashes = [leaf(n) for n in range(300)]
    with env.begin(write=True) as txn:
        index.add(txn, 0, b"".join(hashes))
    partition = hashes[123][0] >> 4
    with env.begin(write=True) as txn:
        ((first, value),) = [(f, bytes(v)) for f, v in index.runs(txn, partition)]
        count = len(value) // 8
        offsets = np.frombuffer(value, dtype="<u4", offset=4 * count)
        slot = int(np.flatnonzero(offsets == 123 - first)[0])
        damaged = bytearray(value)
        damaged[4 * slot] ^= 0x10
        txn.put(bytes([partition]) + first.to_bytes(8, "big"), bytes(damaged), db=db)
    with env.begin() as txn:
        assert index.verify(txn, b"".join(hashes)) == 123


def test_verify_names_leaf_without_record(env):
    db = env.open_db(b"runs")
    index = LeafIndex(db)
    hashes = [leaf(n) for n in range(50)]
    with env.begin(write=True) as txn:
        index.add(txn, 0, b"".join(hashes[:40]))
    with env.begin() as txn:
        assert index.verify(txn, b"".join(hashes)) == 40


def test_malformed_run_raises(env):
    db = env.open_db(b"runs")
    index = LeafIndex(db)
    with env.begin(write=True) as txn:
        txn.put(bytes([3]) + (0).to_bytes(8, "big"), b"12345", db=db)
    with env.begin() as txn, pytest.raises(CorruptStoreError, match="5 bytes"):
        index.lookup(txn, bytes([0x30]) + bytes(31), lambda i: b"")
