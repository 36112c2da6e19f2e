"""LogStore proofs for a tree_size beyond the committed tree raise TreeRangeError.

The docstrings of LogStore.inclusion_proof and consistency_proof promise
TreeRangeError for a tree_size above the committed one. An intact store
must not raise CorruptStoreError for such a request, because its message
reports lost data to the operator.
"""

from __future__ import annotations

import pytest

from ledger.merkle import TreeRangeError, inclusion_proof
from ledger.store import LogStore

COMMITTED = 100


@pytest.fixture
def store(tmp_path):
    with LogStore(tmp_path / "log.lmdb", create=True) as opened:
        opened.append_batch([b"range entry %d" % i for i in range(COMMITTED)])
        yield opened


# Sizes just past the tree, past its last block of 16 leaves, past a row
# of 2,032 stored hashes, and just below 2**63, the native module's limit.
BEYOND = [COMMITTED + 1, COMMITTED + 16, COMMITTED + 2032, 2**63 - 1]


@pytest.mark.parametrize("tree_size", BEYOND)
def test_inclusion_beyond_tree_raises_range(store, tree_size):
    with pytest.raises(TreeRangeError):
        store.inclusion_proof(0, tree_size)


@pytest.mark.parametrize("tree_size", BEYOND)
def test_consistency_beyond_tree_raises_range(store, tree_size):
    with pytest.raises(TreeRangeError):
        store.consistency_proof(1, tree_size)


def test_store_intact_after_range_errors(store):
    for tree_size in BEYOND:
        with pytest.raises(TreeRangeError):
            store.inclusion_proof(COMMITTED - 1, tree_size)
    with store.view() as view:
        expected = inclusion_proof(COMMITTED - 1, COMMITTED, view)
    assert store.inclusion_proof(COMMITTED - 1, COMMITTED) == expected
