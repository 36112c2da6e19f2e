"""Fixtures for the witness tests: a spec-only C2SP reference and test logs."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_spec = importlib.util.spec_from_file_location(
    "c2sp_reference", Path(__file__).with_name("c2sp_reference.py")
)
reference = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("c2sp_reference", reference)
_spec.loader.exec_module(reference)


@pytest.fixture
def c2sp():
    """The independent C2SP implementation written from the specs."""
    return reference


@pytest.fixture
def reference_log():
    log = reference.ReferenceLog("example.test/log", Ed25519PrivateKey.generate())
    log.append(*[b"entry %d" % i for i in range(40)])
    return log


@pytest.fixture
def passphrase(monkeypatch):
    monkeypatch.setenv("LEDGER_PASSPHRASE", "witness test passphrase")
    return "witness test passphrase"


class WitnessProcess:
    """A `ledger witness serve` subprocess on 127.0.0.1, started by a test."""

    def __init__(self, data_dir: Path, log_vkey: str, name: str, env: dict) -> None:
        self.data_dir = data_dir
        self.log_vkey = log_vkey
        self.name = name
        self.env = env
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> str:
        """Start the witness (on its previous port after a restart)."""
        listen = self.url.removeprefix("http://") or "127.0.0.1:0"
        url_file = self.data_dir / "node.url"
        url_file.unlink(missing_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "node.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    *LEDGER,
                    "witness",
                    "serve",
                    "--data",
                    str(self.data_dir),
                    "--listen",
                    listen,
                    "--log",
                    self.log_vkey,
                    "--name",
                    self.name,
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not url_file.exists():
            assert self.process.poll() is None, (self.data_dir / "node.log").read_text()
            assert time.monotonic() < deadline, "witness did not start in 30 s"
            time.sleep(0.02)
        self.url = url_file.read_text().strip()
        return self.url

    @property
    def vkey(self) -> str:
        return (self.data_dir / "witness.vkey").read_text().strip()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(10)
        self.process = None


LEDGER = [
    sys.executable,
    "-c",
    "import sys; from gateway.cli import main; sys.exit(main())",
]


@pytest.fixture
def witness_processes(tmp_path):
    """Start witness subprocesses; every one still running is killed at teardown."""
    started: list[WitnessProcess] = []
    env = dict(os.environ, LEDGER_PASSPHRASE="witness process passphrase")

    def start(name: str, log_vkey: str) -> WitnessProcess:
        node = WitnessProcess(tmp_path / name, log_vkey, f"witness.test/{name}", env)
        node.start()
        started.append(node)
        return node

    yield start
    for node in started:
        node.kill(signal.SIGTERM)
