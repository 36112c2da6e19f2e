"""TSA credentials: created on first start, or an operator's from PEM files."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ledger.tsa.authority import TimeStampAuthority
from ledger.tsa.errors import TimeStampError, TsaKeyError
from ledger.tsa.keys import (
    TsaCredentials,
    create_root,
    generate_key,
    issue_tsa_certificate,
    load_operator_credentials,
    load_or_create_credentials,
)
from ledger.tsa.serial import SerialNumbers
from ledger.tsa.verify import verify_token

from .helpers import openssl, write_pem

PASSPHRASE = b"operator passphrase"


def write_key(path: Path, key) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE),
        )
    )
    return path


def issue_intermediate(root_key, root: x509.Certificate, now: datetime.datetime):
    key = generate_key("ecdsa-p256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Operator Issuing CA")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    return key, certificate


def test_first_start_creates_then_reloads(tmp_path):
    created = load_or_create_credentials(tmp_path, PASSPHRASE)
    reloaded = load_or_create_credentials(tmp_path, PASSPHRASE)

    assert reloaded.certificate == created.certificate
    assert (
        (tmp_path / "tsa-root.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE")
    )
    for name in ("tsa.key", "tsa-root.key"):
        assert b"BEGIN ENCRYPTED PRIVATE KEY" in (tmp_path / name).read_bytes()
        assert (tmp_path / name).stat().st_mode & 0o077 == 0
    usage = created.certificate.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage
    )
    assert usage.critical
    assert list(usage.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_wrong_passphrase_raises(tmp_path):
    load_or_create_credentials(tmp_path, PASSPHRASE)
    with pytest.raises(TsaKeyError, match="LEDGER_PASSPHRASE"):
        load_or_create_credentials(tmp_path, b"wrong")


def test_interrupted_first_start_raises(tmp_path):
    load_or_create_credentials(tmp_path, PASSPHRASE)
    (tmp_path / "tsa-root.pem").unlink()
    with pytest.raises(TsaKeyError, match="interrupted"):
        load_or_create_credentials(tmp_path, PASSPHRASE)


def test_operator_chain_verifies_with_openssl(tmp_path):
    now = datetime.datetime.now(datetime.UTC)
    root_key = generate_key("ecdsa-p256")
    root = create_root(root_key, "Operator Root", now, path_length=1)
    issuing_key, issuing = issue_intermediate(root_key, root, now)
    tsa_key = generate_key("rsa-2048")
    certificate = issue_tsa_certificate(
        tsa_key, issuing_key, issuing, "Operator TSA", now
    )

    credentials = load_operator_credentials(
        write_key(tmp_path / "tsa.key", tsa_key),
        write_pem(tmp_path / "tsa.pem", certificate),
        [write_pem(tmp_path / "chain.pem", issuing)],
        PASSPHRASE,
    )
    authority = TimeStampAuthority(credentials, SerialNumbers(tmp_path))
    data = tmp_path / "data.bin"
    data.write_bytes(b"operator")
    query = tmp_path / "query.tsq"
    openssl("ts", "-query", "-data", data, "-cert", "-out", query)
    reply = tmp_path / "reply.tsr"
    reply.write_bytes(authority.issue(query.read_bytes()))
    result = openssl(
        "ts",
        "-verify",
        "-in",
        reply,
        "-queryfile",
        query,
        "-CAfile",
        write_pem(tmp_path / "root.pem", root),
    )

    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(b"operator").digest()
    token = authority.stamp(digest, prehashed=True)
    info = verify_token(token, digest, [root])
    assert info.tsa_certificate == certificate


def test_path_length_constraint_enforced(tmp_path):
    now = datetime.datetime.now(datetime.UTC)
    root_key = generate_key("ecdsa-p256")
    root = create_root(root_key, "Operator Root", now, path_length=0)
    issuing_key, issuing = issue_intermediate(root_key, root, now)
    tsa_key = generate_key("ecdsa-p256")
    certificate = issue_tsa_certificate(
        tsa_key, issuing_key, issuing, "Operator TSA", now
    )
    authority = TimeStampAuthority(
        TsaCredentials(tsa_key, certificate, [issuing, root]), SerialNumbers(tmp_path)
    )
    digest = hashlib.sha256(b"too deep").digest()

    with pytest.raises(TimeStampError, match="allows 0 intermediate CAs"):
        verify_token(authority.stamp(digest, prehashed=True), digest, [root])


def test_operator_certificate_without_time_stamping_refused(tmp_path):
    now = datetime.datetime.now(datetime.UTC)
    key = generate_key("ecdsa-p256")
    root = create_root(key, "Not A TSA", now)

    with pytest.raises(TsaKeyError, match="extended key usage"):
        load_operator_credentials(
            write_key(tmp_path / "key.pem", key),
            write_pem(tmp_path / "cert.pem", root),
            [],
            PASSPHRASE,
        )


def test_operator_certificate_of_other_key_refused(tmp_path):
    now = datetime.datetime.now(datetime.UTC)
    root_key = generate_key("ecdsa-p256")
    root = create_root(root_key, "Root", now)
    certificate = issue_tsa_certificate(
        generate_key("ecdsa-p256"), root_key, root, "TSA", now
    )

    with pytest.raises(TsaKeyError, match="does not match"):
        load_operator_credentials(
            write_key(tmp_path / "key.pem", generate_key("ecdsa-p256")),
            write_pem(tmp_path / "cert.pem", certificate),
            [],
            PASSPHRASE,
        )
