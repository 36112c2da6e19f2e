"""The C module ledger.merkle._native against the pure-Python reference.

Real trees of up to a few thousand leaves check every function against
stored.py and proof.py. Trees of up to 2**40 leaves use pseudo-random
stored hashes, served to the Python builders by a reader and to the C
builders through sparse memory-mapped images, because a proof only reads
the stored hashes it names.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    TreeRangeError,
    leaf_hash,
    native,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.merkle import proof as reference_proof
from ledger.merkle import stored as reference_stored
from ledger.merkle.native import MIN_IMAGE_LEVEL

from .conftest import DictReader
from .reference import ReferenceTree

BLOCK = 1 << MIN_IMAGE_LEVEL
MAX_LEAVES = 4200
EDGE_SIZES = sorted(
    {
        size
        for k in range(13)
        for size in (2**k - 1, 2**k, 2**k + 1)
        if 1 <= size <= MAX_LEAVES
    }
)
SIZES = st.one_of(st.sampled_from(EDGE_SIZES), st.integers(1, MAX_LEAVES))

# The largest synthetic tree; its level-4 image maps 2 TiB of a sparse file.
MAX_LARGE_SIZE = 2**40
LARGE_SIZES = st.one_of(
    st.sampled_from(
        [MAX_LARGE_SIZE - 1, MAX_LARGE_SIZE, 2**32 - 1, 2**32, 2**32 + 1, 10**7]
    ),
    st.integers(2**20, MAX_LARGE_SIZE),
)


# ---------------------------------------------------------------------------
# A real tree of MAX_LEAVES leaves and the inputs of the C builders for each
# of its prefixes.


class Tree:
    """Every stored hash of a MAX_LEAVES-leaf tree, in both input forms."""

    def __init__(self, count: int) -> None:
        self.leaves = [b"leaf %d" % i for i in range(count)]
        self.leaf_hashes = [leaf_hash(data) for data in self.leaves]
        self.reader = DictReader()
        levels = reference_stored.stored_hashes_for_range(
            0, self.leaf_hashes, self.reader
        )
        for level, first, hashes in levels:
            for offset, value in enumerate(hashes):
                self.reader.hashes[level, first + offset] = value
        self.full_images = {
            level: b"".join(hashes)
            for level, _, hashes in levels
            if level >= MIN_IMAGE_LEVEL
        }
        self.blob = b"".join(self.leaf_hashes)
        self.reference = ReferenceTree(self.leaves)

    def images(self, tree_size: int) -> list[bytes | None]:
        """Return images that hold exactly the stored hashes of tree_size."""
        images: list[bytes | None] = [None] * MIN_IMAGE_LEVEL
        for level in range(MIN_IMAGE_LEVEL, tree_size.bit_length()):
            images.append(self.full_images[level][: (tree_size >> level) * 32])
        return images

    def spans(self, leaf_index: int, tree_size: int) -> list[tuple[int, bytes]]:
        """Return the block around leaf_index and the tree's last block."""
        here = leaf_index & -BLOCK
        last = (tree_size - 1) & -BLOCK
        return [
            (here, self.blob[here * 32 : min(here + BLOCK, tree_size) * 32]),
            (last, self.blob[last * 32 : tree_size * 32]),
        ]


TREE = Tree(MAX_LEAVES)


# ---------------------------------------------------------------------------
# Pseudo-random stored hashes for trees of up to 2**40 leaves.


def synthetic_leaf_hash(leaf_index: int) -> bytes:
    return hashlib.sha256(b"synthetic leaf %d" % leaf_index).digest()


def synthetic_hash(level: int, index: int) -> bytes:
    """Return the synthetic stored hash (level, index).

    Levels below MIN_IMAGE_LEVEL are hashed up from the synthetic leaf
    hashes, as the C builders hash them up from spans; higher levels are
    independent pseudo-random values.
    """
    if level == 0:
        return synthetic_leaf_hash(index)
    if level < MIN_IMAGE_LEVEL:
        return node_hash(
            synthetic_hash(level - 1, 2 * index),
            synthetic_hash(level - 1, 2 * index + 1),
        )
    return hashlib.sha256(b"synthetic stored %d %d" % (level, index)).digest()


