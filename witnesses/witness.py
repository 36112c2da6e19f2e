"""The witness: checks a log's new checkpoint against the last one it cosigned.

`Witness.add_checkpoint` implements the checks of C2SP tlog-witness
`add-checkpoint` and returns the cosignature lines (C2SP tlog-cosignature,
cosignature/v1, Ed25519). Each rejection raises a `WitnessError` subclass that
carries the HTTP status the spec gives, so that the HTTP layer maps errors to
responses in one place.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ledger import checkpoint as checkpoint_format
from ledger import merkle
from ledger import note as note_format
from witnesses.protocol import RequestFormatError, parse_add_checkpoint
from witnesses.state import CosignedState, WitnessState

logger = logging.getLogger("witnesses.witness")


class WitnessError(Exception):
    """A rejected add-checkpoint request; `status` is its HTTP status code."""

    status = 400


class MalformedRequestError(WitnessError):
    """The request body, note or checkpoint is malformed (400)."""

    status = 400


class UnknownOriginError(WitnessError):
    """The checkpoint origin is not a log this witness is configured for (404)."""

    status = 404


class SignatureError(WitnessError):
    """No signature on the checkpoint verifies with the log's key (403)."""

    status = 403


class ConflictError(WitnessError):
    """The old size is not the stored tree_size, or a size has two roots (409).

    `tree_size` is the size of the latest checkpoint this witness cosigned,
    which the client sends as the old size when it retries.
    """

    status = 409

    def __init__(self, message: str, tree_size: int) -> None:
        super().__init__(message)
        self.tree_size = tree_size


class RootConflictError(ConflictError):
    """The checkpoint has another root_hash for the stored tree_size (409)."""


class ConsistencyError(WitnessError):
    """The consistency proof does not verify (422)."""

    status = 422


@dataclass(frozen=True)
class LogKey:
    """A log this witness is configured for: its origin and note verifier."""

    origin: str
    vkey: str
    verifier: note_format.Verifier


def origin_hash(origin: str) -> str:
    """Return the lowercase hex SHA-256 of origin, the URL path of its state."""
    return hashlib.sha256(origin.encode()).hexdigest()


def parse_log_vkey(vkey: str) -> LogKey:
    """Parse a log's vkey; the log's origin is the key name.

    Raises `note_format.NoteError` for a malformed vkey.
    """
    verifier = note_format.Ed25519Verifier.from_vkey(vkey.strip())
    return LogKey(verifier.name, vkey.strip(), verifier)


class Witness:
    """Cosigns checkpoints of the configured logs, keeping state in LMDB."""

    def __init__(
        self,
        state: WitnessState,
        cosigner: note_format.CosignatureSigner,
        logs: Iterable[LogKey],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.cosigner = cosigner
        # Origin to the keys trusted for it; a log can sign with several,
        # for example while it rotates its key.
        self.logs: dict[str, list[note_format.Verifier]] = {}
        for log in logs:
            self.logs.setdefault(log.origin, []).append(log.verifier)
        self._clock = clock

    @property
    def vkey(self) -> str:
        """The witness's own cosignature vkey (signature type 0x04)."""
        return self.cosigner.vkey

    def add_checkpoint(self, body: bytes) -> bytes:
        """Check and cosign the checkpoint in an add-checkpoint request body.

        Returns the cosignature lines, after the new state is committed.
        Raises a `WitnessError` subclass to reject the request.
        """
        # 1. Parse the request, the note and the checkpoint.
        try:
            request = parse_add_checkpoint(body)
            note = note_format.parse_note(request.note)
            checkpoint = checkpoint_format.Checkpoint.parse(note.text)
        except (RequestFormatError, note_format.NoteError, ValueError) as error:
            raise MalformedRequestError(str(error)) from error

        # 2. The origin must be a configured log, signed by its key.
        verifiers = self.logs.get(checkpoint.origin)
        if verifiers is None:
            raise UnknownOriginError(
                f"unknown log origin {checkpoint.origin!r}; this witness is "
                "not configured for it"
            )
        try:
            note_format.verify_note(note, verifiers)
        except note_format.NoteError as error:
            raise SignatureError(
                f"no signature of a key trusted for {checkpoint.origin} "
                f"verifies: {error}"
            ) from error

        # 3. Size checks that need no state.
        if request.old_size > checkpoint.tree_size:
            raise MalformedRequestError(
                f"old size {request.old_size} exceeds the checkpoint tree_size "
                f"{checkpoint.tree_size}"
            )
        if request.old_size == 0 and request.consistency_proof:
            raise MalformedRequestError(
                "old size is 0, so the consistency proof must be empty"
            )

        # 4. Check against the stored state, cosign and persist, atomically.
        def check(stored: CosignedState | None) -> None:
            self._check_against(
                stored, request.old_size, request.consistency_proof, checkpoint
            )

        timestamp = int(self._clock())
        lines: list[bytes] = []

        def cosign() -> bytes:
            line = self.cosigner.cosign(note.text, timestamp)
            lines.append(line)
            return request.note + line

        try:
            self.state.advance(
                checkpoint.origin,
                check,
                checkpoint.tree_size,
                checkpoint.root_hash,
                cosign,
            )
        except (ConflictError, ConsistencyError) as error:
            stored = self.state.latest(checkpoint.origin)
            if isinstance(error, (ConsistencyError, RootConflictError)):
                logger.warning(
                    "rejected checkpoint of %s at tree_size %d kept as evidence: %s",
                    checkpoint.origin,
                    checkpoint.tree_size,
                    error,
                )
                self.state.record_evidence(
                    checkpoint.origin,
                    str(error),
                    request.note,
                    None if stored is None else stored.note,
                )
            raise
        return b"".join(lines)

    def _check_against(
        self,
        stored: CosignedState | None,
        old_size: int,
        proof: list[bytes],
        checkpoint: checkpoint_format.Checkpoint,
    ) -> None:
        stored_size = 0 if stored is None else stored.tree_size
        if old_size != stored_size:
            raise ConflictError(
                f"old size {old_size} is not the latest cosigned tree_size "
                f"{stored_size}; retry from {stored_size}",
                stored_size,
            )

        # Old size 0 has no root to be consistent with, and its proof is
        # empty, which Merkle proof verifiers reject, so it is settled here.
        if old_size == 0:
            if checkpoint.tree_size == 0 and not hmac.compare_digest(
                checkpoint.root_hash, merkle.EMPTY_ROOT
            ):
                raise ConsistencyError(
                    "a checkpoint of tree_size 0 must have the root_hash of "
                    "the empty tree"
                )
            return

        assert stored is not None
        if old_size == checkpoint.tree_size:
            if not hmac.compare_digest(stored.root_hash, checkpoint.root_hash):
                raise RootConflictError(
                    f"tree_size {old_size} was cosigned with a different "
                    "root_hash; this witness never cosigns two roots for one size",
                    stored_size,
                )
            if proof:
                raise MalformedRequestError(
                    "old size equals the checkpoint tree_size, so the "
                    "consistency proof must be empty"
                )
            return

        try:
            merkle.verify_consistency(
                old_size,
                checkpoint.tree_size,
                proof,
                stored.root_hash,
                checkpoint.root_hash,
            )
        except merkle.ProofError as error:
            raise ConsistencyError(
                f"consistency proof from {old_size} to {checkpoint.tree_size} "
                f"does not verify: {error}"
            ) from error
