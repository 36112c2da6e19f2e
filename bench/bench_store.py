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

The whole `ContractService.store` step is measured too, on STORE_STEPS
countersigned one-page fpdf2 contracts: B-LTA upgrade, sealing, three folder
replicas and the `store` entry appended through a real Sequencer over LMDB.
Its peer is the B-LTA upgrade of the same document followed by one plain
folder write.
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
STORE_STEPS = 15
PASSPHRASE = b"benchmark passphrase"
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


def _contract_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 5, "The parties agree to the terms set out below. " * 30)
    return bytes(pdf.output())


def _person(number: int):
    from identity.details import PersonDetails
    from identity.proofing import icao_check_digit

    body = f"B{number:08d}"
    return PersonDetails(
        f"Bench Person {number}",
        body + str(icao_check_digit(body)),
        f"person{number}@example.org",
        f"+4930{number:07d}",
    )


async def _measure_store_step(report, root: Path) -> None:
    import pyotp

    from identity.ca import CaSettings, CertificateAuthority, utc_now
    from identity.proofing import DocumentCodeVerifier
    from identity.service import IdentityService
    from identity.store import IdentityStore
    from ledger.sequencer import Sequencer
    from ledger.store import LogConfig, LogStore
    from ledger.tsa.authority import TimeStampAuthority
    from ledger.tsa.keys import create_credentials
    from ledger.tsa.serial import SerialNumbers
    from signer.contracts import ContractIndex
    from signer.notify import OutboxNotifier
    from signer.pades import AuthorityTimeStamper, upgrade_to_lta
    from signer.validate import validation_context
    from signer.workflow import ContractService

    codes: dict[str, str] = {}

    async def send_code(channel: str, address: str, code: str) -> None:
        codes[address] = code

    credentials = create_credentials(root / "tsa", PASSPHRASE)
    timestamper = AuthorityTimeStamper(
        TimeStampAuthority(credentials, SerialNumbers(root / "tsa"))
    )
    ca = CertificateAuthority.create(
        root / "ca", PASSPHRASE, CaSettings("http://127.0.0.1:9")
    )
    log_store = LogStore(root / "log.lmdb", create=True)
    log_store.write_config(LogConfig("bench.example/store"))
    identity_store = IdentityStore(root / "identity.lmdb", PASSPHRASE)
    index = ContractIndex(root / "contracts.lmdb")

    def lta_context():
        return validation_context(
            [ca.root_certificate, *credentials.chain],
            other_certs=[ca.issuing_certificate, credentials.certificate],
            crls=[ca.issuing_crl(), ca.root_crl()],
        )

    document = _contract_pdf()
    plain = FolderBlobStore(root / "plain-store")
    step_samples: list[float] = []
    peer_samples: list[float] = []
    try:
        async with Sequencer(log_store) as sequencer:
            identity = IdentityService(
                identity_store, ca, sequencer, DocumentCodeVerifier(send_code, utc_now)
            )
            service = ContractService(
                appender=sequencer,
                identity=identity,
                index=index,
                drafts=FolderBlobStore(root / "drafts"),
                documents=ReplicatedDocumentStore(
                    [FolderBlobStore(root / f"step-replica-{n}") for n in range(3)],
                    [MasterKey.generate()],
                ),
                notifier=OutboxNotifier(root / "outbox"),
                timestamper=timestamper,
                validation_context=lta_context,
                sender="bench@ledger.example",
            )
            for number in range(STORE_STEPS):
                # Fresh parties per contract, because a TOTP code is accepted once.
                parties = []
                authenticators = []
                for person in (_person(2 * number), _person(2 * number + 1)):
                    challenge = await identity.begin_person_enrolment(person)
                    party = await identity.complete_enrolment(
                        challenge, codes[person.email]
                    )
                    uri = identity.provision_totp(party.party_id).uri
                    parties.append(party.party_id)
                    authenticators.append(pyotp.parse_uri(uri))
                record = await service.upload(document, parties)
                contract_id = record["contract"]
                await service.sign(contract_id, parties[0], authenticators[0].now())
                await service.send(contract_id)
                await service.countersign(
                    contract_id, parties[1], authenticators[1].now()
                )
                countersigned = await service.download(contract_id)

                start = time.perf_counter()
                await service.store(contract_id)
                step_samples.append((time.perf_counter() - start) * 1000)

                start = time.perf_counter()
                lta = await upgrade_to_lta(countersigned, lta_context(), timestamper)
                await plain.put(document_key(contract_id), lta.data)
                peer_samples.append((time.perf_counter() - start) * 1000)
    finally:
        index.close()
        identity_store.close()
        ca.close()
        log_store.close()
    _add(
        report,
        "store step (B-LTA, seal, 3 folder replicas, log entry)",
        step_samples,
        "B-LTA + 1 plain write",
        peer_samples,
    )


def run(report) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        root = Path(folder)
        stores = [FolderBlobStore(root / f"replica-{n}") for n in range(3)]
        asyncio.run(
            _measure(report, "folders", stores, FolderBlobStore(root / "plain"))
        )
        asyncio.run(_measure_store_step(report, root))

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
