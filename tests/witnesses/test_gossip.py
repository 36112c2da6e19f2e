"""Gossip between witnesses over HTTP on 127.0.0.1 finds a split view."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from witnesses.gossip import Gossip
from witnesses.nodes import _WitnessView, open_witness
from witnesses.witness_http import build_app


@pytest.fixture
async def two_witnesses(tmp_path, passphrase, reference_log):
    nodes = []
    for name in ("a", "b"):
        witness = open_witness(
            tmp_path / name, [reference_log.vkey], f"witness.test/{name}"
        )
        server = TestServer(build_app(witness), host="127.0.0.1")
        await server.start_server()
        nodes.append((witness, server))
    yield nodes
    for witness, server in nodes:
        await server.close()
        witness.state.close()


def gossip_for(witness, server_urls, reference_log, found):
    return Gossip(
        reference_log.origin,
        witness.logs[reference_log.origin],
        _WitnessView(witness.state, reference_log.origin),
        server_urls,
        found.append,
    )


async def test_split_view_reported(two_witnesses, reference_log, c2sp):
    (a, _), (b, server_b) = two_witnesses
    forked = reference_log.fork(10, *[b"other %d" % i for i in range(30)])
    a.add_checkpoint(reference_log.request(0, 20))
    b.add_checkpoint(forked.request(0, 20))

    found = []
    gossip = gossip_for(a, [str(server_b.make_url(""))], reference_log, found)
    async with aiohttp.ClientSession() as session:
        forks = await gossip.run_once(session)
    assert forks == found
    assert len(forks) == 1
    evidence = forks[0]
    # Both notes carry valid log signatures and different roots for size 20.
    c2sp.verify_note_signature(evidence.verified_note, reference_log.vkey)
    c2sp.verify_note_signature(evidence.conflicting_note, reference_log.vkey)
    assert evidence.verified_note.startswith(reference_log.note(20))
    assert evidence.conflicting_note.startswith(forked.note(20))


async def test_consistent_peers_agree(two_witnesses, reference_log):
    (a, _), (b, server_b) = two_witnesses
    a.add_checkpoint(reference_log.request(0, 20))
    b.add_checkpoint(reference_log.request(0, 20))
    found = []
    gossip = gossip_for(a, [str(server_b.make_url(""))], reference_log, found)
    async with aiohttp.ClientSession() as session:
        assert await gossip.run_once(session) == []


async def test_peer_ahead_not_a_fork(two_witnesses, reference_log):
    """A peer at a size this witness never cosigned proves nothing."""
    (a, _), (b, server_b) = two_witnesses
    a.add_checkpoint(reference_log.request(0, 20))
    b.add_checkpoint(reference_log.request(0, 30))
    found = []
    gossip = gossip_for(a, [str(server_b.make_url(""))], reference_log, found)
    async with aiohttp.ClientSession() as session:
        assert await gossip.run_once(session) == []


async def test_unreachable_or_forged_peer_skipped(two_witnesses, reference_log, c2sp):
    """A peer that is down or serves a note without the log's signature is skipped."""
    from aiohttp import web
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from witnesses.witness import origin_hash

    (a, _), _ = two_witnesses
    a.add_checkpoint(reference_log.request(0, 20))
    impostor = c2sp.ReferenceLog(reference_log.origin, Ed25519PrivateKey.generate())
    impostor.append(b"x")

    async def forged(request: web.Request) -> web.Response:
        return web.Response(body=impostor.note(1))

    app = web.Application()
    app.router.add_get(f"/{origin_hash(reference_log.origin)}/checkpoint", forged)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    found = []
    gossip = gossip_for(
        a, [str(server.make_url("")), "http://127.0.0.1:9"], reference_log, found
    )
    try:
        async with aiohttp.ClientSession() as session:
            assert await gossip.run_once(session) == []
    finally:
        await server.close()
