"""verify_token: our tokens, mutated tokens and real third-party tokens."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.tsa.authority import TimeStampAuthority
from ledger.tsa.errors import TimeStampError
from ledger.tsa.keys import (
    TsaCredentials,
    create_root,
    generate_key,
    issue_tsa_certificate,
)
from ledger.tsa.request import build_request
from ledger.tsa.response import token_from_response
from ledger.tsa.serial import SerialNumbers
from ledger.tsa.verify import parse_token_info, verify_token

from .helpers import utc

ALGORITHMS = {"sha256": 32, "sha384": 48, "sha512": 64}


@st.composite
def digests(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(ALGORITHMS)))
    return name, draw(st.binary(min_size=ALGORITHMS[name], max_size=ALGORITHMS[name]))


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    digest=digests(),
    other=st.binary(min_size=1, max_size=64),
    position=st.integers(min_value=0),
)
def test_random_digests_verify_and_mutations_fail(
    authority, root, digest, other, position
):
    name, value = digest
    nonce = 0x1234567890ABCDEF
    reply = authority.issue(build_request(value, name, nonce=nonce, cert_req=True))
    token = token_from_response(reply)

    info = verify_token(token, value, [root], nonce=nonce, hash_algorithm=name)
    assert info.digest == value
    assert info.nonce == nonce
    assert info.hash_algorithm == name

    # Another digest of the same or another size fails.
    changed = bytes(b ^ 0xFF for b in value[:1]) + value[1:]
    with pytest.raises(TimeStampError):
        verify_token(token, changed, [root])
    if other != value:
        with pytest.raises(TimeStampError):
            verify_token(token, other, [root])

    # Any one changed byte of the token fails.
    mutated = bytearray(token)
    index = position % len(mutated)
    mutated[index] ^= 0x01
    with pytest.raises(TimeStampError):
        verify_token(bytes(mutated), value, [root], nonce=nonce)


def test_every_byte_of_token_is_protected(ecdsa_authority, pki):
    # A token without certificates keeps this exhaustive loop short; the
    # property test above mutates tokens that carry them.
    credentials = pki["ecdsa-p256"][1]
    root = credentials.chain[-1]
    digest = hashlib.sha256(b"every byte").digest()
    request = build_request(digest, nonce=7, cert_req=False)
    token = token_from_response(ecdsa_authority.issue(request))
    extra = [credentials.certificate]
    verify_token(token, digest, [root], nonce=7, certificates=extra)

    accepted = []
    for index in range(len(token)):
        mutated = bytearray(token)
        mutated[index] ^= 0x80
        try:
            verify_token(bytes(mutated), digest, [root], nonce=7, certificates=extra)
        except TimeStampError:
            continue
        accepted.append(index)

    assert accepted == []


def test_wrong_nonce_fails(ecdsa_authority, pki):
    root = pki["ecdsa-p256"][1].chain[-1]
    digest = hashlib.sha256(b"nonce").digest()
    token = token_from_response(ecdsa_authority.issue(build_request(digest, nonce=5)))

    with pytest.raises(TimeStampError, match="nonce"):
        verify_token(token, digest, [root], nonce=6)


def test_wrong_hash_algorithm_fails(ecdsa_authority, pki):
    root = pki["ecdsa-p256"][1].chain[-1]
    digest = hashlib.sha256(b"algorithm").digest()
    token = ecdsa_authority.stamp(digest, prehashed=True)

    with pytest.raises(TimeStampError, match="sha512"):
        verify_token(token, digest, [root], hash_algorithm="sha512")


def test_foreign_root_fails(ecdsa_authority, pki):
    foreign = pki["rsa-2048"][1].chain[-1]
    digest = hashlib.sha256(b"root").digest()
    token = ecdsa_authority.stamp(digest, prehashed=True)

    with pytest.raises(TimeStampError, match="trust root"):
        verify_token(token, digest, [foreign])


def test_token_without_certificate_needs_it(ecdsa_authority, pki):
    credentials = pki["ecdsa-p256"][1]
    digest = hashlib.sha256(b"no cert").digest()
    token = token_from_response(
        ecdsa_authority.issue(build_request(digest, cert_req=False))
    )

    with pytest.raises(TimeStampError, match="certificates="):
        verify_token(token, digest, [credentials.chain[-1]])
    info = verify_token(
        token, digest, [credentials.chain[-1]], certificates=[credentials.certificate]
    )
    assert info.tsa_certificate == credentials.certificate


def make_credentials(
    tmp_path: Path,
    *,
    critical: bool = True,
    usage: bool = True,
    now: datetime.datetime | None = None,
) -> TsaCredentials:
    """Build a root and TSA certificate, optionally without a proper EKU."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = now or datetime.datetime.now(datetime.UTC)
    root_key = generate_key("ecdsa-p256")
    root = create_root(root_key, "Test Root", now)
    tsa_key = generate_key("ecdsa-p256")
    certificate = issue_tsa_certificate(tsa_key, root_key, root, "Test TSA", now)
    if not (critical and usage):
        builder = (
            x509.CertificateBuilder()
            .subject_name(certificate.subject)
            .issuer_name(root.subject)
            .public_key(tsa_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(certificate.not_valid_before_utc)
            .not_valid_after(certificate.not_valid_after_utc)
        )
        if usage:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                critical=False,
            )
        certificate = builder.sign(root_key, hashes.SHA256())
    return TsaCredentials(tsa_key, certificate, [root])


