"""Sequencer.submit_many: one future for many entries, split across batches."""

from __future__ import annotations

import asyncio

import pytest

from ledger.merkle import leaf_hash
from ledger.sequencer import Sequencer, SequencerClosedError
from ledger.store import EntryTooLargeError, LogStore


@pytest.fixture
def store(tmp_path):
    with LogStore(tmp_path / "log.lmdb", create=True) as opened:
        yield opened


async def test_submit_many_returns_results_in_order(store):
    entries = [b"many %d" % i for i in range(50)]
    async with Sequencer(store) as sequencer:
        results = await sequencer.submit_many(entries)
    assert [r.leaf_index for r in results] == list(range(50))
    assert [r.leaf_hash for r in results] == [leaf_hash(e) for e in entries]
    assert [store.read_entry(i) for i in range(50)] == entries


async def test_submit_many_splits_above_max_batch(store):
    entries = [b"split %d" % i for i in range(95)]
    async with Sequencer(store, max_batch=10) as sequencer:
        results = await sequencer.submit_many(entries)
        batches = sequencer.committed_batches
    assert [r.leaf_index for r in results] == list(range(95))
    assert batches >= 10


async def test_groups_and_singles_share_batches(store):
    async with Sequencer(store, max_batch=64) as sequencer:
        groups = [sequencer.submit_many([b"g%d-%d" % (g, i) for i in range(7)]) for g in range(20)]
        singles = [sequencer.submit(b"s%d" % i) for i in range(30)]
        group_results = await asyncio.gather(*groups)
        single_results = await asyncio.gather(*singles)
    indexes = [r.leaf_index for group in group_results for r in group]
    indexes += [r.leaf_index for r in single_results]
    assert sorted(indexes) == list(range(170))
    for g, group in enumerate(group_results):
        for i, result in enumerate(group):
            assert store.read_entry(result.leaf_index) == b"g%d-%d" % (g, i)


async def test_submit_many_duplicates_return_first_index(store):
    async with Sequencer(store) as sequencer:
        first = await sequencer.submit_many([b"a", b"b", b"a"])
        again = await sequencer.submit_many([b"b", b"c"])
    assert [(r.leaf_index, r.duplicate) for r in first] == [(0, False), (1, False), (0, True)]
    assert [(r.leaf_index, r.duplicate) for r in again] == [(1, True), (2, False)]


async def test_submit_many_empty_and_closed(store):
    sequencer = Sequencer(store)
    with pytest.raises(SequencerClosedError):
        sequencer.submit_many([b"x"])
    async with sequencer:
        assert await sequencer.submit_many([]) == []
        with pytest.raises(EntryTooLargeError):
            sequencer.submit_many([b"ok", b"x" * 65_536])
    assert store.tree_size() == 0
