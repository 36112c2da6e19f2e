"""Inclusion and consistency proofs of RFC 9162 sections 2.1.3 and 2.1.4.

Building reads O(log n) stored hashes from a HashReader in a single batch.
Verifying follows the RFC algorithms step by step and raises ProofError.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from ledger.merkle.errors import ProofError, TreeRangeError
from ledger.merkle.hashing import EMPTY_ROOT, HASH_SIZE, node_hash
from ledger.merkle.stored import HashReader, NodeId, fold_right


def _path_ids(level: int, index: int, tree_size: int) -> tuple[list[NodeId], int, int]:
    """Plan the audit path of stored hash (level, index) in a tree of tree_size.

    Returns (ids, inner, right). ids[:inner] are the siblings up to the
    largest complete subtree (the fork) that contains the node.
    ids[inner:inner + right] are the subtrees right of the fork, which hash
    into one proof element. The rest are the subtrees left of the fork,
    nearest first.
    Requires (index + 1) * 2**level <= tree_size.
    """
    # The fork is the highest ancestor that is still a complete subtree.
    # Its height above the node is one less than the highest bit in which
    # index and the number of complete subtrees at this level differ.
    inner = (index ^ (tree_size >> level)).bit_length() - 1
    fork_level = level + inner
    ids = [(level + i, (index >> i) ^ 1) for i in range(inner)]

    # The fork is a left child (or the root), so the leaves right of it
    # are tree_size's bits below fork_level: one subtree per set bit,
    # largest first.
    rest = tree_size & ((1 << fork_level) - 1)
    while rest:
        bit = rest.bit_length() - 1
        ids.append((bit, (tree_size >> bit) - 1))
        rest ^= 1 << bit
    right = len(ids) - inner

    # The leaves left of the fork are one subtree per set bit of its first
    # leaf index, nearest (smallest) first.
    begin = (index >> inner) << fork_level
    rest = begin
    while rest:
        lowest = rest & -rest
        bit = lowest.bit_length() - 1
        ids.append((bit, (begin >> bit) - 1))
        rest ^= lowest
    return ids, inner, right


class EdgeCache:
    """Hashes of the ragged right edge of recent trees, for one store.

    An inclusion or consistency proof whose path meets the right edge of
    the tree carries the hash of several complete subtrees folded into one,
    and the same fold recurs in every proof for that tree_size. A store that
    serves many proofs keeps one EdgeCache and passes it to the builders, so
    that each fold is hashed once. Entries are keyed by tree_size, which is
    sound because stored hashes never change once written. The cache is
    cleared whole when it reaches max_entries.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._hashes: dict[tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return len(self._hashes)

    def _get(self, key: tuple[int, int]) -> bytes | None:
        return self._hashes.get(key)

    def _put(self, key: tuple[int, int], value: bytes) -> None:
        if len(self._hashes) >= self.max_entries:
            self._hashes.clear()
        self._hashes[key] = value


def _build(
    reader: HashReader,
    ids: list[NodeId],
    inner: int,
    right: int,
    tree_size: int,
    cache: EdgeCache | None,
) -> list[bytes]:
    """Read the planned ids and fold the subtrees right of the fork into one."""
    if right <= 1:
        return _read(reader, ids)
    # The subtrees right of the fork are the `right` lowest set bits of
    # tree_size, so (tree_size, right) names their fold.
    key = (tree_size, right)
    edge = cache._get(key) if cache is not None else None
    if edge is not None:
        proof = _read(reader, ids[:inner] + ids[inner + right :])
        proof.insert(inner, edge)
        return proof
    hashes = _read(reader, ids)
    edge = fold_right(hashes[inner : inner + right])
    if cache is not None:
        cache._put(key, edge)
    proof = hashes[:inner]
    proof.append(edge)
    proof.extend(hashes[inner + right :])
    return proof


def _read(reader: HashReader, ids: list[NodeId]) -> list[bytes]:
    hashes = reader.read_hashes(ids)
    if len(hashes) != len(ids):
        raise RuntimeError(
            f"HashReader returned {len(hashes)} hashes for {len(ids)} ids"
        )
    return hashes


def inclusion_proof(
    leaf_index: int,
    tree_size: int,
    reader: HashReader,
    cache: EdgeCache | None = None,
) -> list[bytes]:
    """Build the RFC 9162 inclusion proof of leaf_index in a tree of tree_size.

    The proof runs from the leaf's sibling up to a child of the root. It
    reads at most 2 * tree_size.bit_length() stored hashes in one
    read_hashes call.
    Requires 0 <= leaf_index < tree_size; raises TreeRangeError otherwise.
    """
    if not 0 <= leaf_index < tree_size:
        raise TreeRangeError(
            f"leaf_index {leaf_index} is out of range for tree_size {tree_size};"
            " it must satisfy 0 <= leaf_index < tree_size"
        )
    ids, inner, right = _path_ids(0, leaf_index, tree_size)
    if not ids:
        return []
    return _build(reader, ids, inner, right, tree_size, cache)


def consistency_proof(
    size1: int,
    size2: int,
    reader: HashReader,
    cache: EdgeCache | None = None,
) -> list[bytes]:
    """Build the RFC 9162 consistency proof between trees of size1 and size2.

    Returns an empty proof when size1 == size2. RFC 9162 section 2.1.4 defines
    no proof from the empty tree, so size1 == 0 < size2 raises, like any
    size outside 0 < size1 <= size2.
    """
    if not 0 <= size1 <= size2:
        raise TreeRangeError(
            f"sizes {size1} and {size2} are out of range;"
            " they must satisfy 0 < size1 <= size2"
        )
    if size1 == size2:
        return []
    if size1 == 0:
        raise TreeRangeError(
            f"no consistency proof exists from size 0 to {size2}: RFC 9162"
            " defines one only for 0 < size1; every tree extends the empty tree"
        )
    # The proof is the audit path, in the tree of size2, of the largest
    # complete subtree that ends at size1, preceded by that subtree's own
    # hash unless size1 is a power of two, because the verifier then has it
    # as root1.
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    ids, inner, right = _path_ids(level, index, size2)
    if index:
        ids.insert(0, (level, index))
        inner += 1
    return _build(reader, ids, inner, right, size2, cache)


def _check_hashes(proof: Sequence[bytes], kind: str) -> None:
    for position, element in enumerate(proof):
        if len(element) != HASH_SIZE:
            raise ProofError(
                f"{kind} element {position} is {len(element)} bytes;"
                " each must be a 32-byte SHA-256 hash"
            )


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def verify_inclusion(
    leaf_hash: bytes,
    leaf_index: int,
    tree_size: int,
    proof: Sequence[bytes],
    root_hash: bytes,
) -> None:
    """Verify an inclusion_proof of leaf_hash at leaf_index against root_hash.

    Follows RFC 9162 section 2.1.3.2. Requires 0 <= leaf_index < tree_size.
    Raises ProofError on any failure and returns None on success.
    """
    if not 0 <= leaf_index < tree_size:
        raise ProofError(
            f"leaf_index {leaf_index} is out of range for tree_size {tree_size}"
        )
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(
            f"leaf_hash is {len(leaf_hash)} bytes; a SHA-256 hash is 32 bytes"
        )
    _check_hashes(proof, "inclusion_proof")

    fn = leaf_index
    sn = tree_size - 1
    computed = leaf_hash
    for element in proof:
        if sn == 0:
            raise ProofError(
                f"inclusion_proof has {len(proof)} elements, more than a tree"
                f" of size {tree_size} needs for leaf_index {leaf_index}"
            )
        if fn & 1 or fn == sn:
            computed = node_hash(element, computed)
            # Skip the levels where the node has no right sibling.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            computed = node_hash(computed, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(
            f"inclusion_proof has {len(proof)} elements, fewer than a tree"
            f" of size {tree_size} needs for leaf_index {leaf_index}"
        )
    if not _same(computed, root_hash):
        raise ProofError(
            f"inclusion_proof of leaf_index {leaf_index} in tree_size"
            f" {tree_size} does not lead to the root hash",
            expected=root_hash,
            computed=computed,
        )


