"""The log's commands, run as real subprocesses of the `ledger` entry point."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ledger.checkpoint import open_checkpoint
from ledger.entry import decode_entry
from ledger.log import open_log
from ledger.note import Ed25519Verifier

LEDGER = [sys.executable, "-m", "gateway.cli"]


def run(args, passphrase="pw", stdin=b"", timeout=60):
    env = dict(os.environ)
    env.pop("LEDGER_PASSPHRASE", None)
    if passphrase is not None:
        env["LEDGER_PASSPHRASE"] = passphrase
    return subprocess.run(
        LEDGER + args, input=stdin, capture_output=True, env=env, timeout=timeout
    )


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "log"
    result = run(["init", "--data", str(folder), "--origin", "example.com/cli-test"])
    assert result.returncode == 0, result.stderr
    return folder


def test_init_writes_key_and_vkey(data):
    vkey = (data / "log.vkey").read_text().strip()
    verifier = Ed25519Verifier.from_vkey(vkey)
    assert verifier.name == "example.com/cli-test"
    assert (data / "log.key").read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY")
    assert (data / "log.lmdb" / "data.mdb").exists()


def test_init_prints_vkey(tmp_path):
    result = run(["init", "--data", str(tmp_path / "d")])
    assert result.returncode == 0
    printed = result.stdout.decode().strip()
    assert printed == (tmp_path / "d" / "log.vkey").read_text().strip()
    assert printed.startswith("ledger.localhost/log+")


def test_init_without_passphrase_exits_2(tmp_path):
    result = run(["init", "--data", str(tmp_path / "d")], passphrase=None)
    assert result.returncode == 2
    assert b"LEDGER_PASSPHRASE" in result.stderr
    assert not (tmp_path / "d" / "log.key").exists()


def test_init_twice_fails(data):
    before = (data / "log.key").read_bytes()
    result = run(["init", "--data", str(data)])
    assert result.returncode == 1
    assert b"already contains a log" in result.stderr
    assert (data / "log.key").read_bytes() == before


def test_append_prints_acknowledged_indexes(data):
    lines = [f"imported record {i}".encode() for i in range(300)]
    result = run(["log", "append", "--data", str(data)], stdin=b"\n".join(lines) + b"\n")
    assert result.returncode == 0, result.stderr
    printed = result.stdout.decode().split()
    assert printed == [str(i) for i in range(300)]
    log = open_log(data)
    try:
        assert log.store.tree_size() == 300
        for leaf_index in (0, 150, 299):
            entry = decode_entry(log.store.read_entry(leaf_index))
            assert entry["type"] == "import"
            assert entry["data"] == lines[leaf_index]
        # With the passphrase set, the command publishes a final checkpoint.
        checkpoint, _ = open_checkpoint(log.store.latest_checkpoint().note, log.verifier)
        assert checkpoint.tree_size == 300
    finally:
        log.close()


def test_append_rejects_oversized_line(data):
    stdin = b"first\nsecond\n" + b"x" * 70_000 + b"\nnever\n"
    result = run(["log", "append", "--data", str(data)], stdin=stdin)
    assert result.returncode == 1
    assert b"line 3 was not appended" in result.stderr
    assert b"65,535" in result.stderr
    assert result.stdout.decode().split() == ["0", "1"]
    log = open_log(data)
    try:
        assert log.store.tree_size() == 2
    finally:
        log.close()


def test_append_without_passphrase_publishes_nothing(data):
    result = run(["log", "append", "--data", str(data)], passphrase=None, stdin=b"a\nb\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split() == ["0", "1"]
    log = open_log(data)
    try:
        assert log.store.latest_checkpoint() is None
    finally:
        log.close()


def test_check_passes_on_fresh_log(data):
    run(["log", "append", "--data", str(data)], stdin=b"one\ntwo\nthree\n")
    result = run(["log", "check", "--data", str(data)], passphrase=None)
    assert result.returncode == 0, result.stderr
    assert b"ok: 3 entries" in result.stdout


def test_commands_on_missing_log(tmp_path):
    for args in (["log", "check"], ["log", "append"]):
        result = run(args + ["--data", str(tmp_path / "absent")])
        assert result.returncode == 1
        assert b"ledger init" in result.stderr


def test_bad_intervals_rejected(data):
    result = run(
        ["log", "append", "--data", str(data), "--checkpoint-interval", "0"], stdin=b"a\n"
    )
    assert result.returncode == 2
    assert b"--checkpoint-interval" in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_publishes_and_serves(data):
    run(["log", "append", "--data", str(data)], passphrase=None, stdin=b"a\nb\nc\n")
    port = free_port()
    env = dict(os.environ, LEDGER_PASSPHRASE="pw")
    process = subprocess.Popen(
        LEDGER + ["serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        body = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/log/checkpoint") as r:
                    body = r.read()
                break
            except OSError:
                time.sleep(0.2)
        assert body is not None, "the server did not serve a checkpoint in 30 s"
        verifier = Ed25519Verifier.from_vkey((data / "log.vkey").read_text().strip())
        checkpoint, _ = open_checkpoint(body, verifier)
        assert checkpoint.tree_size == 3
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/log/tile/0/000.p/3") as r:
            assert len(r.read()) == 96
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_rejects_bad_listen(data):
    result = run(["serve", "--data", str(data), "--listen", "localhost"])
    assert result.returncode == 1
    assert b"HOST:PORT" in result.stderr
