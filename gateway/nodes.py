"""Start witness and mirror nodes as separate processes on 127.0.0.1.

The demo and the tests run the gateway (log, TSA, identity, signer) in their
own process and the witnesses and the mirror as child processes, each with
its own data folder, key and port, as independent operators would run them.
Each child runs the `ledger witness serve` or `ledger mirror` command and
writes the URL it listens on to `DIR/node.url`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

URL_FILE = "node.url"
START_TIMEOUT = 30.0


class NodeStartError(Exception):
    """A node process exited or did not announce its URL in time."""


@dataclass
class NodeProcess:
    """A started node: its process, data folder and URL."""

    name: str
    process: subprocess.Popen
    data_dir: Path
    url: str = ""
    vkey: str = ""


def node_passphrase(operator_passphrase: bytes, node_name: str) -> str:
    """Derive a node's own passphrase from the operator's, distinct per node.

    The same derivation as `witnesses.cluster`, so that both launchers can
    reopen each other's node folders.
    """
    return hmac.new(operator_passphrase, node_name.encode(), hashlib.sha256).hexdigest()


@dataclass
class NodeGroup:
    """The node processes started for one gateway; `stop` ends them by PID.

    Each node gets its own LEDGER_PASSPHRASE, derived from the operator's
    with `node_passphrase`, so that no node can open another's key.
    """

    operator_passphrase: bytes
    nodes: list[NodeProcess] = field(default_factory=list)

    def _spawn(self, name: str, data_dir: Path, arguments: list[str]) -> NodeProcess:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / URL_FILE).unlink(missing_ok=True)
        environment = dict(
            os.environ,
            LEDGER_PASSPHRASE=node_passphrase(self.operator_passphrase, name),
        )
        with open(data_dir / "node.log", "ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", *arguments],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        node = NodeProcess(name, process, data_dir)
        self.nodes.append(node)
        return node

    def _wait_for_url(self, node: NodeProcess) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        url_path = node.data_dir / URL_FILE
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                tail = (node.data_dir / "node.log").read_text(errors="replace")[-2000:]
                raise NodeStartError(
                    f"{node.name} exited with status {node.process.returncode}:\n{tail}"
                )
            if url_path.exists() and (url := url_path.read_text().strip()):
                node.url = url.rstrip("/")
                return
            time.sleep(0.05)
        raise NodeStartError(
            f"{node.name} did not write {url_path} within {START_TIMEOUT} seconds"
        )

    def start_witnesses(self, folders: list[Path], log_vkey: str) -> list[NodeProcess]:
        """Start one witness per folder for the log `log_vkey`, all at once.

        Returns them once each serves; the folder name is the node name.
        """
        started = []
        for data_dir in folders:
            name = data_dir.name
            started.append(
                self._spawn(
                    name,
                    data_dir,
                    [
                        "witness",
                        "serve",
                        "--data",
                        str(data_dir),
                        "--listen",
                        "127.0.0.1:0",
                        "--log",
                        log_vkey,
                        "--name",
                        f"{name}.localhost",
                    ],
                )
            )
        for node in started:
            self._wait_for_url(node)
            node.vkey = (node.data_dir / "witness.vkey").read_text().strip()
        return started

    def start_mirror(
        self, data_dir: Path, source_url: str, log_vkey: str
    ) -> NodeProcess:
        """Start a mirror following the log at `source_url`; return it once it serves."""
        node = self._spawn(
            "mirror",
            data_dir,
            [
                "mirror",
                "--source",
                source_url,
                "--data",
                str(data_dir),
                "--listen",
                "127.0.0.1:0",
                "--log",
                log_vkey,
                "--interval",
                "0.2",
            ],
        )
        self._wait_for_url(node)
        return node

    def stop(self) -> None:
        """Terminate every node this group started, by PID, and wait for each."""
        for node in reversed(self.nodes):
            if node.process.poll() is None:
                node.process.terminate()
        for node in reversed(self.nodes):
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        self.nodes.clear()
