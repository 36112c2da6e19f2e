"""Certificate revocation lists (RFC 5280 section 5)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from identity.keys import SigningKey, signature_hash


@dataclass(frozen=True)
class Revocation:
    """One revoked certificate: its serial number, when, and why."""

    serial_number: int
    revocation_time: datetime
    reason: x509.ReasonFlags


def build_crl(
    issuer: x509.Certificate,
    issuer_key: SigningKey,
    revocations: Iterable[Revocation],
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """Build and sign a CRL listing `revocations`; return its DER.

    Requires crl_number >= 0, greater than that of every CRL issued before
    (RFC 5280 section 5.2.3), and this_update < next_update.
    """
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    for revocation in revocations:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(revocation.serial_number)
            .revocation_date(revocation.revocation_time)
        )
        # RFC 5280 section 5.3.1: omit the reason code rather than use
        # unspecified.
        if revocation.reason != x509.ReasonFlags.unspecified:
            entry = entry.add_extension(
                x509.CRLReason(revocation.reason), critical=False
            )
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign(issuer_key, signature_hash(issuer_key))
    return crl.public_bytes(serialization.Encoding.DER)
