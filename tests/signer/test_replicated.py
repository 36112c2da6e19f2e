"""Replicated document store over three real folders: repair and refusal."""

from __future__ import annotations

import asyncio
import hashlib
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signer.envelope import EnvelopeError, MasterKey, seal
from signer.replicated import ReplicaError, ReplicatedDocumentStore, document_key
from signer.storage import FolderBlobStore

DOCUMENT = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


@pytest.fixture
def folders(tmp_path):
    return [tmp_path / f"replica-{name}" for name in "abc"]


@pytest.fixture
def replicated(folders):
    stores = [FolderBlobStore(folder) for folder in folders]
    return ReplicatedDocumentStore(stores, [MasterKey.generate()])


def replica_paths(folders, contract_id):
    return [
        folder.joinpath(*document_key(contract_id).split("/")) for folder in folders
    ]


async def test_put_writes_same_ciphertext_everywhere(replicated, folders):
    stored = await replicated.put("c-1", DOCUMENT)
    copies = [path.read_bytes() for path in replica_paths(folders, "c-1")]
    assert copies[0] == copies[1] == copies[2]
    assert hashlib.sha256(copies[0]).digest() == stored.ciphertext_hash
    assert stored.size == len(copies[0])
    assert stored.locations == tuple(folder.resolve().as_uri() for folder in folders)
    assert DOCUMENT[100:200] not in copies[0]
    assert await replicated.get("c-1", stored.ciphertext_hash) == DOCUMENT


@pytest.mark.parametrize("damaged", [[0], [2], [0, 1], [1, 2], [0, 2]])
@pytest.mark.parametrize("damage", ["delete", "flip", "truncate", "replay"])
async def test_damaged_replicas_repaired(replicated, folders, damaged, damage, caplog):
    stored = await replicated.put("c-2", DOCUMENT)
    paths = replica_paths(folders, "c-2")
    original = paths[0].read_bytes()
    for index in damaged:
        if damage == "delete":
            paths[index].unlink()
        elif damage == "flip":
            data = bytearray(original)
            data[len(data) // 2] ^= 0x01
            paths[index].write_bytes(bytes(data))
        elif damage == "truncate":
            paths[index].write_bytes(original[:-1])
        else:
            # A valid envelope of the same contract that is not the stored one.
            paths[index].write_bytes(seal(b"other", "c-2", replicated.master_keys[0]))

    with caplog.at_level(logging.WARNING, logger="signer.replicated"):
        report = await replicated.read(document_key("c-2"), stored.ciphertext_hash)
    assert report.ciphertext == original
    assert set(report.repaired) == {replicated.locations[i] for i in damaged}
    assert report.unavailable == ()
    assert len(report.intact) == 3 - len(damaged)
    for path in paths:
        assert path.read_bytes() == original
    assert "repaired replica" in caplog.text
    assert await replicated.get("c-2", stored.ciphertext_hash) == DOCUMENT


@pytest.mark.parametrize("damage", ["delete", "flip"])
async def test_all_replicas_damaged_raises(replicated, folders, damage):
    stored = await replicated.put("c-3", DOCUMENT)
    for path in replica_paths(folders, "c-3"):
        if damage == "delete":
            path.unlink()
        else:
            data = bytearray(path.read_bytes())
            data[-1] ^= 0x80
            path.write_bytes(bytes(data))
    with pytest.raises(ReplicaError, match="no intact replica") as caught:
        await replicated.get("c-3", stored.ciphertext_hash)
    assert stored.ciphertext_hash.hex() in str(caught.value)


async def test_unavailable_store_reported_not_fatal(replicated, folders):
    stored = await replicated.put("c-4", DOCUMENT)
    broken = folders[1]
    for path in sorted(broken.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    broken.rmdir()
    broken.write_bytes(b"this location is down")

    report = await replicated.read(document_key("c-4"), stored.ciphertext_hash)
    assert report.unavailable == (replicated.locations[1],)
    assert report.repaired == ()
    assert await replicated.get("c-4", stored.ciphertext_hash) == DOCUMENT


async def test_failed_write_raises_with_location(replicated, folders):
    folders[2].rmdir()
    folders[2].write_bytes(b"not a folder")
    with pytest.raises(ReplicaError, match="1 of 3 locations") as caught:
        await replicated.put("c-5", DOCUMENT)
    assert replicated.locations[2] in str(caught.value)


async def test_wrong_master_key_raises(folders):
    writer = ReplicatedDocumentStore(
        [FolderBlobStore(f) for f in folders], [MasterKey.generate()]
    )
    stored = await writer.put("c-6", DOCUMENT)
    reader = ReplicatedDocumentStore(
        [FolderBlobStore(f) for f in folders], [MasterKey.generate()]
    )
    with pytest.raises(EnvelopeError):
        await reader.get("c-6", stored.ciphertext_hash)


def test_fewer_than_three_stores_rejected(folders):
    stores = [FolderBlobStore(folder) for folder in folders[:2]]
    with pytest.raises(ValueError, match="at least 3 stores"):
        ReplicatedDocumentStore(stores, [MasterKey.generate()])
    same = [FolderBlobStore(folders[0]) for _ in range(3)]
    with pytest.raises(ValueError, match="distinct"):
        ReplicatedDocumentStore(same, [MasterKey.generate()])


damages = st.sampled_from(["intact", "missing", "flip", "truncate", "replay", "empty"])


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=st.tuples(damages, damages, damages), position=st.integers(0, 10**6))
def test_reads_never_return_wrong_bytes(tmp_path_factory, plan, position):
    # Any mix of damage: either every replica ends intact and the document
    # comes back, or ReplicaError is raised; never other bytes.
    root = tmp_path_factory.mktemp("replicas")
    folders = [root / name for name in "abc"]
    key = MasterKey.generate()
    replicated = ReplicatedDocumentStore([FolderBlobStore(f) for f in folders], [key])

    async def scenario():
        stored = await replicated.put("c-p", DOCUMENT)
        paths = replica_paths(folders, "c-p")
        original = paths[0].read_bytes()
        for path, damage in zip(paths, plan):
            if damage == "missing":
                path.unlink()
            elif damage == "flip":
                data = bytearray(original)
                data[position % len(data)] ^= 0x40
                path.write_bytes(bytes(data))
            elif damage == "truncate":
                path.write_bytes(original[: position % len(original)])
            elif damage == "replay":
                path.write_bytes(seal(DOCUMENT, "c-p", key))
            elif damage == "empty":
                path.write_bytes(b"")

        if "intact" not in plan:
            with pytest.raises(ReplicaError):
                await replicated.get("c-p", stored.ciphertext_hash)
            return
        assert await replicated.get("c-p", stored.ciphertext_hash) == DOCUMENT
        for path in paths:
            assert path.read_bytes() == original

    asyncio.run(scenario())
