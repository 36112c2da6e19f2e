"""Identity: TOTP checks beside pyotp, certificate issuance, OCSP, unlocks.

TOTP: our `match_time_step` with a window of one step either side against
pyotp 2.12's `TOTP.verify(valid_window=1)`, both given a code from the
current step. Unlocks run end to end through `IdentityService` over a real
LMDB log and sequencer (each one a TOTP check, a consent entry committed
with fsync and a key decryption), beside bare sequencer appends of entries
of the same size, one at a time, on the same disk. An unlock commits three
LMDB transactions with fsync (the TOTP state before the entry, the entry,
the chain head after it), so it runs at about a third of the append rate.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyotp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from identity import certificates, totp
from identity.ca import CaSettings, CertificateAuthority, utc_now
from identity.details import PersonDetails
from identity.keys import generate_key
from identity.proofing import DocumentCodeVerifier
from identity.service import IdentityService
from identity.store import IdentityStore
from ledger.sequencer import Sequencer
from ledger.store import LogConfig, LogStore

PASSPHRASE = b"benchmark passphrase"
UNLOCKS = 300


def _rate(call: Callable[[int], object], count: int) -> float:
    start = time.perf_counter()
    for number in range(count):
        call(number)
    return count / (time.perf_counter() - start)


def _bench_totp(report) -> None:
    secret = totp.generate_secret()
    reference = pyotp.TOTP(base64.b32encode(secret).decode())
    now = time.time()
    code = totp.totp(secret, now)

    ours = _rate(lambda _: totp.match_time_step(secret, code, now, window=1), 20000)
    theirs = _rate(
        lambda _: reference.verify(code, for_time=now, valid_window=1), 20000
    )
    report.add(
        "identity TOTP check, window 1",
        ours,
        "checks/s",
        peer="pyotp 2.12 verify(valid_window=1)",
        peer_value=theirs,
    )


def _bench_ca(report, folder: Path) -> CertificateAuthority:
    ca = CertificateAuthority.create(
        folder / "ca", PASSPHRASE, CaSettings("http://127.0.0.1")
    )
    key = generate_key()
    subject = certificates.person_subject("Benchmark Signer", "ab" * 16)
    issued = []
    rate = _rate(
        lambda _: issued.append(ca.issue(subject, key.public_key(), timedelta(days=1))),
        300,
    )
    report.add("identity certificates issued (ECDSA P-256, LMDB sync)", rate, "certs/s")

    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(issued[0], ca.issuing_certificate, hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    report.add(
        "identity OCSP responses",
        _rate(lambda _: ca.ocsp_response(request), 1000),
        "responses/s",
    )
    for number in range(0, 300, 3):
        ca.revoke(issued[number].serial_number)
    report.add(
        "identity issuing CRL with 100 revocations",
        _rate(lambda _: ca.issuing_crl(), 200),
        "CRLs/s",
    )
    return ca


class _Clock:
    """A clock the benchmark moves forward by one TOTP step per unlock."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self):
        return self.now


async def _bench_unlocks(report, folder: Path, ca: CertificateAuthority) -> None:
    clock = _Clock()
    codes: dict[str, str] = {}

    async def send_code(channel: str, address: str, code: str) -> None:
        codes[address] = code

    log_store = LogStore(folder / "log", create=True)
    log_store.write_config(LogConfig("bench.example/identity"))
    store = IdentityStore(folder / "identity", PASSPHRASE)
    async with Sequencer(log_store) as sequencer:
        service = IdentityService(
            store, ca, sequencer, DocumentCodeVerifier(send_code, clock), clock=clock
        )
        details = PersonDetails(
            "Benchmark Signer", "L898902C36", "b@example.org", "+4915112345678"
        )
        challenge = await service.begin_person_enrolment(details)
        party = await service.complete_enrolment(challenge, codes["b@example.org"])
        authenticator = pyotp.parse_uri(service.provision_totp(party.party_id).uri)
        digest = hashlib.sha256(b"document").digest()

        start = time.perf_counter()
        for _ in range(UNLOCKS):
            # Each unlock needs a code from a later time step than the last.
            clock.now += timedelta(seconds=30)
            code = authenticator.at(clock.now.timestamp())
            await service.unlock_signing_key(party.party_id, code, digest)
        unlocks = UNLOCKS / (time.perf_counter() - start)

        entry_size = len(log_store.read_entry(1))
        start = time.perf_counter()
        for number in range(UNLOCKS):
            await sequencer.append(b"%0*d" % (entry_size, number))
        appends = UNLOCKS / (time.perf_counter() - start)
    report.add(
        "identity unlock_signing_key, one caller",
        unlocks,
        "unlocks/s",
        peer="sequencer append of same-size entry, one caller",
        peer_value=appends,
    )
    store.close()
    log_store.close()


def run(report) -> None:
    _bench_totp(report)
    with tempfile.TemporaryDirectory(prefix="bench-identity-") as name:
        folder = Path(name)
        ca = _bench_ca(report, folder)
        asyncio.run(_bench_unlocks(report, folder, ca))
        ca.close()
