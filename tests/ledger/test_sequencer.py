"""Sequencer: concurrent callers, batching, duplicates, durability order."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.appender import AppendResult
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
        again = await asyncio.gather(
            *(sequencer.append(b"contract signed") for _ in range(5))
        )
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


class RecordingStore(LogStore):
    """A real LogStore that records each batch and can hold or fail commits.

    `gate`, when set, makes each append_batch wait for it (with `entered`
    set first), so that a test can queue entries while a commit runs.
    An entry equal to `poison` makes its batch raise before anything is
    written, as a full disk would.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[list[bytes]] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.poison: bytes | None = None

    def append_batch(self, entries):
        self.batches.append(list(entries))
        if self.gate is not None:
            self.entered.set()
            assert self.gate.wait(timeout=30), "the test never opened the gate"
        if self.poison is not None and self.poison in entries:
            raise OSError(28, "No space left on device")
        return super().append_batch(entries)


@pytest.fixture
def recording(tmp_path):
    with RecordingStore(tmp_path / "recorded.lmdb", create=True) as opened:
        yield opened


async def wait_for_thread_event(event: threading.Event) -> None:
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, event.wait, 30)


async def test_entries_queued_during_commit_form_next_batch(recording):
    recording.gate = threading.Event()
    async with Sequencer(recording, max_batch=1000) as sequencer:
        first = sequencer.submit(b"first")
        await wait_for_thread_event(recording.entered)
        # The first commit is held open, so these queue behind it.
        queued = [sequencer.submit(b"queued %d" % i) for i in range(300)]
        group = sequencer.submit_many([b"grouped %d" % i for i in range(50)])
        assert not first.done()
        recording.gate.set()
        assert (await first).leaf_index == 0
        results = await asyncio.gather(*queued)
        group_results = await group
    assert [len(batch) for batch in recording.batches] == [1, 350]
    assert [r.leaf_index for r in results] == list(range(1, 301))
    assert [r.leaf_index for r in group_results] == list(range(301, 351))


async def test_each_future_resolves_after_its_commit(recording):
    # A fresh read transaction reads only committed data, so each entry
    # must be readable when its future resolves.
    unreadable: list[int] = []

    def check(future: asyncio.Future) -> None:
        result = future.result()
        if recording.tree_size() <= result.leaf_index:
            unreadable.append(result.leaf_index)

    async def writer(number: int, sequencer: Sequencer) -> None:
        for i in range(30):
            future = sequencer.submit(b"writer %d entry %d" % (number, i))
            future.add_done_callback(check)
            await future

    async with Sequencer(recording, max_batch=128) as sequencer:
        await asyncio.gather(*(writer(n, sequencer) for n in range(200)))
    assert unreadable == []
    assert recording.tree_size() == 6000
    assert max(len(batch) for batch in recording.batches) <= 128


async def test_failed_batch_fails_only_its_callers(recording):
    recording.gate = threading.Event()
    async with Sequencer(recording) as sequencer:
        doomed = [sequencer.submit(b"doomed %d" % i) for i in range(5)]
        doomed.append(sequencer.submit(b"poison"))
        await wait_for_thread_event(recording.entered)
        later = [sequencer.submit(b"later %d" % i) for i in range(5)]
        recording.poison = b"poison"
        recording.gate.set()
        outcomes = await asyncio.gather(*doomed, return_exceptions=True)
        results = await asyncio.gather(*later)
    assert len(recording.batches) == 2
    for outcome in outcomes:
        assert isinstance(outcome, OSError)
    assert [r.leaf_index for r in results] == list(range(5))
    assert recording.read_entry(0) == b"later 0"
    assert recording.tree_size() == 5


async def test_cancelled_caller_keeps_others_resolved(store):
    async with Sequencer(store) as sequencer:
        cancelled = sequencer.submit(b"cancelled")
        others = [sequencer.submit(b"kept %d" % i) for i in range(10)]
        cancelled.cancel()
        results = await asyncio.gather(*others)
    # The cancelled entry was queued already, so it is still committed.
    assert store.tree_size() == 11
    assert [store.read_entry(r.leaf_index) for r in results] == [
        b"kept %d" % i for i in range(10)
    ]


