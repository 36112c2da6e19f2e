"""C2SP tlog-checkpoint: the origin, tree_size and root_hash of a signed tree.

The note text is at least three lines: the origin, the tree_size in decimal
with no leading zeros, and the base64 root_hash, then optional non-empty
extension lines, each ending in a newline.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.note import (
    Note,
    NoteError,
    Signer,
    Verifier,
    parse_note,
    sign_note,
    verify_note,
)

HASH_SIZE = 32


class CheckpointError(ValueError):
    """A checkpoint text is malformed."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's signed statement of its tree: origin, tree_size, root_hash."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError(f"origin {self.origin!r} is empty or has a newline")
        if not 0 <= self.tree_size < 1 << 64:
            raise CheckpointError(
                f"tree_size {self.tree_size} is out of range 0 <= tree_size < 2**64"
            )
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"root_hash is {len(self.root_hash)} bytes, not 32")
        for line in self.extensions:
            if not line or "\n" in line:
                raise CheckpointError(
                    f"extension line {line!r} is empty or has a newline"
                )

    def to_text(self) -> str:
        """Encode the checkpoint as note text, ending in a newline."""
        lines = [
            self.origin,
            str(self.tree_size),
            base64.b64encode(self.root_hash).decode(),
            *self.extensions,
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str | bytes) -> Checkpoint:
        """Parse checkpoint note text; raises CheckpointError if malformed."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as error:
                raise CheckpointError(f"checkpoint is not UTF-8: {error}") from error
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(
                f"checkpoint has {len(lines)} lines; it needs origin, tree_size"
                " and root_hash"
            )
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise CheckpointError("checkpoint origin line is empty")
        if (
            not size_text
            or not all("0" <= c <= "9" for c in size_text)
            or (len(size_text) > 1 and size_text[0] == "0")
        ):
            raise CheckpointError(
                f"checkpoint tree_size {size_text!r} is not a decimal number"
                " without leading zeros"
            )
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error as error:
            raise CheckpointError(
                f"checkpoint root_hash {root_text!r} is not valid base64"
            ) from error
        if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
            raise CheckpointError(
                f"checkpoint root_hash {root_text!r} is not the base64 of 32 bytes"
            )
        for line in extensions:
            if not line:
                raise CheckpointError("checkpoint has an empty extension line")
        return cls(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[Signer]) -> bytes:
    """Return the checkpoint as a signed note, signed by each signer."""
    return sign_note(checkpoint.to_text(), signers)


def open_checkpoint(
    data: bytes, verifier: Verifier, origin: str | None = None
) -> tuple[Checkpoint, Note]:
    """Parse and verify a checkpoint note signed by the log's verifier.

    Checks the log's signature, then that the origin equals `origin`, or the
    verifier's key name when origin is None. Raises NoteError for a bad
    note or signature and CheckpointError for a bad or foreign checkpoint.
    """
    note = parse_note(data)
    verify_note(note, [verifier])
    checkpoint = Checkpoint.parse(note.text)
    expected = verifier.name if origin is None else origin
    if checkpoint.origin != expected:
        raise CheckpointError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected"
            f" origin {expected!r}"
        )
    return checkpoint, note


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "NoteError",
    "open_checkpoint",
    "sign_checkpoint",
]
