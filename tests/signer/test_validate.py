"""Validation reports from pyHanko and pdfsig, on intact and altered documents."""

from __future__ import annotations

import asyncio
import datetime

import pytest
from cryptography import x509

from signer.errors import PasswordError, SignatureInvalidError
from signer.pades import SignatureResult, countersign_pdf, sign_pdf
from signer.validate import (
    parse_pdfsig,
    require_valid,
    run_pdfsig,
    validate_pdf,
)
from signer.workflow import _signature_time_stamp_token

from .conftest import SigningPki, build_pki, change_one_signed_byte

# Output of poppler 22.12 `pdfsig -no-ocsp` for a document with an Acrobat
# signature followed by one of ours.
PDFSIG_SAMPLE = """Digital Signature Info of: /tmp/document.pdf
Signature #1:
  - Signature Field Name: Sig1
  - Signer Certificate Common Name: Lord Testerino
  - Signer full Distinguished Name: CN=Lord Testerino,C=BE
  - Signing Time: Jan 04 2021 19:11:51
  - Signing Hash Algorithm: SHA-256
  - Signature Type: adbe.pkcs7.detached
  - Signed Ranges: [0 - 29541], [48279 - 50827]
  - Not total document signed
  - Signature Validation: Signature is Valid.
  - Certificate Validation: Certificate issuer is unknown.
Signature #2:
  - Signature Field Name: Signature3
  - Signer Certificate Common Name: Alice Example
  - Signer full Distinguished Name: CN=Alice Example
  - Signing Time: Dec 04 2026 16:23:50
  - Signing Hash Algorithm: SHA-256
  - Signature Type: ETSI.CAdES.detached
  - Signed Ranges: [0 - 52781], [59821 - 60329]
  - Total document signed
  - Signature Validation: Digest Mismatch.
  - Certificate Validation: Certificate issuer isn't Trusted.
"""


def test_parse_pdfsig_sample():
    first, second = parse_pdfsig(PDFSIG_SAMPLE)

    assert first.field_name == "Sig1"
    assert first.signer_common_name == "Lord Testerino"
    assert first.signature_type == "adbe.pkcs7.detached"
    assert first.ranges == ((0, 29541), (48279, 50827))
    assert not first.total_document_signed
    assert first.valid
    assert first.certificate_validation == "Certificate issuer is unknown."
    assert second.field_name == "Signature3"
    assert second.total_document_signed
    assert not second.valid
    assert second.signature_validation == "Digest Mismatch."


def test_parse_pdfsig_unsigned_document():
    assert parse_pdfsig("File '/tmp/a.pdf' does not contain any signatures\n") == []


@pytest.fixture(scope="module")
def countersigned(pki: SigningPki, timestamper, contract_pdf) -> bytes:
    """A contract signed by Alice and countersigned by Bob, made once per module."""

    async def sign_twice() -> bytes:
        first = await sign_pdf(contract_pdf, pki.signer("alice"), timestamper)
        second = await countersign_pdf(first.data, pki.signer("bob"), timestamper)
        return second.data

    return asyncio.run(sign_twice())


async def test_reports_signers_and_times(pki: SigningPki, countersigned: bytes):
    before = datetime.datetime.now(datetime.UTC)

    reports = await pki.validate(countersigned)

    assert [r.kind for r in reports] == ["signature", "signature"]
    assert "Alice Example" in reports[0].signer_subject
    assert "Bob Example" in reports[1].signer_subject
    for report in reports:
        assert report.signing_time is not None
        assert report.time_stamp_time is not None
        assert abs(report.time_stamp_time - before) < datetime.timedelta(minutes=10)
        assert report.docmdp_ok
    require_valid(reports, ["Signature1", "Signature2"])


def test_pdfsig_reports_both_valid(countersigned: bytes):
    signatures = run_pdfsig(countersigned)

    assert [s.field_name for s in signatures] == ["Signature1", "Signature2"]
    assert [s.signer_common_name for s in signatures] == [
        "Alice Example",
        "Bob Example",
    ]
    assert all(s.valid for s in signatures)
    assert [s.total_document_signed for s in signatures] == [False, True]
    assert signatures[1].ranges[1][1] == len(countersigned)


