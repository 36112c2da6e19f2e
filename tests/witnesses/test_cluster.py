"""The local cluster: separate processes that witness and mirror a live log."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import urllib.error
import urllib.request

import psutil
import pytest

from witnesses.cluster import LEDGER, LocalCluster


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


def wait_for_checkpoint(url: str, tree_size: int, accept, timeout: float = 40) -> bytes:
    """Poll url until it serves a note of at least tree_size that accept() takes."""
    deadline = time.monotonic() + timeout
    last = b""
    while time.monotonic() < deadline:
        try:
            last = fetch(url)
        except OSError:
            time.sleep(0.2)
            continue
        size = int(last.split(b"\n")[1])
        if size >= tree_size and accept(last):
            return last
        time.sleep(0.2)
    raise AssertionError(f"{url} did not reach tree_size {tree_size}: {last!r}")


def append(
    cluster: LocalCluster, lines: list[bytes], below_quorum: bool = False
) -> None:
    """Append through `ledger log append`, which also publishes a checkpoint.

    Below quorum that checkpoint fails, and the command reports the entries
    as durable and exits with 1.
    """
    result = subprocess.run(
        [*LEDGER, "log", "append", "--data", str(cluster.data_dir / "log")],
        input=b"\n".join(lines) + b"\n",
        env=cluster.env_for("log"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if below_quorum:
        assert result.returncode == 1, result.stderr.decode()
        assert b"entries are durable" in result.stderr
    else:
        assert result.returncode == 0, result.stderr.decode()


def cosigners(c2sp, note: bytes, vkeys: list[str]) -> int:
    count = 0
    for vkey in vkeys:
        try:
            c2sp.verify_cosignature(note, vkey)
        except c2sp.Invalid:
            continue
        count += 1
    return count


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for the tests of this module, which run in order."""
    previous = os.environ.get("LEDGER_PASSPHRASE")
    os.environ["LEDGER_PASSPHRASE"] = "cluster operator passphrase"
    cluster = LocalCluster(
        tmp_path_factory.mktemp("cluster"),
        witnesses=3,
        quorum=2,
        checkpoint_interval=0.2,
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if previous is None:
            del os.environ["LEDGER_PASSPHRASE"]
        else:
            os.environ["LEDGER_PASSPHRASE"] = previous


def test_cluster_witnesses_and_mirrors(cluster, c2sp):
    names = set(cluster.nodes)
    assert {"log", "witness-1", "witness-2", "witness-3", "mirror"} <= names
    pids = {node.pid for node in cluster.nodes.values()}
    assert None not in pids
    assert len(pids) == len(cluster.nodes)
    folders = {node.data_dir for node in cluster.nodes.values()}
    assert len(folders) == len(cluster.nodes)

    append(cluster, [b"cluster entry %d" % i for i in range(300)])

    def cosigned(note: bytes) -> bool:
        return cosigners(c2sp, note, cluster.witness_vkeys) >= 2

    note = wait_for_checkpoint(cluster.log_url + "/log/checkpoint", 300, cosigned)
    c2sp.verify_note_signature(note, cluster.log_vkey)
    mirrored = wait_for_checkpoint(
        cluster.mirror_url + "/log/checkpoint", 300, cosigned
    )
    c2sp.verify_note_signature(mirrored, cluster.log_vkey)
    bundle = fetch(cluster.mirror_url + "/log/tile/entries/000")
    assert bundle == fetch(cluster.log_url + "/log/tile/entries/000")


def test_cluster_time_stamps_checkpoints(cluster, c2sp, tmp_path):
    assert cluster.tsa_url is not None, "the cluster started without its TSA"
    append(cluster, [b"time-stamped entry %d" % i for i in range(3)])
    checkpoint_url = cluster.log_url + "/log/checkpoint"
    deadline = time.monotonic() + 40
    token = b""
    while time.monotonic() < deadline:
        note = fetch(checkpoint_url)
        try:
            with urllib.request.urlopen(checkpoint_url + ".tsr", timeout=5) as response:
                token = response.read()
                token_size = int(response.headers["Ledger-Tree-Size"])
        except urllib.error.HTTPError:
            # `ledger log append` published this tree_size without a token,
            # so the log node publishes it again, time-stamped.
            time.sleep(0.2)
            continue
        # The note fetched again after the token is of the same checkpoint.
        if fetch(checkpoint_url) == note and int(note.split(b"\n")[1]) == token_size:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"{checkpoint_url}.tsr served no token for the latest note")

    # The publisher stamps the note signed by the log alone, before the
    # witnesses cosign it: the published note without the cosignature lines.
    text, _, signatures = note.rpartition(b"\n\n")
    own = [
        line + b"\n"
        for line in signatures.split(b"\n")
        if line.startswith(f"\u2014 {cluster.origin} ".encode())
    ]
    assert len(own) == 1, note
    stamped = text + b"\n\n" + own[0]
    c2sp.verify_note_signature(stamped, cluster.log_vkey)
    assert stamped != note

    token_path = tmp_path / "checkpoint.tsr"
    token_path.write_bytes(token)
    result = subprocess.run(
        [
            "openssl", "ts", "-verify",
            "-digest", hashlib.sha256(stamped).hexdigest(),
            "-token_in", "-in", str(token_path),
            "-CAfile", str(cluster.data_dir / "tsa" / "tsa-root.pem"),
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"Verification: OK" in result.stdout


def test_cluster_survives_a_witness_down(cluster, c2sp):
    base = int(fetch(cluster.log_url + "/log/checkpoint").split(b"\n")[1])
    cluster.stop_node("witness-1")
    append(cluster, [b"entry while a witness is down %d" % i for i in range(5)])

    def two_others(note: bytes) -> bool:
        return cosigners(c2sp, note, cluster.witness_vkeys[1:]) >= 2

    wait_for_checkpoint(cluster.log_url + "/log/checkpoint", base + 5, two_others)

    cluster.stop_node("witness-2")
    append(cluster, [b"entry below quorum %d" % i for i in range(5)], below_quorum=True)
    time.sleep(1.5)
    # Below quorum the log keeps serving its last cosigned checkpoint.
    note = fetch(cluster.log_url + "/log/checkpoint")
    assert int(note.split(b"\n")[1]) == base + 5
    assert two_others(note)

    # A restarted log, still below quorum, serves the same cosigned note.
    cluster.stop_node("log")
    cluster.start_node("log")
    time.sleep(1)
    assert fetch(cluster.log_url + "/log/checkpoint") == note

    cluster.start_node("witness-1")
    wait_for_checkpoint(
        cluster.log_url + "/log/checkpoint",
        base + 10,
        lambda note: cosigners(c2sp, note, cluster.witness_vkeys) >= 2,
    )


def test_cluster_stops_every_process(cluster):
    pids = [node.pid for node in cluster.nodes.values() if node.pid is not None]
    assert len(pids) >= 5
    cluster.stop()
    for pid in pids:
        assert not psutil.pid_exists(pid)
    assert all(node.pid is None for node in cluster.nodes.values())