@pytest.mark.parametrize(
    ("critical", "usage", "message"),
    [(False, True, "not critical"), (False, False, "no extended key usage")],
)
def test_certificate_without_critical_usage_fails(tmp_path, critical, usage, message):
    credentials = make_credentials(tmp_path, critical=critical, usage=usage)
    authority = TimeStampAuthority(credentials, SerialNumbers(tmp_path))
    digest = hashlib.sha256(b"usage").digest()

    with pytest.raises(TimeStampError, match=message):
        verify_token(authority.stamp(digest, prehashed=True), digest, credentials.chain)


def test_gen_time_outside_validity_fails(tmp_path):
    credentials = make_credentials(tmp_path)
    late = credentials.certificate.not_valid_after_utc + datetime.timedelta(days=1)
    early = credentials.certificate.not_valid_before_utc - datetime.timedelta(days=1)
    digest = hashlib.sha256(b"validity").digest()

    for moment in (late, early):
        authority = TimeStampAuthority(
            credentials, SerialNumbers(tmp_path), clock=lambda moment=moment: moment
        )
        with pytest.raises(TimeStampError, match="outside the validity"):
            verify_token(
                authority.stamp(digest, prehashed=True), digest, credentials.chain
            )


def test_gen_time_is_clock_time(tmp_path):
    credentials = make_credentials(tmp_path)
    moment = datetime.datetime.now(datetime.UTC).replace(microsecond=250_000)
    authority = TimeStampAuthority(
        credentials, SerialNumbers(tmp_path), clock=lambda: moment
    )
    digest = hashlib.sha256(b"clock").digest()

    info = verify_token(
        authority.stamp(digest, prehashed=True), digest, credentials.chain
    )

    assert info.gen_time == moment


# Real tokens of the GlobalSign TSA (2017) from the digitorus/timestamp test data.
@pytest.fixture
def digitorus(vectors_dir: Path) -> Path:
    return vectors_dir / "rfc3161-digitorus"


def carried_certificates(token: bytes) -> list[x509.Certificate]:
    from asn1crypto import cms

    signed_data = cms.ContentInfo.load(token)["content"]
    return [
        x509.load_der_x509_certificate(choice.chosen.dump())
        for choice in signed_data["certificates"]
    ]


def find(certificates: list[x509.Certificate], common_name: str) -> x509.Certificate:
    for certificate in certificates:
        if common_name in certificate.subject.rfc4514_string():
            return certificate
    raise AssertionError(f"no certificate named {common_name}")


