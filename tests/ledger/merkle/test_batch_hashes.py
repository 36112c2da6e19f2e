"""stored_hashes_for_range against the per-leaf stored_hashes_for_leaf."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import leaf_hash, stored_hashes_for_leaf
from ledger.merkle.stored import stored_hashes_for_range

from .conftest import DictReader

MAX_LEAVES = 600


def _per_leaf(begin: int, hashes: list[bytes], reader: DictReader) -> dict:
    """The stored hashes that per-leaf appends of hashes after begin add."""
    added: dict[tuple[int, int], bytes] = {}
    for offset, value in enumerate(hashes):
        for level, index, stored in stored_hashes_for_leaf(begin + offset, value, reader):
            reader.hashes[level, index] = stored
            added[level, index] = stored
    return added


@settings(max_examples=200, deadline=None)
@given(
    begin=st.integers(min_value=0, max_value=MAX_LEAVES),
    count=st.integers(min_value=0, max_value=MAX_LEAVES),
)
def test_range_equals_per_leaf(begin: int, count: int) -> None:
    hashes = [leaf_hash(b"leaf %d" % i) for i in range(begin + count)]
    reader = DictReader()
    _per_leaf(0, hashes[:begin], reader)
    before = dict(reader.hashes)
    reader.reads = 0

    result = stored_hashes_for_range(begin, hashes[begin:], reader)
    batched = {
        (level, first + offset): value
        for level, first, values in result
        for offset, value in enumerate(values)
    }
    # Each level lists [begin >> level, end >> level) without gaps.
    for level, first, values in result:
        assert first == begin >> level
        assert first + len(values) == (begin + count) >> level
    # Reads stay within the tree of size begin: at most one per level.
    assert reader.reads <= len(result)

    expected = _per_leaf(begin, hashes[begin:], reader)
    assert batched == expected
    assert not set(batched) & set(before)


def test_empty_range_adds_nothing() -> None:
    assert stored_hashes_for_range(5, [], DictReader()) == []