class SyntheticReader:
    """A HashReader of synthetic stored hashes that records the ids it serves."""

    def __init__(self) -> None:
        self.ids: list[tuple[int, int]] = []

    def read_hashes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        self.ids.extend(ids)
        return [synthetic_hash(level, index) for level, index in ids]


class SparseImages:
    """One sparse, memory-mapped file per level, sized for MAX_LARGE_SIZE.

    Only the pages written take memory or disk, so an image of 2 TiB costs
    a few KiB.
    """

    def __init__(self, folder: Path) -> None:
        self.maps: dict[int, mmap.mmap] = {}
        for level in range(MIN_IMAGE_LEVEL, MAX_LARGE_SIZE.bit_length()):
            path = folder / f"level-{level}"
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(descriptor, (MAX_LARGE_SIZE >> level) * 32)
                self.maps[level] = mmap.mmap(descriptor, 0)
            finally:
                # The mapping keeps the file's pages; the name is not needed.
                os.close(descriptor)
                path.unlink()
        self.written: list[tuple[int, int]] = []
        self.views: list[memoryview] = []

    def load(self, ids: Sequence[tuple[int, int]], tree_size: int) -> list:
        """Write the synthetic hashes of ids; return the images of tree_size."""
        for level, index in ids:
            if level >= MIN_IMAGE_LEVEL:
                self.maps[level][index * 32 : index * 32 + 32] = synthetic_hash(
                    level, index
                )
                self.written.append((level, index))
        images: list[memoryview | None] = [None] * MIN_IMAGE_LEVEL
        for level in range(MIN_IMAGE_LEVEL, tree_size.bit_length()):
            view = memoryview(self.maps[level])[: (tree_size >> level) * 32]
            self.views.append(view)
            images.append(view)
        return images

    def reset(self) -> None:
        """Zero the written hashes, so that the next tree starts clean."""
        for view in self.views:
            view.release()
        self.views.clear()
        for level, index in self.written:
            self.maps[level][index * 32 : index * 32 + 32] = bytes(32)
        self.written.clear()

    def close(self) -> None:
        self.reset()
        for image in self.maps.values():
            image.close()


@pytest.fixture(scope="module")
def sparse_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparseImages]:
    images = SparseImages(tmp_path_factory.mktemp("sparse-images"))
    yield images
    images.close()


def synthetic_spans(leaf_index: int, tree_size: int) -> list[tuple[int, bytes]]:
    """Return the synthetic block around leaf_index and the last block."""
    here = leaf_index & -BLOCK
    last = (tree_size - 1) & -BLOCK
    return [
        (
            here,
            b"".join(
                map(synthetic_leaf_hash, range(here, min(here + BLOCK, tree_size)))
            ),
        ),
        (last, b"".join(map(synthetic_leaf_hash, range(last, tree_size)))),
    ]


def assert_resizable(*buffers: bytearray) -> None:
    """Fail when a bytearray still has a buffer export, which blocks resizing."""
    for buffer in buffers:
        buffer.extend(bytes(32))
        del buffer[-32:]


def python_error(call) -> str:
    with pytest.raises(TreeRangeError) as caught:
        call()
    return str(caught.value)


# ---------------------------------------------------------------------------
# leaf_hashes


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=40))
def test_leaf_hashes_match_hashlib(entries: list[bytes]) -> None:
    expected = b"".join(hashlib.sha256(b"\x00" + data).digest() for data in entries)
    assert native.leaf_hashes(entries) == expected
    assert native.leaf_hashes(tuple(entries)) == expected


def test_leaf_hashes_large_batch() -> None:
    # 3,000 entries of up to 700 bytes take the path that releases the GIL.
    entries = [bytes([i % 256]) * (i % 701) for i in range(3000)]
    expected = b"".join(leaf_hash(data) for data in entries)
    assert native.leaf_hashes(entries) == expected


