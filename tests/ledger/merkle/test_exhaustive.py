"""Every tree size 0..100 against the RFC 9162 reference tree."""

from __future__ import annotations

import pytest

from ledger.merkle import (
    EMPTY_ROOT,
    EdgeCache,
    ProofError,
    TreeRangeError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    stored_hashes_for_leaf,
    verify_consistency,
    verify_inclusion,
)

from .conftest import DictReader, build_reader, leaf_data
from .reference import ReferenceTree

MAX_SIZE = 100


@pytest.fixture(scope="module")
def trees() -> tuple[DictReader, ReferenceTree]:
    leaves = leaf_data(MAX_SIZE + 1)
    return build_reader(leaves[:MAX_SIZE]), ReferenceTree(leaves)


def test_stored_hashes_match_reference(trees) -> None:
    reader, reference = trees
    for (level, index), value in reader.hashes.items():
        begin = index << level
        assert value == reference.mth(begin, begin + (1 << level)), (level, index)
    # Exactly one stored hash per complete subtree of the 100-leaf tree.
    expected = sum(MAX_SIZE >> level for level in range(MAX_SIZE.bit_length()))
    assert len(reader.hashes) == expected


def test_root_hash_every_size(trees) -> None:
    reader, reference = trees
    assert root_hash(0, reader) == EMPTY_ROOT
    for size in range(MAX_SIZE + 1):
        assert root_hash(size, reader) == reference.root(size), size


def test_inclusion_every_index(trees) -> None:
    reader, reference = trees
    for size in range(1, MAX_SIZE + 1):
        root = reference.root(size)
        for index in range(size):
            proof = inclusion_proof(index, size, reader)
            assert proof == reference.inclusion(index, size), (index, size)
            leaf = leaf_hash(b"leaf %d" % index)
            assert verify_inclusion(leaf, index, size, proof, root) is None
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, size, proof, reference.root(size + 1))
            with pytest.raises(ProofError):
                other = leaf_hash(b"leaf %d" % (index + 1))
                verify_inclusion(other, index, size, proof, root)


def test_consistency_every_size_pair(trees) -> None:
    reader, reference = trees
    for size2 in range(1, MAX_SIZE + 1):
        root2 = reference.root(size2)
        for size1 in range(1, size2 + 1):
            proof = consistency_proof(size1, size2, reader)
            if size1 < size2:
                assert proof == reference.consistency(size1, size2), (size1, size2)
            else:
                assert proof == []
            root1 = reference.root(size1)
            assert verify_consistency(size1, size2, proof, root1, root2) is None
            if size1 < size2:
                with pytest.raises(ProofError):
                    verify_consistency(size1, size2, proof, root2, root2)


def test_reads_are_logarithmic_and_batched() -> None:
    reader = build_reader(leaf_data(1000))
    reader.batches = reader.reads = 0
    inclusion_proof(517, 1000, reader)
    assert reader.batches == 1
    assert reader.reads <= 2 * 10
    reader.batches = reader.reads = 0
    consistency_proof(333, 1000, reader)
    assert reader.batches == 1
    assert reader.reads <= 2 * 10 + 1
    reader.batches = reader.reads = 0
    root_hash(999, reader)
    assert reader.batches == 1
    assert reader.reads == (999).bit_count()


def test_single_leaf_tree() -> None:
    reader = build_reader([b"only"])
    assert root_hash(1, reader) == leaf_hash(b"only")
    assert inclusion_proof(0, 1, reader) == []
    assert verify_inclusion(leaf_hash(b"only"), 0, 1, [], leaf_hash(b"only")) is None
    assert consistency_proof(1, 1, reader) == []


def test_out_of_range_arguments() -> None:
    reader = build_reader(leaf_data(8))
    for index, size in [(8, 8), (-1, 8), (0, 0), (9, 8)]:
        with pytest.raises(TreeRangeError, match="out of range"):
            inclusion_proof(index, size, reader)
    for size1, size2 in [(5, 4), (-1, 4), (0, 4)]:
        with pytest.raises(TreeRangeError):
            consistency_proof(size1, size2, reader)
    assert consistency_proof(0, 0, reader) == []
    with pytest.raises(TreeRangeError):
        root_hash(-1, reader)
    leaf = leaf_hash(b"leaf 0")
    with pytest.raises(ProofError, match="out of range"):
        verify_inclusion(leaf, 8, 8, [], root_hash(8, reader))
    with pytest.raises(ProofError, match="out of range"):
        verify_inclusion(leaf, 0, 0, [], EMPTY_ROOT)
    with pytest.raises(ProofError, match="out of range"):
        verify_consistency(5, 4, [], EMPTY_ROOT, EMPTY_ROOT)


def test_proof_error_carries_roots() -> None:
    reader = build_reader(leaf_data(8))
    proof = inclusion_proof(3, 8, reader)
    wrong_root = bytes(32)
    with pytest.raises(ProofError) as caught:
        verify_inclusion(leaf_hash(b"leaf 3"), 3, 8, proof, wrong_root)
    assert caught.value.expected == wrong_root
    assert caught.value.computed == root_hash(8, reader)
    assert root_hash(8, reader).hex() in str(caught.value)


def test_empty_tree_consistency_rejected() -> None:
    # RFC 9162 defines no proof from the empty tree; callers check size 0.
    reader = build_reader(leaf_data(3))
    with pytest.raises(ProofError, match="size 0"):
        verify_consistency(0, 3, [], EMPTY_ROOT, root_hash(3, reader))


def test_stored_hashes_for_leaf_checks() -> None:
    reader = build_reader(leaf_data(7))
    appended = stored_hashes_for_leaf(7, leaf_hash(b"leaf 7"), reader)
    # Leaf 7 closes the subtrees (1, 3), (2, 1) and (3, 0).
    assert [(level, index) for level, index, _ in appended] == [
        (0, 7),
        (1, 3),
        (2, 1),
        (3, 0),
    ]
    with pytest.raises(TreeRangeError, match="negative"):
        stored_hashes_for_leaf(-1, leaf_hash(b""), reader)
    with pytest.raises(TreeRangeError, match="32 bytes"):
        stored_hashes_for_leaf(8, b"short", reader)


def test_reader_returning_too_few_hashes() -> None:
    class ShortReader(DictReader):
        def read_hashes(self, ids):
            return super().read_hashes(ids)[:-1]

    reader = ShortReader()
    reader.hashes = build_reader(leaf_data(5)).hashes
    with pytest.raises(RuntimeError, match="returned"):
        inclusion_proof(0, 5, reader)


def test_edge_cache_gives_same_proofs(trees) -> None:
    reader, reference = trees
    cache = EdgeCache()
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            # The second call reads the fold from the cache.
            for _ in range(2):
                proof = inclusion_proof(index, size, reader, cache)
                assert proof == reference.inclusion(index, size), (index, size)
        for size1 in range(1, size):
            for _ in range(2):
                proof = consistency_proof(size1, size, reader, cache)
                assert proof == reference.consistency(size1, size), (size1, size)
    assert len(cache) > 0


def test_edge_cache_saves_reads_and_clears() -> None:
    reader = build_reader(leaf_data(1000))
    cache = EdgeCache(max_entries=2)
    inclusion_proof(0, 999, reader, cache)
    reader.reads = 0
    inclusion_proof(1, 999, reader, cache)
    cached_reads = reader.reads
    reader.reads = 0
    inclusion_proof(1, 999, reader)
    assert cached_reads < reader.reads
    inclusion_proof(0, 997, reader, cache)
    inclusion_proof(0, 995, reader, cache)
    assert len(cache) <= 2
