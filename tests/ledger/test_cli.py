"""The log's commands, run as real subprocesses of the `ledger` entry point."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ledger.checkpoint import open_checkpoint
from ledger.entry import decode_entry
from ledger.log import RepeatedRecordFilter, TimeStampWarningFilter, open_log
from ledger.store import LogConfig, LogStore
from ledger.note import Ed25519Verifier
from ledger.tsa.errors import TimeStampError

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


def test_append_resumes_with_same_time(data):
    lines = [f"resumed record {i}".encode() for i in range(150)]
    first = run(
        ["log", "append", "--data", str(data), "--time", "1764800000000"],
        stdin=b"\n".join(lines[:100]) + b"\n",
    )
    assert first.returncode == 0, first.stderr
    assert b"--time 1764800000000" in first.stderr
    # The whole input again, with the first run's time: the stored lines
    # print their first leaf_index and only the rest are new.
    again = run(
        ["log", "append", "--data", str(data), "--time", "1764800000000"],
        stdin=b"\n".join(lines) + b"\n",
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.decode().split() == [str(i) for i in range(150)]
    log = open_log(data)
    try:
        assert log.store.tree_size() == 150
    finally:
        log.close()


def test_append_repeated_line_prints_first_index(data):
    result = run(["log", "append", "--data", str(data)], stdin=b"same\nother\nsame\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split() == ["0", "1", "0"]


def test_append_new_run_new_entries(data):
    run(["log", "append", "--data", str(data), "--time", "1"], stdin=b"line\n")
    result = run(["log", "append", "--data", str(data), "--time", "2"], stdin=b"line\n")
    assert result.stdout.decode().split() == ["1"]


def test_append_rejects_negative_time(data):
    result = run(["log", "append", "--data", str(data), "--time", "-5"], stdin=b"x\n")
    assert result.returncode == 2
    assert b"--time -5 is negative" in result.stderr


def test_append_interrupted_one_line(data):
    env = dict(os.environ, LEDGER_PASSPHRASE="pw")
    process = subprocess.Popen(
        LEDGER + ["log", "append", "--data", str(data), "--time", "7"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    process.stdin.write(b"before the interruption\n")
    process.stdin.flush()
    # The first acknowledgment shows that the command is running.
    assert process.stdout.readline() == b"0\n"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    assert b"interrupted" in stderr
    assert b"--time 7" in stderr


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
    assert result.returncode == 2
    assert b"HOST:PORT" in result.stderr


@pytest.mark.parametrize("origin", ["a+b", "", "two words", "line\nbreak"])
def test_init_invalid_origin_leaves_nothing(tmp_path, origin):
    folder = tmp_path / "d6"
    result = run(["init", "--data", str(folder), "--origin", origin])
    assert result.returncode == 2
    assert b"invalid origin" in result.stderr
    assert not folder.exists()
    again = run(["init", "--data", str(folder), "--origin", "example.com/good"])
    assert again.returncode == 0, again.stderr


def test_init_invalid_origin_keeps_existing_folder(tmp_path):
    folder = tmp_path / "existing"
    folder.mkdir()
    result = run(["init", "--data", str(folder), "--origin", "a+b"])
    assert result.returncode == 2
    assert list(folder.iterdir()) == []


def assert_one_line_error(result, *fragments: bytes) -> None:
    assert result.returncode == 1, result.stderr
    assert b"Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_check_random_data_file(data):
    (data / "log.lmdb" / "data.mdb").write_bytes(os.urandom(100_000))
    result = run(["log", "check", "--data", str(data)], passphrase=None)
    assert_one_line_error(result, b"data.mdb", b"not an LMDB data file", b"restore")


def test_check_corrupted_pages(data):
    run(["log", "append", "--data", str(data)], stdin=b"entry\n" * 3000)
    path = data / "log.lmdb" / "data.mdb"
    content = path.read_bytes()
    # The two meta pages stay intact, so LMDB opens the file and fails later.
    path.write_bytes(content[:8192] + os.urandom(len(content) - 8192))
    for args in (["log", "check"], ["log", "append"]):
        result = run(args + ["--data", str(data)], passphrase=None, stdin=b"x\n")
        assert_one_line_error(result, b"data.mdb", b"MDB_CORRUPTED")


def test_commands_reject_truncated_data_file(data):
    run(["log", "append", "--data", str(data)], stdin=b"entry\n" * 3000)
    path = data / "log.lmdb" / "data.mdb"
    size = path.stat().st_size
    assert size > 3 * 4096
    os.truncate(path, 3 * 4096)
    for args in (["log", "check"], ["log", "append"], ["serve", "--listen", "127.0.0.1:1"]):
        result = run(args + ["--data", str(data)], passphrase=None, stdin=b"x\n")
        assert result.returncode != -signal.SIGBUS
        assert_one_line_error(result, b"data.mdb", b"truncated", str(size).encode())


def test_serve_busy_port(data):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(["serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"])
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}".encode())


def start_serve(data: Path, port: int, passphrase: str | None, *extra: str):
    env = dict(os.environ)
    env.pop("LEDGER_PASSPHRASE", None)
    if passphrase is not None:
        env["LEDGER_PASSPHRASE"] = passphrase
    return subprocess.Popen(
        LEDGER + ["serve", "--data", str(data), "--listen", f"127.0.0.1:{port}", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def stop(process: subprocess.Popen) -> tuple[bytes, bytes]:
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    return stdout, stderr


@pytest.mark.parametrize(
    ("passphrase", "extra", "expected"),
    [
        (None, (), b"read-only"),
        ("pw", ("--read-only",), b"read-only"),
        ("pw", (), b"publishing checkpoints"),
    ],
)
def test_serve_prints_start_line(data, passphrase, extra, expected):
    port = free_port()
    process = start_serve(data, port, passphrase, *extra)
    try:
        line = process.stdout.readline()
    finally:
        stop(process)
    assert line.startswith(b"ledger serve: serving log example.com/cli-test")
    assert f"http://127.0.0.1:{port}/log/".encode() in line
    assert expected in line


def test_serve_read_only_publishes_nothing(data):
    run(["log", "append", "--data", str(data)], passphrase=None, stdin=b"a\nb\n")
    port = free_port()
    process = start_serve(data, port, "pw", "--read-only", "--checkpoint-interval", "0.1")
    try:
        process.stdout.readline()
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/log/checkpoint")
        assert raised.value.code == 404
    finally:
        stop(process)


def test_serve_collapses_witness_warnings(data):
    dead_port = free_port()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.note import CosignatureSigner

    witness_vkey = CosignatureSigner("witness.test/gone", Ed25519PrivateKey.generate()).vkey
    with LogStore(data / "log.lmdb") as store:
        store.write_config(
            LogConfig("example.com/cli-test", ((f"http://127.0.0.1:{dead_port}", witness_vkey),), 1)
        )
    port = free_port()
    process = start_serve(data, port, "pw", "--checkpoint-interval", "0.05")
    try:
        process.stdout.readline()
        # About 60 publishing attempts at the 0.05 s interval, each of which
        # fails at the witness; fewer on a loaded machine, but more than one.
        time.sleep(3)
    finally:
        _, stderr = stop(process)
    warnings = [line for line in stderr.splitlines() if b"did not cosign" in line]
    assert len(warnings) == 1, stderr.decode()


def test_repeated_record_filter_counts():
    now = [0.0]
    record_filter = RepeatedRecordFilter(window=60.0, clock=lambda: now[0])

    def record(message: str, *args) -> logging.LogRecord:
        return logging.LogRecord("t", logging.WARNING, __file__, 1, message, args, None)

    assert record_filter.filter(record("witness %s failed", "w1"))
    assert record_filter.filter(record("witness %s failed", "w2"))
    for second in range(1, 60):
        now[0] = float(second)
        assert not record_filter.filter(record("witness %s failed", "w1"))
    now[0] = 60.0
    summary = record("witness %s failed", "w1")
    assert record_filter.filter(summary)
    assert summary.getMessage() == "witness w1 failed (repeated 60 times in 60 s)"
    now[0] = 61.0
    assert not record_filter.filter(record("witness %s failed", "w1"))
    info = logging.LogRecord("t", logging.INFO, __file__, 1, "same", None, None)
    assert record_filter.filter(info)
    assert record_filter.filter(info)


def test_init_log_failure_removes_files(tmp_path):
    from ledger.keys import PassphraseMissingError
    from ledger.log import init_log

    folder = tmp_path / "new"
    # An empty passphrase fails when the key is written, after the folder
    # was created.
    with pytest.raises(PassphraseMissingError):
        init_log(folder, "example.com/cleanup", b"")
    assert not folder.exists()


def test_lmdb_length_check_matches_meta(data):
    from ledger.log import DamagedStoreError, check_lmdb_file

    run(["log", "append", "--data", str(data)], stdin=b"entry\n" * 2000)
    store_dir = data / "log.lmdb"
    content = (store_dir / "data.mdb").read_bytes()
    check_lmdb_file(store_dir)
    # In a store that only grew, the newer meta page's last page is the
    # file's last page, so every shorter prefix fails the check.
    copy = data / "copy"
    copy.mkdir()
    for length in (len(content) - 1, len(content) - 4096, 8192, 4096, 100, 0):
        (copy / "data.mdb").write_bytes(content[:length])
        with pytest.raises(DamagedStoreError):
            check_lmdb_file(copy)
    (copy / "data.mdb").write_bytes(content)
    check_lmdb_file(copy)
    missing = data / "absent"
    check_lmdb_file(missing)
    assert not missing.exists()


def start_tsa(folder: Path) -> tuple[subprocess.Popen, str]:
    """Start `ledger tsa serve` on a free port and return it with its /tsa URL."""
    env = dict(os.environ, LEDGER_PASSPHRASE="tsa pw")
    process = subprocess.Popen(
        LEDGER + ["tsa", "serve", "--data", str(folder), "--listen", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    line = process.stdout.readline().decode()
    if "listening on " not in line:
        stop(process)
        raise AssertionError(f"ledger tsa serve did not start: {line!r}")
    return process, line.split("listening on ", 1)[1].strip()


def fetch_published(port: int, timeout: float = 30) -> tuple[bytes, bytes, int]:
    """Poll until the log serves a token, then return the note, token and tree_size.

    The note is fetched again after the token, so both belong to the same
    checkpoint when the two fetches of the note agree.
    """
    base = f"http://127.0.0.1:{port}/log/checkpoint"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base) as response:
                note = response.read()
            with urllib.request.urlopen(base + ".tsr") as response:
                token = response.read()
                token_size = int(response.headers["Ledger-Tree-Size"])
            with urllib.request.urlopen(base) as response:
                again = response.read()
        except OSError:
            time.sleep(0.2)
            continue
        if note == again and int(note.split(b"\n")[1]) == token_size:
            return note, token, token_size
        time.sleep(0.2)
    raise AssertionError(f"{base}.tsr served no token in {timeout} s")


def openssl_verify_token(
    token: bytes, stamped: bytes, root: Path, folder: Path
) -> subprocess.CompletedProcess:
    """Run `openssl ts -verify` on token over the SHA-256 of stamped."""
    import hashlib

    token_path = folder / "checkpoint.tsr"
    token_path.write_bytes(token)
    return subprocess.run(
        [
            "openssl", "ts", "-verify",
            "-digest", hashlib.sha256(stamped).hexdigest(),
            "-token_in", "-in", str(token_path),
            "-CAfile", str(root),
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )


def test_serve_time_stamps_checkpoints_at_tsa(data, tmp_path):
    run(["log", "append", "--data", str(data)], passphrase=None, stdin=b"a\nb\nc\n")
    tsa, tsa_url = start_tsa(tmp_path / "tsa")
    try:
        port = free_port()
        process = start_serve(data, port, "pw", "--tsa", tsa_url)
        try:
            line = process.stdout.readline()
            note, token, tree_size = fetch_published(port)
        finally:
            stop(process)
    finally:
        stop(tsa)
    assert f"time-stamped by {tsa_url}".encode() in line
    assert tree_size == 3
    # Without witnesses the published note is the signed note that was stamped.
    verifier = Ed25519Verifier.from_vkey((data / "log.vkey").read_text().strip())
    open_checkpoint(note, verifier)
    root = tmp_path / "tsa" / "tsa-root.pem"
    verified = openssl_verify_token(token, note, root, tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert b"Verification: OK" in verified.stdout
    # The token covers exactly the note: other bytes do not verify.
    assert openssl_verify_token(token, note + b"\n", root, tmp_path).returncode != 0


def test_serve_publishes_while_tsa_down(data):
    dead_url = f"http://127.0.0.1:{free_port()}/tsa"
    port = free_port()
    process = start_serve(
        data, port, "pw", "--tsa", dead_url,
        "--checkpoint-interval", "0.05", "--idle-interval", "0.05",
    )
    try:
        process.stdout.readline()
        # Each append grows the tree, so each checkpoint fails at the TSA
        # with another tree_size in the publisher's warning.
        for size in range(1, 4):
            result = run(["log", "append", "--data", str(data)], passphrase=None, stdin=b"x\n")
            assert result.returncode == 0, result.stderr
            deadline = time.monotonic() + 30
            published = 0
            while published < size and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/log/checkpoint") as r:
                        published = int(r.read().split(b"\n")[1])
                except OSError:
                    pass
                time.sleep(0.1)
            assert published == size
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/log/checkpoint.tsr")
        assert raised.value.code == 404
    finally:
        _, stderr = stop(process)
    warnings = [line for line in stderr.splitlines() if b"time-stamping checkpoint" in line]
    assert len(warnings) == 1, stderr.decode()
    assert dead_url.encode() in warnings[0]


def test_serve_rejects_tsa_without_http(data):
    result = run(["serve", "--data", str(data), "--tsa", "127.0.0.1:3180"])
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert b"--tsa '127.0.0.1:3180'" in result.stderr


def test_time_stamp_filter_ignores_tree_size():
    now = [0.0]
    record_filter = TimeStampWarningFilter(window=60.0, clock=lambda: now[0])
    message = "time-stamping checkpoint of tree_size %d failed: %s"

    def record(tree_size: int, error: Exception) -> logging.LogRecord:
        return logging.LogRecord(
            "t", logging.WARNING, __file__, 1, message, (tree_size, error), None
        )

    down = TimeStampError("time stamp request to http://127.0.0.1:9/tsa failed")
    assert record_filter.filter(record(1, down))
    for second in range(1, 60):
        now[0] = float(second)
        assert not record_filter.filter(record(second + 1, down))
    # Another error passes at once, and so does a record without a stamping error.
    assert record_filter.filter(record(70, TimeoutError()))
    assert record_filter.filter(
        logging.LogRecord("t", logging.WARNING, __file__, 1, "other %s", ("x",), None)
    )
    now[0] = 60.0
    summary = record(80, down)
    assert record_filter.filter(summary)
    assert summary.getMessage() == (
        f"time-stamping checkpoint of tree_size 80 failed: {down}"
        " (repeated 60 times in 60 s)"
    )
