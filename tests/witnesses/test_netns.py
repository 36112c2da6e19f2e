"""Witnesses in separate network namespaces, reached through Unix sockets.

Each witness runs in a network namespace of its own (created by the test,
with only its loopback interface up), so it shares no network stack with
the log or with the other witnesses. The log reaches each one through a
Unix socket in the test's folder, which needs no IP traffic at all. Where
`ip netns` is unavailable (not root, no iproute2), the same test runs the
witnesses as plain processes on separate Unix sockets.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from ledger.witnessing import WitnessEndpoint, Witnessing

LEDGER = [
    sys.executable,
    "-c",
    "import sys; from gateway.cli import main; sys.exit(main())",
]


def namespaces_available() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"ledgerw-probe-{os.getpid()}"
    created = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, check=False
    )
    if created.returncode != 0:
        return False
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=False)
    return True


@pytest.fixture
def namespaces():
    """Names of three network namespaces, or None where they cannot be made."""
    if not namespaces_available():
        yield None
        return
    names = [f"ledgerw-{os.getpid()}-{i}" for i in range(3)]
    try:
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(
                ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                check=True,
            )
        yield names
    finally:
        for name in names:
            subprocess.run(
                ["ip", "netns", "delete", name], capture_output=True, check=False
            )


def start_witness(folder, socket_path, log_vkey, name, namespace):
    env = dict(os.environ, LEDGER_PASSPHRASE="netns witness passphrase")
    command = [
        *LEDGER,
        "witness",
        "serve",
        "--data",
        str(folder),
        "--listen",
        f"unix:{socket_path}",
        "--log",
        log_vkey,
        "--name",
        name,
    ]
    if namespace is not None:
        command = ["ip", "netns", "exec", namespace, *command]
    folder.mkdir(parents=True)
    with open(folder / "node.log", "ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_listening(folder, process) -> None:
    deadline = time.monotonic() + 30
    while not (folder / "node.url").exists():
        assert process.poll() is None, (folder / "node.log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def loopback_reachable_from(namespace: str, port: int) -> bool:
    """Try 127.0.0.1:port from inside namespace; True if it connects."""
    code = (
        "import socket,sys\n"
        "s=socket.socket()\n"
        "s.settimeout(2)\n"
        f"sys.exit(s.connect_ex(('127.0.0.1',{port})))\n"
    )
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", code], check=False
    )
    return result.returncode == 0


async def test_witnesses_in_own_namespaces(tmp_path, namespaces, reference_log, c2sp):
    log = reference_log
    processes = []
    endpoints = []
    try:
        for i in range(3):
            namespace = None if namespaces is None else namespaces[i]
            folder = tmp_path / f"w{i}"
            socket_path = tmp_path / f"w{i}.sock"
            processes.append(
                start_witness(
                    folder, socket_path, log.vkey, f"witness.test/ns{i}", namespace
                )
            )
        for i, process in enumerate(processes):
            folder = tmp_path / f"w{i}"
            wait_until_listening(folder, process)
            vkey = (folder / "witness.vkey").read_text().strip()
            endpoints.append(WitnessEndpoint(f"unix:{tmp_path / f'w{i}.sock'}", vkey))

        if namespaces is not None:
            # A listener on this namespace's loopback is invisible inside theirs.
            with socket.socket() as listener:
                listener.bind(("127.0.0.1", 0))
                listener.listen()
                port = listener.getsockname()[1]
                assert not loopback_reachable_from(namespaces[0], port)

        witnessing = Witnessing(endpoints, 3, log.proof, timeout=5)
        try:
            for tree_size in (5, 17, 40):
                note = await witnessing.cosign(log.note(tree_size))
                for endpoint in endpoints:
                    c2sp.verify_cosignature(note, endpoint.vkey)
        finally:
            await witnessing.close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)
