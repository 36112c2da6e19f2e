"""Stored hashes: the hash of every complete subtree, addressed by (level, index).

The stored hash (level, index) is the Merkle Tree Hash of the leaves
[index * 2**level, (index + 1) * 2**level). Level 0 contains the leaf hashes.
A tree of size n contains the stored hash (level, index) when
(index + 1) * 2**level <= n, and each one never changes once written, so a
store appends them and never rewrites them.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256
from typing import Protocol

from ledger.merkle.errors import TreeRangeError
from ledger.merkle.hashing import EMPTY_ROOT, HASH_SIZE, node_hash

# RFC 9162 section 2.1.1 interior node prefix, as in node_hash.
_NODE_PREFIX = b"\x01"

NodeId = tuple[int, int]


class HashReader(Protocol):
    """Source of stored hashes, such as an LMDB transaction or a dict."""

    def read_hashes(self, ids: Sequence[NodeId]) -> list[bytes]:
        """Return the stored hash of each (level, index) in ids, in order.

        Every id passed is a complete subtree of a tree the store holds; a
        reader that lacks one has lost data and raises.
        """
        ...


def stored_hashes_for_leaf(
    leaf_index: int, leaf_hash: bytes, reader: HashReader
) -> list[tuple[int, int, bytes]]:
    """Compute the stored hashes that appending leaf `leaf_index` completes.

    Returns (level, index, hash) triples, the leaf itself first, then one per
    level for which the new leaf closes a complete subtree. The reader must
    return the stored hashes of the tree of size leaf_index, so a batch
    appender passes a reader that also returns the hashes computed earlier
    in the same batch.
    Requires 0 <= leaf_index and len(leaf_hash) == 32.
    """
    if leaf_index < 0:
        raise TreeRangeError(f"leaf_index {leaf_index} is negative")
    if len(leaf_hash) != HASH_SIZE:
        raise TreeRangeError(
            f"leaf_hash is {len(leaf_hash)} bytes; a SHA-256 hash is 32 bytes"
        )
    # Leaf i closes one subtree per trailing one bit of i: each of them is
    # the right child whose left sibling is already stored.
    closed_levels = (~leaf_index & (leaf_index + 1)).bit_length() - 1
    result = [(0, leaf_index, leaf_hash)]
    if closed_levels == 0:
        return result
    siblings = reader.read_hashes(
        [(level, (leaf_index >> level) - 1) for level in range(closed_levels)]
    )
    current = leaf_hash
    for level, sibling in enumerate(siblings):
        current = node_hash(sibling, current)
        result.append((level + 1, leaf_index >> (level + 1), current))
    return result


def stored_hashes_for_range(
    begin: int, leaf_hashes: Sequence[bytes], reader: HashReader
) -> list[tuple[int, int, list[bytes]]]:
    """Compute every stored hash that appending leaves [begin, end) completes.

    end is begin + len(leaf_hashes). Returns one (level, first_index, hashes)
    triple per level that gains hashes, level 0 first: hashes[k] is the
    stored hash (level, first_index + k), and first_index is begin >> level.
    The result equals stored_hashes_for_leaf applied to each leaf in turn,
    but hashes each level in one loop and reads at most one stored hash per
    level: the left sibling of the first new node when that node is a right
    child. The reader must return the stored hashes of the tree of size
    begin. Requires 0 <= begin and len(h) == 32 for every leaf hash.
    """
    if begin < 0:
        raise TreeRangeError(f"leaf_index {begin} is negative")
    for value in leaf_hashes:
        if len(value) != HASH_SIZE:
            raise TreeRangeError(
                f"leaf_hash is {len(value)} bytes; a SHA-256 hash is 32 bytes"
            )
    end = begin + len(leaf_hashes)
    if begin == end:
        return []
    result = [(0, begin, list(leaf_hashes))]
    # At level l the new nodes are [begin >> l, end >> l); a node is new
    # exactly when its right child is new.
    level = 0
    first = begin
    current = list(leaf_hashes)
    sha = sha256
    while (end >> (level + 1)) > (first >> 1):
        if first & 1:
            # The first new node is a right child: its left sibling is stored.
            (sibling,) = reader.read_hashes([(level, first - 1)])
            current = [sibling, *current]
            first -= 1
        parents = [
            sha(_NODE_PREFIX + current[i] + current[i + 1]).digest()
            for i in range(0, len(current) - 1, 2)
        ]
        level += 1
        first >>= 1
        current = parents
        result.append((level, first, current))
    return result


def subtree_ids(begin: int, end: int) -> list[NodeId]:
    """List the complete subtrees that cover leaves [begin, end), left to right.

    Each subtree is the largest aligned one that starts at its position, so
    the list has at most 2 * log2(end - begin) + 2 ids.
    Requires 0 <= begin <= end.
    """
    ids: list[NodeId] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            # An aligned subtree at begin has at most as many leaves as
            # the largest power of two dividing begin.
            level = min(level, (begin & -begin).bit_length() - 1)
        ids.append((level, begin >> level))
        begin += 1 << level
    return ids


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Hash complete subtree hashes, left to right, into the hash of their range.

    RFC 9162 section 2.1.1 splits a tree at the largest power of two below its
    size, so a range made of decreasing complete subtrees hashes as
    node_hash(h0, node_hash(h1, ... node_hash(h[k-2], h[k-1]))).
    Requires len(hashes) >= 1.
    """
    current = hashes[-1]
    for index in range(len(hashes) - 2, -1, -1):
        current = node_hash(hashes[index], current)
    return current


def root_hash_ids(tree_size: int) -> list[NodeId]:
    """List the stored hashes that make up the root of a tree of tree_size leaves.

    One complete subtree per set bit of tree_size, largest (leftmost) first.
    Requires 0 <= tree_size.
    """
    ids: list[NodeId] = []
    for level in range(tree_size.bit_length() - 1, -1, -1):
        if (tree_size >> level) & 1:
            ids.append((level, (tree_size >> level) - 1))
    return ids


def root_hash(tree_size: int, reader: HashReader) -> bytes:
    """Compute the root hash of the tree of size tree_size from stored hashes.

    Reads one stored hash per set bit of tree_size in one batch.
    Requires 0 <= tree_size and the reader to hold the tree of that size.
    """
    if tree_size < 0:
        raise TreeRangeError(f"tree_size {tree_size} is negative")
    if tree_size == 0:
        return EMPTY_ROOT
    return fold_right(reader.read_hashes(root_hash_ids(tree_size)))
