"""The log side of witnessing against real witness servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import sys
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.witnessing import WitnessEndpoint, Witnessing, WitnessingError
from witnesses.nodes import open_witness
from witnesses.witness_http import build_app

_spec = importlib.util.spec_from_file_location(
    "c2sp_reference",
    Path(__file__).resolve().parent.parent / "witnesses" / "c2sp_reference.py",
)
c2sp = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("c2sp_reference", c2sp)
_spec.loader.exec_module(c2sp)


@pytest.fixture
def log():
    log = c2sp.ReferenceLog("example.test/log", Ed25519PrivateKey.generate())
    log.append(*[b"entry %d" % i for i in range(64)])
    return log


@pytest.fixture
async def witness_servers(tmp_path, monkeypatch, log):
    """Three witnesses, each with its own folder and key, on loopback ports."""
    monkeypatch.setenv("LEDGER_PASSPHRASE", "witnessing test")
    servers = []
    witnesses = []
    for i in range(3):
        witness = open_witness(tmp_path / f"w{i}", [log.vkey], f"witness.test/w{i}")
        server = TestServer(build_app(witness), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        witnesses.append(witness)
    yield witnesses, servers
    for server in servers:
        await server.close()
    for witness in witnesses:
        witness.state.close()


def endpoint(witness, server) -> WitnessEndpoint:
    return WitnessEndpoint(str(server.make_url("")).rstrip("/"), witness.vkey)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def start_app(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def cosigners(note: bytes, vkeys: list[str]) -> list[str]:
    valid = []
    for vkey in vkeys:
        try:
            c2sp.verify_cosignature(note, vkey)
        except (c2sp.Invalid, InvalidSignature):
            continue
        valid.append(vkey)
    return valid


async def test_quorum_of_three(witness_servers, log):
    witnesses, servers = witness_servers
    endpoints = [endpoint(w, s) for w, s in zip(witnesses, servers)]
    witnessing = Witnessing(endpoints, 3, log.proof, timeout=2)
    try:
        for tree_size in (5, 9, 33, 64):
            note = await witnessing.cosign(log.note(tree_size))
            c2sp.verify_note_signature(note, log.vkey)
            assert len(cosigners(note, [w.vkey for w in witnesses])) == 3
    finally:
        await witnessing.close()


async def test_log_restart_learns_sizes(witness_servers, log):
    """A new client starts from old size 0 and recovers through 409."""
    witnesses, servers = witness_servers
    endpoints = [endpoint(w, s) for w, s in zip(witnesses, servers)]
    first = Witnessing(endpoints, 2, log.proof, timeout=2)
    await first.cosign(log.note(20))
    await first.close()

    second = Witnessing(endpoints, 3, log.proof, timeout=2)
    try:
        note = await second.cosign(log.note(30))
        assert len(cosigners(note, [w.vkey for w in witnesses])) == 3
    finally:
        await second.close()


async def test_down_slow_garbage_witnesses(witness_servers, log):
    """Two good witnesses reach a 2-of-5 quorum despite three bad ones."""
    witnesses, servers = witness_servers

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="late")

    async def garbage(request: web.Request) -> web.Response:
        return web.Response(body=b"\x00\xffnot a cosignature\n")

    slow_app = web.Application()
    slow_app.router.add_post("/add-checkpoint", slow)
    garbage_app = web.Application()
    garbage_app.router.add_post("/add-checkpoint", garbage)
    slow_server = await start_app(slow_app)
    garbage_server = await start_app(garbage_app)
    bad_vkey = witnesses[2].vkey
    endpoints = [
        WitnessEndpoint(f"http://127.0.0.1:{unused_port()}", bad_vkey),
        WitnessEndpoint(str(slow_server.make_url("")).rstrip("/"), bad_vkey),
        WitnessEndpoint(str(garbage_server.make_url("")).rstrip("/"), bad_vkey),
        endpoint(witnesses[0], servers[0]),
        endpoint(witnesses[1], servers[1]),
    ]
    witnessing = Witnessing(
        endpoints, 2, log.proof, timeout=0.5, attempts=2, retry_delay=0.05
    )
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        note = await witnessing.cosign(log.note(12))
        elapsed = loop.time() - started
        assert len(cosigners(note, [witnesses[0].vkey, witnesses[1].vkey])) == 2
        # The quorum does not wait for the slow witness's 30 s.
        assert elapsed < 10
    finally:
        await witnessing.close()
        await slow_server.close()
        await garbage_server.close()


async def test_below_quorum_raises(witness_servers, log):
    witnesses, servers = witness_servers
    endpoints = [
        endpoint(witnesses[0], servers[0]),
        WitnessEndpoint(f"http://127.0.0.1:{unused_port()}", witnesses[1].vkey),
        WitnessEndpoint(f"http://127.0.0.1:{unused_port()}", witnesses[2].vkey),
    ]
    witnessing = Witnessing(
        endpoints, 2, log.proof, timeout=0.5, attempts=2, retry_delay=0.05
    )
    try:
        with pytest.raises(WitnessingError) as caught:
            await witnessing.cosign(log.note(10))
        assert len(caught.value.failures) == 2
    finally:
        await witnessing.close()


async def test_cosignature_from_wrong_key_ignored(witness_servers, log):
    """A witness returning another key's cosignature does not count."""
    witnesses, servers = witness_servers
    endpoints = [
        WitnessEndpoint(endpoint(witnesses[0], servers[0]).url, witnesses[1].vkey)
    ]
    witnessing = Witnessing(endpoints, 1, log.proof, timeout=0.5, attempts=1)
    try:
        with pytest.raises(WitnessingError):
            await witnessing.cosign(log.note(10))
    finally:
        await witnessing.close()


async def test_forked_checkpoint_gets_no_cosignatures(witness_servers, log):
    witnesses, servers = witness_servers
    endpoints = [endpoint(w, s) for w, s in zip(witnesses, servers)]
    honest = Witnessing(endpoints, 3, log.proof, timeout=1)
    await honest.cosign(log.note(20))
    await honest.close()

    forked = log.fork(10, *[b"forged %d" % i for i in range(20)])
    lying = Witnessing(endpoints, 1, forked.proof, timeout=1, attempts=1)
    try:
        with pytest.raises(WitnessingError):
            await lying.cosign(forked.note(25))
        with pytest.raises(WitnessingError):
            await lying.cosign(forked.note(20))
    finally:
        await lying.close()
    for witness in witnesses:
        assert witness.state.latest(log.origin).root_hash == log.root(20)


def test_quorum_out_of_range():
    with pytest.raises(ValueError):
        Witnessing([], 1, lambda a, b: [])


async def test_slow_witness_queue_stays_short(witness_servers, log):
    """Requests to a slow witness that a newer checkpoint overtook are dropped."""
    witnesses, servers = witness_servers

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    slow_app = web.Application()
    slow_app.router.add_post("/add-checkpoint", slow)
    slow_server = await start_app(slow_app)
    endpoints = [
        endpoint(witnesses[0], servers[0]),
        endpoint(witnesses[1], servers[1]),
        WitnessEndpoint(str(slow_server.make_url("")).rstrip("/"), witnesses[2].vkey),
    ]
    witnessing = Witnessing(endpoints, 2, log.proof, timeout=1, attempts=1)
    try:
        for tree_size in range(10, 40):
            await witnessing.cosign(log.note(tree_size))
        # One request in flight and at most one waiting behind it.
        assert len(witnessing._stragglers) <= 2
    finally:
        await witnessing.close()
        await slow_server.close()
