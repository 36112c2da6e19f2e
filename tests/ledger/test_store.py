"""LogStore on real LMDB files: layout, batching, duplicates, checkpoints."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    TreeRangeError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.store import (
    EntryTooLargeError,
    LogConfig,
    LogStore,
    NotFoundError,
    PublishedCheckpoint,
    StoreError,
    split_bundle,
)


def reference_root(entries: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 MTH, written straight from the definition."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    split = 1
    while split * 2 < len(entries):
        split *= 2
    left = reference_root(entries[:split])
    right = reference_root(entries[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def make_entries(count: int, start: int = 0) -> list[bytes]:
    return [f"entry {i:06d} ".encode() * (1 + i % 7) for i in range(start, start + count)]


@pytest.fixture
def store(tmp_path):
    with LogStore(tmp_path / "log.lmdb", create=True) as opened:
        opened.write_config(LogConfig("example.com/log"))
        yield opened


def test_append_batches_match_reference(store):
    entries = make_entries(700)
    position = 0
    # Batch sizes that straddle bundle (256) and hash row (127) boundaries.
    for size in (1, 126, 2, 127, 300, 144):
        results = store.append_batch(entries[position : position + size])
        assert [r.leaf_index for r in results] == list(range(position, position + size))
        assert not any(r.duplicate for r in results)
        position += size
    assert store.tree_size() == 700
    with store.view() as view:
        for tree_size in range(0, 701):
            assert root_hash(tree_size, view) == reference_root(entries[:tree_size])


def test_entries_and_bundles_read_back(store):
    entries = make_entries(600)
    store.append_batch(entries[:300])
    store.append_batch(entries[300:])
    with store.view() as view:
        for leaf_index in (0, 1, 255, 256, 511, 512, 599):
            assert view.read_entry(leaf_index) == entries[leaf_index]
        assert split_bundle(view.read_entry_bundle(0, 256)) == entries[:256]
        assert split_bundle(view.read_entry_bundle(2, 88)) == entries[512:600]
        assert split_bundle(view.read_entry_bundle(2, 10)) == entries[512:522]
        with pytest.raises(NotFoundError):
            view.read_entry_bundle(2, 89)
        with pytest.raises(NotFoundError):
            view.read_entry(600)


def test_tiles_hold_leaf_hashes(store):
    entries = make_entries(1000)
    store.append_batch(entries)
    with store.view() as view:
        tile = view.read_tile(0, 1, 256)
        assert tile == b"".join(leaf_hash(e) for e in entries[256:512])
        partial = view.read_tile(0, 3, 232)
        assert partial == b"".join(leaf_hash(e) for e in entries[768:1000])
        with pytest.raises(NotFoundError):
            view.read_tile(0, 3, 233)
        with pytest.raises(NotFoundError):
            view.read_tile(1, 0, 4)
        level1 = view.read_tile(1, 0, 3)
        expected = b"".join(
            reference_root(entries[i * 256 : (i + 1) * 256]) for i in range(3)
        )
        assert level1 == expected


def test_duplicate_returns_first_index(store):
    entries = make_entries(10)
    store.append_batch(entries)
    results = store.append_batch([b"new", entries[3], b"new", entries[9]])
    assert [r.leaf_index for r in results] == [10, 3, 10, 9]
    assert [r.duplicate for r in results] == [False, True, True, True]
    assert results[1].leaf_hash == leaf_hash(entries[3])
    assert store.tree_size() == 11


def test_old_layout_refused(tmp_path):
    path = tmp_path / "old"
    with LogStore(path, create=True) as store:
        store.append_batch([b"entry"])
        with store.env.begin(write=True) as txn:
            txn.put(b"format", b"1", db=store._dbs["meta"])
    with pytest.raises(StoreError, match="layout version '1'"):
        LogStore(path)


def test_oversized_entry_rejected_before_writing(store):
    with pytest.raises(EntryTooLargeError, match="65,535"):
        store.append_batch([b"fits", b"x" * 65_536])
    assert store.tree_size() == 0
    store.append_batch([b"y" * 65_535, b""])
    assert store.read_entry(0) == b"y" * 65_535
    assert store.read_entry(1) == b""


def test_reopen_keeps_state(tmp_path):
    path = tmp_path / "log.lmdb"
    entries = make_entries(300)
    with LogStore(path, create=True) as store:
        store.write_config(LogConfig("example.com/log", (("http://127.0.0.1:1", "w+1+AA"),), 1))
        store.append_batch(entries)
    with LogStore(path, readonly=True) as store:
        assert store.tree_size() == 300
        assert store.config().quorum == 1
        assert store.config().witnesses == (("http://127.0.0.1:1", "w+1+AA"),)
        with store.view() as view:
            assert root_hash(300, view) == reference_root(entries)


def test_open_missing_store_fails(tmp_path):
    with pytest.raises(StoreError, match="ledger init"):
        LogStore(tmp_path / "absent")


def test_config_quorum_out_of_range(store):
    with pytest.raises(StoreError, match="quorum 2"):
        store.write_config(LogConfig("o", (("u", "k"),), 2))


def test_checkpoint_only_for_committed_tree(store):
    store.append_batch(make_entries(3))
    with pytest.raises(StoreError, match="beyond the committed"):
        store.put_signed_checkpoint(4, b"note")
    with pytest.raises(StoreError, match="beyond the committed"):
        store.publish_checkpoint(PublishedCheckpoint(4, b"note"))
    store.put_signed_checkpoint(3, b"note 3")
    store.publish_checkpoint(PublishedCheckpoint(3, b"note 3", b"token"))
    latest = store.latest_checkpoint()
    assert latest == PublishedCheckpoint(3, b"note 3", b"token")
    with pytest.raises(StoreError, match="below the latest"):
        store.publish_checkpoint(PublishedCheckpoint(2, b"note 2"))
    with store.view() as view:
        assert view.signed_checkpoints() == [(3, b"note 3")]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batches=st.lists(
        st.lists(st.binary(max_size=40), min_size=1, max_size=70), min_size=1, max_size=8
    )
)
def test_random_batches_prove_against_reference(tmp_path_factory, batches):
    path = tmp_path_factory.mktemp("log") / "log.lmdb"
    stored: list[bytes] = []
    with LogStore(path, create=True) as store:
        sizes = [0]
        for batch in batches:
            for entry, result in zip(batch, store.append_batch(batch)):
                if result.duplicate:
                    assert stored[result.leaf_index] == entry
                else:
                    assert result.leaf_index == len(stored)
                    stored.append(entry)
            sizes.append(len(stored))
        tree_size = len(stored)
        assert store.tree_size() == tree_size
        with store.view() as view:
            root = root_hash(tree_size, view)
            assert root == reference_root(stored)
            for leaf_index in range(0, tree_size, max(1, tree_size // 10)):
                proof = inclusion_proof(leaf_index, tree_size, view)
                verify_inclusion(
                    leaf_hash(stored[leaf_index]), leaf_index, tree_size, proof, root
                )
            for size1 in sizes:
                if 0 < size1 <= tree_size:
                    proof = consistency_proof(size1, tree_size, view)
                    old_root = reference_root(stored[:size1])
                    verify_consistency(size1, tree_size, proof, old_root, root)


def test_read_beyond_tree_raises_range(store):
    store.append_batch([b"one", b"two"])
    with pytest.raises(TreeRangeError, match="beyond the committed tree_size 2"):
        store.read_hashes([(0, 2)])
    with pytest.raises(TreeRangeError, match="beyond the committed tree_size 2"):
        store.read_hashes([(40, 0)])
    assert store.read_hashes([(1, 0)]) == [node_hash(leaf_hash(b"one"), leaf_hash(b"two"))]


def test_publish_keeps_time_stamped_note_of_same_size(store):
    store.append_batch([b"stamped"])
    store.publish_checkpoint(PublishedCheckpoint(1, b"note with token", b"token"))
    store.publish_checkpoint(PublishedCheckpoint(1, b"note without token"))
    latest = store.latest_checkpoint()
    assert latest.note == b"note with token"
    assert latest.time_stamp_token == b"token"
    store.append_batch([b"next"])
    store.publish_checkpoint(PublishedCheckpoint(2, b"larger tree"))
    assert store.latest_checkpoint().note == b"larger tree"
