"""Exceptions raised by the Merkle tree functions."""

from __future__ import annotations


class MerkleError(ValueError):
    """Base class of the errors raised by `ledger.merkle`."""


class TreeRangeError(MerkleError):
    """A leaf index or tree size lies outside the tree it refers to."""


class ProofError(MerkleError):
    """An inclusion or consistency proof failed verification.

    `expected` is the root hash the caller supplied and `computed` the root
    hash the proof produced. Both are None when the proof was rejected
    before any root hash was computed, such as for a malformed proof.
    """

    def __init__(
        self,
        message: str,
        expected: bytes | None = None,
        computed: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.computed = computed

    def __str__(self) -> str:
        text = self.args[0]
        if self.expected is not None and self.computed is not None:
            text += (
                f": computed root hash {self.computed.hex()},"
                f" expected {self.expected.hex()}"
            )
        return text


class TileError(MerkleError):
    """A tile path or entry bundle does not follow the C2SP tlog-tiles encoding."""
