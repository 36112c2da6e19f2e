"""Gossip against split views: compare checkpoints with peer witnesses and mirrors.

Each node serves its latest checkpoint of a log at `<base URL>/<origin
hash>/checkpoint`, where the origin hash is the lowercase hex SHA-256 of the
origin. A gossip round fetches that checkpoint from every peer, checks the
log's signature, and looks up the local node's root_hash for the same
tree_size. A witness has one for every size it cosigned, a mirror for every
size up to its verified checkpoint. Two different root_hashes for one tree_size, both
signed by the log, are a fork, reported with both signed notes.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import aiohttp

from ledger import checkpoint as checkpoint_format
from ledger import note as note_format
from witnesses.evidence import ForkEvidence
from witnesses.witness import origin_hash

logger = logging.getLogger("witnesses.gossip")

MAX_CHECKPOINT_BYTES = 64 * 1024


class CheckpointView(Protocol):
    """A node's own record of a log, as gossip needs it."""

    def root_at(self, tree_size: int) -> tuple[bytes, bytes] | None:
        """Return (root_hash, a signed note that commits to it), or None.

        None when the node has no root_hash for that tree_size.
        """
        ...


class PeerError(Exception):
    """A peer's checkpoint could not be fetched or did not verify."""


async def fetch_peer_checkpoint(
    session: aiohttp.ClientSession, peer_url: str, origin: str, timeout: float
) -> bytes | None:
    """Return a peer's latest checkpoint note of origin, or None if it has none."""
    url = f"{peer_url.rstrip('/')}/{origin_hash(origin)}/checkpoint"
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if response.status == 404:
                return None
            if response.status != 200:
                raise PeerError(f"GET {url} returned {response.status}")
            body = await response.content.read(MAX_CHECKPOINT_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise PeerError(f"GET {url} failed: {type(error).__name__} {error}") from error
    if len(body) > MAX_CHECKPOINT_BYTES:
        raise PeerError(f"GET {url} returned more than {MAX_CHECKPOINT_BYTES} bytes")
    return body


def compare_checkpoint(
    origin: str,
    verifiers: Sequence[note_format.Verifier],
    view: CheckpointView,
    peer_note: bytes,
    source: str,
) -> ForkEvidence | None:
    """Compare a peer's checkpoint with the local view; return a fork or None.

    Raises PeerError when the peer's note is malformed or lacks a valid
    signature of the log, which is no evidence against the log.
    """
    try:
        parsed = note_format.parse_note(peer_note)
        note_format.verify_note(parsed, verifiers)
        checkpoint = checkpoint_format.Checkpoint.parse(parsed.text)
    except (note_format.NoteError, ValueError) as error:
        raise PeerError(f"checkpoint from {source} does not verify: {error}") from error
    if checkpoint.origin != origin:
        raise PeerError(
            f"checkpoint from {source} has origin {checkpoint.origin!r}, not {origin!r}"
        )
    local = view.root_at(checkpoint.tree_size)
    if local is None:
        return None
    root_hash, local_note = local
    if hmac.compare_digest(root_hash, checkpoint.root_hash):
        return None
    return ForkEvidence(
        origin,
        f"two root_hashes signed for tree_size {checkpoint.tree_size}",
        local_note,
        peer_note,
        (),
        source,
    )


class Gossip:
    """Compares one node's view of a log with its peers, round after round."""

    def __init__(
        self,
        origin: str,
        verifiers: Sequence[note_format.Verifier],
        view: CheckpointView,
        peers: Sequence[str],
        report: Callable[[ForkEvidence], None],
        interval: float = 5.0,
        timeout: float = 5.0,
    ) -> None:
        self.origin = origin
        self.verifiers = list(verifiers)
        self.view = view
        self.peers = list(peers)
        self.report = report
        self.interval = interval
        self.timeout = timeout

    async def run_once(self, session: aiohttp.ClientSession) -> list[ForkEvidence]:
        """Compare with every peer once; report and return the forks found."""
        forks = []
        for peer in self.peers:
            try:
                note = await fetch_peer_checkpoint(
                    session, peer, self.origin, self.timeout
                )
                if note is None:
                    continue
                evidence = await asyncio.to_thread(
                    compare_checkpoint,
                    self.origin,
                    self.verifiers,
                    self.view,
                    note,
                    peer,
                )
            except PeerError as error:
                logger.warning("gossip with %s skipped: %s", peer, error)
                continue
            if evidence is not None:
                logger.error(
                    "fork of %s found by gossip with %s: %s",
                    self.origin,
                    peer,
                    evidence.reason,
                )
                self.report(evidence)
                forks.append(evidence)
        return forks

    async def run_forever(self) -> None:
        """Run a round every `interval` seconds until cancelled."""
        async with aiohttp.ClientSession() as session:
            while True:
                await self.run_once(session)
                await asyncio.sleep(self.interval)
