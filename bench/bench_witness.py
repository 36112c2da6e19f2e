"""Witnessing latency and witness throughput, against in-process peers.

1. Time from a signed checkpoint to a 3-of-3 and a 2-of-3 quorum, with three
   witnesses each running as its own `ledger witness serve` process on
   127.0.0.1 (median and p99); peer: the same three witnesses' checks and
   state updates done in this process, without HTTP.
2. Cosignatures per second that one witness process sustains with 16 logs
   submitting concurrently (one request in flight per log, because each
   request must start from the size the witness last cosigned); peer: the
   same requests handled in this process, without HTTP.

Each cosignature commits one LMDB transaction with fsync, so the figures
depend on the disk as much as on the CPU.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import merkle
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import Ed25519Signer
from ledger.witnessing import WitnessEndpoint, Witnessing, format_add_checkpoint

LEDGER = [
    sys.executable,
    "-c",
    "import sys; from gateway.cli import main; sys.exit(main())",
]
PASSPHRASE = "bench witness passphrase"
CHECKPOINTS = 300
LOGS = 16
THROUGHPUT_SECONDS = 5.0


class MemoryLog:
    """A log in memory: stored hashes in a dict, checkpoints signed by a key."""

    def __init__(self, origin: str) -> None:
        self.signer = Ed25519Signer(origin, Ed25519PrivateKey.generate())
        self.origin = origin
        self.hashes: dict[tuple[int, int], bytes] = {}
        self.tree_size = 0

    def read_hashes(self, ids):
        return [self.hashes[node] for node in ids]

    def append(self, count: int) -> None:
        for _ in range(count):
            leaf = merkle.leaf_hash(
                b"bench entry %d %s" % (self.tree_size, self.origin.encode())
            )
            for level, index, value in merkle.stored_hashes_for_leaf(
                self.tree_size, leaf, self
            ):
                self.hashes[(level, index)] = value
            self.tree_size += 1

    def note(self) -> bytes:
        root = merkle.root_hash(self.tree_size, self)
        return sign_checkpoint(
            Checkpoint(self.origin, self.tree_size, root), [self.signer]
        )

    def proof(self, size1: int, size2: int) -> list[bytes]:
        return merkle.consistency_proof(size1, size2, self)


def start_witness(folder: Path, vkeys: list[str]) -> tuple[subprocess.Popen, str, str]:
    arguments = ["witness", "serve", "--data", str(folder), "--listen", "127.0.0.1:0"]
    for vkey in vkeys:
        arguments += ["--log", vkey]
    env = dict(os.environ, LEDGER_PASSPHRASE=PASSPHRASE)
    folder.mkdir(parents=True)
    with open(folder / "node.log", "ab") as log:
        process = subprocess.Popen(LEDGER + arguments, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while not (folder / "node.url").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"witness in {folder} did not start")
        time.sleep(0.05)
    url = (folder / "node.url").read_text().strip()
    vkey = (folder / "witness.vkey").read_text().strip()
    return process, url, vkey


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def quorum_latency(log: MemoryLog, endpoints, quorum: int) -> list[float]:
    witnessing = Witnessing(endpoints, quorum, log.proof, timeout=5)
    latencies = []
    try:
        for _ in range(CHECKPOINTS):
            log.append(7)
            note = log.note()
            started = time.perf_counter()
            await witnessing.cosign(note)
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        await witnessing.close()
    return latencies


def in_process_latency(folder: Path, log: MemoryLog) -> list[float]:
    from witnesses.nodes import open_witness

    os.environ["LEDGER_PASSPHRASE"] = PASSPHRASE
    witnesses = [
        open_witness(folder / f"local-{i}", [log.signer.vkey], None) for i in range(3)
    ]
    sizes = [0, 0, 0]
    latencies = []
    for _ in range(CHECKPOINTS):
        log.append(7)
        note = log.note()
        started = time.perf_counter()
        for position, witness in enumerate(witnesses):
            old = sizes[position]
            proof = log.proof(old, log.tree_size) if 0 < old < log.tree_size else []
            witness.add_checkpoint(format_add_checkpoint(old, proof, note))
            sizes[position] = log.tree_size
        latencies.append((time.perf_counter() - started) * 1000)
    for witness in witnesses:
        witness.state.close()
    return latencies


async def throughput_over_http(url: str, logs: list[MemoryLog]) -> float:
    import aiohttp

    count = 0
    deadline = time.perf_counter() + THROUGHPUT_SECONDS

    async def drive(session: aiohttp.ClientSession, log: MemoryLog) -> None:
        nonlocal count
        old = 0
        while time.perf_counter() < deadline:
            log.append(3)
            proof = log.proof(old, log.tree_size) if old else []
            body = format_add_checkpoint(old, proof, log.note())
            async with session.post(url + "/add-checkpoint", data=body) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"witness returned {response.status}")
            old = log.tree_size
            count += 1

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(drive(session, log) for log in logs))
    return count / (time.perf_counter() - started)


def throughput_in_process(folder: Path, logs: list[MemoryLog]) -> float:
    from witnesses.nodes import open_witness

    witness = open_witness(folder, [log.signer.vkey for log in logs], None)
    sizes = {log.origin: 0 for log in logs}
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < THROUGHPUT_SECONDS:
        for log in logs:
            log.append(3)
            old = sizes[log.origin]
            proof = log.proof(old, log.tree_size) if old else []
            witness.add_checkpoint(format_add_checkpoint(old, proof, log.note()))
            sizes[log.origin] = log.tree_size
            count += 1
    elapsed = time.perf_counter() - started
    witness.state.close()
    return count / elapsed


def run(report) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-witness-") as temporary:
        folder = Path(temporary)
        log = MemoryLog("bench.localhost/quorum")
        throughput_logs = [MemoryLog(f"bench.localhost/log-{i}") for i in range(LOGS)]
        processes = []
        try:
            endpoints = []
            for i in range(3):
                process, url, vkey = start_witness(
                    folder / f"witness-{i}", [log.signer.vkey]
                )
                processes.append(process)
                endpoints.append(WitnessEndpoint(url, vkey))

            local = in_process_latency(folder, MemoryLog("bench.localhost/local"))
            for quorum in (3, 2):
                latencies = asyncio.run(quorum_latency(log, endpoints, quorum))
                report.add(
                    f"witness: signed checkpoint to {quorum}-of-3 quorum, median",
                    statistics.median(latencies),
                    "ms",
                    peer="3 witnesses in-process, sequential, no HTTP",
                    peer_value=statistics.median(local),
                )
                report.add(
                    f"witness: signed checkpoint to {quorum}-of-3 quorum, p99",
                    percentile(latencies, 0.99),
                    "ms",
                    peer="3 witnesses in-process, sequential, no HTTP",
                    peer_value=percentile(local, 0.99),
                )

            process, url, _ = start_witness(
                folder / "throughput", [item.signer.vkey for item in throughput_logs]
            )
            processes.append(process)
            rate = asyncio.run(throughput_over_http(url, throughput_logs))
            peer_logs = [MemoryLog(f"bench.localhost/peer-{i}") for i in range(LOGS)]
            peer_rate = throughput_in_process(folder / "peer", peer_logs)
            report.add(
                f"witness: cosignatures per second, one process, {LOGS} logs",
                rate,
                "cosignatures/s",
                peer="same checks in-process, no HTTP",
                peer_value=peer_rate,
            )
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(10)
