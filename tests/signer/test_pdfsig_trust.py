"""poppler's pdfsig with an NSS database that trusts the test root.

A corpus file that already carries a foreign Acrobat signature is signed by
Alice and countersigned by Bob. The database trusts the test root and contains
the issuing CA and both CRLs. With it, pdfsig must find the two new
signatures valid and their certificates trusted, and the foreign one still
valid but not trusted. With another root, or none, it must trust none.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from signer.nss import NssDatabaseError, create_nss_database, nss_database
from signer.pades import countersign_pdf, sign_pdf
from signer.prepare import prepare_pdf
from signer.validate import run_pdfsig

from .conftest import SigningPki, build_pki, change_one_signed_byte

CORPUS_FILE = "03-signed-once-acrobat-reader.pdf"
TRUSTED = "Certificate is Trusted."


@pytest.fixture(scope="module")
def countersigned_corpus_file(pki: SigningPki, timestamper, corpus_dir: Path) -> bytes:
    """The corpus file with a signature by Alice and one by Bob, made once."""
    prepared = prepare_pdf((corpus_dir / CORPUS_FILE).read_bytes())

    async def sign_twice() -> bytes:
        first = await sign_pdf(
            prepared.data, pki.signer("alice"), timestamper, box=(50, 50, 250, 100)
        )
        second = await countersign_pdf(first.data, pki.signer("bob"), timestamper)
        return second.data

    return asyncio.run(sign_twice())


@pytest.fixture(scope="module")
def trusting_database(pki: SigningPki):
    """An NSS database that trusts the test root, with the issuing CA and CRLs."""
    with nss_database(
        pki.trust_roots, intermediates=pki.chain[:1], crls=pki.crls
    ) as path:
        yield path


def test_trusted_root_makes_new_signatures_trusted(
    countersigned_corpus_file: bytes, trusting_database: str
):
    foreign, alice, bob = run_pdfsig(
        countersigned_corpus_file, nss_dir=trusting_database
    )

    assert [alice.signer_common_name, bob.signer_common_name] == [
        "Alice Example",
        "Bob Example",
    ]
    assert alice.valid and bob.valid
    assert alice.certificate_validation == TRUSTED
    assert bob.total_document_signed
    assert bob.ranges[1][1] == len(countersigned_corpus_file)
    # The Acrobat signature made before upload stays intact, and its issuer
    # is not in the database.
    assert foreign.valid
    assert not foreign.trusted
    # pdfsig 22.12 reads NSS's last error code after each path check without
    # looking at the check's result, so every certificate after the first
    # one that verified is reported as "Unknown issue"; Bob's certificate is
    # checked as a first signature in test_countersigner_certificate_trusted.


async def test_countersigner_certificate_trusted(
    pki: SigningPki, timestamper, contract_pdf: bytes, trusting_database: str
):
    signed = await sign_pdf(contract_pdf, pki.signer("bob"), timestamper)

    [signature] = run_pdfsig(signed.data, nss_dir=trusting_database)

    assert signature.signer_common_name == "Bob Example"
    assert signature.valid
    assert signature.certificate_validation == TRUSTED


def test_without_the_root_nothing_is_trusted(
    pki: SigningPki, countersigned_corpus_file: bytes
):
    stranger = build_pki()
    with nss_database(
        stranger.trust_roots, intermediates=stranger.chain[:1], crls=stranger.crls
    ) as other_root:
        with_other_root = run_pdfsig(countersigned_corpus_file, nss_dir=other_root)
    with_empty_database = run_pdfsig(countersigned_corpus_file)

    for signatures in (with_other_root, with_empty_database):
        assert all(s.valid for s in signatures)
        assert not any(s.trusted for s in signatures)
        assert [s.certificate_validation for s in signatures[1:]] == [
            "Certificate issuer isn't Trusted."
        ] * 2


def test_root_trusted_for_tls_only_is_not_enough(
    pki: SigningPki, countersigned_corpus_file: bytes, tmp_path: Path
):
    # pdfsig verifies signer certificates for the e-mail signer usage, so the
    # root's trust for TLS alone does not make the signatures trusted.
    database = create_nss_database(
        tmp_path,
        pki.trust_roots,
        intermediates=pki.chain[:1],
        crls=pki.crls,
        trust_flags="C,,",
    )

    signatures = run_pdfsig(countersigned_corpus_file, nss_dir=database)

    assert all(s.valid for s in signatures)
    assert not any(s.trusted for s in signatures)


async def test_revoked_signer_reported_revoked(
    pki: SigningPki, timestamper, contract_pdf: bytes, trusting_database: str
):
    signed = await sign_pdf(contract_pdf, pki.signer("revoked"), timestamper)

    [signature] = run_pdfsig(signed.data, nss_dir=trusting_database)

    assert signature.valid
    assert signature.certificate_validation == "Certificate has been Revoked."


def test_changed_byte_reported_with_trust(
    countersigned_corpus_file: bytes, trusting_database: str
):
    tampered = change_one_signed_byte(countersigned_corpus_file)

    signatures = run_pdfsig(tampered, nss_dir=trusting_database)

    assert [s.signature_validation for s in signatures] == ["Digest Mismatch."] * 3
    assert not any(s.valid for s in signatures)


def test_crl_from_unknown_issuer_refused(pki: SigningPki, tmp_path: Path):
    # crlutil checks each CRL's signature, so the issuing CA's CRL needs the
    # issuing CA in the database.
    with pytest.raises(NssDatabaseError, match="crlutil -I failed"):
        create_nss_database(tmp_path, pki.trust_roots, crls=pki.crls)