async def test_changed_byte_reported(pki: SigningPki, countersigned: bytes):
    tampered = change_one_signed_byte(countersigned)

    reports = await pki.validate(tampered)
    signatures = run_pdfsig(tampered)

    assert [r.intact for r in reports] == [False, False]
    assert [s.signature_validation for s in signatures] == ["Digest Mismatch."] * 2
    with pytest.raises(SignatureInvalidError, match="Signature1"):
        require_valid(reports, ["Signature1", "Signature2"])


async def test_appended_bytes_reported(pki: SigningPki, countersigned: bytes):
    # An incremental update after the last signature: here, a bare comment.
    extended = countersigned + b"% appended after signing\n"

    reports = await pki.validate(extended)
    signatures = run_pdfsig(extended)

    assert all(r.intact and r.valid for r in reports)
    assert reports[-1].coverage != "ENTIRE_FILE"
    assert not signatures[-1].total_document_signed
    with pytest.raises(SignatureInvalidError, match="modified after its last"):
        require_valid(reports, ["Signature1", "Signature2"])


def test_other_trust_root_not_trusted(pki: SigningPki, countersigned: bytes):
    stranger = build_pki()

    reports = validate_pdf(
        countersigned, stranger.trust_roots, other_certs=pki.chain, crls=stranger.crls
    )

    assert all(r.intact and r.valid for r in reports)
    assert not any(r.trusted for r in reports)
    with pytest.raises(SignatureInvalidError, match="not valid"):
        require_valid(reports, ["Signature1"])


def test_missing_field_reported(pki: SigningPki, countersigned: bytes):
    reports = validate_pdf(
        countersigned, pki.trust_roots, other_certs=pki.chain, crls=pki.crls
    )

    with pytest.raises(SignatureInvalidError, match="'Carol' not found"):
        require_valid(reports, ["Carol"])


def test_crl_objects_and_der_accepted(pki: SigningPki, countersigned: bytes):
    from cryptography.hazmat.primitives import serialization

    ders = [crl.public_bytes(serialization.Encoding.DER) for crl in pki.crls]
    assert all(isinstance(crl, x509.CertificateRevocationList) for crl in pki.crls)

    reports = validate_pdf(
        countersigned, pki.trust_roots, other_certs=pki.chain, crls=ders
    )

    assert all(r.trusted for r in reports)


def test_validate_wrong_password_rejected(pki: SigningPki, corpus_dir):
    encrypted = (
        corpus_dir / "10-encrypted-rc4-128-user-pw-openpassword.pdf"
    ).read_bytes()

    with pytest.raises(PasswordError, match="password does not open it"):
        validate_pdf(encrypted, pki.trust_roots, password="wrong")


@pytest.fixture(scope="module")
def signed_encrypted(pki: SigningPki, timestamper, corpus_dir) -> SignatureResult:
    """The RC4-encrypted corpus file, signed by Alice with its user password."""
    encrypted = (
        corpus_dir / "10-encrypted-rc4-128-user-pw-openpassword.pdf"
    ).read_bytes()
    return asyncio.run(
        sign_pdf(encrypted, pki.signer("alice"), timestamper, password="openpassword")
    )


def test_time_stamp_token_read_with_password(signed_encrypted: SignatureResult):
    token = _signature_time_stamp_token(signed_encrypted.data, "openpassword")

    assert token == signed_encrypted.time_stamp_token


@pytest.mark.parametrize("password", ["wrong", None])
def test_time_stamp_token_wrong_password_rejected(
    signed_encrypted: SignatureResult, password: str | None
):
    # pyHanko reports the wrong password in the decrypt status; the reader
    # must turn it into the signer's password error.
    with pytest.raises(PasswordError, match="password does not open it"):
        _signature_time_stamp_token(signed_encrypted.data, password)
