"""The witness over HTTP on 127.0.0.1: status codes, content types, monitoring."""

from __future__ import annotations

import pytest

from witnesses.nodes import open_witness
from witnesses.witness import origin_hash
from witnesses.witness_http import build_app


@pytest.fixture
async def served(tmp_path, passphrase, reference_log, aiohttp_client):
    witness = open_witness(tmp_path / "w", [reference_log.vkey], "witness.test/w1")
    client = await aiohttp_client(build_app(witness))
    yield witness, client
    await client.close()
    witness.state.close()


async def test_cosignature_response(served, reference_log, c2sp):
    witness, client = served
    response = await client.post("/add-checkpoint", data=reference_log.request(0, 8))
    assert response.status == 200
    body = await response.read()
    assert body.startswith("\u2014 witness.test/w1 ".encode())
    assert body.endswith(b"\n")
    c2sp.verify_cosignature(reference_log.note(8) + body, witness.vkey)


async def test_conflict_returns_size(served, reference_log):
    _, client = served
    await client.post("/add-checkpoint", data=reference_log.request(0, 8))
    response = await client.post("/add-checkpoint", data=reference_log.request(0, 9))
    assert response.status == 409
    assert response.content_type == "text/x.tlog.size"
    assert await response.read() == b"8\n"


async def test_status_codes(served, reference_log, c2sp):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    _, client = served
    other = c2sp.ReferenceLog("other.test/log", Ed25519PrivateKey.generate())
    other.append(b"x")
    impostor = c2sp.ReferenceLog(reference_log.origin, Ed25519PrivateKey.generate())
    impostor.append(b"x")
    cases = [
        (other.request(0, 1), 404),
        (impostor.request(0, 1), 403),
        (b"old 1\n\n", 400),
        (b"old 9\n\n" + reference_log.note(8), 400),
    ]
    for body, status in cases:
        response = await client.post("/add-checkpoint", data=body)
        assert response.status == status, await response.text()

    await client.post("/add-checkpoint", data=reference_log.request(0, 8))
    forked = reference_log.fork(4, *[b"forged %d" % i for i in range(5)])
    response = await client.post("/add-checkpoint", data=forked.request(8, 9))
    assert response.status == 422
    assert "consistency proof" in await response.text()


async def test_monitoring_endpoint(served, reference_log, c2sp):
    witness, client = served
    path = f"/{origin_hash(reference_log.origin)}/checkpoint"
    assert (await client.get(path)).status == 404
    await client.post("/add-checkpoint", data=reference_log.request(0, 8))
    response = await client.get(path)
    assert response.status == 200
    note = await response.read()
    c2sp.verify_note_signature(note, reference_log.vkey)
    c2sp.verify_cosignature(note, witness.vkey)
    assert (await client.get("/" + "0" * 64 + "/checkpoint")).status == 404


async def test_evidence_endpoint(served, reference_log):
    _, client = served
    await client.post("/add-checkpoint", data=reference_log.request(0, 8))
    forked = reference_log.fork(4, *[b"forged %d" % i for i in range(5)])
    await client.post("/add-checkpoint", data=forked.request(8, 9))
    response = await client.get(f"/{origin_hash(reference_log.origin)}/evidence")
    records = await response.json()
    assert len(records) == 1
    assert records[0]["note"] == forked.note(9).decode()


async def test_oversized_body_rejected(served):
    _, client = served
    response = await client.post("/add-checkpoint", data=b"old 0\n\n" + b"x" * 70_000)
    assert response.status == 413
