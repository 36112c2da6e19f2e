"""The log side of witnessing: collect cosignatures on each new checkpoint.

`Witnessing` is the publisher's cosigning hook (`Callable[[bytes],
Awaitable[bytes]]`, signed note in, cosigned note out). It sends the
checkpoint to every configured witness in parallel with C2SP tlog-witness
`add-checkpoint`. Each request carries a consistency proof from the size that
witness last cosigned. The note comes back with the cosignatures as soon as
`quorum` witnesses returned a valid one. A witness that is down, slow or
returns garbage costs at most `attempts` timeouts and never an append: the
sequencer does not wait for this hook.

A 409 response carries the witness's tree_size, and the client retries at
once with a proof from that size. After a restart the client starts from old
size 0, so this is also how it finds each witness's size.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from ledger import checkpoint as checkpoint_format
from ledger import note as note_format

logger = logging.getLogger("ledger.witnessing")

# One log signature, a few cosignatures and 63 proof lines fit in 8 KiB.
MAX_RESPONSE_BYTES = 64 * 1024
# Retries after a 409 that taught a new size do not count as failed attempts,
# but a witness whose size keeps moving gets only this many of them.
MAX_SIZE_RETRIES = 3

ConsistencyProofSource = Callable[[int, int], Sequence[bytes]]


class WitnessingError(Exception):
    """Fewer witnesses than the quorum returned a valid cosignature."""

    def __init__(self, message: str, failures: dict[str, str]) -> None:
        super().__init__(message)
        self.failures = failures


class WitnessRequestError(Exception):
    """One witness did not return a valid cosignature for one checkpoint."""


# A witness URL of the form unix:<path> is reached through that Unix socket.
UNIX_PREFIX = "unix:"


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness of the log: its submission prefix URL and cosignature vkey.

    The URL is `http://host:port[/prefix]`, or `unix:<path>` for a witness
    listening on a Unix socket (for example in another network namespace).
    """

    url: str
    vkey: str


def format_add_checkpoint(
    old_size: int, consistency_proof: Sequence[bytes], note: bytes
) -> bytes:
    """Build a C2SP tlog-witness add-checkpoint request body.

    Preconditions: 0 <= old_size, len(consistency_proof) <= 63.
    """
    lines = [b"old %d\n" % old_size]
    lines.extend(base64.b64encode(node) + b"\n" for node in consistency_proof)
    lines.append(b"\n")
    return b"".join(lines) + note


class _WitnessClient:
    """The log's view of one witness: the size it last cosigned, and a lock.

    The lock keeps one request in flight per witness, because two concurrent
    requests from the same old size would make one of them fail with 409.
    """

    def __init__(self, endpoint: WitnessEndpoint) -> None:
        self.endpoint = endpoint
        self.verifier = note_format.CosignatureVerifier.from_vkey(endpoint.vkey)
        self.name = self.verifier.name
        # None until a response showed the witness's size, so the first
        # request starts from 0 and a 409 then returns the real size.
        self.tree_size: int | None = None
        self.lock = asyncio.Lock()
        # The request waiting for the lock, if any. A newer request cancels
        # it, so a slow witness has at most one request running and one
        # waiting, however many checkpoints the log signs meanwhile.
        self.waiting: asyncio.Task | None = None
        self.unix_path: str | None = None
        self.session: aiohttp.ClientSession | None = None
        self.url = endpoint.url.rstrip("/")
        if endpoint.url.startswith(UNIX_PREFIX):
            self.unix_path = endpoint.url.removeprefix(UNIX_PREFIX)
            # The host name is ignored on a Unix socket.
            self.url = "http://localhost"


