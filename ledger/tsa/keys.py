"""The TSA key and certificate: created on first start or loaded from PEM files.

On first start in a data folder the TSA creates a root certificate and a
TSA certificate issued by it, and writes:

- `tsa-root.pem`: the root certificate, the trust anchor verifiers use;
- `tsa-root.key`: the root key, kept to renew the TSA certificate;
- `tsa.key`: the TSA key;
- `tsa.pem`: the TSA certificate (critical extended key usage
  timeStamping, as RFC 3161 section 2.3 requires).

Both keys are PKCS#8 PEM encrypted with the LEDGER_PASSPHRASE of the
process. An operator can instead give a key, a certificate and the chain
above it from their own CA.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ledger.tsa.errors import TsaKeyError

KEY_TYPES = ("ecdsa-p256", "rsa-2048", "rsa-3072")
ROOT_CERT_FILE = "tsa-root.pem"
ROOT_KEY_FILE = "tsa-root.key"
TSA_CERT_FILE = "tsa.pem"
TSA_KEY_FILE = "tsa.key"
ROOT_VALIDITY = datetime.timedelta(days=20 * 365)
TSA_VALIDITY = datetime.timedelta(days=10 * 365)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class TsaCredentials:
    """The TSA key, its certificate and the certificates above it.

    `chain` lists the issuers from the TSA certificate's issuer upwards;
    tokens carry the TSA certificate and `chain` when certReq is set.
    """

    private_key: PrivateKey
    certificate: x509.Certificate
    chain: list[x509.Certificate] = field(default_factory=list)


def generate_key(key_type: str) -> PrivateKey:
    """Generate a private key of one of KEY_TYPES."""
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type in ("rsa-2048", "rsa-3072"):
        return rsa.generate_private_key(65537, int(key_type.split("-")[1]))
    raise TsaKeyError(f"unknown key type {key_type!r}; use one of {KEY_TYPES}")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contract Ledger"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def create_root(
    key: PrivateKey, common_name: str, now: datetime.datetime, path_length: int = 0
) -> x509.Certificate:
    """Create a self-signed root certificate; 0 <= path_length intermediate CAs may follow."""
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + ROOT_VALIDITY)
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=path_length), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def issue_tsa_certificate(
    tsa_key: PrivateKey,
    issuer_key: PrivateKey,
    issuer: x509.Certificate,
    common_name: str,
    now: datetime.datetime,
) -> x509.Certificate:
    """Issue a TSA certificate with a critical timeStamping extended key usage."""
    public_key = tsa_key.public_key()
    not_after = min(now + TSA_VALIDITY, issuer.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def check_tsa_certificate(certificate: x509.Certificate, key: PrivateKey) -> None:
    """Raise TsaKeyError unless `certificate` fits `key` and may sign time stamps."""
    certificate_key = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    own_key = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if certificate_key != own_key:
        raise TsaKeyError(
            f"TSA certificate {certificate.subject.rfc4514_string()} does not "
            "match the TSA private key; give the certificate issued for that key"
        )
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as error:
        raise TsaKeyError(
            f"TSA certificate {certificate.subject.rfc4514_string()} has no "
            "extended key usage; it needs a critical timeStamping usage"
        ) from error
    if not usage.critical or list(usage.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TsaKeyError(
            f"TSA certificate {certificate.subject.rfc4514_string()} must have a "
            "critical extended key usage holding only timeStamping"
        )


def _write_private_key(path: Path, key: PrivateKey, passphrase: bytes) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    with open(path, "xb") as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
        handle.flush()
        os.fsync(handle.fileno())


def load_private_key(path: Path, passphrase: bytes) -> PrivateKey:
    """Load an encrypted PKCS#8 PEM private key (ECDSA P-256 or RSA)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), passphrase)
    except (ValueError, TypeError) as error:
        raise TsaKeyError(
            f"cannot decrypt TSA key {path}: {error}; check LEDGER_PASSPHRASE"
        ) from error
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return key
    raise TsaKeyError(
        f"TSA key {path} is neither ECDSA P-256 nor RSA of 2048 bits or more"
    )


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Load every certificate of a PEM file."""
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except ValueError as error:
        raise TsaKeyError(f"cannot read certificates from {path}: {error}") from error


def create_credentials(
    data_dir: Path, passphrase: bytes, key_type: str = "ecdsa-p256"
) -> TsaCredentials:
    """Create a root and a TSA certificate in `data_dir`, which must not hold any."""
    now = datetime.datetime.now(datetime.UTC)
    root_key = generate_key(key_type)
    root = create_root(root_key, "Contract Ledger TSA Root", now)
    tsa_key = generate_key(key_type)
    certificate = issue_tsa_certificate(
        tsa_key, root_key, root, "Contract Ledger Time-Stamping Authority", now
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    _write_private_key(data_dir / ROOT_KEY_FILE, root_key, passphrase)
    _write_private_key(data_dir / TSA_KEY_FILE, tsa_key, passphrase)
    _write_certificate(data_dir / TSA_CERT_FILE, certificate)
    # The trust anchor is written last: its presence marks a complete set.
    _write_certificate(data_dir / ROOT_CERT_FILE, root)
    return TsaCredentials(tsa_key, certificate, [root])


def load_credentials(data_dir: Path, passphrase: bytes) -> TsaCredentials:
    """Load the TSA key and certificates that `create_credentials` wrote."""
    key = load_private_key(data_dir / TSA_KEY_FILE, passphrase)
    certificate = load_certificates(data_dir / TSA_CERT_FILE)[0]
    root = load_certificates(data_dir / ROOT_CERT_FILE)
    check_tsa_certificate(certificate, key)
    return TsaCredentials(key, certificate, root)


def load_or_create_credentials(
    data_dir: Path, passphrase: bytes, key_type: str = "ecdsa-p256"
) -> TsaCredentials:
    """Load the TSA credentials of `data_dir`, creating them on first start."""
    if (data_dir / ROOT_CERT_FILE).exists():
        return load_credentials(data_dir, passphrase)
    if (data_dir / TSA_KEY_FILE).exists():
        raise TsaKeyError(
            f"{data_dir} contains {TSA_KEY_FILE} but no {ROOT_CERT_FILE}, so a "
            "first start was interrupted; move the partial files away and restart"
        )
    return create_credentials(data_dir, passphrase, key_type)


def load_operator_credentials(
    key_path: Path,
    certificate_path: Path,
    chain_paths: Sequence[Path],
    passphrase: bytes,
) -> TsaCredentials:
    """Load a TSA key, certificate and chain that an operator's CA issued."""
    key = load_private_key(key_path, passphrase)
    certificate = load_certificates(certificate_path)[0]
    check_tsa_certificate(certificate, key)
    chain: list[x509.Certificate] = []
    for path in chain_paths:
        chain.extend(load_certificates(path))
    return TsaCredentials(key, certificate, chain)


def passphrase_from_environment() -> bytes:
    """Return LEDGER_PASSPHRASE as bytes, raising TsaKeyError when it is unset."""
    value = os.environ.get("LEDGER_PASSPHRASE")
    if not value:
        raise TsaKeyError(
            "LEDGER_PASSPHRASE is not set; set it to the passphrase that "
            "encrypts the TSA key"
        )
    return value.encode("utf-8")
