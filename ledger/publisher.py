"""The publisher: signs, time-stamps and cosigns checkpoints of the committed tree.

Every `interval` seconds it checks the committed tree_size. If the tree grew
since the last published checkpoint, or `idle_interval` seconds passed
without one, it publishes:

1. read tree_size and root_hash from one committed snapshot, so a
   checkpoint is never signed for a tree that is not stored;
2. sign the checkpoint note and record it in the store;
3. time-stamp the signed note through the optional `time_stamp` hook;
4. collect cosignatures through the optional `cosign` hook; with witnesses
   configured, a failure or a note below quorum leaves the last cosigned
   checkpoint published;
5. store the published note and its time-stamp token, then wake the
   callers waiting for that tree_size.

The sequencer never waits for any of this, so a slow witness or time-stamp
authority delays checkpoints, never appends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ledger.merkle import root_hash
from ledger.store import LogStore, PublishedCheckpoint, StoreError

logger = logging.getLogger("ledger.publisher")

DEFAULT_INTERVAL = 1.0
DEFAULT_IDLE_INTERVAL = 60.0
DEFAULT_HOOK_TIMEOUT = 30.0

# Signature lines of a C2SP signed note start with an em dash and a space.
_SIGNATURE_LINE = "\u2014 ".encode()

NoteHook = Callable[[bytes], Awaitable[bytes]]
CheckpointSigner = Callable[[int, bytes], bytes]


class PublishError(Exception):
    """A checkpoint could not be published; the previous one stays published."""


def count_signatures(note: bytes) -> int:
    """Return the number of signature lines in a signed note."""
    _, separator, signatures = note.rpartition(b"\n\n")
    if not separator:
        return 0
    return sum(
        1 for line in signatures.split(b"\n") if line.startswith(_SIGNATURE_LINE)
    )


class Publisher:
    """Publishes checkpoints of a store's committed tree at a fixed interval.

    `sign_checkpoint(tree_size, root_hash)` returns the signed checkpoint
    note. Requires 0 < interval <= idle_interval (seconds). The quorum is
    the larger of the `quorum` argument and the quorum in the store's
    configuration, so a restart without witness options still never
    publishes below it. When the quorum is above 0 a cosign hook is
    required, and a published note carries at least quorum signatures
    besides the log's own.
    """

    def __init__(
        self,
        store: LogStore,
        sign_checkpoint: CheckpointSigner,
        *,
        interval: float = DEFAULT_INTERVAL,
        idle_interval: float = DEFAULT_IDLE_INTERVAL,
        time_stamp: NoteHook | None = None,
        cosign: NoteHook | None = None,
        quorum: int = 0,
        hook_timeout: float = DEFAULT_HOOK_TIMEOUT,
    ) -> None:
        if not 0 < interval <= idle_interval:
            raise ValueError(
                f"interval {interval} and idle_interval {idle_interval} must"
                " satisfy 0 < interval <= idle_interval"
            )
        try:
            quorum = max(quorum, store.config().quorum)
        except StoreError:
            # A store without configuration has no witnesses to require.
            pass
        if quorum > 0 and cosign is None:
            raise ValueError(
                f"the log requires {quorum} cosignatures but no cosign hook was"
                " given; pass ledger.witnessing.Witnessing as cosign"
            )
        self.store = store
        self.sign_checkpoint = sign_checkpoint
        self.interval = interval
        self.idle_interval = idle_interval
        self.time_stamp = time_stamp
        self.cosign = cosign
        self.quorum = quorum
        self.hook_timeout = hook_timeout
        self._latest = store.latest_checkpoint()
        self._last_attempt = 0.0
        self._lock = asyncio.Lock()
        self._waiters: list[tuple[int, asyncio.Future[bytes]]] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def latest(self) -> PublishedCheckpoint | None:
        """The latest published checkpoint, or None before the first."""
        return self._latest

    async def start(self) -> None:
        """Start publishing in the background."""
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="ledger-publisher")

    async def close(self) -> None:
        """Stop publishing; callers still waiting get PublishError."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(PublishError("the publisher was closed"))
        self._waiters.clear()

    async def wait_for_tree_size(self, tree_size: int) -> bytes:
        """Return the first published checkpoint note with at least tree_size leaves."""
        if self._latest is not None and self._latest.tree_size >= tree_size:
            return self._latest.note
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters.append((tree_size, future))
        return await future

    async def publish(self) -> PublishedCheckpoint:
        """Publish a checkpoint of the committed tree now and return it.

        Raises PublishError when cosigning fails; the previous checkpoint
        stays published.
        """
        async with self._lock:
            self._last_attempt = time.monotonic()
            return await self._publish()

    async def _publish(self) -> PublishedCheckpoint:
        # 1. One snapshot gives a committed tree_size and its root_hash.
        with self.store.view() as view:
            tree_size = view.tree_size()
            root = root_hash(tree_size, view)

        # 2. Sign and record every signed checkpoint, so that the
        #    append-only property can be checked against all of them.
        note = self.sign_checkpoint(tree_size, root)
        await asyncio.to_thread(self.store.put_signed_checkpoint, tree_size, note)

        # 3. A missing time-stamp token only costs the trusted time of this
        #    checkpoint; the next one gets another chance.
        token = None
        if self.time_stamp is not None:
            try:
                token = await asyncio.wait_for(self.time_stamp(note), self.hook_timeout)
            except Exception as error:
                logger.warning(
                    "time-stamping checkpoint of tree_size %d failed: %s",
                    tree_size,
                    error,
                )

        # 4. Below quorum nothing is published.
        published = note
        if self.cosign is not None:
            try:
                published = await asyncio.wait_for(self.cosign(note), self.hook_timeout)
            except Exception as error:
                raise PublishError(
                    f"cosigning checkpoint of tree_size {tree_size} failed: {error}"
                ) from error
            cosignatures = count_signatures(published) - count_signatures(note)
            if not published.startswith(note.rpartition(b"\n\n")[0]):
                raise PublishError(
                    f"the cosign hook returned a note for another checkpoint than"
                    f" tree_size {tree_size}"
                )
            if cosignatures < self.quorum:
                raise PublishError(
                    f"checkpoint of tree_size {tree_size} has {cosignatures}"
                    f" cosignatures, below the quorum of {self.quorum}"
                )

        # 5. Publish and wake the waiters.
        checkpoint = PublishedCheckpoint(tree_size, published, token)
        await asyncio.to_thread(self.store.publish_checkpoint, checkpoint)
        self._latest = checkpoint
        remaining = []
        for expected_size, future in self._waiters:
            if future.done():
                continue
            if expected_size <= tree_size:
                future.set_result(published)
            else:
                remaining.append((expected_size, future))
        self._waiters = remaining
        logger.debug("published checkpoint of tree_size %d", tree_size)
        return checkpoint

    def _due(self) -> bool:
        if self._latest is None:
            return True
        if self.store.tree_size() > self._latest.tree_size:
            return True
        return time.monotonic() - self._last_attempt >= self.idle_interval

    async def _run(self) -> None:
        while not self._stop.is_set():
            if self._due():
                try:
                    await self.publish()
                except PublishError as error:
                    logger.warning("%s; keeping the last published checkpoint", error)
                except Exception:
                    logger.exception("publishing a checkpoint failed")
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except TimeoutError:
                pass