def verify_consistency(
    size1: int,
    size2: int,
    proof: Sequence[bytes],
    root1: bytes,
    root2: bytes,
) -> None:
    """Verify a consistency_proof that the tree (size2, root2) extends (size1, root1).

    Follows RFC 9162 section 2.1.4.2 and requires 0 < size1 <= size2, with
    one addition: when size1 == size2 the proof must be empty and both roots
    equal, and a tree of size 0 has only the root EMPTY_ROOT. A proof from
    size1 == 0 < size2 is rejected, as RFC 9162 defines none; callers that
    accept any tree as an extension of the empty tree check that case first.
    Raises ProofError on any failure and returns None on success.
    """
    if not 0 <= size1 <= size2:
        raise ProofError(
            f"sizes {size1} and {size2} are out of range;"
            " they must satisfy 0 <= size1 <= size2"
        )
    _check_hashes(proof, "consistency_proof")

    if size1 == size2:
        if proof:
            raise ProofError(
                f"consistency_proof between equal sizes {size1} must be empty,"
                f" not {len(proof)} elements"
            )
        if size1 == 0 and not _same(root1, EMPTY_ROOT):
            raise ProofError(
                "root1 is not the root hash of the empty tree",
                expected=root1,
                computed=EMPTY_ROOT,
            )
        if not _same(root1, root2):
            raise ProofError(
                f"root hashes of equal tree sizes {size1} differ",
                expected=root2,
                computed=root1,
            )
        return
    if size1 == 0:
        raise ProofError(
            f"no consistency_proof from size 0 to {size2} exists in RFC 9162;"
            " any tree extends the empty tree, so check that case directly"
        )
    if not proof:
        raise ProofError(f"consistency_proof from {size1} to {size2} is empty")

    # 1. A size1 that is a power of two is itself a complete subtree whose
    #    hash is root1, so the proof omits it.
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)

    # 2. Skip the levels where the old tree's last node is a right child.
    fn = size1 - 1
    sn = size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1

    # 3. Rebuild both roots from the same path.
    fr = path[0]
    sr = path[0]
    for element in path[1:]:
        if sn == 0:
            raise ProofError(
                f"consistency_proof from {size1} to {size2} has"
                f" {len(proof)} elements, more than needed"
            )
        if fn & 1 or fn == sn:
            fr = node_hash(element, fr)
            sr = node_hash(element, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, element)
        fn >>= 1
        sn >>= 1

    # 4. Both roots must match and the path must reach the top.
    if sn != 0:
        raise ProofError(
            f"consistency_proof from {size1} to {size2} has"
            f" {len(proof)} elements, fewer than needed"
        )
    if not _same(fr, root1):
        raise ProofError(
            f"consistency_proof does not lead to root1 of tree_size {size1}",
            expected=root1,
            computed=fr,
        )
    if not _same(sr, root2):
        raise ProofError(
            f"consistency_proof does not lead to root2 of tree_size {size2}",
            expected=root2,
            computed=sr,
        )