@pytest.mark.parametrize(
    ("name", "nonce", "gen_time"),
    [
        ("respNonce.tsr", 0x092EF19FFB5D2AE8, utc(2017, 4, 19, 6, 29, 53)),
        ("respNoNonce.tsr", None, utc(2017, 4, 19, 6, 28, 13)),
    ],
)
def test_digitorus_responses_verify(digitorus, name, nonce, gen_time):
    digest = (digitorus / "hashedMessage.bin").read_bytes()
    token = token_from_response((digitorus / name).read_bytes())
    anchor = find(carried_certificates(token), "GlobalSign Primary SHA256 CA for Adobe")

    info = verify_token(token, digest, [anchor], nonce=nonce, hash_algorithm="sha256")

    assert info.gen_time == gen_time
    assert info.nonce == nonce
    assert info.policy == "1.3.6.1.4.1.4146.2.1"
    assert (
        "GlobalSign TSA for Adobe CDS - G2"
        in info.tsa_certificate.subject.rfc4514_string()
    )
    with pytest.raises(TimeStampError):
        verify_token(token, hashlib.sha256(digest).digest(), [anchor])
    with pytest.raises(TimeStampError, match="nonce"):
        verify_token(token, digest, [anchor], nonce=1)


def test_digitorus_response_without_certificates(digitorus):
    digest = (digitorus / "hashedMessage.bin").read_bytes()
    token = token_from_response((digitorus / "respNoCert.tsr").read_bytes())
    chain = carried_certificates(
        token_from_response((digitorus / "respNonce.tsr").read_bytes())
    )
    anchor = find(chain, "GlobalSign Primary SHA256 CA for Adobe")

    with pytest.raises(TimeStampError, match="certificates="):
        verify_token(token, digest, [anchor])
    info = verify_token(
        token, digest, [anchor], nonce=0xB1FC81DEC95749D9, certificates=chain
    )
    assert info.nonce == 0xB1FC81DEC95749D9


def test_digitorus_bare_token(digitorus):
    token = (digitorus / "timeStampToken.der").read_bytes()
    digest = parse_token_info(token)["message_imprint"]["hashed_message"].native
    anchor = find(carried_certificates(token), "GlobalSign CA for AATL - SHA256 - G2")

    info = verify_token(token, digest, [anchor])

    assert digest.hex().startswith("2da82c15")
    assert info.gen_time == utc(2017, 2, 1, 15, 39, 50)
    assert info.policy == "1.3.6.1.4.1.4146.1.31"
    wrong_anchor = find(
        carried_certificates(
            token_from_response((digitorus / "respNonce.tsr").read_bytes())
        ),
        "GlobalSign Primary SHA256 CA for Adobe",
    )
    with pytest.raises(TimeStampError, match="trust root"):
        verify_token(token, digest, [wrong_anchor])


def test_digitorus_requests_get_our_tokens(digitorus, ecdsa_authority, pki):
    root = pki["ecdsa-p256"][1].chain[-1]
    digest = (digitorus / "hashedMessage.bin").read_bytes()
    cases = {
        "reqNonce.tsq": (0x092EF19FFB5D2AE8, True),
        "reqNoNonce.tsq": (None, True),
        "reqNoCert.tsq": (0xB1FC81DEC95749D9, False),
    }
    for name, (nonce, has_certificate) in cases.items():
        token = token_from_response(
            ecdsa_authority.issue((digitorus / name).read_bytes())
        )
        extra = [] if has_certificate else [pki["ecdsa-p256"][1].certificate]
        assert bool(carried_certificates_or_empty(token)) == has_certificate
        info = verify_token(token, digest, [root], nonce=nonce, certificates=extra)
        assert info.nonce == nonce


def carried_certificates_or_empty(token: bytes) -> list[x509.Certificate]:
    from asn1crypto import cms

    if cms.ContentInfo.load(token)["content"]["certificates"].native is None:
        return []
    return carried_certificates(token)


def test_tsa_name_of_other_subject_fails(tmp_path, pki):
    from asn1crypto import x509 as asn1_x509

    from ledger.tsa import der

    credentials = pki["ecdsa-p256"][1]
    authority = TimeStampAuthority(credentials, SerialNumbers(tmp_path))
    other = asn1_x509.Name.build({"common_name": "Some Other TSA"})
    name = asn1_x509.GeneralName(name="directory_name", value=other)
    # The signer encodes the tsa field once; a different one is put in its place.
    authority._signer._tsa_name = der.tlv(0xA0, name.dump())
    digest = hashlib.sha256(b"tsa name").digest()

    with pytest.raises(TimeStampError, match="tsa name"):
        verify_token(authority.stamp(digest, prehashed=True), digest, credentials.chain)
