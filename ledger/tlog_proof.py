"""C2SP tlog-proof: an offline-verifiable proof that an entry is in a log.

The text format is the line `c2sp.org/tlog-proof@v1`, an optional line
`extra <base64>` of unauthenticated application data, the line `index <N>`,
the inclusion proof (one base64 SHA-256 hash per line, from the leaf's
sibling up), a blank line, and the checkpoint note verbatim.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.checkpoint import Checkpoint, CheckpointError
from ledger.merkle import HASH_SIZE, ProofError, verify_inclusion
from ledger.note import (
    NoteError,
    Verifier,
    parse_note,
    verified_signatures,
    verify_note,
)

HEADER = "c2sp.org/tlog-proof@v1"
# A tree of 2**64 leaves needs at most 64 proof hashes.
MAX_PROOF_HASHES = 64


class TlogProofError(ValueError):
    """A tlog-proof is malformed or does not verify."""


@dataclass(frozen=True)
class TlogProof:
    """An entry's index, its inclusion proof and the checkpoint note it proves into.

    `extra` is optional opaque data that the proof carries unauthenticated.
    """

    index: int
    hashes: Sequence[bytes]
    checkpoint: bytes
    extra: bytes | None = field(default=None)

    def encode(self) -> bytes:
        """Encode the proof in the c2sp.org/tlog-proof@v1 text format."""
        if self.index < 0:
            raise TlogProofError(f"index {self.index} is negative")
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        for position, value in enumerate(self.hashes):
            if len(value) != HASH_SIZE:
                raise TlogProofError(
                    f"proof hash {position} is {len(value)} bytes, not 32"
                )
            lines.append(base64.b64encode(value).decode())
        return ("\n".join(lines) + "\n\n").encode() + self.checkpoint

    def parsed_checkpoint(self) -> Checkpoint:
        """Parse the checkpoint note's text, without verifying any signature."""
        try:
            return Checkpoint.parse(parse_note(self.checkpoint).text)
        except (NoteError, CheckpointError) as error:
            raise TlogProofError(
                f"tlog-proof checkpoint is malformed: {error}"
            ) from error


def _decode_base64(text: str, label: str) -> bytes:
    try:
        value = base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise TlogProofError(f"{label} {text!r} is not valid base64") from error
    return value


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse a tlog-proof; raises TlogProofError naming the malformed line.

    The checkpoint must be a well-formed signed note; its signatures are not
    verified here.
    """
    split = data.find(b"\n\n")
    if split < 0:
        raise TlogProofError("tlog-proof has no blank line before the checkpoint")
    try:
        head = data[:split].decode("ascii")
    except UnicodeDecodeError as error:
        raise TlogProofError("tlog-proof header lines are not ASCII") from error
    checkpoint = data[split + 2 :]
    lines = head.split("\n")

    # 1. The version line.
    if lines[0] != HEADER:
        raise TlogProofError(
            f"tlog-proof starts with {lines[0]!r}, expected {HEADER!r}"
        )
    position = 1

    # 2. Optional extra data.
    extra = None
    if position < len(lines) and lines[position].startswith("extra "):
        extra = _decode_base64(lines[position][len("extra ") :], "extra data")
        position += 1

    # 3. The index, in decimal with no leading zeros.
    if position >= len(lines) or not lines[position].startswith("index "):
        raise TlogProofError("tlog-proof has no 'index <N>' line")
    index_text = lines[position][len("index ") :]
    if (
        not index_text
        or not all("0" <= c <= "9" for c in index_text)
        or (len(index_text) > 1 and index_text[0] == "0")
    ):
        raise TlogProofError(
            f"tlog-proof index {index_text!r} is not a decimal number without"
            " leading zeros"
        )
    position += 1

    # 4. The inclusion proof hashes.
    hashes = []
    for line in lines[position:]:
        value = _decode_base64(line, "proof hash")
        if len(value) != HASH_SIZE:
            raise TlogProofError(f"proof hash {line!r} is {len(value)} bytes, not 32")
        hashes.append(value)
    if len(hashes) > MAX_PROOF_HASHES:
        raise TlogProofError(f"tlog-proof has {len(hashes)} hashes, over 64")

    # 5. The checkpoint note.
    try:
        parse_note(checkpoint)
    except NoteError as error:
        raise TlogProofError(f"tlog-proof checkpoint is malformed: {error}") from error
    return TlogProof(int(index_text), hashes, checkpoint, extra)


def verify_tlog_proof(
    proof: TlogProof,
    leaf_hash: bytes,
    verifiers: Sequence[Verifier],
    origin: str | None = None,
) -> Checkpoint:
    """Verify that leaf_hash is at proof.index in the log's signed checkpoint.

    1. The checkpoint note carries a valid signature from one of verifiers
       and no invalid signature from any of them.
    2. Its origin is `origin`, or the key name of the verifier that signed
       it when origin is None.
    3. The inclusion proof leads from leaf_hash to the checkpoint's root_hash.

    Witness cosignatures are checked separately, against a tlog-policy.
    Returns the verified checkpoint; raises TlogProofError on any failure.
    """
    try:
        note = parse_note(proof.checkpoint)
        verify_note(note, verifiers)
        signed_by = {v.name for v, _ in verified_signatures(note, verifiers)}
        checkpoint = Checkpoint.parse(note.text)
    except (NoteError, CheckpointError) as error:
        raise TlogProofError(f"tlog-proof checkpoint failed: {error}") from error

    if origin is None:
        if checkpoint.origin not in signed_by:
            raise TlogProofError(
                f"checkpoint origin {checkpoint.origin!r} is not the key name of"
                " its log; pass origin= for logs whose origin differs"
            )
    elif checkpoint.origin != origin:
        raise TlogProofError(
            f"checkpoint origin {checkpoint.origin!r} is not {origin!r}"
        )

    try:
        verify_inclusion(
            leaf_hash,
            proof.index,
            checkpoint.tree_size,
            proof.hashes,
            checkpoint.root_hash,
        )
    except ProofError as error:
        raise TlogProofError(
            f"inclusion proof of index {proof.index} failed: {error}"
        ) from error
    return checkpoint