class Witnessing:
    """Requests cosignatures on checkpoints until a quorum returned them.

    `consistency_proof(size1, size2)` returns the log's consistency proof
    for 0 < size1 < size2 <= the tree_size of the checkpoint being cosigned.
    Preconditions: 0 <= quorum <= len(witnesses), timeout > 0, attempts >= 1.
    Calls are expected one after another, as the publisher makes them: a
    request still waiting for a busy witness is dropped when a newer call
    starts one for that witness.
    """

    def __init__(
        self,
        witnesses: Sequence[WitnessEndpoint],
        quorum: int,
        consistency_proof: ConsistencyProofSource,
        timeout: float = 5.0,
        attempts: int = 3,
        retry_delay: float = 0.2,
    ) -> None:
        if not 0 <= quorum <= len(witnesses):
            raise ValueError(
                f"quorum {quorum} must be between 0 and the number of "
                f"witnesses, {len(witnesses)}"
            )
        self.quorum = quorum
        self._clients = [_WitnessClient(endpoint) for endpoint in witnesses]
        self._consistency_proof = consistency_proof
        self._timeout = timeout
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._session: aiohttp.ClientSession | None = None
        # Requests still running after the quorum was reached, kept referenced
        # so that they finish and bring those witnesses up to date.
        self._stragglers: set[asyncio.Task[bytes]] = set()

    async def __call__(self, note: bytes) -> bytes:
        return await self.cosign(note)

    async def cosign(self, note: bytes) -> bytes:
        """Return note with the cosignatures of at least `quorum` witnesses.

        Raises WitnessingError when too few witnesses returned a valid
        cosignature; the failures map each witness name to its reason.
        """
        parsed = note_format.parse_note(note)
        checkpoint = checkpoint_format.Checkpoint.parse(parsed.text)
        if self.quorum == 0:
            return note

        logger.debug(
            "requesting cosignatures on tree_size %d from %d witnesses",
            checkpoint.tree_size,
            len(self._clients),
        )
        tasks = {
            asyncio.ensure_future(self._ask(client, note, checkpoint)): client
            for client in self._clients
        }
        cosignatures: dict[str, bytes] = {}
        failures: dict[str, str] = {}
        pending = set(tasks)
        try:
            while pending and len(cosignatures) < self.quorum:
                if len(self._clients) - len(failures) < self.quorum:
                    break
                done, pending = await asyncio.wait(
                    pending, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    client = tasks[task]
                    if task.cancelled():
                        failures[client.name] = "superseded by a newer checkpoint"
                        continue
                    try:
                        cosignatures[client.name] = task.result()
                        logger.debug(
                            "witness %s cosigned tree_size %d",
                            client.name,
                            checkpoint.tree_size,
                        )
                    except WitnessRequestError as error:
                        failures[client.name] = str(error)
                        logger.warning(
                            "witness %s did not cosign tree_size %d: %s",
                            client.name,
                            checkpoint.tree_size,
                            error,
                        )
        finally:
            # Also when the caller cancels this call (a publisher timeout),
            # the requests in flight finish in the background.
            for task in pending:
                self._stragglers.add(task)
                task.add_done_callback(self._straggler_done)

        if len(cosignatures) < self.quorum:
            raise WitnessingError(
                f"only {len(cosignatures)} of the {self.quorum} cosignatures "
                f"needed for tree_size {checkpoint.tree_size}; failed: "
                + "; ".join(f"{name}: {reason}" for name, reason in failures.items()),
                failures,
            )
        # Cosignature lines in the configured witness order, after the log's.
        lines = [
            cosignatures[client.name]
            for client in self._clients
            if client.name in cosignatures
        ]
        return note + b"".join(lines)

    def _straggler_done(self, task: asyncio.Task[bytes]) -> None:
        self._stragglers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("late witness request failed: %s", task.exception())

    async def close(self) -> None:
        """Cancel late requests and close the HTTP session."""
        for task in list(self._stragglers):
            task.cancel()
        if self._stragglers:
            await asyncio.gather(*self._stragglers, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        for client in self._clients:
            if client.session is not None:
                await client.session.close()
                client.session = None

    def _http(self, client: _WitnessClient) -> aiohttp.ClientSession:
        if client.unix_path is not None:
            # A witness behind a Unix socket gets a session of its own.
            if client.session is None:
                connector = aiohttp.UnixConnector(path=client.unix_path)
                client.session = aiohttp.ClientSession(connector=connector)
            return client.session
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _ask(
        self,
        client: _WitnessClient,
        note: bytes,
        checkpoint: checkpoint_format.Checkpoint,
    ) -> bytes:
        """Return the cosignature line of one witness, retrying transient errors."""
        if client.waiting is not None and not client.waiting.done():
            client.waiting.cancel()
        client.waiting = asyncio.current_task()
        async with client.lock:
            if client.waiting is asyncio.current_task():
                client.waiting = None
            failed_attempts = 0
            size_retries = 0
            last_error = "no attempt made"
            while failed_attempts < self._attempts:
                old_size = client.tree_size or 0
                if old_size > checkpoint.tree_size:
                    raise WitnessRequestError(
                        f"witness already cosigned tree_size {old_size}, newer "
                        f"than {checkpoint.tree_size}"
                    )
                try:
                    return await self._post(client, old_size, note, checkpoint)
                except _SizeConflict as conflict:
                    if (
                        conflict.tree_size == old_size
                        or size_retries == MAX_SIZE_RETRIES
                    ):
                        raise WitnessRequestError(str(conflict)) from conflict
                    client.tree_size = conflict.tree_size
                    size_retries += 1
                    continue
                except _TransientError as error:
                    last_error = str(error)
                failed_attempts += 1
                if failed_attempts < self._attempts:
                    await asyncio.sleep(self._retry_delay * failed_attempts)
            raise WitnessRequestError(
                f"no valid response after {self._attempts} attempts: {last_error}"
            )

    async def _post(
        self,
        client: _WitnessClient,
        old_size: int,
        note: bytes,
        checkpoint: checkpoint_format.Checkpoint,
    ) -> bytes:
        proof: Sequence[bytes] = []
        if 0 < old_size < checkpoint.tree_size:
            proof = self._consistency_proof(old_size, checkpoint.tree_size)
        body = format_add_checkpoint(old_size, proof, note)
        url = client.url + "/add-checkpoint"
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with self._http(client).post(
                url, data=body, timeout=timeout
            ) as response:
                content = await response.content.read(MAX_RESPONSE_BYTES + 1)
                status = response.status
                content_type = response.content_type
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _TransientError(
                f"request to {url} failed: {type(error).__name__} {error}"
            ) from error
        if len(content) > MAX_RESPONSE_BYTES:
            raise _TransientError(f"response larger than {MAX_RESPONSE_BYTES} bytes")

        if status == 409:
            return self._conflict(content, content_type)
        if status != 200:
            reason = content[:200].decode(errors="replace").strip()
            if 400 <= status < 500:
                # The witness rejected this checkpoint, and the same request
                # sent again gets the same response.
                raise WitnessRequestError(f"HTTP {status}: {reason}")
            raise _TransientError(f"HTTP {status}: {reason}")

        line = self._verified_cosignature(client, note, content)
        client.tree_size = checkpoint.tree_size
        return line

    def _conflict(self, content: bytes, content_type: str) -> bytes:
        if content_type != "text/x.tlog.size":
            raise _TransientError(f"409 response with content type {content_type!r}")
        text = content.decode("ascii", errors="replace")
        if not text.endswith("\n") or not text[:-1].isdigit():
            raise _TransientError(f"409 response body {text[:40]!r} is not a tree_size")
        raise _SizeConflict(int(text[:-1]))

    def _verified_cosignature(
        self, client: _WitnessClient, note: bytes, content: bytes
    ) -> bytes:
        """Return the witness's own valid cosignature line from a response."""
        try:
            cosigned = note_format.parse_note(note + content)
            verified = note_format.verified_signatures(cosigned, [client.verifier])
        except note_format.NoteError as error:
            raise _TransientError(f"invalid cosignature response: {error}") from error
        if not verified:
            raise _TransientError(
                f"response contains no valid cosignature by {client.name}"
            )
        _, signature = verified[0]
        return signature.to_line()


class _TransientError(Exception):
    """A failure that a later attempt may not repeat (network, 5xx, garbage)."""


class _SizeConflict(Exception):
    """A 409 response: the witness's latest cosigned tree_size differs."""

    def __init__(self, tree_size: int) -> None:
        super().__init__(f"witness latest cosigned tree_size is {tree_size}")
        self.tree_size = tree_size