def test_leaf_hashes_empty_batch() -> None:
    assert native.leaf_hashes([]) == b""
    assert native.leaf_hashes(()) == b""


def test_leaf_hashes_in_threads() -> None:
    entries = [b"entry %d" % i * 20 for i in range(4000)]
    expected = b"".join(leaf_hash(data) for data in entries)
    results: list[bytes] = []

    def work() -> None:
        for _ in range(5):
            results.append(native.leaf_hashes(entries))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 10
    for result in results:
        assert result == expected


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        (iter([b"a"]), "entries must be a list or tuple of bytes, not list_iterator"),
        (b"abc", "entries must be a list or tuple of bytes, not bytes"),
        ([b"a", "b"], r"entries\[1\] is str; each entry must be bytes"),
        ((b"a", b"b", bytearray(b"c")), r"entries\[2\] is bytearray"),
    ],
)
def test_leaf_hashes_rejects_types(entries, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        native.leaf_hashes(entries)


# ---------------------------------------------------------------------------
# parent_level


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=150))
def test_parent_level_matches_node_hash(hashes: list[bytes]) -> None:
    expected = b"".join(
        node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)
    )
    blob = b"".join(hashes)
    assert native.parent_level(blob) == expected
    assert native.parent_level(bytearray(blob)) == expected
    assert native.parent_level(memoryview(blob)) == expected


def test_parent_level_large_input() -> None:
    # 1,001 hashes take the path that releases the GIL; the odd last is dropped.
    blob = TREE.blob[: 1001 * 32]
    expected = b"".join(TREE.reader.hashes[1, i] for i in range(500))
    assert native.parent_level(blob) == expected


@pytest.mark.parametrize("size", [1, 31, 33, 65])
def test_parent_level_rejects_partial_hash(size: int) -> None:
    buffer = bytearray(size)
    with pytest.raises(ValueError, match=f"hashes is {size} bytes"):
        native.parent_level(buffer)
    assert_resizable(buffer)


def test_parent_level_rejects_non_buffer() -> None:
    with pytest.raises(TypeError):
        native.parent_level("0" * 64)


# ---------------------------------------------------------------------------
# range_levels


def _minimal_siblings(begin: int, end: int) -> list[bytes | None]:
    """List the siblings range_levels reads, None at the other levels."""
    siblings: list[bytes | None] = []
    level = 0
    while (end >> (level + 1)) > (begin >> (level + 1)):
        first = begin >> level
        siblings.append(TREE.reader.hashes[level, first - 1] if first & 1 else None)
        level += 1
    return siblings


def _all_siblings(begin: int) -> list[bytes | None]:
    """List the left sibling of the first node at every level that has one."""
    return [
        TREE.reader.hashes.get((level, (begin >> level) - 1))
        if (begin >> level) & 1
        else None
        for level in range(64)
    ]


