"""LogStore.read_hashes with a negative index raises instead of returning a hash.

Levels 4 and up are served from in-memory images by slicing. A negative
index there slices from the end of the image, so read_hashes returns the
hash of another node, or b"" before the image has grown, with no error.
Below level 4 the same ids raise struct.error instead of a store error.
"""

from __future__ import annotations

import pytest

from ledger.merkle import TreeRangeError
from ledger.store import LogStore, StoreError

TREE_SIZE = 1000


@pytest.fixture
def store(tmp_path):
    with LogStore(tmp_path / "log.lmdb", create=True) as opened:
        opened.append_batch([b"read attack entry %d" % i for i in range(TREE_SIZE)])
        yield opened


@pytest.mark.parametrize("node", [(0, -1), (2, -1), (4, -1), (4, -2), (8, -1)])
def test_negative_index_raises(store, node):
    with pytest.raises((TreeRangeError, StoreError)):
        store.read_hashes([node])


def test_negative_index_after_growth_raises(store):
    # Level 4 of 1,000 leaves has 62 stored hashes, so (4, -2) would slice
    # out (4, 60) once the image has grown.
    store.read_hashes([(4, 61)])
    with pytest.raises((TreeRangeError, StoreError)):
        store.read_hashes([(4, -2)])