async def test_close_drains_entries_queued_during_commit(recording):
    recording.gate = threading.Event()
    sequencer = Sequencer(recording, max_batch=16)
    await sequencer.start()
    first = sequencer.submit(b"first")
    await wait_for_thread_event(recording.entered)
    queued = [sequencer.submit(b"queued %d" % i) for i in range(40)]
    closing = asyncio.create_task(sequencer.close())
    await asyncio.sleep(0)
    with pytest.raises(SequencerClosedError):
        sequencer.submit(b"after close")
    recording.gate.set()
    await closing
    assert first.result().leaf_index == 0
    assert [f.result().leaf_index for f in queued] == list(range(1, 41))
    assert [len(batch) for batch in recording.batches] == [1, 16, 16, 8]


async def test_restart_after_close_rejected(store):
    sequencer = Sequencer(store)
    await sequencer.start()
    await sequencer.close()
    await sequencer.close()
    with pytest.raises(SequencerClosedError, match="create a new one"):
        await sequencer.start()


# One operation of a random workload: an entry number for submit(), a list
# of entry numbers for submit_many(), or None for a yield to the event loop.
operations = st.lists(
    st.one_of(
        st.integers(0, 40),
        st.lists(st.integers(0, 40), min_size=0, max_size=25),
        st.none(),
    ),
    max_size=60,
)


@settings(max_examples=40, deadline=None)
@given(workload=operations, max_batch=st.integers(1, 30))
def test_random_workloads_match_log(workload, max_batch):
    with (
        tempfile.TemporaryDirectory() as folder,
        RecordingStore(Path(folder) / "log.lmdb", create=True) as recorded,
    ):
        submitted = asyncio.run(run_workload(recorded, workload, max_batch))
        check_workload(recorded, submitted, max_batch)


async def run_workload(recorded, workload, max_batch):
    """Run the workload and return (entries, results) per submit call."""
    calls = []
    async with Sequencer(recorded, max_batch=max_batch, max_delay=0) as sequencer:
        for operation in workload:
            if operation is None:
                await asyncio.sleep(0)
            elif isinstance(operation, int):
                entry = b"entry %d" % operation
                calls.append(([entry], sequencer.submit(entry)))
            else:
                entries = [b"entry %d" % number for number in operation]
                calls.append((entries, sequencer.submit_many(entries)))
        submitted = []
        for entries, future in calls:
            result = await future
            submitted.append(
                (entries, [result] if isinstance(result, AppendResult) else result)
            )
    return submitted


def check_workload(recorded, submitted, max_batch):
    # 1. Every batch respects max_batch, and a submit_many() call of at
    #    most max_batch entries commits in one batch, in order.
    for batch in recorded.batches:
        assert 1 <= len(batch) <= max_batch
    # 2. Each result names the entry's own leaf, and each distinct entry
    #    is stored once: one result without the duplicate flag.
    first_index: dict[bytes, int] = {}
    stored_copies: dict[bytes, int] = {}
    for entries, results in submitted:
        assert len(results) == len(entries)
        if 1 < len(entries) <= max_batch:
            assert entries in [
                b[i : i + len(entries)] for b in recorded.batches for i in range(len(b))
            ]
        for entry, result in zip(entries, results):
            assert recorded.read_entry(result.leaf_index) == entry
            assert result.leaf_hash == leaf_hash(entry)
            assert first_index.setdefault(entry, result.leaf_index) == result.leaf_index
            stored_copies[entry] = stored_copies.get(entry, 0) + (not result.duplicate)
    assert all(copies == 1 for copies in stored_copies.values())
    # 3. The log contains exactly the distinct entries.
    assert recorded.tree_size() == len(first_index)


FREEZE_CHECK = """
import asyncio, gc, sys
from ledger.sequencer import Sequencer
from ledger.store import LogStore

freeze_calls = []
freeze = gc.freeze
gc.freeze = lambda: (freeze_calls.append(1), freeze())

async def main():
    with LogStore(sys.argv[1], create=True) as store:
        before = gc.get_freeze_count()
        async with Sequencer(store) as sequencer:
            frozen = gc.get_freeze_count()
            await sequencer.append(b"entry")
        async with Sequencer(store):
            pass
    print(before, frozen, len(freeze_calls))

asyncio.run(main())
"""


def test_first_start_freezes_startup_objects(tmp_path):
    # A fresh process, because this test process may have frozen already.
    output = subprocess.run(
        [sys.executable, "-c", FREEZE_CHECK, str(tmp_path / "log.lmdb")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    before, frozen, calls = (int(count) for count in output.split())
    assert before == 0
    # The imports of ledger alone leave well over 10,000 tracked objects.
    assert frozen > 10_000
    # The second sequencer's start() does not freeze again.
    assert calls == 1
