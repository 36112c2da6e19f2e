"""A custody key unlocked by TOTP signs a PDF that pyHanko and pdfsig accept."""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import UTC, datetime

import pyotp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from ledger.entry import decode_entry

from .test_enrolment import ERIKA, enrol


async def test_unlocked_key_signs_pdf(
    service, outbox, ca, clock, log, corpus_dir, tmp_path
):
    # Real time, because pdfsig checks the certificate against its own clock.
    clock.now = datetime.now(UTC).replace(microsecond=0)
    party = await enrol(service, outbox, ERIKA)
    authenticator = pyotp.parse_uri(service.provision_totp(party.party_id).uri)
    document = (corpus_dir / "01-plain-multipage-us-constitution.pdf").read_bytes()
    digest = hashlib.sha256(document).digest()

    unlocked = await service.unlock_signing_key(
        party.party_id, authenticator.at(clock().timestamp()), digest
    )
    assert decode_entry(log.entries[unlocked.consent.leaf_index])["document"] == digest

    key_der = unlocked.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(unlocked.certificate_der),
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs(
            [asn1_x509.Certificate.load(der) for der in unlocked.chain_der]
        ),
    )
    output = io.BytesIO()
    await signers.async_sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(document)),
        signers.PdfSignatureMetadata(field_name="Signature1"),
        signer=signer,
        output=output,
    )
    signed = tmp_path / "signed.pdf"
    signed.write_bytes(output.getvalue())

    # pyHanko: integrity, and trust from our root with our CRLs, no network.
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(unlocked.chain_der[-1])],
        crls=[ca.root_crl(), ca.issuing_crl()],
        allow_fetching=False,
        revocation_mode="hard-fail",
    )
    reader = PdfFileReader(io.BytesIO(output.getvalue()))
    status = await async_validate_pdf_signature(reader.embedded_signatures[0], context)
    assert status.intact
    assert status.valid
    assert status.trusted

    # pdfsig: the signature verifies; it does not know our root.
    process = await asyncio.create_subprocess_exec(
        "pdfsig",
        str(signed),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    output_text = stdout.decode()
    assert "Signature is Valid." in output_text, output_text
    assert "Signer Certificate Common Name: Erika Mustermann" in output_text
    assert "Total document signed" in output_text
