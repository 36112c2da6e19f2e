"""The C2SP tlog-witness request body of `POST /add-checkpoint` (pure).

The body is an old size line, zero to 63 consistency proof lines (one base64
SHA-256 hash each), an empty line, then the signed checkpoint note.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

MAX_PROOF_LINES = 63
# The old size in decimal, without leading zeroes unless it is 0.
_OLD_SIZE = re.compile(rb"old (0|[1-9][0-9]{0,19})")


class RequestFormatError(ValueError):
    """The add-checkpoint request body does not follow the tlog-witness format."""


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed add-checkpoint request; `note` is the signed checkpoint."""

    old_size: int
    consistency_proof: list[bytes]
    note: bytes


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse an add-checkpoint request body; raise RequestFormatError."""
    # 1. The old size line.
    end = body.find(b"\n")
    if end < 0:
        raise RequestFormatError("request body has no old size line")
    match = _OLD_SIZE.fullmatch(body[:end])
    if match is None:
        raise RequestFormatError(
            f"invalid old size line {body[:end][:40]!r}; expected 'old <decimal>'"
        )
    old_size = int(match.group(1))
    if old_size >= 1 << 63:
        raise RequestFormatError(f"old size {old_size} exceeds 2^63 - 1")

    # 2. The consistency proof lines, up to the empty line.
    proof = []
    start = end + 1
    while True:
        end = body.find(b"\n", start)
        if end < 0:
            raise RequestFormatError(
                "request body has no empty line before the checkpoint"
            )
        line = body[start:end]
        start = end + 1
        if not line:
            break
        if len(proof) == MAX_PROOF_LINES:
            raise RequestFormatError(
                f"more than {MAX_PROOF_LINES} consistency proof lines"
            )
        try:
            node = base64.b64decode(line, validate=True)
        except binascii.Error as error:
            raise RequestFormatError(
                f"consistency proof line {len(proof) + 1} is not base64"
            ) from error
        if len(node) != 32:
            raise RequestFormatError(
                f"consistency proof line {len(proof) + 1} contains {len(node)} "
                "bytes; expected a 32-byte SHA-256 hash"
            )
        proof.append(node)

    # 3. The checkpoint note: the rest of the body.
    note = body[start:]
    if not note:
        raise RequestFormatError("request body has no checkpoint after the empty line")
    return AddCheckpointRequest(old_size, proof, note)