@settings(max_examples=150, deadline=None)
@given(
    begin=st.integers(0, MAX_LEAVES // 2),
    count=st.integers(0, MAX_LEAVES // 2),
)
def test_range_levels_match_python(begin: int, count: int) -> None:
    hashes = TREE.leaf_hashes[begin : begin + count]
    expected = [
        (level, first, b"".join(values))
        for level, first, values in reference_stored.stored_hashes_for_range(
            begin, hashes, TREE.reader
        )
    ]
    blob = b"".join(hashes)
    minimal = _minimal_siblings(begin, begin + count)
    assert native.range_levels(begin, blob, minimal) == expected
    assert native.range_levels(begin, bytearray(blob), _all_siblings(begin)) == expected
    views = [None if value is None else memoryview(value) for value in minimal]
    assert native.range_levels(begin, memoryview(blob), views) == expected


def test_range_levels_returns_leaf_hashes_first() -> None:
    blob = TREE.blob[5 * 32 : 9 * 32]
    levels = native.range_levels(5, blob, _all_siblings(5))
    assert levels[0] == (0, 5, blob)
    firsts = [(level, first) for level, first, _ in levels]
    assert firsts == [(0, 5), (1, 2), (2, 1), (3, 0)]


def test_range_levels_empty_range() -> None:
    assert native.range_levels(7, b"", []) == []


def test_range_levels_negative_begin_message() -> None:
    expected = python_error(
        lambda: reference_stored.stored_hashes_for_range(-1, [], DictReader())
    )
    with pytest.raises(TreeRangeError) as caught:
        native.range_levels(-1, b"", [])
    assert str(caught.value) == expected


@pytest.mark.parametrize("begin", [2**63, 2**63 - 1, 2**100])
def test_range_levels_rejects_huge_begin(begin: int) -> None:
    with pytest.raises(TreeRangeError, match="fewer than 2\\*\\*63 leaves"):
        native.range_levels(begin, bytes(32), [])


def test_range_levels_missing_sibling() -> None:
    # Leaves [5, 9): level 0 starts at node 5 and needs (0, 4); level 1
    # starts at node 2 and needs none; level 2 starts at node 1 and needs
    # (2, 0).
    blob = bytearray(TREE.blob[5 * 32 : 9 * 32])
    sibling0 = TREE.reader.hashes[0, 4]
    sibling2 = TREE.reader.hashes[2, 0]
    cases = [
        ([], r"siblings\[0\] is missing: level 0 needs stored hash \(0, 4\)"),
        ([None, None, sibling2], r"siblings\[0\] is missing"),
        ([sibling0], r"siblings\[2\] is missing: level 2 needs stored hash \(2, 0\)"),
        ([sibling0, sibling2, None], r"siblings\[2\] is missing"),
    ]
    for siblings, match in cases:
        with pytest.raises(ValueError, match=match):
            native.range_levels(5, blob, siblings)
    assert_resizable(blob)

    # The entry of a level that needs no sibling is not read.
    expected = native.range_levels(5, blob, [sibling0, None, sibling2])
    assert native.range_levels(5, blob, (sibling0, "unused", sibling2)) == expected


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_range_levels_sibling_wrong_size(size: int) -> None:
    blob = bytearray(TREE.blob[5 * 32 : 9 * 32])
    sibling = bytearray(size)
    with pytest.raises(ValueError, match=rf"siblings\[0\] is {size} bytes"):
        native.range_levels(5, blob, [sibling, None, TREE.reader.hashes[2, 0]])
    with pytest.raises(ValueError, match=rf"siblings\[2\] is {size} bytes"):
        native.range_levels(5, blob, [TREE.reader.hashes[0, 4], None, sibling])
    assert_resizable(blob, sibling)


def test_range_levels_rejects_partial_hash() -> None:
    blob = bytearray(TREE.blob[:100])
    with pytest.raises(ValueError, match="leaf_hashes is 100 bytes"):
        native.range_levels(0, blob, [])
    assert_resizable(blob)


def test_range_levels_argument_count() -> None:
    with pytest.raises(TypeError, match="takes 3 positional arguments, 2 given"):
        native._native.range_levels(0, b"")


# ---------------------------------------------------------------------------
# inclusion_proof, consistency_proof and root_hash on real trees


def test_inclusion_every_index_to_100() -> None:
    for tree_size in range(1, 101):
        images = TREE.images(tree_size)
        for leaf_index in range(tree_size):
            expected = reference_proof.inclusion_proof(
                leaf_index, tree_size, TREE.reader
            )
            spans = TREE.spans(leaf_index, tree_size)
            got = native.inclusion_proof(leaf_index, tree_size, spans, images)
            assert got == expected, (leaf_index, tree_size)


def test_consistency_every_size_to_80() -> None:
    for size2 in range(1, 81):
        images = TREE.images(size2)
        for size1 in range(1, size2 + 1):
            expected = reference_proof.consistency_proof(size1, size2, TREE.reader)
            spans = TREE.spans(size1 - 1, size2)
            got = native.consistency_proof(size1, size2, spans, images)
            assert got == expected, (size1, size2)


def test_root_hash_every_size_to_300() -> None:
    assert native.root_hash(0, [], []) == EMPTY_ROOT
    for tree_size in range(1, 301):
        spans = TREE.spans(tree_size - 1, tree_size)
        got = native.root_hash(tree_size, spans, TREE.images(tree_size))
        assert got == reference_stored.root_hash(tree_size, TREE.reader), tree_size


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_inclusion_matches_python(data: st.DataObject) -> None:
    tree_size = data.draw(SIZES, label="tree_size")
    leaf_index = data.draw(st.integers(0, tree_size - 1), label="leaf_index")
    expected = reference_proof.inclusion_proof(leaf_index, tree_size, TREE.reader)
    spans = TREE.spans(leaf_index, tree_size)
    images = TREE.images(tree_size)
    assert native.inclusion_proof(leaf_index, tree_size, spans, images) == expected
    # Images longer than the tree and spans as read-only views serve the same.
    views = [(first, memoryview(blob)) for first, blob in spans]
    full = [None] * MIN_IMAGE_LEVEL + [
        TREE.full_images[level] for level in range(MIN_IMAGE_LEVEL, 13)
    ]
    assert native.inclusion_proof(leaf_index, tree_size, views, full) == expected


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_consistency_matches_python(data: st.DataObject) -> None:
    size2 = data.draw(SIZES, label="size2")
    size1 = data.draw(
        st.one_of(st.sampled_from(EDGE_SIZES), st.integers(1, size2)).filter(
            lambda size: size <= size2
        ),
        label="size1",
    )
    expected = reference_proof.consistency_proof(size1, size2, TREE.reader)
    spans = TREE.spans(size1 - 1, size2)
    got = native.consistency_proof(size1, size2, spans, TREE.images(size2))
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(SIZES)
def test_root_hash_matches_python(tree_size: int) -> None:
    spans = TREE.spans(tree_size - 1, tree_size)
    got = native.root_hash(tree_size, spans, TREE.images(tree_size))
    assert got == reference_stored.root_hash(tree_size, TREE.reader)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_proofs_verify_against_reference_root(data: st.DataObject) -> None:
    # The roots come from the recursive RFC 9162 tree, not from ledger.merkle.
    size2 = data.draw(st.integers(2, 700), label="size2")
    leaf_index = data.draw(st.integers(0, size2 - 1), label="leaf_index")
    size1 = data.draw(st.integers(1, size2), label="size1")
    root2 = TREE.reference.root(size2)
    images = TREE.images(size2)

    proof = native.inclusion_proof(
        leaf_index, size2, TREE.spans(leaf_index, size2), images
    )
    verify_inclusion(TREE.leaf_hashes[leaf_index], leaf_index, size2, proof, root2)

    proof = native.consistency_proof(size1, size2, TREE.spans(size1 - 1, size2), images)
    verify_consistency(size1, size2, proof, TREE.reference.root(size1), root2)


def test_single_span_when_blocks_coincide() -> None:
    # The store passes one span when the leaf lies in the last block.
    tree_size = 1000
    last = (tree_size - 1) & -BLOCK
    span = [(last, TREE.blob[last * 32 : tree_size * 32])]
    for leaf_index in range(last, tree_size):
        expected = reference_proof.inclusion_proof(leaf_index, tree_size, TREE.reader)
        got = native.inclusion_proof(
            leaf_index, tree_size, span, TREE.images(tree_size)
        )
        assert got == expected


# ---------------------------------------------------------------------------
# Large synthetic trees


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_inclusion_large_trees(
    data: st.DataObject, sparse_images: SparseImages
) -> None:
    tree_size = data.draw(LARGE_SIZES, label="tree_size")
    leaf_index = data.draw(
        st.one_of(
            st.integers(0, tree_size - 1),
            st.sampled_from([0, tree_size - 1, tree_size // 2]),
        ),
        label="leaf_index",
    )
    reader = SyntheticReader()
    expected = reference_proof.inclusion_proof(leaf_index, tree_size, reader)
    try:
        images = sparse_images.load(reader.ids, tree_size)
        spans = synthetic_spans(leaf_index, tree_size)
        assert native.inclusion_proof(leaf_index, tree_size, spans, images) == expected
    finally:
        sparse_images.reset()


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_consistency_large_trees(
    data: st.DataObject, sparse_images: SparseImages
) -> None:
    size2 = data.draw(LARGE_SIZES, label="size2")
    size1 = data.draw(
        st.one_of(st.integers(1, size2), st.sampled_from([1, size2 - 1, size2 // 2])),
        label="size1",
    )
    reader = SyntheticReader()
    expected = reference_proof.consistency_proof(size1, size2, reader)
    try:
        images = sparse_images.load(reader.ids, size2)
        spans = synthetic_spans(size1 - 1, size2)
        assert native.consistency_proof(size1, size2, spans, images) == expected
    finally:
        sparse_images.reset()


@settings(max_examples=20, deadline=None)
@given(tree_size=LARGE_SIZES)
def test_root_hash_large_trees(tree_size: int, sparse_images: SparseImages) -> None:
    reader = SyntheticReader()
    expected = reference_stored.root_hash(tree_size, reader)
    try:
        images = sparse_images.load(reader.ids, tree_size)
        spans = synthetic_spans(tree_size - 1, tree_size)
        assert native.root_hash(tree_size, spans, images) == expected
    finally:
        sparse_images.reset()


# ---------------------------------------------------------------------------
# Errors of the proof builders


@pytest.mark.parametrize(
    ("leaf_index", "tree_size"),
    [
        (-1, 5),
        (5, 5),
        (6, 5),
        (0, 0),
        (0, -3),
        (2**64, 5),
        (-(2**64), 5),
        (2**70, 2**64),
    ],
)
def test_inclusion_range_messages(leaf_index: int, tree_size: int) -> None:
    expected = python_error(
        lambda: reference_proof.inclusion_proof(leaf_index, tree_size, DictReader())
    )
    with pytest.raises(TreeRangeError) as caught:
        native.inclusion_proof(leaf_index, tree_size, [], [])
    assert str(caught.value) == expected


@pytest.mark.parametrize(
    ("size1", "size2"),
    [(-1, 5), (6, 5), (0, 5), (0, 2**64), (2**64, 5), (-(2**70), -1), (2**65, 2**64)],
)
def test_consistency_range_messages(size1: int, size2: int) -> None:
    expected = python_error(
        lambda: reference_proof.consistency_proof(size1, size2, DictReader())
    )
    with pytest.raises(TreeRangeError) as caught:
        native.consistency_proof(size1, size2, [], [])
    assert str(caught.value) == expected


@pytest.mark.parametrize(("size1", "size2"), [(0, 0), (7, 7), (2**64, 2**64)])
def test_consistency_equal_sizes_empty(size1: int, size2: int) -> None:
    assert reference_proof.consistency_proof(size1, size2, DictReader()) == []
    assert native.consistency_proof(size1, size2, [], []) == []


def test_root_hash_negative_message() -> None:
    expected = python_error(lambda: reference_stored.root_hash(-1, DictReader()))
    with pytest.raises(TreeRangeError) as caught:
        native.root_hash(-1, [], [])
    assert str(caught.value) == expected


@pytest.mark.parametrize(
    "call",
    [
        lambda: native.inclusion_proof(0, 2**63, [], []),
        lambda: native.inclusion_proof(2**63, 2**64, [], []),
        lambda: native.consistency_proof(1, 2**63, [], []),
        lambda: native.consistency_proof(2**64, 2**65, [], []),
        lambda: native.root_hash(2**63, [], []),
    ],
)
def test_trees_of_2_63_leaves_rejected(call) -> None:
    with pytest.raises(TreeRangeError, match="fewer than 2\\*\\*63 leaves"):
        call()


def test_missing_image() -> None:
    # Leaf 0 of a 4,000-leaf tree reads stored hashes of levels 0 to 10;
    # the fork is (11, 0), which the proof does not read.
    spans = TREE.spans(0, 4000)
    images = TREE.images(4000)
    for level in (4, 10):
        absent = list(images)
        absent[level] = None
        with pytest.raises(ValueError, match=rf"images\[{level}\] is absent"):
            native.inclusion_proof(0, 4000, spans, absent)
    with pytest.raises(ValueError, match=r"stored hash \(10, 1\) is missing"):
        native.inclusion_proof(0, 4000, spans, images[:10])
    expected = reference_proof.inclusion_proof(0, 4000, TREE.reader)
    assert native.inclusion_proof(0, 4000, spans, images[:11]) == expected


def test_short_image() -> None:
    spans = [(first, bytearray(blob)) for first, blob in TREE.spans(0, 4000)]
    images = [
        None if image is None else bytearray(image) for image in TREE.images(4000)
    ]
    images[4] = images[4][:32]
    with pytest.raises(
        ValueError,
        match=r"stored hash \(4, 1\) is missing: images\[4\] contains only 1",
    ):
        native.inclusion_proof(0, 4000, spans, images)
    images[5] = images[5][:-1]
    with pytest.raises(ValueError, match=r"images\[5\] is \d+ bytes"):
        native.consistency_proof(32, 4000, spans, images)
    assert_resizable(*(blob for _, blob in spans), *images[MIN_IMAGE_LEVEL:])


def test_span_not_covering() -> None:
    tree_size = 1000
    images = TREE.images(tree_size)
    here, last = TREE.spans(100, tree_size)
    buffers = [bytearray(here[1]), bytearray(last[1])]
    cases = [
        (
            [],
            r"stored hash \(0, 101\) is missing: no span contains its leaves \[101, 102\)",
        ),
        ([(last[0], buffers[1])], r"stored hash \(0, 101\) is missing"),
        # The block around leaf 100 without its last leaf hash.
        ([(here[0], buffers[0][:-32]), (last[0], buffers[1])], r"\(3, 13\)"),
        # The last block without the tree's last leaf hash.
        ([(here[0], buffers[0]), (last[0], buffers[1][:-32])], r"no span contains"),
    ]
    for spans, match in cases:
        with pytest.raises(ValueError, match=match):
            native.inclusion_proof(100, tree_size, spans, images)
    assert_resizable(*buffers)


def test_malformed_spans() -> None:
    images = TREE.images(100)
    block = bytearray(TREE.blob[: 16 * 32])
    cases = [
        (5, TypeError, "spans must be a list or tuple"),
        ([[0, block]], TypeError, r"spans\[0\] must be a \(first_leaf, leaf hashes\)"),
        ([(0, block), (0, block, 1)], TypeError, r"spans\[1\] must be"),
        ([(-16, block)], ValueError, r"spans\[0\] starts at leaf -16"),
        ([(0, block), (96, block[:-1])], ValueError, r"spans\[1\] is 511 bytes"),
        ([("0", block)], TypeError, r"spans\[0\] first_leaf must be an int, not str"),
    ]
    for spans, error, match in cases:
        with pytest.raises(error, match=match):
            native.inclusion_proof(3, 100, spans, images)
    assert_resizable(block)


def test_many_spans() -> None:
    # More spans than the C module keeps inline take its allocated path.
    tree_size = 200
    spans = [
        (first, TREE.blob[first * 32 : min(first + BLOCK, tree_size) * 32])
        for first in range(0, tree_size, BLOCK)
    ]
    for leaf_index in range(tree_size):
        expected = reference_proof.inclusion_proof(leaf_index, tree_size, TREE.reader)
        got = native.inclusion_proof(
            leaf_index, tree_size, spans, TREE.images(tree_size)
        )
        assert got == expected


def test_images_not_a_sequence() -> None:
    with pytest.raises(TypeError, match="images must be a list or tuple"):
        native.inclusion_proof(0, 100, TREE.spans(0, 100), 7)


def test_tree_of_one_leaf_reads_nothing() -> None:
    assert native.inclusion_proof(0, 1, [], []) == []


@pytest.mark.parametrize("name", ["inclusion_proof", "consistency_proof", "root_hash"])
def test_proof_argument_count(name: str) -> None:
    with pytest.raises(TypeError, match="positional arguments, 1 given"):
        getattr(native._native, name)(1)
