"""The witness, mirror and cluster commands: one-line errors, exit statuses,
start-up lines, the mirror's retries and the cluster's stop on signals."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from gateway.cli import main
from ledger.keys import read_key_file
from witnesses.cluster import LEDGER, migrate_log_key, node_passphrase
from witnesses.nodes import RepeatedFailures

OPERATOR_PASSPHRASE = "operator passphrase"


def test_witness_needs_passphrase(tmp_path, monkeypatch, reference_log, capsys):
    monkeypatch.delenv("LEDGER_PASSPHRASE", raising=False)
    status = main(
        [
            "witness",
            "serve",
            "--data",
            str(tmp_path / "w"),
            "--listen",
            "127.0.0.1:0",
            "--log",
            reference_log.vkey,
        ]
    )
    assert status == 2
    assert "LEDGER_PASSPHRASE" in capsys.readouterr().err
    assert not (tmp_path / "w" / "witness.key").exists()


def test_witness_rejects_bad_listen(tmp_path, passphrase, reference_log, capsys):
    status = main(
        [
            "witness",
            "serve",
            "--data",
            str(tmp_path / "w"),
            "--listen",
            "nowhere",
            "--log",
            reference_log.vkey,
        ]
    )
    assert status == 2
    assert "--listen" in capsys.readouterr().err


def test_witness_rejects_bad_vkey(tmp_path, passphrase, capsys):
    status = main(
        [
            "witness",
            "serve",
            "--data",
            str(tmp_path / "w"),
            "--listen",
            "127.0.0.1:0",
            "--log",
            "example.test/log+00000000+AAAA",
        ]
    )
    assert status == 2
    assert "invalid log vkey" in capsys.readouterr().err


def test_witness_name_fixed_after_first_start(
    tmp_path, passphrase, reference_log, capsys
):
    from witnesses.nodes import open_witness

    open_witness(
        tmp_path / "w", [reference_log.vkey], "witness.test/first"
    ).state.close()
    status = main(
        [
            "witness",
            "serve",
            "--data",
            str(tmp_path / "w"),
            "--listen",
            "127.0.0.1:0",
            "--log",
            reference_log.vkey,
            "--name",
            "witness.test/second",
        ]
    )
    assert status == 1
    assert "witness.test/first" in capsys.readouterr().err


def test_mirror_needs_log_vkey_first(tmp_path, capsys):
    status = main(
        ["mirror", "--source", "http://127.0.0.1:9", "--data", str(tmp_path / "m")]
    )
    assert status == 2
    assert "--log VKEY" in capsys.readouterr().err


def test_mirror_rejects_invalid_vkey(tmp_path, capsys):
    status = main(
        [
            "mirror",
            "--source",
            "http://127.0.0.1:9",
            "--data",
            str(tmp_path / "m"),
            "--log",
            "example.test/log+00000000+AAAA",
        ]
    )
    assert status == 2
    assert "invalid log vkey" in capsys.readouterr().err
    assert not (tmp_path / "m" / "log.vkey").exists()


@pytest.fixture
def busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


def assert_one_line(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    for fragment in fragments:
        assert fragment in stderr


def test_witness_busy_port(tmp_path, passphrase, reference_log, busy_port, capsys):
    status = main(
        [
            "witness",
            "serve",
            "--data",
            str(tmp_path / "w"),
            "--listen",
            f"127.0.0.1:{busy_port}",
            "--log",
            reference_log.vkey,
        ]
    )
    assert status == 1
    assert_one_line(capsys.readouterr().err, f"cannot listen on 127.0.0.1:{busy_port}")


def test_mirror_busy_port(tmp_path, reference_log, busy_port, capsys):
    status = main(
        [
            "mirror",
            "--source",
            "http://127.0.0.1:9",
            "--data",
            str(tmp_path / "m"),
            "--log",
            reference_log.vkey,
            "--listen",
            f"127.0.0.1:{busy_port}",
        ]
    )
    assert status == 1
    assert_one_line(capsys.readouterr().err, f"cannot listen on 127.0.0.1:{busy_port}")


def test_witness_rejects_truncated_store(tmp_path, passphrase, reference_log, capsys):
    from witnesses.nodes import open_witness

    witness = open_witness(tmp_path / "w", [reference_log.vkey], None)
    witness.state.close()
    data_file = tmp_path / "w" / "witness.lmdb" / "data.mdb"
    os.truncate(data_file, 4096)
    status = main(
        [
            "witness",
            "serve",
            "--data",
            str(tmp_path / "w"),
            "--listen",
            "127.0.0.1:0",
            "--log",
            reference_log.vkey,
        ]
    )
    assert status == 1
    assert_one_line(capsys.readouterr().err, "data.mdb", "truncated")


def ledger_env(passphrase: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("LEDGER_PASSPHRASE", None)
    if passphrase is not None:
        env["LEDGER_PASSPHRASE"] = passphrase
    return env


def stop_process(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    return stdout.decode(), stderr.decode()


def test_witness_prints_start_line(tmp_path, reference_log):
    process = subprocess.Popen(
        [
            *LEDGER,
            "witness",
            "serve",
            "--data",
            str(tmp_path / "w"),
            "--listen",
            "127.0.0.1:0",
            "--log",
            reference_log.vkey,
        ],
        env=ledger_env("witness passphrase"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = process.stdout.readline().decode()
    finally:
        stop_process(process)
    url = (tmp_path / "w" / "node.url").read_text().strip()
    vkey = (tmp_path / "w" / "witness.vkey").read_text().strip()
    assert line.startswith("ledger witness serve: witness ")
    assert f"serving on {url} for example.test/log" in line
    assert vkey in line
    assert process.returncode == 0


def init_log(folder: Path, origin: str, passphrase: str) -> str:
    result = subprocess.run(
        [*LEDGER, "init", "--data", str(folder), "--origin", origin],
        env=ledger_env(passphrase),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mirror_wrong_vkey_backs_off(tmp_path):
    init_log(tmp_path / "log", "example.test/mirrored", "log passphrase")
    other_vkey = init_log(tmp_path / "other", "example.test/mirrored", "log passphrase")
    port = free_port()
    log_process = subprocess.Popen(
        [*LEDGER, "serve", "--data", str(tmp_path / "log"), "--listen", f"127.0.0.1:{port}"],
        env=ledger_env("log passphrase"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert b"publishing checkpoints" in log_process.stdout.readline()
        mirror = subprocess.Popen(
            [
                *LEDGER,
                "mirror",
                "--source",
                f"http://127.0.0.1:{port}",
                "--data",
                str(tmp_path / "m"),
                "--log",
                other_vkey,
                "--interval",
                "0.05",
            ],
            env=ledger_env(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            line = mirror.stdout.readline().decode()
            # At a fixed 0.05 s interval the mirror would fail about 60
            # times in these 3 s; with back-off it fails about 6 times.
            time.sleep(3)
        finally:
            _, stderr = stop_process(mirror)
    finally:
        stop_process(log_process)
    assert line.startswith("ledger mirror: mirror of example.test/mirrored from")
    assert mirror.returncode == 0, stderr
    failures = [row for row in stderr.splitlines() if "mirror round failed" in row]
    assert len(failures) == 1, stderr
    assert "invalid checkpoint" in failures[0]


def test_repeated_failures_delays_and_log(caplog):
    now = [0.0]
    failures = RepeatedFailures(0.5, max_delay=4.0, repeat_log_interval=100.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="witnesses.nodes"):
        delays = [failures.failed("round failed: bad signature") for _ in range(6)]
        assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
        assert [r.getMessage() for r in caplog.records] == ["round failed: bad signature; retrying"]
        now[0] = 100.0
        failures.failed("round failed: bad signature")
        assert caplog.records[-1].getMessage() == "round failed: bad signature; repeated 6 times"
        failures.failed("round failed: timed out")
        assert caplog.records[-1].getMessage() == "round failed: timed out; retrying"
        assert failures.succeeded() == 0.5
        assert caplog.records[-1].getMessage() == "succeeded after 8 failed attempts"
        assert failures.failed("round failed: timed out") == 0.5


def test_cluster_rejects_bad_options(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_PASSPHRASE", OPERATOR_PASSPHRASE)
    for options in (["--witnesses", "0"], ["--witnesses", "2", "--quorum", "3"]):
        status = main(["cluster", "--data", str(tmp_path / "c"), *options])
        assert status == 2
        assert_one_line(capsys.readouterr().err, "ledger cluster:")
    monkeypatch.delenv("LEDGER_PASSPHRASE")
    assert main(["cluster", "--data", str(tmp_path / "c")]) == 2
    assert "LEDGER_PASSPHRASE" in capsys.readouterr().err


def test_migrate_log_key_to_operator_passphrase(tmp_path):
    operator = OPERATOR_PASSPHRASE.encode()
    derived = node_passphrase(operator, "log")
    vkey = init_log(tmp_path / "log", "example.test/old-cluster", derived)
    assert migrate_log_key(tmp_path / "log", operator)
    key = read_key_file(tmp_path / "log" / "log.key", operator)
    assert key.public_key() is not None
    assert not (tmp_path / "log" / "log.key.new").exists()
    assert not migrate_log_key(tmp_path / "log", operator)
    assert (tmp_path / "log" / "log.vkey").read_text().strip() == vkey


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP])
def test_cluster_signal_stops_every_node(tmp_path, stop_signal):
    cluster = subprocess.Popen(
        [*LEDGER, "cluster", "--data", str(tmp_path / "c"), "--witnesses", "1", "--quorum", "1"],
        env=ledger_env(OPERATOR_PASSPHRASE),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    children: list[psutil.Process] = []
    try:
        lines = []
        while not lines or not lines[-1].startswith("read the log"):
            line = cluster.stdout.readline().decode()
            assert line, cluster.stderr.read().decode()
            lines.append(line)
        assert any("ledger log append --data" in line for line in lines)
        children = psutil.Process(cluster.pid).children(recursive=True)
        pids = {child.pid for child in children}
        printed = {int(line.split(" pid ")[1].split()[0]) for line in lines if " pid " in line}
        assert len(printed) == 4  # tsa, witness-1, log, mirror
        assert printed <= pids

        # The log node's key opens with the operator's own passphrase.
        append = subprocess.run(
            [*LEDGER, "log", "append", "--data", str(tmp_path / "c" / "log")],
            input=b"one\ntwo\n",
            env=ledger_env(OPERATOR_PASSPHRASE),
            capture_output=True,
            timeout=120,
        )
        assert append.returncode == 0, append.stderr
        assert append.stdout.split() == [b"0", b"1"]

        cluster.send_signal(stop_signal)
        stdout, stderr = cluster.communicate(timeout=120)
        survivors = [child for child in children if is_alive(child)]
    finally:
        if cluster.poll() is None:
            cluster.kill()
            cluster.wait()
        # Nodes are left only when the cluster failed to stop them; end them
        # by PID so that a failing test leaves nothing running.
        for child in children:
            if is_alive(child):
                child.kill()
    assert cluster.returncode == 0, stderr
    assert signal.Signals(stop_signal).name in stdout.decode()
    assert survivors == []


def is_alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
