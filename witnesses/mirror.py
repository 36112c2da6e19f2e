"""The mirror: a verified full copy of a log, fetched through its tiles API.

Each round (`Mirror.update`) fetches the log's checkpoint and checks the
log's signature. If the tree grew, it fetches the new entry bundles, hashes
every entry itself, and computes the root_hash of the new tree from its own
stored hashes before it stores anything. It stores and serves only a
checkpoint whose root_hash matches, and only after a consistency proof from
the previous verified checkpoint, built from its own hashes, verifies.

A fork is a checkpoint that cannot be true together with the verified one:
another root_hash for a size the mirror holds, or a tree that the log's own
consistency proof does not show to extend it. The mirror rejects it, writes
both signed notes to `DIR/forks/` as evidence, and keeps serving its last
verified checkpoint. The download follows C2SP tlog-tiles. The push protocol
of the C2SP tlog-mirror draft (add-entries) is not implemented.

Durability: entries and hashes commit in one synced LMDB transaction, and the
checkpoint after them, so a crash between the two leaves entries beyond the
served checkpoint; the next round finds them already stored and checks them
against the next checkpoint like any others. NOTE: until then the tile API,
which serves the store's committed tree, also serves those entries.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from ledger import checkpoint as checkpoint_format
from ledger import merkle
from ledger import note as note_format
from ledger.store import LogConfig, LogStore, PublishedCheckpoint, StoreError
from witnesses.evidence import ForkEvidence, read_evidence, write_evidence

logger = logging.getLogger("witnesses.mirror")

MAX_CHECKPOINT_BYTES = 64 * 1024
# An entry bundle contains 256 entries of at most 65,535 bytes plus prefixes.
MAX_BUNDLE_BYTES = 256 * (65_535 + 2)


class MirrorError(Exception):
    """A round failed; the mirror keeps its last verified checkpoint."""


class ForkError(MirrorError):
    """The log signed a checkpoint inconsistent with a verified one."""

    def __init__(self, message: str, evidence: ForkEvidence) -> None:
        super().__init__(message)
        self.evidence = evidence


class _OverlayReader:
    """Stored hashes of the store, plus those computed for unstored leaves."""

    def __init__(self, store: LogStore) -> None:
        self._store = store
        self.computed: dict[tuple[int, int], bytes] = {}

    def read_hashes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        missing = [node for node in ids if node not in self.computed]
        stored = dict(zip(missing, self._store.read_hashes(missing))) if missing else {}
        return [
            self.computed[node] if node in self.computed else stored[node]
            for node in ids
        ]


class Mirror:
    """Follows one log at source_url into an LMDB store in data_dir."""

    def __init__(self, data_dir: Path, source_url: str, log_vkey: str) -> None:
        self.source_url = source_url.rstrip("/")
        self.verifier = note_format.Ed25519Verifier.from_vkey(log_vkey)
        self.origin = self.verifier.name
        self.forks_dir = data_dir / "forks"
        path = data_dir / "mirror.lmdb"
        path.mkdir(parents=True, exist_ok=True)
        self.store = LogStore(path, create=True)
        try:
            stored_origin = self.store.config().origin
        except StoreError:
            self.store.write_config(LogConfig(origin=self.origin))
            stored_origin = self.origin
        if stored_origin != self.origin:
            self.store.close()
            raise MirrorError(
                f"{path} mirrors {stored_origin!r}, not {self.origin!r}; use "
                "another data folder for another log"
            )

    def close(self) -> None:
        """Close the mirror's store."""
        self.store.close()

    def forks(self) -> list[dict[str, object]]:
        """Return the fork evidence this mirror recorded."""
        return read_evidence(self.forks_dir)

    def verified_checkpoint(self) -> PublishedCheckpoint | None:
        """Return the latest checkpoint this mirror verified and serves."""
        return self.store.latest_checkpoint()

    def root_at(self, tree_size: int) -> tuple[bytes, bytes] | None:
        """Return (root_hash at tree_size, verified note covering it), or None.

        None when tree_size is beyond the latest verified checkpoint.
        """
        verified = self.store.latest_checkpoint()
        if verified is None or tree_size > verified.tree_size:
            return None
        return merkle.root_hash(tree_size, self.store), verified.note

    async def update(self, session: aiohttp.ClientSession) -> int:
        """Fetch, verify and store the log's latest checkpoint and entries.

        Returns the tree_size of the verified checkpoint the mirror serves.
        Raises ForkError after recording evidence, or MirrorError when the
        log is unreachable or serves data that does not match its checkpoint.
        """
        # 1. Fetch the checkpoint and check the log's signature.
        note = await self._get(session, "/log/checkpoint", MAX_CHECKPOINT_BYTES)
        checkpoint = self._verify_note(note)

        # 2. Compare with the verified state.
        verified = self.store.latest_checkpoint()
        verified_size = 0 if verified is None else verified.tree_size
        if verified is not None and checkpoint.tree_size <= verified_size:
            own_root = merkle.root_hash(checkpoint.tree_size, self.store)
            if not hmac.compare_digest(own_root, checkpoint.root_hash):
                self._fork(
                    f"root_hash of tree_size {checkpoint.tree_size} differs from "
                    "the tree this mirror verified",
                    verified.note,
                    note,
                )
            if checkpoint.tree_size == verified_size and note != verified.note:
                # The same tree, perhaps with more cosignatures: serve the newest.
                token = await self._time_stamp_token(session, verified_size)
                self.store.publish_checkpoint(
                    PublishedCheckpoint(verified_size, note, token)
                )
            return verified_size

        # 3. Fetch and hash the new entries; check the root before storing.
        entries = await self._fetch_entries(
            session, verified_size, checkpoint.tree_size
        )
        computed = self._root_with(verified_size, entries)
        if not hmac.compare_digest(computed, checkpoint.root_hash):
            await self._explain_mismatch(session, verified, note, checkpoint)

        # 4. Store the entries, then check the stored tree once more.
        self._store_entries(verified_size, entries)
        stored_root = merkle.root_hash(checkpoint.tree_size, self.store)
        if not hmac.compare_digest(stored_root, checkpoint.root_hash):
            raise MirrorError(
                f"stored tree of size {checkpoint.tree_size} does not match the "
                "root_hash computed before storing; the store may be damaged"
            )
        if verified is not None and verified_size > 0:
            old_root = merkle.root_hash(verified_size, self.store)
            proof = merkle.consistency_proof(
                verified_size, checkpoint.tree_size, self.store
            )
            merkle.verify_consistency(
                verified_size,
                checkpoint.tree_size,
                proof,
                old_root,
                checkpoint.root_hash,
            )

        # 5. Serve the new checkpoint.
        token = await self._time_stamp_token(session, checkpoint.tree_size)
        self.store.put_signed_checkpoint(checkpoint.tree_size, note)
        self.store.publish_checkpoint(
            PublishedCheckpoint(checkpoint.tree_size, note, token)
        )
        logger.info("mirrored %s up to tree_size %d", self.origin, checkpoint.tree_size)
        return checkpoint.tree_size

    async def _time_stamp_token(
        self, session: aiohttp.ClientSession, tree_size: int
    ) -> bytes | None:
        """Return the log's time-stamp token for tree_size, or None.

        The token is copied as served, so that the mirror's /log/checkpoint.tsr
        matches the log's; whoever relies on it verifies it against the TSA
        certificate, which the mirror does not have. A token for another
        tree_size, or none at all, leaves the mirrored checkpoint without one.
        """
        url = self.source_url + "/log/checkpoint.tsr"
        try:
            async with session.get(url) as response:
                if response.status != 200:
                    return None
                if response.headers.get("Ledger-Tree-Size") != str(tree_size):
                    return None
                token = await response.content.read(MAX_CHECKPOINT_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("GET %s failed: %s", url, error)
            return None
        return token if len(token) <= MAX_CHECKPOINT_BYTES else None

    def _verify_note(self, note: bytes) -> checkpoint_format.Checkpoint:
        try:
            parsed = note_format.parse_note(note)
            note_format.verify_note(parsed, [self.verifier])
            checkpoint = checkpoint_format.Checkpoint.parse(parsed.text)
        except (note_format.NoteError, ValueError) as error:
            raise MirrorError(
                f"invalid checkpoint from {self.source_url}: {error}"
            ) from error
        if checkpoint.origin != self.origin:
            raise MirrorError(
                f"checkpoint origin {checkpoint.origin!r} is not the mirrored "
                f"log {self.origin!r}"
            )
        return checkpoint

    async def _get(
        self, session: aiohttp.ClientSession, path: str, limit: int
    ) -> bytes:
        url = self.source_url + path
        try:
            async with session.get(url) as response:
                if response.status != 200:
                    reason = (await response.content.read(200)).decode(errors="replace")
                    raise MirrorError(
                        f"GET {url} returned {response.status}: {reason.strip()}"
                    )
                body = await response.content.read(limit + 1)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise MirrorError(
                f"GET {url} failed: {type(error).__name__} {error}"
            ) from error
        if len(body) > limit:
            raise MirrorError(f"GET {url} returned more than {limit} bytes")
        return body

    async def _fetch_entries(
        self, session: aiohttp.ClientSession, begin: int, end: int
    ) -> list[bytes]:
        """Fetch the entries [begin, end) from the log's entry bundles.

        NOTE: a round holds all its new entries in memory, because the root
        must match before any is stored; a mirror far behind a large log
        needs memory in proportion to the gap.
        """
        entries: list[bytes] = []
        width = merkle.TILE_WIDTH
        for index in range(begin // width, (end - 1) // width + 1):
            bundle_width = min(width, end - index * width)
            path = "/log/" + merkle.entries_path(index, bundle_width)
            data = await self._get(session, path, MAX_BUNDLE_BYTES)
            try:
                bundle = merkle.decode_entry_bundle(data)
            except merkle.TileError as error:
                raise MirrorError(f"malformed entry bundle {path}: {error}") from error
            if len(bundle) != bundle_width:
                raise MirrorError(
                    f"entry bundle {path} contains {len(bundle)} entries, expected {bundle_width}"
                )
            skip = max(0, begin - index * width)
            entries.extend(bytes(entry) for entry in bundle[skip:])
        return entries

    def _root_with(self, tree_size: int, entries: list[bytes]) -> bytes:
        """Return the root_hash of the stored tree of tree_size plus entries."""
        reader = _OverlayReader(self.store)
        for offset, entry in enumerate(entries):
            leaf_index = tree_size + offset
            for level, index, value in merkle.stored_hashes_for_leaf(
                leaf_index, merkle.leaf_hash(entry), reader
            ):
                reader.computed[(level, index)] = value
        return merkle.root_hash(tree_size + len(entries), reader)

    def _store_entries(self, verified_size: int, entries: list[bytes]) -> None:
        """Append entries after the verified tree, skipping any already stored.

        Entries can already be stored beyond the verified checkpoint when a
        crash came between their commit and the checkpoint's.
        """
        stored_size = self.store.tree_size()
        already = min(stored_size - verified_size, len(entries))
        for offset in range(already):
            leaf_index = verified_size + offset
            stored = merkle.leaf_hash(self.store.read_entry(leaf_index))
            if not hmac.compare_digest(stored, merkle.leaf_hash(entries[offset])):
                raise MirrorError(
                    f"entry {leaf_index}, stored beyond the verified checkpoint "
                    "before a crash, differs from the log's; move the data "
                    "folder aside and mirror the log again"
                )
        if entries[already:]:
            self._append(stored_size, entries[already:])

    def _append(self, tree_size: int, entries: list[bytes]) -> None:
        # The store keeps one copy of identical entries, so a log holding a
        # duplicate cannot be mirrored position for position.
        results = self.store.append_batch(entries)
        for offset, result in enumerate(results):
            if result.duplicate or result.leaf_index != tree_size + offset:
                raise MirrorError(
                    f"entry {tree_size + offset} duplicates entry "
                    f"{result.leaf_index}; the mirror store keeps one copy per entry"
                )

    async def _explain_mismatch(
        self,
        session: aiohttp.ClientSession,
        verified: PublishedCheckpoint | None,
        note: bytes,
        checkpoint: checkpoint_format.Checkpoint,
    ) -> None:
        """Raise ForkError or MirrorError for entries that miss the root_hash."""
        if verified is None or verified.tree_size == 0:
            raise MirrorError(
                f"entries served for tree_size {checkpoint.tree_size} do not hash "
                "to the checkpoint's root_hash"
            )
        size1 = verified.tree_size
        old_root = merkle.root_hash(size1, self.store)
        path = f"/log/proof/consistency?size1={size1}&size2={checkpoint.tree_size}"
        proof: list[bytes] = []
        try:
            body = await self._get(session, path, MAX_CHECKPOINT_BYTES)
            proof = [
                base64.b64decode(node) for node in json.loads(body)["consistency_proof"]
            ]
            merkle.verify_consistency(
                size1, checkpoint.tree_size, proof, old_root, checkpoint.root_hash
            )
        except merkle.ProofError:
            self._fork(
                f"tree_size {checkpoint.tree_size} does not extend the verified "
                f"tree_size {size1}: the log's consistency proof fails",
                verified.note,
                note,
                proof,
            )
        except (MirrorError, ValueError, KeyError, TypeError) as error:
            raise MirrorError(
                f"entries do not hash to the root_hash of tree_size "
                f"{checkpoint.tree_size}, and no consistency proof from "
                f"{size1} could be checked: {error}"
            ) from error
        raise MirrorError(
            f"entries served for [{size1}, {checkpoint.tree_size}) do not hash to "
            "the checkpoint's root_hash, although the log's consistency proof "
            "verifies; the log serves wrong entry bundles"
        )

    def _fork(
        self,
        reason: str,
        verified_note: bytes,
        conflicting_note: bytes,
        proof: Sequence[bytes] = (),
    ) -> None:
        evidence = ForkEvidence(
            self.origin,
            reason,
            verified_note,
            conflicting_note,
            tuple(proof),
            self.source_url,
        )
        path = write_evidence(self.forks_dir, evidence)
        logger.error(
            "fork of %s detected: %s; evidence in %s", self.origin, reason, path
        )
        raise ForkError(reason, evidence)
