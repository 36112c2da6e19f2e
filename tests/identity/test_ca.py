"""The CA: chains that openssl and pyHanko accept, CRLs, OCSP, revocation."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError

from identity import certificates
from identity.ca import CaSettings, CertificateAuthority
from identity.errors import InvalidInputError
from identity.keys import generate_key

from .conftest import BASE_URL, PASSPHRASE

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM


def issue_leaf(ca: CertificateAuthority, key_type: str = "ec-p256"):
    key = generate_key(key_type)
    subject = certificates.person_subject("Erika Mustermann", "ab" * 16)
    return key, ca.issue(subject, key.public_key(), timedelta(days=30))


def write_pki(folder: Path, ca: CertificateAuthority, leaf: x509.Certificate) -> dict:
    paths = {
        "root": folder / "root.pem",
        "issuing": folder / "issuing.pem",
        "leaf": folder / "leaf.pem",
        "crls": folder / "crls.pem",
    }
    paths["root"].write_bytes(ca.root_certificate.public_bytes(PEM))
    paths["issuing"].write_bytes(ca.issuing_certificate.public_bytes(PEM))
    paths["leaf"].write_bytes(leaf.public_bytes(PEM))
    crls = [
        x509.load_der_x509_crl(ca.root_crl()).public_bytes(PEM),
        x509.load_der_x509_crl(ca.issuing_crl()).public_bytes(PEM),
    ]
    paths["crls"].write_bytes(b"".join(crls))
    return paths


def openssl_verify(paths: dict, at: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "openssl", "verify",
            "-attime", str(at),
            "-CAfile", str(paths["root"]),
            "-untrusted", str(paths["issuing"]),
            "-crl_check_all", "-CRLfile", str(paths["crls"]),
            "-purpose", "any",
            str(paths["leaf"]),
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
    )  # fmt: skip


def validation_context(ca, clock, crls=(), ocsps=()) -> ValidationContext:
    return ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(ca.root_certificate.public_bytes(DER))],
        crls=list(crls),
        ocsps=list(ocsps),
        moment=clock(),
        allow_fetching=False,
        revocation_mode="hard-fail",
    )


async def pyhanko_validate(ca, leaf, context) -> None:
    validator = CertificateValidator(
        asn1_x509.Certificate.load(leaf.public_bytes(DER)),
        intermediate_certs=[
            asn1_x509.Certificate.load(ca.issuing_certificate.public_bytes(DER))
        ],
        validation_context=context,
    )
    await validator.async_validate_usage({"digital_signature", "non_repudiation"})


def test_leaf_extensions(ca):
    _, leaf = issue_leaf(ca)
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.content_commitment
    assert not usage.key_cert_sign
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name[0].value == BASE_URL + "/ca/issuing.crl"
    access = leaf.extensions.get_extension_for_class(
        x509.AuthorityInformationAccess
    ).value
    urls = {d.access_method._name: d.access_location.value for d in access}
    assert urls["OCSP"] == BASE_URL + "/ca/ocsp"
    assert urls["caIssuers"] == BASE_URL + "/ca/issuing.cer"
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)


def test_ca_keys_encrypted_at_rest(ca):
    for name in ("root.key", "issuing.key"):
        pem = (ca.folder / name).read_bytes()
        assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):
            serialization.load_pem_private_key(pem, None)


def test_reopen_with_wrong_passphrase(ca):
    with pytest.raises(InvalidInputError, match="LEDGER_PASSPHRASE"):
        CertificateAuthority.open(ca.folder, b"wrong", CaSettings(BASE_URL))


def test_openssl_verifies_then_reports_revoked(ca, clock, tmp_path):
    _, leaf = issue_leaf(ca)
    at = int(clock().timestamp()) + 60
    result = openssl_verify(write_pki(tmp_path, ca, leaf), at)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": OK" in result.stdout

    ca.revoke(leaf.serial_number, x509.ReasonFlags.key_compromise)
    clock.advance(seconds=5)
    result = openssl_verify(write_pki(tmp_path, ca, leaf), at)
    assert result.returncode != 0
    assert "certificate revoked" in result.stdout + result.stderr


async def test_pyhanko_accepts_chain_with_crls(ca, clock):
    _, leaf = issue_leaf(ca)
    context = validation_context(ca, clock, crls=[ca.root_crl(), ca.issuing_crl()])
    await pyhanko_validate(ca, leaf, context)


async def test_pyhanko_reports_revoked_by_crl(ca, clock):
    _, leaf = issue_leaf(ca)
    clock.advance(minutes=1)
    ca.revoke(leaf.serial_number, x509.ReasonFlags.key_compromise)
    clock.advance(minutes=1)
    context = validation_context(ca, clock, crls=[ca.root_crl(), ca.issuing_crl()])
    with pytest.raises(RevokedError):
        await pyhanko_validate(ca, leaf, context)


def ocsp_request(ca, leaf, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        leaf, ca.issuing_certificate, hashes.SHA256()
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(DER)


async def test_ocsp_good_then_revoked_in_pyhanko(ca, clock):
    _, leaf = issue_leaf(ca)
    response = ocsp.load_der_ocsp_response(ca.ocsp_response(ocsp_request(ca, leaf)))
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    context = validation_context(
        ca,
        clock,
        crls=[ca.root_crl()],
        ocsps=[ca.ocsp_response(ocsp_request(ca, leaf))],
    )
    await pyhanko_validate(ca, leaf, context)

    clock.advance(minutes=1)
    ca.revoke(leaf.serial_number, x509.ReasonFlags.superseded)
    clock.advance(minutes=1)
    answer = ca.ocsp_response(ocsp_request(ca, leaf, nonce=b"n" * 16))
    response = ocsp.load_der_ocsp_response(answer)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason == x509.ReasonFlags.superseded
    nonce = response.extensions.get_extension_for_class(x509.OCSPNonce).value
    assert nonce.nonce == b"n" * 16
    context = validation_context(ca, clock, crls=[ca.root_crl()], ocsps=[answer])
    with pytest.raises(RevokedError):
        await pyhanko_validate(ca, leaf, context)


def test_ocsp_unknown_and_bad_requests(ca, tmp_path):
    _, leaf = issue_leaf(ca)
    # Another CA's certificate: its serial number was never issued here.
    other = CertificateAuthority.create(
        tmp_path / "other", PASSPHRASE, CaSettings(BASE_URL)
    )
    _, foreign = issue_leaf(other)
    name_hash, key_hash = request_issuer_hashes(ca, leaf)
    request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        name_hash, key_hash, foreign.serial_number, hashes.SHA256()
    )
    response = ocsp.load_der_ocsp_response(
        ca.ocsp_response(request.build().public_bytes(DER))
    )
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN

    response = ocsp.load_der_ocsp_response(
        ca.ocsp_response(ocsp_request(other, foreign))
    )
    assert response.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED

    response = ocsp.load_der_ocsp_response(ca.ocsp_response(b"\x30\x03\x02\x01\x00"))
    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    other.close()


def request_issuer_hashes(ca, leaf) -> tuple[bytes, bytes]:
    request = ocsp.load_der_ocsp_request(ocsp_request(ca, leaf))
    return request.issuer_name_hash, request.issuer_key_hash


def test_revoke_unknown_serial(ca):
    with pytest.raises(InvalidInputError, match="not issued"):
        ca.revoke(12345)


def crl_number(der: bytes) -> int:
    crl = x509.load_der_x509_crl(der)
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_crl_cached_until_revocation_or_half_life(ca, clock):
    first = ca.issuing_crl()
    assert x509.load_der_x509_crl(first).is_signature_valid(
        ca.issuing_certificate.public_key()
    )
    clock.advance(hours=1)
    assert ca.issuing_crl() == first

    _, leaf = issue_leaf(ca)
    ca.revoke(leaf.serial_number)
    after_revocation = ca.issuing_crl()
    assert crl_number(after_revocation) > crl_number(first)
    crl = x509.load_der_x509_crl(after_revocation)
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number)

    # A revocation made by another process on the same folder shows too.
    _, second_leaf = issue_leaf(ca)
    script = (
        "import sys; from pathlib import Path\n"
        "from identity.ca import CaSettings, CertificateAuthority\n"
        "ca = CertificateAuthority.open(Path(sys.argv[1]), sys.argv[2].encode(),"
        " CaSettings(sys.argv[3]))\n"
        "ca.revoke(int(sys.argv[4]))\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(ca.folder), PASSPHRASE.decode(),
         BASE_URL, str(second_leaf.serial_number)],
        check=True,
        timeout=60,
    )  # fmt: skip
    crl = x509.load_der_x509_crl(ca.issuing_crl())
    assert crl.get_revoked_certificate_by_serial_number(second_leaf.serial_number)

    # Half the one-day lifetime later the CRL is signed again.
    cached = ca.issuing_crl()
    clock.advance(hours=12)
    renewed = ca.issuing_crl()
    assert renewed != cached
    assert crl_number(renewed) > crl_number(cached)
    assert x509.load_der_x509_crl(renewed).next_update_utc == clock() + timedelta(
        days=1
    )


def test_rsa_option_verifies_with_openssl(tmp_path, clock):
    authority = CertificateAuthority.create(
        tmp_path / "rsa-ca", PASSPHRASE, CaSettings(BASE_URL), clock=clock,
        key_type="rsa-3072",
    )  # fmt: skip
    _, leaf = issue_leaf(authority, "rsa-3072")
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey)
    assert leaf.public_key().key_size == 3072
    result = openssl_verify(
        write_pki(tmp_path, authority, leaf), int(clock().timestamp()) + 60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    authority.close()


def test_interrupted_creation_reported(tmp_path, clock):
    folder = tmp_path / "ca"
    folder.mkdir()
    # A crash after the first key was written leaves root.key without root.pem.
    (folder / "root.key").write_bytes(b"partial")
    with pytest.raises(InvalidInputError, match="interrupted CA creation"):
        CertificateAuthority.create(
            folder, PASSPHRASE, CaSettings(BASE_URL), clock=clock
        )
    with pytest.raises(InvalidInputError, match="root.pem is missing"):
        CertificateAuthority.open(folder, PASSPHRASE, CaSettings(BASE_URL), clock=clock)


def test_base_url_checked_and_normalised():
    assert CaSettings("https://ledger.example/").base_url == "https://ledger.example"
    with pytest.raises(InvalidInputError, match="base_url"):
        CaSettings("ledger.example")


def test_ocsp_never_raises_on_mutated_requests(ca):
    valid = ocsp_request(ca, issue_leaf(ca)[1], nonce=b"n" * 16)

    @settings(max_examples=150)
    @given(data=st.data())
    def check(data):
        request = bytearray(valid)
        for _ in range(data.draw(st.integers(1, 4))):
            position = data.draw(st.integers(0, len(request) - 1))
            request[position] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(1, len(request)))
        answer = ocsp.load_der_ocsp_response(ca.ocsp_response(bytes(request[:cut])))
        assert answer.response_status in (
            ocsp.OCSPResponseStatus.SUCCESSFUL,
            ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
            ocsp.OCSPResponseStatus.UNAUTHORIZED,
        )

    check()
