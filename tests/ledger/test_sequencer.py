"""Sequencer: concurrent callers, batching, duplicates, durability order."""

from __future__ import annotations

import asyncio

import lmdb
import pytest

from ledger.merkle import leaf_hash
from ledger.sequencer import Sequencer, SequencerClosedError
from ledger.store import EntryTooLargeError, LogConfig, LogStore


@pytest.fixture
def store(tmp_path):
    with LogStore(tmp_path / "log.lmdb", create=True) as opened:
        opened.write_config(LogConfig("example.com/log"))
        yield opened


async def test_concurrent_writers_get_distinct_indexes(store):
    writers = 64
    per_writer = 40
    acknowledged: dict[int, bytes] = {}

    async def writer(number: int, sequencer: Sequencer) -> None:
        for i in range(per_writer):
            entry = f"writer {number} entry {i}".encode()
            result = await sequencer.append(entry)
            # A fresh read transaction reads only committed data, so the
            # entry must be stored before append() returns.
            assert store.read_entry(result.leaf_index) == entry
            assert result.leaf_hash == leaf_hash(entry)
            assert not result.duplicate
            acknowledged[result.leaf_index] = entry

    async with Sequencer(store, max_batch=256, max_delay=0.002) as sequencer:
        await asyncio.gather(*(writer(n, sequencer) for n in range(writers)))
        batches = sequencer.committed_batches
    assert sorted(acknowledged) == list(range(writers * per_writer))
    assert store.tree_size() == writers * per_writer
    # 64 writers with one append in flight each share commits.
    assert batches < writers * per_writer / 4


async def test_batch_limited_by_max_batch(store):
    async with Sequencer(store, max_batch=10, max_delay=0.05) as sequencer:
        results = await asyncio.gather(
            *(sequencer.append(f"e{i}".encode()) for i in range(95))
        )
        assert sequencer.committed_batches >= 10
    assert sorted(r.leaf_index for r in results) == list(range(95))


async def test_duplicates_return_first_index(store):
    async with Sequencer(store) as sequencer:
        first = await sequencer.append(b"contract signed")
        again = await asyncio.gather(*(sequencer.append(b"contract signed") for _ in range(5)))
        other = await sequencer.append(b"another")
    assert first.leaf_index == 0
    assert not first.duplicate
    assert [r.leaf_index for r in again] == [0] * 5
    assert all(r.duplicate for r in again)
    assert other.leaf_index == 1
    assert store.tree_size() == 2


async def test_concurrent_identical_entries_stored_once(store):
    async with Sequencer(store, max_delay=0.01) as sequencer:
        results = await asyncio.gather(*(sequencer.append(b"same") for _ in range(20)))
    assert {r.leaf_index for r in results} == {0}
    assert sum(not r.duplicate for r in results) == 1
    assert store.tree_size() == 1


async def test_oversized_entry_rejected(store):
    async with Sequencer(store) as sequencer:
        with pytest.raises(EntryTooLargeError, match="65,535"):
            await sequencer.append(b"x" * 65_536)
        result = await sequencer.append(b"small")
    assert result.leaf_index == 0


async def test_append_before_start_fails(store):
    sequencer = Sequencer(store)
    with pytest.raises(SequencerClosedError, match="start"):
        await sequencer.append(b"early")
    await sequencer.start()
    await sequencer.close()
    with pytest.raises(SequencerClosedError):
        await sequencer.append(b"late")


async def test_close_commits_queued_entries(store):
    sequencer = Sequencer(store, max_delay=0.5)
    await sequencer.start()
    tasks = [asyncio.create_task(sequencer.append(f"q{i}".encode())) for i in range(30)]
    await asyncio.sleep(0)
    await sequencer.close()
    results = await asyncio.gather(*tasks)
    assert sorted(r.leaf_index for r in results) == list(range(30))
    assert store.tree_size() == 30


async def test_failed_commit_acknowledges_nothing(tmp_path):
    # A map of 1 MiB fills quickly, and no entry of the failing batch may be
    # acknowledged.
    with LogStore(tmp_path / "small.lmdb", create=True, map_size=1 << 20) as small:
        async with Sequencer(small, max_batch=64) as sequencer:
            committed = 0
            with pytest.raises(lmdb.MapFullError):
                for i in range(200):
                    await sequencer.append(bytes([i]) * 60_000)
                    committed += 1
        assert small.tree_size() == committed
        for leaf_index in range(committed):
            assert small.read_entry(leaf_index) == bytes([leaf_index]) * 60_000


async def test_invalid_parameters_rejected(store):
    with pytest.raises(ValueError, match="max_batch"):
        Sequencer(store, max_batch=0)
    with pytest.raises(ValueError, match="max_delay"):
        Sequencer(store, max_delay=-1)
