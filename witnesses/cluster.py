"""A local cluster: the log, witnesses, a mirror and a TSA as separate processes.

Every node is its own `ledger` process with its own data folder under the
cluster folder and its own port on 127.0.0.1. The log is the operator's own
node, so its key is encrypted under the operator's LEDGER_PASSPHRASE and
`ledger log append --data DIR/log` works with it. The witnesses, the mirror
and the TSA stand for other operators, so each gets its own
LEDGER_PASSPHRASE: the hex HMAC-SHA256 of the node name under the operator's
passphrase. No such node can open another's key, and no passphrase is
written to disk. With a TSA, the log time-stamps each checkpoint through
it (`ledger serve --tsa`), so /log/checkpoint.tsr serves a token.

    with LocalCluster(Path("demo")) as cluster:
        cluster.log_url, cluster.witness_urls, cluster.mirror_url

Layout: `DIR/log/` (`ledger init`), `DIR/witness-1/` ... (`ledger witness
serve`), `DIR/mirror/` (`ledger mirror`), `DIR/tsa/` (`ledger tsa serve`),
and each node's output in `DIR/<node>/node.log`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from witnesses.keys import PASSPHRASE_VARIABLE, passphrase

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
# Runs the `ledger` entry point with the interpreter of this process, so the
# cluster works from a virtual environment without its bin/ on PATH.
LEDGER = [
    sys.executable,
    "-c",
    "import sys; from gateway.cli import main; sys.exit(main())",
]


# The signals that stop the cluster and every node it started.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LOG_NODE = "log"


class ClusterError(Exception):
    """A node failed to start or to respond in time."""


class StopRequested(BaseException):
    """A stop request by one of STOP_SIGNALS.

    Derived from BaseException, like KeyboardInterrupt, so that handlers of
    Exception do not swallow it.
    """

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signal_number).name}")
        self.signal_number = signal_number


@dataclass
class Node:
    """One process of the cluster."""

    name: str
    data_dir: Path
    arguments: list[str]
    url: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        """The process id while the node runs, else None."""
        if self.process is None or self.process.poll() is not None:
            return None
        return self.process.pid


def free_port(host: str = HOST) -> int:
    """Return a TCP port that was free on host a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def node_passphrase(operator_passphrase: bytes, node_name: str) -> str:
    """Derive a node's passphrase from the operator's, distinct per node."""
    return hmac.new(operator_passphrase, node_name.encode(), hashlib.sha256).hexdigest()


def migrate_log_key(log_dir: Path, operator_passphrase: bytes) -> bool:
    """Re-encrypt a log key under the operator's passphrase if it was under the derived one.

    Earlier clusters encrypted the log key under node_passphrase(operator,
    "log"). Returns True when the key was re-encrypted. Raises KeyFileError
    when neither passphrase decrypts the key.
    """
    from ledger.keys import KeyFileError, read_key_file, write_key_file

    key_path = log_dir / "log.key"
    if not key_path.exists():
        return False
    try:
        read_key_file(key_path, operator_passphrase)
        return False
    except KeyFileError:
        derived = node_passphrase(operator_passphrase, LOG_NODE).encode()
        key = read_key_file(key_path, derived)
    staged = log_dir / "log.key.new"
    staged.unlink(missing_ok=True)
    write_key_file(staged, key, operator_passphrase)
    os.replace(staged, key_path)
    return True


