"""HTTP: POST /tsa on a real aiohttp server on 127.0.0.1, and `ledger tsa serve`."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ledger.tsa.client import request_token, stamper_for
from ledger.tsa.errors import TimeStampError
from ledger.tsa.keys import load_certificates
from ledger.tsa.response import TimeStampResp
from ledger.tsa.server import make_app
from ledger.tsa.verify import verify_token

from .helpers import openssl, write_pem


@pytest.fixture
async def tsa_url(aiohttp_server, ecdsa_authority) -> str:
    server = await aiohttp_server(make_app(ecdsa_authority), host="127.0.0.1")
    return str(server.make_url("/tsa"))


@pytest.fixture
def ecdsa_root(pki):
    return pki["ecdsa-p256"][1].chain[-1]


async def post(
    url: str, body: bytes, content_type: str = "application/timestamp-query"
):
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=body, headers={"Content-Type": content_type}
        ) as response,
    ):
        return response.status, response.content_type, await response.read()


async def test_openssl_query_accepted_over_http(tsa_url, ecdsa_root, tmp_path):
    data = tmp_path / "note.txt"
    data.write_bytes(b"checkpoint body\n")
    query = tmp_path / "query.tsq"
    assert (
        openssl(
            "ts", "-query", "-data", data, "-sha512", "-cert", "-out", query
        ).returncode
        == 0
    )

    status, content_type, reply = await post(tsa_url, query.read_bytes())
    reply_path = tmp_path / "reply.tsr"
    reply_path.write_bytes(reply)
    root_path = write_pem(tmp_path / "root.pem", ecdsa_root)
    result = openssl(
        "ts", "-verify", "-in", reply_path, "-queryfile", query, "-CAfile", root_path
    )

    assert status == 200
    assert content_type == "application/timestamp-reply"
    assert result.returncode == 0, result.stderr


async def test_rejection_over_http_is_a_response(tsa_url):
    status, content_type, reply = await post(tsa_url, b"\x30\x00")
    response = TimeStampResp.load(reply)

    assert status == 200
    assert content_type == "application/timestamp-reply"
    assert response["status"]["status"].native == "rejection"


async def test_wrong_content_type_rejected(tsa_url):
    status, _, body = await post(tsa_url, b"\x30\x00", content_type="text/plain")
    assert status == 415
    assert b"application/timestamp-query" in body


async def test_oversized_body_rejected(tsa_url):
    status, _, _ = await post(tsa_url, b"\x30" * 20_000)
    assert status == 413


async def test_get_not_allowed(tsa_url):
    async with aiohttp.ClientSession() as session, session.get(tsa_url) as response:
        assert response.status == 405


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
async def test_request_token_verifies(tsa_url, ecdsa_root, algorithm):
    digest = hashlib.new(algorithm, b"contract").digest()

    token = await request_token(tsa_url, digest, algorithm)

    info = verify_token(token, digest, [ecdsa_root], hash_algorithm=algorithm)
    assert info.nonce is not None


async def test_request_token_without_nonce_or_certificate(tsa_url, pki):
    credentials = pki["ecdsa-p256"][1]
    digest = hashlib.sha256(b"plain").digest()
    async with aiohttp.ClientSession() as session:
        token = await request_token(
            tsa_url, digest, nonce=False, cert_req=False, session=session
        )

    info = verify_token(
        token, digest, credentials.chain, certificates=[credentials.certificate]
    )
    assert info.nonce is None


async def test_request_token_raises_on_rejection(tsa_url):
    digest = hashlib.sha256(b"policy").digest()
    with pytest.raises(TimeStampError, match="unaccepted_policy"):
        await request_token(tsa_url, digest, policy="1.2.3.4")


async def test_request_token_raises_on_http_error(aiohttp_server):
    app = web.Application()

    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=503, text="busy")

    app.router.add_post("/tsa", busy)
    server = await aiohttp_server(app, host="127.0.0.1")
    with pytest.raises(TimeStampError, match="HTTP 503"):
        await request_token(str(server.make_url("/tsa")), bytes(32))


async def test_request_token_detects_other_digest(aiohttp_server, ecdsa_authority):
    # A TSA that time-stamps a fixed digest whatever it is asked.
    async def wrong(request: web.Request) -> web.Response:
        from ledger.tsa.request import build_request

        reply = ecdsa_authority.issue(build_request(bytes(32)))
        return web.Response(body=reply, content_type="application/timestamp-reply")

    app = web.Application()
    app.router.add_post("/tsa", wrong)
    server = await aiohttp_server(app, host="127.0.0.1")
    with pytest.raises(TimeStampError, match="another digest"):
        await request_token(str(server.make_url("/tsa")), bytes([1]) * 32, nonce=False)


async def test_stampers_local_and_remote(tsa_url, ecdsa_authority, ecdsa_root):
    note = b"example.com/log\n42\nroot\n\n- example.com/log abc\n"
    for stamp in (stamper_for(ecdsa_authority), stamper_for(tsa_url)):
        token = await stamp(note)
        verify_token(token, hashlib.sha256(note).digest(), [ecdsa_root])


def start_server(
    data_dir: Path, workers: int, env: dict[str, str]
) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ledger.tsa.cli",
            "tsa",
            "serve",
            "--data",
            str(data_dir),
            "--listen",
            "127.0.0.1:0",
            "--workers",
            str(workers),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        raise AssertionError(f"server did not start: {line!r} {process.stderr.read()}")
    return process, line.split()[-1]


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


async def serials_from(url: str, count: int, root) -> list[int]:
    serials = []
    async with aiohttp.ClientSession() as session:
        for index in range(count):
            digest = hashlib.sha256(index.to_bytes(4, "big")).digest()
            token = await request_token(url, digest, session=session)
            serials.append(verify_token(token, digest, root).serial_number)
    return serials


async def test_serve_command_serials_unique_across_restart(tmp_path):
    env = {**os.environ, "LEDGER_PASSPHRASE": "serve test passphrase"}
    data_dir = tmp_path / "tsa"

    process, url = start_server(data_dir, 2, env)
    try:
        root = load_certificates(data_dir / "tsa-root.pem")
        first = await serials_from(url, 30, root)
    finally:
        stop_server(process)
    process, url = start_server(data_dir, 1, env)
    try:
        second = await serials_from(url, 30, root)
        query = tmp_path / "query.tsq"
        data = tmp_path / "data.bin"
        data.write_bytes(b"openssl")
        openssl("ts", "-query", "-data", data, "-cert", "-out", query)
        _, _, reply = await post(url, query.read_bytes())
    finally:
        stop_server(process)

    assert len(set(first) | set(second)) == 60
    reply_path = tmp_path / "reply.tsr"
    reply_path.write_bytes(reply)
    result = openssl(
        "ts",
        "-verify",
        "-in",
        reply_path,
        "-queryfile",
        query,
        "-CAfile",
        data_dir / "tsa-root.pem",
    )
    assert result.returncode == 0, result.stderr
    key_pem = (data_dir / "tsa.key").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in key_pem


def run_cli(argv: list[str]) -> int:
    import argparse

    from ledger.tsa.cli import register

    parser = argparse.ArgumentParser(prog="ledger")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_serve_command_needs_passphrase(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LEDGER_PASSPHRASE", raising=False)

    status = run_cli(
        ["tsa", "serve", "--data", str(tmp_path), "--listen", "127.0.0.1:0"]
    )

    assert status == 2
    assert "LEDGER_PASSPHRASE is not set" in capsys.readouterr().err
    assert not (tmp_path / "tsa.key").exists()


def test_serve_command_wrong_passphrase(pki, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_PASSPHRASE", "wrong")
    folder = pki["ecdsa-p256"][0]

    status = run_cli(["tsa", "serve", "--data", str(folder), "--listen", "127.0.0.1:0"])

    assert status == 2
    assert "cannot decrypt" in capsys.readouterr().err


@pytest.mark.parametrize(
    "listen", ["127.0.0.1", "127.0.0.1:http", ":80", "127.0.0.1:70000"]
)
def test_serve_command_bad_listen(tmp_path, listen, capsys):
    status = run_cli(["tsa", "serve", "--data", str(tmp_path), "--listen", listen])

    assert status == 2
    assert "HOST:PORT" in capsys.readouterr().err
