"""Typed entry points to `ledger.merkle._native`, the C Merkle hot paths.

The C module hashes append batches and builds proofs in C and returns what
the pure-Python functions of `stored.py` and `proof.py` return for the same
tree. Callers import this module, never `_native`.

The proof builders take stored hashes in two forms, so that a store can
keep its upper levels in memory and read only the leaf hashes per proof:

- images: `images[level]`, for each level >= MIN_IMAGE_LEVEL that a proof
  reads, is a bytes-like object of the stored hashes (level, 0),
  (level, 1), ... concatenated. Entries of lower levels are ignored and may
  be None. A list shorter than 64 entries is accepted.
- spans: (first_leaf, leaf hashes) pairs, where the bytes-like object is
  the leaf hashes of leaves first_leaf, first_leaf + 1, ... concatenated.
  A stored hash (level, index) with level < MIN_IMAGE_LEVEL is hashed up
  from the span that contains all of its leaves. A proof about leaf_index
  needs the aligned block of 2**MIN_IMAGE_LEVEL leaves around leaf_index
  (for a consistency proof, around size1 - 1) and the last, possibly
  partial, block of the tree.

A stored hash that neither form supplies raises ValueError naming its
(level, index). The GIL is released while leaf_hashes, parent_level and
range_levels hash at least 2048 bytes, and held throughout the proof
builders, which take a few microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.merkle.errors import TreeRangeError

try:
    from ledger.merkle import _native
except ImportError as error:
    raise ImportError(
        "the C module ledger.merkle._native is not built; run `make venv` or"
        " `pip install -e .` in the repository (it needs gcc and libssl-dev)"
    ) from error

BytesLike = bytes | bytearray | memoryview

# Stored hashes of lower levels are hashed up from spans of leaf hashes.
MIN_IMAGE_LEVEL: int = _native.MIN_IMAGE_LEVEL

Span = tuple[int, BytesLike]


def leaf_hashes(entries: list[bytes] | tuple[bytes, ...]) -> bytes:
    """Hash each entry into its RFC 9162 leaf hash, SHA-256(0x00 || entry).

    Returns the 32-byte leaf hashes concatenated in the order of entries.
    Raises TypeError unless entries is a list or tuple of bytes.
    """
    return _native.leaf_hashes(entries)


def parent_level(hashes: BytesLike) -> bytes:
    """Hash each consecutive pair of 32-byte hashes into its parent node hash.

    The node hash is SHA-256(0x01 || left || right). Given k hashes, returns
    the k // 2 parents concatenated; an odd last hash has no pair and is
    dropped. Raises ValueError unless len(hashes) % 32 == 0.
    """
    return _native.parent_level(hashes)


def range_levels(
    begin: int, leaf_hashes: BytesLike, siblings: Sequence[BytesLike | None]
) -> list[tuple[int, int, bytes]]:
    """Compute every stored hash that appending leaves [begin, end) completes.

    leaf_hashes is the 32-byte leaf hashes of leaves begin, begin + 1, ...
    concatenated, and end = begin + len(leaf_hashes) // 32. Returns the
    result of `stored_hashes_for_range(begin, hashes, reader)` with each
    level's hashes concatenated: (level, first_index, hashes) per level
    that gains hashes, level 0 (the leaf hashes themselves) first.

    siblings[level] must be the stored hash (level, (begin >> level) - 1)
    at each level where the first new node is a right child and the level
    produces parents; the other entries may be None, and the list may end
    after the last level that needs one.

    Requires 0 <= begin and end < 2**63; raises TreeRangeError otherwise.
    Raises ValueError when len(leaf_hashes) % 32 != 0 or a needed sibling
    is missing or not 32 bytes.
    """
    try:
        return _native.range_levels(begin, leaf_hashes, siblings)
    except _native.RangeError as error:
        raise TreeRangeError(str(error)) from error


def inclusion_proof(
    leaf_index: int,
    tree_size: int,
    spans: Sequence[Span],
    images: Sequence[BytesLike | None],
) -> list[bytes]:
    """Build the RFC 9162 inclusion proof of leaf_index in a tree of tree_size.

    Returns the proof that `ledger.merkle.inclusion_proof` returns for the
    same tree, element for element, reading stored hashes from images and
    spans (see the module docstring).
    Requires 0 <= leaf_index < tree_size < 2**63; raises TreeRangeError
    otherwise, with the message of `ledger.merkle.inclusion_proof`, before
    reading spans or images. Raises ValueError when a stored hash the proof
    needs is missing from both.
    """
    try:
        return _native.inclusion_proof(leaf_index, tree_size, spans, images)
    except _native.RangeError as error:
        raise TreeRangeError(str(error)) from error


def consistency_proof(
    size1: int,
    size2: int,
    spans: Sequence[Span],
    images: Sequence[BytesLike | None],
) -> list[bytes]:
    """Build the RFC 9162 consistency proof between trees of size1 and size2.

    Returns the proof that `ledger.merkle.consistency_proof` returns for the
    same tree, element for element, reading stored hashes from images and
    spans (see the module docstring); the spans are the block around leaf
    size1 - 1 and the last block of the tree of size2. An empty proof when
    size1 == size2.
    Requires 0 < size1 <= size2 < 2**63, or size1 == size2; raises
    TreeRangeError otherwise, with the messages of
    `ledger.merkle.consistency_proof`, before reading spans or images.
    Raises ValueError when a stored hash the proof needs is missing from
    both.
    """
    try:
        return _native.consistency_proof(size1, size2, spans, images)
    except _native.RangeError as error:
        raise TreeRangeError(str(error)) from error


def root_hash(
    tree_size: int, spans: Sequence[Span], images: Sequence[BytesLike | None]
) -> bytes:
    """Compute the RFC 9162 root hash of the tree of tree_size.

    Returns what `ledger.merkle.root_hash` returns, reading stored hashes
    from images and spans (see the module docstring); only the last block
    of the tree is needed as a span. EMPTY_ROOT when tree_size == 0.
    Requires 0 <= tree_size < 2**63; raises TreeRangeError otherwise.
    """
    try:
        return _native.root_hash(tree_size, spans, images)
    except _native.RangeError as error:
        raise TreeRangeError(str(error)) from error
