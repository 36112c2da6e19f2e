"""PAdES B-T signing speed: `InMemorySigner` against pyHanko's `SimpleSigner`.

Both paths sign the same fpdf2 contracts (1 and 100 pages) with an ECDSA
P-256 key, the same metadata and the same in-process `ledger.tsa` authority,
alternating run by run so that machine load affects both alike. The plain
path is what a pyHanko user writes: `SimpleSigner.load` from an encrypted
PKCS#8 PEM file once, then `PdfSigner.async_sign_pdf` per document, which
re-parses the key and signs a dummy CMS to size /Contents on every call.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import statistics
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fpdf import FPDF
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter

from bench.report import Report
from ledger.tsa.authority import TimeStampAuthority
from ledger.tsa.keys import TsaCredentials
from ledger.tsa.serial import SerialNumbers
from signer.keys import InMemorySigner
from signer.pades import DIGEST_ALGORITHM, AuthorityTimeStamper, sign_pdf

RUNS = {1: 60, 100: 20}
WARM_UP_RUNS = 3
# Only protects the benchmark's own key file, which is deleted afterwards.
BENCH_PASSPHRASE = b"benchmark key file passphrase"


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    time_stamping: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if time_stamping:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _contract(pages: int) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.cell(0, 10, f"Service agreement, page {number} of {pages}")
        pdf.ln(12)
        pdf.multi_cell(0, 5, "The parties agree to the terms set out below. " * 30)
    return bytes(pdf.output())


async def _measure(report: Report, folder: Path) -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _certificate("Bench Root", root_key, None, root_key, ca=True)
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer_cert = _certificate("Bench Signer", signer_key, root, root_key)
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa_cert = _certificate("Bench TSA", tsa_key, root, root_key, time_stamping=True)

    authority = TimeStampAuthority(
        TsaCredentials(tsa_key, tsa_cert, [root]), SerialNumbers(folder)
    )
    timestamper = AuthorityTimeStamper(authority)

    key_file = folder / "signer.key"
    key_file.write_bytes(
        signer_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(BENCH_PASSPHRASE),
        )
    )
    cert_file = folder / "signer.pem"
    cert_file.write_bytes(signer_cert.public_bytes(serialization.Encoding.PEM))
    chain_file = folder / "chain.pem"
    chain_file.write_bytes(root.public_bytes(serialization.Encoding.PEM))

    plain = signers.SimpleSigner.load(
        str(key_file),
        str(cert_file),
        [str(chain_file)],
        key_passphrase=BENCH_PASSPHRASE,
    )
    fast = InMemorySigner(signer_key, signer_cert, [root])
    metadata = signers.PdfSignatureMetadata(
        field_name="Signature1",
        md_algorithm=DIGEST_ALGORITHM,
        subfilter=SigSeedSubFilter.PADES,
    )

    async def sign_fast(document: bytes) -> None:
        await sign_pdf(document, fast, timestamper, field_name="Signature1")

    async def sign_plain(document: bytes) -> None:
        writer = IncrementalPdfFileWriter(io.BytesIO(document))
        pdf_signer = signers.PdfSigner(metadata, plain, timestamper=timestamper)
        await pdf_signer.async_sign_pdf(writer, output=io.BytesIO())

    for pages, runs in RUNS.items():
        document = _contract(pages)
        for _ in range(WARM_UP_RUNS):
            await sign_fast(document)
            await sign_plain(document)
        fast_times: list[float] = []
        plain_times: list[float] = []
        fast_cpu: list[float] = []
        plain_cpu: list[float] = []
        for _ in range(runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            await sign_fast(document)
            fast_times.append(time.perf_counter() - start)
            fast_cpu.append(time.process_time() - start_cpu)
            start, start_cpu = time.perf_counter(), time.process_time()
            await sign_plain(document)
            plain_times.append(time.perf_counter() - start)
            plain_cpu.append(time.process_time() - start_cpu)

        fast_median = statistics.median(fast_times)
        plain_median = statistics.median(plain_times)
        label = f"PAdES B-T sign, {pages}-page contract ({len(document):,} B)"
        report.add(
            f"{label}: InMemorySigner",
            1.0 / fast_median,
            "signatures/s",
            peer="pyHanko SimpleSigner from files",
            peer_value=1.0 / plain_median,
        )
        report.add(
            f"{label}: median step",
            fast_median * 1000,
            "ms",
            peer="pyHanko SimpleSigner from files",
            peer_value=plain_median * 1000,
        )
        # CPU time of this process alone, which other load on the machine
        # does not inflate the way it inflates wall-clock time.
        report.add(
            f"{label}: median CPU time per step",
            statistics.median(fast_cpu) * 1000,
            "ms",
            peer="pyHanko SimpleSigner from files",
            peer_value=statistics.median(plain_cpu) * 1000,
        )


def run(report: Report) -> None:
    """Measure both signing paths and add their figures to `report`."""
    with tempfile.TemporaryDirectory(prefix="bench-sign-") as folder:
        asyncio.run(_measure(report, Path(folder)))