def run_ledger(arguments: list[str], env: dict[str, str], log_path: Path) -> None:
    """Run one `ledger` command to completion; raise ClusterError on failure."""
    with open(log_path, "ab") as log:
        result = subprocess.run(
            LEDGER + arguments,
            check=False,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    if result.returncode != 0:
        raise ClusterError(
            f"`ledger {' '.join(arguments)}` exited with {result.returncode}; see {log_path}"
        )


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until url returns any HTTP status; raise if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(
                f"process {process.pid} exited with {process.returncode}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise ClusterError(f"{url} did not respond within {timeout:.0f} s")


class LocalCluster:
    """The log, `witnesses` witnesses, one mirror and a TSA if available.

    Requires LEDGER_PASSPHRASE in the environment (the operator's) and
    1 <= quorum <= witnesses. `start()` returns once every node responds to HTTP.
    """

    def __init__(
        self,
        data_dir: Path,
        witnesses: int = 3,
        quorum: int = 2,
        tsa: bool | None = None,
        origin: str | None = None,
        checkpoint_interval: float = 1.0,
    ) -> None:
        if not 0 <= quorum <= witnesses:
            raise ClusterError(f"quorum {quorum} must be between 0 and {witnesses}")
        self.data_dir = Path(data_dir).resolve()
        self.witness_count = witnesses
        self.quorum = quorum
        self.checkpoint_interval = checkpoint_interval
        self.origin = origin or f"ledger.localhost/{self.data_dir.name}"
        self._operator_passphrase = passphrase()
        self._tsa = _tsa_available() if tsa is None else tsa
        self.nodes: dict[str, Node] = {}
        self.log_vkey = ""
        self.witness_vkeys: list[str] = []
        # Set by request_stop; while _starting_process > 0 a stop signal is
        # only recorded, so that no child is started without being tracked.
        self._stop_signal: int | None = None
        self._starting_process = 0
        self._stopping = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Addresses of the running nodes.

    @property
    def log_url(self) -> str:
        return self.nodes["log"].url

    @property
    def witness_urls(self) -> list[str]:
        return [
            self.nodes[f"witness-{i}"].url for i in range(1, self.witness_count + 1)
        ]

    @property
    def mirror_url(self) -> str:
        return self.nodes["mirror"].url

    @property
    def tsa_url(self) -> str | None:
        node = self.nodes.get("tsa")
        return None if node is None else node.url + "/tsa"

    def describe(self) -> list[str]:
        """Return one line per node: name, URL, PID and data folder, then how to use the log."""
        lines = [
            f"{node.name:<10} {node.url:<28} pid {node.pid} {node.data_dir}"
            for node in self.nodes.values()
        ]
        log_dir = shlex.quote(str(self.data_dir / LOG_NODE))
        lines.append(
            f"append to the log (with your LEDGER_PASSPHRASE): seq 1 10 |"
            f" ledger log append --data {log_dir}"
        )
        if LOG_NODE in self.nodes:
            lines.append(f"read the log: curl {self.log_url}/log/checkpoint")
        return lines

    def env_for(self, name: str) -> dict[str, str]:
        """Return the environment of node `name`, with its passphrase.

        The log gets the operator's passphrase; every other node a derived one.
        """
        env = dict(os.environ)
        if name == LOG_NODE:
            env[PASSPHRASE_VARIABLE] = self._operator_passphrase.decode()
        else:
            env[PASSPHRASE_VARIABLE] = node_passphrase(self._operator_passphrase, name)
        return env

    def request_stop(self, signal_number: int, frame: object = None) -> None:
        """Raise StopRequested, or defer it while a child process is being started.

        Install as the handler of STOP_SIGNALS in the main thread. Once stop()
        has begun, further signals are ignored so that they cannot cut it short.
        """
        if self._stopping:
            return
        self._stop_signal = signal_number
        if self._starting_process == 0:
            raise StopRequested(signal_number)

    def _raise_if_stop_requested(self) -> None:
        if self._stop_signal is not None and self._starting_process == 0:
            raise StopRequested(self._stop_signal)

    # Life cycle.

    def start(self) -> None:
        """Create what is missing, then start every node and wait for it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_dir = self.data_dir / "log"
        log_dir.mkdir(exist_ok=True)

        # 1. The log's key comes first: the witnesses and the mirror need it.
        if not (log_dir / "log.vkey").exists():
            self._starting_process += 1
            try:
                run_ledger(
                    ["init", "--data", str(log_dir), "--origin", self.origin],
                    self.env_for(LOG_NODE),
                    log_dir / "node.log",
                )
            finally:
                self._starting_process -= 1
            self._raise_if_stop_requested()
        else:
            from ledger.keys import KeyFileError

            try:
                migrate_log_key(log_dir, self._operator_passphrase)
            except KeyFileError as error:
                raise ClusterError(
                    f"{error}; start the cluster with the LEDGER_PASSPHRASE that"
                    f" created {log_dir}"
                ) from error
        self.log_vkey = (log_dir / "log.vkey").read_text().strip()

        # 2. A TSA, when `ledger tsa serve` exists.
        if self._tsa:
            tsa_dir = self.data_dir / "tsa"
            port = free_port()
            self.nodes["tsa"] = Node(
                "tsa",
                tsa_dir,
                ["tsa", "serve", "--data", str(tsa_dir), "--listen", f"{HOST}:{port}"],
                f"http://{HOST}:{port}",
            )

        # 3. The witnesses, each with its own key created on first start.
        self.witness_vkeys = []
        for i in range(1, self.witness_count + 1):
            name = f"witness-{i}"
            folder = self.data_dir / name
            self.nodes[name] = Node(
                name,
                folder,
                [
                    "witness",
                    "serve",
                    "--data",
                    str(folder),
                    "--listen",
                    f"{HOST}:0",
                    "--log",
                    str(log_dir / "log.vkey"),
                    "--name",
                    f"{name}.{self.origin.split('/')[0]}",
                ],
            )
        # Python start-up dominates, so the processes start side by side.
        deadlines = {name: self._spawn(name) for name in self.nodes}
        for name, deadline in deadlines.items():
            self._await(name, deadline)
        for i in range(1, self.witness_count + 1):
            vkey_path = self.data_dir / f"witness-{i}" / "witness.vkey"
            self.witness_vkeys.append(vkey_path.read_text().strip())

        # 4. The log, configured with the witnesses and the quorum.
        self._configure_log(log_dir)
        port = free_port()
        arguments = ["serve", "--data", str(log_dir), "--listen", f"{HOST}:{port}"]
        arguments += ["--checkpoint-interval", str(self.checkpoint_interval)]
        if self.tsa_url is not None:
            arguments += ["--tsa", self.tsa_url]
        self.nodes["log"] = Node("log", log_dir, arguments, f"http://{HOST}:{port}")
        log_deadline = self._spawn("log")

        # 5. The mirror follows the log and gossips with the witnesses.
        mirror_dir = self.data_dir / "mirror"
        arguments = [
            "mirror",
            "--source",
            self.log_url,
            "--data",
            str(mirror_dir),
            "--listen",
            f"{HOST}:0",
            "--log",
            str(log_dir / "log.vkey"),
        ]
        for url in self.witness_urls:
            arguments += ["--peer", url]
        self.nodes["mirror"] = Node("mirror", mirror_dir, arguments)
        mirror_deadline = self._spawn("mirror")
        self._await("log", log_deadline)
        self._await("mirror", mirror_deadline)

    def _configure_log(self, log_dir: Path) -> None:
        from ledger.store import LogConfig, LogStore

        with LogStore(log_dir / "log.lmdb") as store:
            origin = store.config().origin
            witnesses = tuple(zip(self.witness_urls, self.witness_vkeys))
            store.write_config(LogConfig(origin, witnesses, self.quorum))

    def start_node(self, name: str) -> Node:
        """Start (or restart) node `name` and wait until it responds to HTTP."""
        deadline = self._spawn(name)
        return self._await(name, deadline)

    def _spawn(self, name: str) -> float:
        """Start node `name` unless it runs; return the deadline for its start."""
        node = self.nodes[name]
        deadline = time.monotonic() + START_TIMEOUT
        if node.pid is not None:
            return deadline
        node.data_dir.mkdir(parents=True, exist_ok=True)
        if f"{HOST}:0" in node.arguments:
            (node.data_dir / "node.url").unlink(missing_ok=True)
        self._starting_process += 1
        try:
            with open(node.data_dir / "node.log", "ab") as log:
                node.process = subprocess.Popen(
                    LEDGER + node.arguments,
                    env=self.env_for(name),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        finally:
            self._starting_process -= 1
        self._raise_if_stop_requested()
        return deadline

    def _await(self, name: str, deadline: float) -> Node:
        """Wait until node `name` wrote its URL and responds to HTTP."""
        node = self.nodes[name]
        assert node.process is not None
        url_file = node.data_dir / "node.url"
        if f"{HOST}:0" in node.arguments:
            while not url_file.exists():
                if node.process.poll() is not None or time.monotonic() > deadline:
                    raise ClusterError(
                        f"{name} did not start; see {node.data_dir / 'node.log'}"
                    )
                time.sleep(0.05)
            node.url = url_file.read_text().strip()
            # Keep the port across restarts, so that the log's witness list
            # and the mirror's source stay valid.
            node.arguments = [
                node.url.removeprefix("http://")
                if argument == f"{HOST}:0"
                else argument
                for argument in node.arguments
            ]
        try:
            wait_for_http(
                node.url + "/", node.process, max(1.0, deadline - time.monotonic())
            )
        except ClusterError as error:
            raise ClusterError(
                f"{name}: {error}; see {node.data_dir / 'node.log'}"
            ) from error
        return node

    def stop_node(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop node `name` with sig (SIGKILL for a crash) and reap it."""
        node = self.nodes[name]
        if node.process is None:
            return
        if node.process.poll() is None:
            node.process.send_signal(sig)
            try:
                node.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        node.process = None

    def stop(self) -> None:
        """Stop every node: the mirror and the log first, then the others.

        Each group gets SIGTERM at once and STOP_TIMEOUT seconds to exit,
        after which a node still running gets SIGKILL.
        """
        self._stopping = True
        first = [name for name in ("mirror", "log") if name in self.nodes]
        rest = [name for name in self.nodes if name not in first]
        for group in (first, rest):
            running = [self.nodes[name] for name in group if self.nodes[name].pid]
            for node in running:
                node.process.send_signal(signal.SIGTERM)
            for name in group:
                self.stop_node(name)

    def wait(self) -> None:
        """Block until a node exits; raise ClusterError naming it."""
        while True:
            for node in self.nodes.values():
                if node.process is not None and node.process.poll() is not None:
                    raise ClusterError(
                        f"{node.name} exited with {node.process.returncode}; "
                        f"see {node.data_dir / 'node.log'}"
                    )
            time.sleep(0.5)


def _tsa_available() -> bool:
    try:
        import ledger.tsa.cli  # noqa: F401
    except ImportError:
        return False
    return True
