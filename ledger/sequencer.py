"""The sequencer: batches concurrent appends into one durable commit each.

Callers await `append(entry)`. Entries queue up while the previous batch
commits. The integrating task then takes up to `max_batch` of them, after
letting runnable callers join for at most `max_delay` seconds, and commits
them in one LMDB write transaction on a worker thread. LMDB
releases the GIL during the fsync, so the event loop keeps queueing the next
batch meanwhile. Each caller gets its AppendResult only after the commit
returned, so an acknowledged entry is on disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ledger.appender import AppendResult
from ledger.publisher import Publisher
from ledger.store import LogStore, check_entry_size

logger = logging.getLogger("ledger.sequencer")

DEFAULT_MAX_BATCH = 4096
DEFAULT_MAX_DELAY = 0.002


class SequencerClosedError(RuntimeError):
    """append() was called on a sequencer that is not running."""


class Sequencer:
    """Appends entries from many concurrent callers, one transaction per batch.

    Implements the Appender protocol. Requires max_batch >= 1 and
    max_delay >= 0 (seconds). Call start() inside the event loop before the
    first append, and close() to finish the queued batches.
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
        # Each pending item is (entries, future, single): one future per
        # submit() or submit_many() call, resolved with one AppendResult
        # when single is True and with a list otherwise.
        self._pending: list[tuple[list[bytes], asyncio.Future, bool]] = []
        self._pending_entries = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-commit")
        # Counters for tests and benchmarks: committed batches and entries.
        self.committed_batches = 0
        self.committed_entries = 0

    async def start(self) -> None:
        """Start the integrating task."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self._run(), name="ledger-sequencer")

    async def close(self) -> None:
        """Commit the queued entries, then stop the integrating task."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> Sequencer:
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
        check_entry_size(entry)
        return self._queue([entry], True)

    def submit_many(self, entries: Sequence[bytes]) -> asyncio.Future[list[AppendResult]]:
        """Queue several entries and return one future of their AppendResults.

        The future resolves, with one result per entry in order, once every
        entry is committed durably. More than max_batch entries span several
        batches. One future for many entries saves the event loop a wakeup
        per entry.
        Requires a running event loop and len(entry) <= 65,535 for each.
        """
        entries = list(entries)
        for entry in entries:
            check_entry_size(entry)
        self._check_running()
        if not entries:
            done: asyncio.Future[list[AppendResult]] = self._loop.create_future()
            done.set_result([])
            return done
        if len(entries) <= self.max_batch:
            return self._queue(entries, False)
        parts = [
            self._queue(entries[start : start + self.max_batch], False)
            for start in range(0, len(entries), self.max_batch)
        ]
        combined: asyncio.Future[list[AppendResult]] = self._loop.create_future()

        def settle(_: asyncio.Future) -> None:
            if combined.done() or not all(part.done() for part in parts):
                return
            for part in parts:
                if part.exception() is not None:
                    combined.set_exception(part.exception())
                    return
            combined.set_result([result for part in parts for result in part.result()])

        for part in parts:
            part.add_done_callback(settle)
        return combined

    def _check_running(self) -> None:
        if self._task is None or self._closing:
            raise SequencerClosedError(
                "the sequencer is not running; call start() before append()"
            )

    def _queue(self, entries: list[bytes], single: bool) -> asyncio.Future:
        self._check_running()
        future = self._loop.create_future()
        self._pending.append((entries, future, single))
        self._pending_entries += len(entries)
        if len(self._pending) == 1:
            self._wakeup.set()
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

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # The time window: callers that are already runnable, such as
            # those whose previous append the last commit returned, join.
            # It closes when a loop iteration brings no new entry, when
            # the batch is full, or after max_delay; entries that arrive
            # during a commit form the next batch (group commit).
            deadline = loop.time() + self.max_delay
            while self._pending_entries < self.max_batch and not self._closing:
                before = self._pending_entries
                await asyncio.sleep(0)
                if self._pending_entries == before or loop.time() >= deadline:
                    break
            batch = self._take_batch()
            entries = [entry for group, _, _ in batch for entry in group]
            try:
                results = await loop.run_in_executor(
                    self._executor, self.store.append_batch, entries
                )
            except Exception as error:
                # No entry of a failed batch is acknowledged; each caller
                # gets the error and may retry.
                logger.error("batch of %d entries failed: %s", len(entries), error)
                for _, future, _ in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.committed_batches += 1
            self.committed_entries += len(entries)
            logger.debug("committed batch of %d entries", len(entries))
            position = 0
            for group, future, single in batch:
                end = position + len(group)
                if not future.done():
                    future.set_result(results[position] if single else results[position:end])
                position = end

    def _take_batch(self) -> list[tuple[list[bytes], asyncio.Future, bool]]:
        """Remove whole pending items of at most max_batch entries in all.

        The first item is always taken; submit_many splits larger groups.
        """
        count = 0
        items = 0
        for entries, _, _ in self._pending:
            if items and count + len(entries) > self.max_batch:
                break
            count += len(entries)
            items += 1
        batch = self._pending[:items]
        del self._pending[:items]
        self._pending_entries -= count
        return batch
