"""The mirror follows a real log over HTTP on 127.0.0.1 and catches a fork."""

from __future__ import annotations

import json

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import merkle
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.http import add_read_routes
from ledger.note import Ed25519Signer
from ledger.store import LogConfig, LogStore, PublishedCheckpoint
from witnesses.mirror import ForkError, Mirror, MirrorError
from witnesses.nodes import build_mirror_app
from witnesses.witness import origin_hash

ORIGIN = "example.test/mirrored"


class SourceLog:
    """A log store with signed checkpoints, served by the real read API."""

    def __init__(self, path, signer: Ed25519Signer) -> None:
        self.store = LogStore(path, create=True)
        self.store.write_config(LogConfig(ORIGIN))
        self.signer = signer
        self.server: TestServer | None = None

    def append(self, entries: list[bytes]) -> None:
        self.store.append_batch(entries)

    def publish(self) -> bytes:
        tree_size = self.store.tree_size()
        root = merkle.root_hash(tree_size, self.store)
        note = sign_checkpoint(Checkpoint(ORIGIN, tree_size, root), [self.signer])
        self.store.put_signed_checkpoint(tree_size, note)
        self.store.publish_checkpoint(PublishedCheckpoint(tree_size, note))
        return note

    async def serve(self) -> str:
        app = web.Application()
        add_read_routes(app, self.store)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("")).rstrip("/")

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
        self.store.close()


def entries(prefix: str, count: int, start: int = 0) -> list[bytes]:
    return [f"{prefix} entry {i}".encode() for i in range(start, start + count)]


@pytest.fixture
async def source(tmp_path):
    signer = Ed25519Signer(ORIGIN, Ed25519PrivateKey.generate())
    log = SourceLog(tmp_path / "source.lmdb", signer)
    url = await log.serve()
    log.url = url
    yield log
    await log.close()


@pytest.fixture
def mirror(tmp_path, source):
    mirror = Mirror(tmp_path / "mirror", source.url, source.signer.vkey)
    yield mirror
    mirror.close()


async def test_mirror_catches_up_in_rounds(source, mirror):
    async with aiohttp.ClientSession() as session:
        source.publish()
        assert await mirror.update(session) == 0
        for count in (1, 254, 1, 300, 157):
            source.append(entries("honest", count, source.store.tree_size()))
            note = source.publish()
            tree_size = await mirror.update(session)
            assert tree_size == source.store.tree_size()
            assert mirror.verified_checkpoint().note == note

    # Every entry bundle and hash tile is the same as the log's.
    tree_size = source.store.tree_size()
    assert tree_size == 713
    for tile in merkle.tiles_for_size(tree_size):
        assert mirror.store.read_tile(tile.level, tile.index, tile.width) == (
            source.store.read_tile(tile.level, tile.index, tile.width)
        )
    for bundle in merkle.entry_bundles_for_size(tree_size):
        assert mirror.store.read_entry_bundle(bundle.index, bundle.width) == (
            source.store.read_entry_bundle(bundle.index, bundle.width)
        )


async def test_mirror_serves_read_api(source, mirror, aiohttp_client):
    source.append(entries("honest", 600))
    note = source.publish()
    async with aiohttp.ClientSession() as session:
        await mirror.update(session)
    client = await aiohttp_client(build_mirror_app(mirror))
    response = await client.get("/log/checkpoint")
    assert await response.read() == note
    response = await client.get(f"/{origin_hash(ORIGIN)}/checkpoint")
    assert await response.read() == note
    response = await client.get("/log/proof/consistency?size1=100&size2=600")
    proof = await response.json()
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            source.url + "/log/proof/consistency?size1=100&size2=600"
        ) as theirs,
    ):
        assert proof == await theirs.json()
    response = await client.get("/log/tile/entries/001.p/88")
    assert response.status == 200
    assert merkle.decode_entry_bundle(await response.read())[0] == b"honest entry 256"


async def fork_source(tmp_path, signer, keep: int, total: int) -> SourceLog:
    forked = SourceLog(tmp_path / f"fork-{keep}-{total}.lmdb", signer)
    forked.append(entries("honest", keep))
    forked.append(entries("forged", total - keep, keep))
    forked.publish()
    forked.url = await forked.serve()
    return forked


