"""The sequencer: batches concurrent appends into one durable commit each.

Callers await `append(entry)`, or hold the future of `submit(entry)` or
`submit_many(entries)`. Entries queue up while the previous batch commits,
and the commit thread takes the queued entries, up to `max_batch`, as the
next batch the moment the previous commit returns. When no commit is
running, the first entry opens a short window in which the callers that
are already runnable join its batch, for at most `max_delay` seconds.

Each batch commits in one LMDB write transaction on a single worker
thread, so batches commit one at a time and in order. The event loop keeps
queueing entries and resolving the previous batch's futures meanwhile.
A caller gets its AppendResult only after its own batch's commit returned,
so an acknowledged entry is on disk. A failed batch fails each of its
callers and acknowledges none of its entries.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, Self

from ledger.appender import AppendResult
from ledger.publisher import Publisher
from ledger.store import MAX_ENTRY_SIZE, LogStore, check_entry_size

logger = logging.getLogger("ledger.sequencer")

DEFAULT_MAX_BATCH = 4096
DEFAULT_MAX_DELAY = 0.002

# Set once the first start() in this process froze the start-up objects.
_startup_objects_frozen = False

# States of the pipeline. Only the commit thread moves _COMMITTING to
# _COMMITTED, and only the event loop leaves any other state, so the two
# threads never overwrite each other's transition.
_IDLE = 0  # nothing queued, no commit running
_WINDOW = 1  # entries queued, waiting for runnable callers to join
_COMMITTING = 2  # the commit thread runs append_batch
_COMMITTED = 3  # the last commit returned; the next may start at once


class SequencerClosedError(RuntimeError):
    """append() was called on a sequencer that is not running."""


class _Batch(NamedTuple):
    """Entries taken for one commit, with the futures to resolve after it.

    `futures[k]` is the future of a submit() call for entries[k], or None
    when entries[k] belongs to a group. Each group is a submit_many() call
    or one part of it: (first position in entries, entry count, future).
    """

    entries: list[bytes]
    futures: list[asyncio.Future | None]
    groups: list[tuple[int, int, asyncio.Future]]


class Sequencer:
    """Appends entries from many concurrent callers, one transaction per batch.

    Implements the Appender protocol. Requires max_batch >= 1 and
    max_delay >= 0 (seconds). Call start() inside the event loop before the
    first append, and close() to finish the queued batches. A sequencer
    runs once: it cannot be started again after close().
    """

    def __init__(
        self,
        store: LogStore,
        *,
        publisher: Publisher | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_delay: float = DEFAULT_MAX_DELAY,
    ) -> None:
        if max_batch < 1 or max_delay < 0:
            raise ValueError(
                f"max_batch {max_batch} and max_delay {max_delay} must satisfy"
                " max_batch >= 1 and max_delay >= 0"
            )
        self.store = store
        self.publisher = publisher
        self.max_batch = max_batch
        self.max_delay = max_delay
        # The queue of the next batch, in the layout of _Batch.
        self._entries: list[bytes] = []
        self._futures: list[asyncio.Future | None] = []
        self._groups: list[tuple[int, int, asyncio.Future]] = []
        self._state = _IDLE
        # Batches handed to the commit thread whose futures are not yet
        # resolved; close() waits for this to reach 0.
        self._unfinished = 0
        self._window_size = 0
        self._window_deadline = 0.0
        self._accepting = False
        self._started = False
        self._closed = False
        # Both are set by start(), and nothing reads them before it.
        self._loop: asyncio.AbstractEventLoop
        self._drained: asyncio.Future[None]
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-commit")
        # Counters for tests and benchmarks: committed batches and entries.
        self.committed_batches = 0
        self.committed_entries = 0

    async def start(self) -> None:
        """Start accepting entries. Raises SequencerClosedError after close().

        The first start() in a process also collects garbage and then calls
        gc.freeze(), which the full collections of the cyclic garbage
        collector then skip. Each such collection stops the event loop and
        every append waiting on it. After the imports of the gateway, about
        70,000 tracked objects, it took about 40 ms on a 2-core test machine
        and a few ms with the start-up objects frozen. An object alive at
        that moment that later becomes part of a garbage cycle is never
        freed: a bounded cost for the objects of start-up.
        """
        if self._closed:
            raise SequencerClosedError(
                "this sequencer was closed and cannot restart; create a new one"
            )
        if not self._started:
            _freeze_startup_objects()
            self._started = True
            self._loop = asyncio.get_running_loop()
            self._drained = self._loop.create_future()
            self._accepting = True

    async def close(self) -> None:
        """Stop accepting entries, commit the queued ones, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._accepting = False
        if self._state in (_WINDOW, _COMMITTED) and self._entries:
            self._start_commit()
        if self._unfinished or self._entries:
            await self._drained
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def append(self, entry: bytes) -> AppendResult:
        """Append one entry and return its position once committed durably.

        Requires len(entry) <= 65,535; raises EntryTooLargeError otherwise.
        An entry already in the log returns the first copy's leaf_index
        with duplicate=True.
        """
        return await self.submit(entry)

    def submit(self, entry: bytes) -> asyncio.Future[AppendResult]:
        """Queue one entry and return a future of its AppendResult.

        The future resolves once the entry's batch is committed durably.
        Callers that queue many entries use this to avoid a task per entry.
        Requires a running event loop and len(entry) <= 65,535.
        """
        if len(entry) > MAX_ENTRY_SIZE:
            check_entry_size(entry)
        if not self._accepting:
            self._raise_not_running()
        future = self._loop.create_future()
        self._entries.append(entry)
        self._futures.append(future)
        if self._state != _COMMITTING:
            self._after_queue()
        return future

    def submit_many(
        self, entries: Sequence[bytes]
    ) -> asyncio.Future[list[AppendResult]]:
        """Queue several entries and return one future of their AppendResults.

        The future resolves, with one result per entry in order, once every
        entry is committed durably. More than max_batch entries span several
        batches. One future for many entries saves the event loop a wakeup
        per entry.
        NOTE: when one of several batches fails, the future raises although
        the other batches' entries may be committed; a retry returns those
        with duplicate=True.
        Requires a running event loop and len(entry) <= 65,535 for each.
        """
        entries = list(entries)
        if entries:
            check_entry_size(max(entries, key=len))
        if not self._accepting:
            self._raise_not_running()
        if not entries:
            done: asyncio.Future[list[AppendResult]] = self._loop.create_future()
            done.set_result([])
            return done
        if len(entries) <= self.max_batch:
            return self._queue_group(entries)
        parts = [
            self._queue_group(entries[start : start + self.max_batch])
            for start in range(0, len(entries), self.max_batch)
        ]
        combined: asyncio.Future[list[AppendResult]] = self._loop.create_future()

        def settle(_: asyncio.Future) -> None:
            if combined.done() or not all(part.done() for part in parts):
                return
            for part in parts:
                error = part.exception()
                if error is not None:
                    combined.set_exception(error)
                    return
            combined.set_result([result for part in parts for result in part.result()])

        for part in parts:
            part.add_done_callback(settle)
        return combined

    def _raise_not_running(self) -> None:
        raise SequencerClosedError(
            "the sequencer is not running; call start() before append()"
        )

    def _queue_group(self, entries: list[bytes]) -> asyncio.Future[list[AppendResult]]:
        """Queue len(entries) <= max_batch entries under one future."""
        future = self._loop.create_future()
        self._groups.append((len(self._entries), len(entries), future))
        self._entries.extend(entries)
        self._futures.extend([None] * len(entries))
        if self._state != _COMMITTING:
            self._after_queue()
        return future

    async def wait_for_checkpoint(self, leaf_index: int) -> bytes:
        """Return the first published checkpoint note that includes leaf_index.

        Requires a publisher and 0 <= leaf_index.
        """
        if self.publisher is None:
            raise SequencerClosedError(
                "this sequencer has no publisher; pass one to wait for checkpoints"
            )
        return await self.publisher.wait_for_tree_size(leaf_index + 1)

    def _after_queue(self) -> None:
        """Start the next commit if it is due, or open a window for it.

        Called after an entry was queued while no commit runs. A commit
        that returned a moment ago is followed at once, before its
        _finish_batch callback runs. The time check here, and not only in
        _check_window, bounds a window even while one loop iteration
        wakes thousands of callers.
        """
        state = self._state
        if state == _COMMITTED:
            self._start_commit()
        elif state == _IDLE:
            self._state = _WINDOW
            self._window_size = len(self._entries)
            self._window_deadline = self._loop.time() + self.max_delay
            self._loop.call_soon(self._check_window)
        elif (
            len(self._entries) >= self.max_batch
            or self._loop.time() >= self._window_deadline
        ):
            self._start_commit()

    def _check_window(self) -> None:
        """Extend an open window by one loop iteration or commit the queue.

        The window closes when an iteration brings no new entry, when a
        batch is full, after max_delay, or when close() was called.
        """
        if self._state != _WINDOW:
            return
        size = len(self._entries)
        if (
            self._window_size < size < self.max_batch
            and self._accepting
            and self._loop.time() < self._window_deadline
        ):
            self._window_size = size
            self._loop.call_soon(self._check_window)
            return
        self._start_commit()

    def _start_commit(self) -> None:
        """Hand the next batch to the commit thread. Requires queued entries."""
        batch = self._take_batch()
        self._state = _COMMITTING
        self._unfinished += 1
        self._executor.submit(self._commit, batch)

    def _take_batch(self) -> _Batch:
        """Remove whole groups and single entries, at most max_batch in all.

        submit_many() splits groups to max_batch entries or fewer, so a
        group that does not fit starts after position 0 and moves whole
        to the next batch.
        """
        entries = self._entries
        if len(entries) <= self.max_batch:
            batch = _Batch(entries, self._futures, self._groups)
            self._entries, self._futures, self._groups = [], [], []
            return batch
        cut = self.max_batch
        taken_groups = 0
        for start, count, _ in self._groups:
            if start >= cut:
                break
            if start + count > cut:
                cut = start
                break
            taken_groups += 1
        batch = _Batch(entries[:cut], self._futures[:cut], self._groups[:taken_groups])
        del entries[:cut]
        del self._futures[:cut]
        self._groups = [
            (start - cut, count, future)
            for start, count, future in self._groups[taken_groups:]
        ]
        return batch

    def _commit(self, batch: _Batch) -> None:
        """Commit one batch on the commit thread and report to the event loop.

        The state changes before the callback is queued. So a _finish_batch
        call that finds _COMMITTING can rely on a later commit having
        started, whose own callback continues the pipeline.
        """
        # Any failure must reach the batch's callers, or they would wait forever.
        outcome: list[AppendResult] | Exception
        try:
            outcome = self.store.append_batch(batch.entries)
        except Exception as error:  # noqa: BLE001
            outcome = error
        self._state = _COMMITTED
        self._loop.call_soon_threadsafe(self._finish_batch, batch, outcome)

    def _finish_batch(
        self, batch: _Batch, outcome: list[AppendResult] | Exception
    ) -> None:
        """Start the next commit if due, then resolve the finished batch's futures."""
        self._unfinished -= 1
        if self._state == _COMMITTED:
            if self._entries:
                self._start_commit()
            else:
                self._state = _IDLE
        if not isinstance(outcome, Exception) and len(outcome) != len(batch.entries):
            outcome = RuntimeError(
                f"the store returned {len(outcome)} results for a batch of"
                f" {len(batch.entries)} entries; the log store is faulty"
            )
        if isinstance(outcome, Exception):
            # No entry of a failed batch is acknowledged; each caller gets
            # the error and may retry.
            logger.error("batch of %d entries failed: %s", len(batch.entries), outcome)
            self._fail(batch, outcome)
        else:
            self.committed_batches += 1
            self.committed_entries += len(outcome)
            logger.debug("committed batch of %d entries", len(outcome))
            self._resolve(batch, outcome)
        if self._closed and not self._unfinished and not self._drained.done():
            self._drained.set_result(None)

    @staticmethod
    def _resolve(batch: _Batch, results: list[AppendResult]) -> None:
        for future, result in zip(batch.futures, results):
            # A future is None for an entry of a group, and done when its
            # caller cancelled it.
            if future is not None and not future.done():
                future.set_result(result)
        for start, count, future in batch.groups:
            if not future.done():
                future.set_result(results[start : start + count])

    @staticmethod
    def _fail(batch: _Batch, error: Exception) -> None:
        for future in batch.futures:
            if future is not None and not future.done():
                future.set_exception(error)
        for _, _, future in batch.groups:
            if not future.done():
                future.set_exception(error)


def _freeze_startup_objects() -> None:
    """Collect garbage, then move every tracked object out of later collections."""
    global _startup_objects_frozen
    if not _startup_objects_frozen:
        _startup_objects_frozen = True
        gc.collect()
        gc.freeze()
