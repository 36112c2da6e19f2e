"""The /log/ read API on a real aiohttp server bound to 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import aiohttp
import pytest
from aiohttp import web

from ledger.checkpoint import open_checkpoint
from ledger.http import add_read_routes
from ledger.log import init_log, open_log
from ledger.merkle import (
    entry_bundles_for_size,
    leaf_hash,
    tiles_for_size,
    verify_consistency,
    verify_inclusion,
)
from ledger.publisher import Publisher
from ledger.store import split_bundle

ORIGIN = "example.com/http-test"


def reference_root(hashes: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 MTH over leaf hashes, from the definition."""
    if len(hashes) == 1:
        return hashes[0]
    split = 1
    while split * 2 < len(hashes):
        split *= 2
    left = reference_root(hashes[:split])
    right = reference_root(hashes[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def make_entries(count: int) -> list[bytes]:
    return [f"contract step {i}".encode() for i in range(count)]


class Server:
    """A real server on 127.0.0.1 with a free port, and a client session."""

    def __init__(self, source) -> None:
        self.app = web.Application()
        add_read_routes(self.app, source)

    async def __aenter__(self) -> Server:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.session.close()
        await self.runner.cleanup()

    def get(self, path: str, **kwargs):
        return self.session.get(self.base + path, **kwargs)


@pytest.fixture
def log(tmp_path):
    init_log(tmp_path / "data", ORIGIN, b"pw")
    opened = open_log(tmp_path / "data", passphrase=b"pw")
    yield opened
    opened.close()


async def test_spec_tree_of_70000_tiles(log):
    entries = make_entries(70_000)
    for start in range(0, len(entries), 10_000):
        log.store.append_batch(entries[start : start + 10_000])
    published = await Publisher(log.store, log.checkpoint_signer()).publish()
    checkpoint, _ = open_checkpoint(published.note, log.verifier)
    leaf_hashes = [leaf_hash(e) for e in entries]
    assert checkpoint.root_hash == reference_root(leaf_hashes)

    async with Server(log.store) as server:

        async def fetch_tile(coord) -> bytes:
            async with server.get("/log/" + coord.path) as response:
                assert response.status == 200, coord.path
                assert response.content_type == "application/octet-stream"
                assert "immutable" in response.headers["Cache-Control"]
                body = await response.read()
            assert len(body) == 32 * coord.width
            return body

        coords = list(tiles_for_size(70_000))
        bodies = await asyncio.gather(*(fetch_tile(coord) for coord in coords))
        tiles = {(c.level, c.index): body for c, body in zip(coords, bodies)}
        # The worked example of C2SP tlog-tiles: 273 full level 0 tiles,
        # a partial one of width 112, one full and one partial (17) level 1
        # tile, and a partial level 2 tile of width 1.
        assert sum(1 for level, _ in tiles if level == 0) == 274
        assert len(tiles[(0, 273)]) == 112 * 32
        assert len(tiles[(1, 0)]) == 256 * 32
        assert len(tiles[(1, 1)]) == 17 * 32
        assert len(tiles[(2, 0)]) == 32
        for index in range(274):
            expected = b"".join(leaf_hashes[index * 256 : (index + 1) * 256])
            assert tiles[(0, index)] == expected
        level1 = tiles[(1, 0)] + tiles[(1, 1)]
        for index in range(273):
            tile = tiles[(0, index)]
            hashes = [tile[i : i + 32] for i in range(0, len(tile), 32)]
            assert level1[index * 32 : (index + 1) * 32] == reference_root(hashes)
        hashes = [tiles[(1, 0)][i : i + 32] for i in range(0, 8192, 32)]
        assert tiles[(2, 0)] == reference_root(hashes)

        async def fetch_bundle(coord) -> list[bytes]:
            async with server.get(
                "/log/" + coord.path, headers={"Accept-Encoding": "gzip"}
            ) as response:
                assert response.status == 200
                assert response.headers.get("Content-Encoding") == "gzip"
                return split_bundle(await response.read())

        bundles = await asyncio.gather(
            *(fetch_bundle(coord) for coord in entry_bundles_for_size(70_000))
        )
        decoded = [entry for bundle in bundles for entry in bundle]
        assert decoded == entries


async def test_checkpoint_and_token(log):
    log.store.append_batch(make_entries(5))
    async with Server(log.store) as server:
        async with server.get("/log/checkpoint") as response:
            assert response.status == 404
            assert "not published" in (await response.json())["error"]

        async def time_stamp(note: bytes) -> bytes:
            return hashlib.sha256(note).digest()

        await Publisher(log.store, log.checkpoint_signer(), time_stamp=time_stamp).publish()
        async with server.get("/log/checkpoint") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
            assert "max-age=0" in response.headers["Cache-Control"]
            checkpoint, _ = open_checkpoint(await response.read(), log.verifier)
        assert checkpoint.tree_size == 5
        async with server.get("/log/checkpoint.tsr") as response:
            assert response.status == 200
            assert response.headers["Ledger-Tree-Size"] == "5"
            token = await response.read()
        assert token == hashlib.sha256(log.store.latest_checkpoint().note).digest()


BAD_TILE_PATHS = [
    ("/log/tile/0/1", 400),
    ("/log/tile/0/x001", 400),
    ("/log/tile/0/x001/002/003", 400),
    ("/log/tile/64/000", 400),
    ("/log/tile/00/000", 400),
    ("/log/tile/0/000.p/0", 400),
    ("/log/tile/0/000.p/256", 400),
    ("/log/tile/entries/000.p/01", 400),
    ("/log/tile/level/000", 400),
    ("/log/tile/0/000", 404),
    ("/log/tile/0/000.p/11", 404),
    ("/log/tile/0/001.p/1", 404),
    ("/log/tile/1/000.p/1", 404),
    ("/log/tile/entries/000", 404),
    ("/log/tile/entries/000.p/11", 404),
    ("/log/tile/entries/x001/000.p/1", 404),
]


async def test_bad_tile_paths(log):
    log.store.append_batch(make_entries(10))
    async with Server(log.store) as server:
        for path, status in BAD_TILE_PATHS:
            async with server.get(path) as response:
                assert response.status == status, path
                assert response.content_type == "application/json", path
                assert response.headers["Cache-Control"] == "no-store", path
                reason = (await response.json())["error"]
            assert reason, path


async def test_partial_tiles_served(log):
    entries = make_entries(10)
    log.store.append_batch(entries)
    async with Server(log.store) as server:
        async with server.get("/log/tile/0/000.p/10") as response:
            assert await response.read() == b"".join(leaf_hash(e) for e in entries)
        async with server.get("/log/tile/entries/000.p/3") as response:
            assert split_bundle(await response.read()) == entries[:3]


async def test_inclusion_proofs(log):
    entries = make_entries(1000)
    log.store.append_batch(entries)
    published = await Publisher(log.store, log.checkpoint_signer()).publish()
    checkpoint, _ = open_checkpoint(published.note, log.verifier)
    async with Server(log.store) as server:
        for leaf_index in (0, 1, 255, 256, 511, 998, 999):
            async with server.get(f"/log/proof/inclusion?leaf_index={leaf_index}") as r:
                assert r.status == 200
                body = await r.json()
            assert body["tree_size"] == 1000
            assert body["checkpoint"] == published.note.decode()
            proof = [base64.b64decode(h) for h in body["inclusion_proof"]]
            verify_inclusion(
                leaf_hash(entries[leaf_index]), leaf_index, 1000, proof, checkpoint.root_hash
            )
        expected_hash = leaf_hash(entries[123])
        for text in (expected_hash.hex(), base64.b64encode(expected_hash).decode(),
                     base64.urlsafe_b64encode(expected_hash).decode()):
            async with server.get(
                "/log/proof/inclusion", params={"leaf_hash": text, "tree_size": "500"}
            ) as r:
                assert r.status == 200
                body = await r.json()
            assert body["leaf_index"] == 123
            assert body["tree_size"] == 500
            assert "checkpoint" not in body
            proof = [base64.b64decode(h) for h in body["inclusion_proof"]]
            root = reference_root([leaf_hash(e) for e in entries[:500]])
            assert base64.b64decode(body["root_hash"]) == root
            verify_inclusion(expected_hash, 123, 500, proof, root)


async def test_consistency_proofs(log):
    entries = make_entries(700)
    log.store.append_batch(entries)
    await Publisher(log.store, log.checkpoint_signer()).publish()
    hashes = [leaf_hash(e) for e in entries]
    async with Server(log.store) as server:
        for size1, size2 in ((1, 700), (256, 700), (300, 513), (700, 700), (5, None)):
            query = f"size1={size1}" + (f"&size2={size2}" if size2 else "")
            async with server.get("/log/proof/consistency?" + query) as r:
                assert r.status == 200, await r.text()
                body = await r.json()
            size2 = body["size2"]
            proof = [base64.b64decode(h) for h in body["consistency_proof"]]
            verify_consistency(
                size1,
                size2,
                proof,
                reference_root(hashes[:size1]),
                reference_root(hashes[:size2]),
            )


BAD_PROOF_QUERIES = [
    ("/log/proof/inclusion", 400, "leaf_index is missing"),
    ("/log/proof/inclusion?leaf_index=01", 400, "leading zeros"),
    ("/log/proof/inclusion?leaf_index=-1", 400, "decimal"),
    # Superscript two, Arabic-Indic one and fullwidth ten are digits to
    # str.isdigit but not decimal ASCII.
    ("/log/proof/inclusion?leaf_index=%C2%B2", 400, "decimal"),
    ("/log/proof/inclusion?leaf_index=%D9%A1", 400, "decimal"),
    ("/log/proof/inclusion?leaf_index=1&tree_size=%EF%BC%91%EF%BC%90", 400, "decimal"),
    ("/log/proof/inclusion?leaf_index=1&leaf_index=2", 400, "given 2 times"),
    ("/log/proof/inclusion?leaf_index=10", 400, "not in the tree"),
    ("/log/proof/inclusion?leaf_index=1&tree_size=11", 404, "beyond"),
    ("/log/proof/inclusion?leaf_index=1&leaf_hash=00", 400, "either"),
    ("/log/proof/inclusion?leaf_hash=zz", 400, "neither hex nor base64"),
    ("/log/proof/inclusion?leaf_hash=" + "00" * 32, 404, "no entry"),
    ("/log/proof/inclusion?leaf_hash=AAAA", 400, "3 bytes"),
    ("/log/proof/consistency?size2=5", 400, "size1 is missing"),
    ("/log/proof/consistency?size1=0&size2=5", 400, "0 < size1"),
    ("/log/proof/consistency?size1=6&size2=5", 400, "0 < size1"),
    ("/log/proof/consistency?size1=1&size2=11", 404, "beyond"),
]


async def test_proof_errors(log):
    log.store.append_batch(make_entries(10))
    await Publisher(log.store, log.checkpoint_signer()).publish()
    async with Server(log.store) as server:
        for query, status, reason in BAD_PROOF_QUERIES:
            async with server.get(query) as response:
                assert response.status == status, query
                body = await response.json()
            assert reason in body["error"], query
