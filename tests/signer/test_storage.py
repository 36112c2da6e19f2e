"""Folder blob store: round trips, listing, key checks and atomic writes."""

from __future__ import annotations

import pytest

from signer.storage import BlobNotFoundError, FolderBlobStore, StorageError, check_key


async def test_folder_put_get_round_trip(tmp_path):
    store = FolderBlobStore(tmp_path / "a")
    await store.put("documents/c1.pdf.sealed", b"first")
    assert await store.get("documents/c1.pdf.sealed") == b"first"
    assert (tmp_path / "a" / "documents" / "c1.pdf.sealed").read_bytes() == b"first"


async def test_folder_put_replaces_object(tmp_path):
    store = FolderBlobStore(tmp_path)
    await store.put("k", b"old")
    await store.put("k", b"new")
    assert await store.get("k") == b"new"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


async def test_folder_get_missing_raises(tmp_path):
    store = FolderBlobStore(tmp_path)
    with pytest.raises(BlobNotFoundError) as caught:
        await store.get("absent/key")
    assert "absent/key" in str(caught.value)
    assert caught.value.location == store.location


async def test_folder_delete_and_list(tmp_path):
    store = FolderBlobStore(tmp_path)
    for key in ("b/2", "a/1", "b/1", "c"):
        await store.put(key, key.encode())
    assert await store.list() == ["a/1", "b/1", "b/2", "c"]
    assert await store.list("b/") == ["b/1", "b/2"]
    await store.delete("b/1")
    await store.delete("b/1")
    assert await store.list("b/") == ["b/2"]


async def test_folder_list_skips_temporary_files(tmp_path):
    store = FolderBlobStore(tmp_path)
    await store.put("x", b"1")
    (tmp_path / ".tmp-crashed").write_bytes(b"partial")
    assert await store.list() == ["x"]


async def test_folder_unreadable_root_raises(tmp_path):
    store = FolderBlobStore(tmp_path / "root")
    await store.put("k", b"v")
    (tmp_path / "root" / "k").unlink()
    (tmp_path / "root").rmdir()
    (tmp_path / "root").write_bytes(b"not a folder")
    with pytest.raises(StorageError) as caught:
        await store.get("k")
    assert not isinstance(caught.value, BlobNotFoundError)


@pytest.mark.parametrize(
    "key",
    ["", "/abs", "a//b", "../x", "a/../b", "./a", "a/.hidden", "a b", "a\\b", "é"],
)
async def test_invalid_keys_rejected(tmp_path, key):
    store = FolderBlobStore(tmp_path)
    with pytest.raises(ValueError, match="invalid object key"):
        check_key(key)
    with pytest.raises(ValueError):
        await store.put(key, b"x")
    assert list(tmp_path.iterdir()) == []


def test_location_is_file_url(tmp_path):
    store = FolderBlobStore(tmp_path / "replica")
    assert store.location == (tmp_path / "replica").resolve().as_uri()
