"""Storing a contract: sealed and written to three replicas, beside one plain write.

Measures `ReplicatedDocumentStore.put` (AES-256-GCM envelope, then the same
ciphertext written to three locations at once) and `get` (three reads, hash
checks, decryption), for documents of 64 KiB (about a signed B-LTA contract
of a few pages) and 1 MiB. The peer is the same document written (or read)
unencrypted once to one location through the same backend. Backends:

- folders on the local disk, each write fsynced (FolderBlobStore);
- SeaweedFS through its S3 gateway, one bucket per data center, started on
  loopback by the same launcher the tests use, when the `weed` binary is
  present.

Each figure is the median or the 99th percentile over ROUNDS calls, in
milliseconds, measured in one process after WARMUP calls.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from signer.envelope import MasterKey
from signer.replicated import ReplicatedDocumentStore, document_key
from signer.storage import BlobStore, FolderBlobStore, S3BlobStore

SIZES = {"64KiB": 64 * 1024, "1MiB": 1024 * 1024}
ROUNDS = {"folders": 200, "seaweedfs-s3": 100}
WARMUP = 5
_SEAWEED_TEST = (
    Path(__file__).resolve().parent.parent / "tests/signer/test_seaweedfs.py"
)


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _time(call: Callable[[int], Awaitable[object]], rounds: int) -> list[float]:
    for number in range(WARMUP):
        await call(-1 - number)
    samples = []
    for number in range(rounds):
        start = time.perf_counter()
        await call(number)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _add(
    report, name: str, samples: list[float], peer: str, peer_samples: list[float]
) -> None:
    report.add(
        f"{name} median",
        statistics.median(samples),
        "ms",
        peer=f"{peer} median",
        peer_value=round(statistics.median(peer_samples), 3),
    )
    report.add(
        f"{name} p99",
        _percentile(samples, 0.99),
        "ms",
        peer=f"{peer} p99",
        peer_value=round(_percentile(peer_samples, 0.99), 3),
    )


async def _measure_size(
    report,
    backend: str,
    replicated: ReplicatedDocumentStore,
    plain: BlobStore,
    label: str,
    document: bytes,
) -> None:
    rounds = ROUNDS[backend]
    hashes: dict[int, bytes] = {}

    async def put(number: int) -> None:
        stored = await replicated.put(f"bench-{label}-{number}", document)
        hashes[number] = stored.ciphertext_hash

    async def put_plain(number: int) -> None:
        await plain.put(document_key(f"plain-{label}-{number}"), document)

    async def get(number: int) -> None:
        index = max(number, 0) % rounds
        await replicated.get(f"bench-{label}-{index}", hashes[index])

    async def get_plain(number: int) -> None:
        index = max(number, 0) % rounds
        await plain.get(document_key(f"plain-{label}-{index}"))

    put_samples = await _time(put, rounds)
    plain_put_samples = await _time(put_plain, rounds)
    _add(
        report,
        f"store {label}, 3 sealed replicas, {backend}",
        put_samples,
        "1 plain write",
        plain_put_samples,
    )
    get_samples = await _time(get, rounds)
    plain_get_samples = await _time(get_plain, rounds)
    _add(
        report,
        f"read {label}, 3 replicas checked, {backend}",
        get_samples,
        "1 plain read",
        plain_get_samples,
    )


async def _measure(
    report, backend: str, stores: list[BlobStore], plain: BlobStore
) -> None:
    replicated = ReplicatedDocumentStore(stores, [MasterKey.generate()])
    for label, size in SIZES.items():
        document = os.urandom(size)
        await _measure_size(report, backend, replicated, plain, label, document)


def _load_seaweed_launcher():
    spec = importlib.util.spec_from_file_location("seaweed_launcher", _SEAWEED_TEST)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the class is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run(report) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        root = Path(folder)
        stores = [FolderBlobStore(root / f"replica-{n}") for n in range(3)]
        asyncio.run(
            _measure(report, "folders", stores, FolderBlobStore(root / "plain"))
        )

        launcher = _load_seaweed_launcher()
        if not launcher.WEED.exists():
            print(f"SeaweedFS skipped: no weed binary at {launcher.WEED}", flush=True)
            return
        cluster = launcher.SeaweedCluster(root / "seaweedfs")
        cluster.folder.mkdir()
        try:
            cluster.launch()
            client = cluster.client()
            cluster.wait_ready(client)
            cluster.prepare_buckets(client)
            buckets = list(launcher.BUCKETS)
            s3_stores = [
                S3BlobStore(client, bucket, prefix="bench") for bucket in buckets
            ]
            plain = S3BlobStore(client, buckets[0], prefix="bench-plain")
            asyncio.run(_measure(report, "seaweedfs-s3", s3_stores, plain))
        finally:
            cluster.stop_all()
