"""Builders for the certificates of the CA hierarchy and its signers.

The hierarchy has two levels: a self-signed root, an issuing CA with path
length 0, and end-entity signing certificates. Every issued certificate
names where its issuer's CRL and OCSP responder live under the operator's
base URL, so that a validator such as pyHanko's can fetch revocation data.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from identity.keys import SigningKey, signature_hash

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

# Paths under the base URL; identity.http serves them.
ROOT_CERT_PATH = "/ca/root.cer"
ISSUING_CERT_PATH = "/ca/issuing.cer"
ROOT_CRL_PATH = "/ca/root.crl"
ISSUING_CRL_PATH = "/ca/issuing.crl"
OCSP_PATH = "/ca/ocsp"


def ca_name(organisation: str, common_name: str) -> x509.Name:
    """Build the distinguished name of a CA certificate."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def person_subject(name: str, party_id: str) -> x509.Name:
    """Build a signer's subject: the enrolled name and the party_id.

    The serialNumber attribute carries the party_id, a random pseudonym, so
    that two people with the same name have distinct subjects without the
    certificate showing a national ID number.
    """
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, party_id),
        ]
    )


def enterprise_subject(
    signatory_name: str, legal_name: str, registration_number: str, party_id: str
) -> x509.Name:
    """Build the subject of an enterprise's signing certificate.

    organizationIdentifier (2.5.4.97) carries the registration number in the
    ETSI EN 319 412-1 form `LEIXG-<LEI>`.
    """
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, signatory_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, legal_name),
            x509.NameAttribute(
                NameOID.ORGANIZATION_IDENTIFIER, f"LEIXG-{registration_number}"
            ),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, party_id),
        ]
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def build_root(
    key: SigningKey, name: x509.Name, not_before: datetime, not_after: datetime
) -> x509.Certificate:
    """Build the self-signed root certificate (not_before < not_after)."""
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
        .sign(key, signature_hash(key))
    )


def _revocation_pointers(
    base_url: str, crl_path: str, issuer_cert_path: str, with_ocsp: bool
) -> list[x509.ExtensionType]:
    distribution = x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(base_url + crl_path)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(base_url + issuer_cert_path),
        )
    ]
    if with_ocsp:
        access.insert(
            0,
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP,
                x509.UniformResourceIdentifier(base_url + OCSP_PATH),
            ),
        )
    return [distribution, x509.AuthorityInformationAccess(access)]


def build_issuing(
    key: SigningKey,
    name: x509.Name,
    root: x509.Certificate,
    root_key: SigningKey,
    not_before: datetime,
    not_after: datetime,
    base_url: str,
) -> x509.Certificate:
    """Build the issuing CA certificate, signed by the root."""
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
    )
    for extension in _revocation_pointers(
        base_url, ROOT_CRL_PATH, ROOT_CERT_PATH, with_ocsp=False
    ):
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(root_key, signature_hash(root_key))


def build_end_entity(
    public_key: PublicKey,
    subject: x509.Name,
    issuer: x509.Certificate,
    issuer_key: SigningKey,
    serial_number: int,
    not_before: datetime,
    not_after: datetime,
    base_url: str,
) -> x509.Certificate:
    """Build a signing certificate: digitalSignature and nonRepudiation only."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(serial_number)
        .not_valid_before(not_before)
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
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    for extension in _revocation_pointers(
        base_url, ISSUING_CRL_PATH, ISSUING_CERT_PATH, with_ocsp=True
    ):
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, signature_hash(issuer_key))