@pytest.mark.parametrize("total", [400, 300, 200])
async def test_fork_detected_with_evidence(tmp_path, source, mirror, c2sp, total):
    """A tree signed with the same key that rewrites entry 150 onwards."""
    source.append(entries("honest", 300))
    verified_note = source.publish()
    async with aiohttp.ClientSession() as session:
        await mirror.update(session)
        forked = await fork_source(tmp_path, source.signer, 150, total)
        try:
            mirror.source_url = forked.url
            with pytest.raises(ForkError) as caught:
                await mirror.update(session)
        finally:
            await forked.close()

    evidence = caught.value.evidence
    assert evidence.verified_note == verified_note
    c2sp.verify_note_signature(evidence.conflicting_note, source.signer.vkey)
    assert (
        c2sp.parse_checkpoint(c2sp.split_note(evidence.conflicting_note)[0])[1] == total
    )
    # The evidence is on disk, and the mirror still serves the verified tree.
    records = mirror.forks()
    assert len(records) == 1
    assert records[0]["verified_note"] == verified_note.decode()
    assert json.dumps(records[0])
    assert mirror.verified_checkpoint().note == verified_note
    assert mirror.store.tree_size() == 300


async def test_wrong_entries_rejected_without_fork(tmp_path, source, mirror):
    """Entry bundles that do not hash to the signed root are rejected."""
    source.append(entries("honest", 100))
    source.publish()
    async with aiohttp.ClientSession() as session:
        await mirror.update(session)
        source.append(entries("honest", 50, 100))
        source.publish()

        async def tampered(request: web.Request) -> web.Response:
            bundle = merkle.encode_entry_bundle(entries("tampered", 150))
            return web.Response(body=bundle)

        async def passthrough(request: web.Request) -> web.Response:
            async with session.get(source.url + request.path_qs) as response:
                return web.Response(status=response.status, body=await response.read())

        app = web.Application()
        app.router.add_get("/log/tile/entries/000.p/150", tampered)
        app.router.add_get("/log/{tail:.*}", passthrough)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            mirror.source_url = str(server.make_url("")).rstrip("/")
            with pytest.raises(MirrorError) as caught:
                await mirror.update(session)
        finally:
            await server.close()
    assert not isinstance(caught.value, ForkError)
    assert mirror.forks() == []
    assert mirror.store.tree_size() == 100


async def test_foreign_signature_rejected(tmp_path, source):
    other = Ed25519Signer(ORIGIN, Ed25519PrivateKey.generate())
    mirror = Mirror(tmp_path / "m", source.url, other.vkey)
    source.append(entries("honest", 3))
    source.publish()
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(MirrorError):
                await mirror.update(session)
        assert mirror.store.tree_size() == 0
    finally:
        mirror.close()


async def test_entries_left_by_crash_reused(source, mirror):
    """Entries committed before a crash, without their checkpoint, are kept."""
    source.append(entries("honest", 100))
    source.publish()
    async with aiohttp.ClientSession() as session:
        await mirror.update(session)
        source.append(entries("honest", 60, 100))
        note = source.publish()
        # The state a crash leaves between the entries' commit and the checkpoint's.
        mirror.store.append_batch(entries("honest", 30, 100))
        assert await mirror.update(session) == 160
    assert mirror.verified_checkpoint().note == note
    assert mirror.store.tree_size() == 160


async def test_time_stamp_token_copied(tmp_path, source, mirror, aiohttp_client):
    """The log's time-stamp token for the mirrored size is served as-is."""
    source.append(entries("honest", 10))
    note = source.publish()
    token = b"0\x82 stand-in DER bytes of a TimeStampToken"
    source.store.publish_checkpoint(PublishedCheckpoint(10, note, token))
    async with aiohttp.ClientSession() as session:
        await mirror.update(session)
    client = await aiohttp_client(build_mirror_app(mirror))
    response = await client.get("/log/checkpoint.tsr")
    assert response.status == 200
    assert await response.read() == token
