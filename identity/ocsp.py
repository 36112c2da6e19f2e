"""An OCSP responder (RFC 6960) for the certificates of one issuing CA.

The issuing CA signs responses itself (RFC 6960 section 4.2.2.2 allows the
CA that issued the certificate to respond without a delegated certificate).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime, timedelta

from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from identity.crl import Revocation
from identity.keys import SigningKey, signature_hash

# Returns ("good", None), ("revoked", Revocation) or ("unknown", None).
StatusLookup = Callable[[int], tuple[str, Revocation | None]]


def _issuer_hashes(
    issuer: x509.Certificate, algorithm: hashes.HashAlgorithm
) -> tuple[bytes, bytes]:
    name_digest = hashes.Hash(algorithm)
    name_digest.update(issuer.subject.public_bytes())
    key_bits = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # RFC 6960 section 4.1.1: the key hash covers the value of the BIT
    # STRING subjectPublicKey, without its unused-bits byte.
    public_key = asn1_keys.PublicKeyInfo.load(key_bits)["public_key"].contents[1:]
    key_digest = hashes.Hash(algorithm)
    key_digest.update(public_key)
    return name_digest.finalize(), key_digest.finalize()


def respond(
    request_der: bytes,
    issuer: x509.Certificate,
    issuer_key: SigningKey,
    lookup: StatusLookup,
    now: datetime,
    lifetime: timedelta,
) -> bytes:
    """Build the DER OCSP response to a DER OCSP request.

    Never raises on bad input: a malformed request gets MALFORMED_REQUEST and
    a request about another issuer gets UNAUTHORIZED, as RFC 6960 section
    2.3 prescribes.
    """
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        algorithm = request.hash_algorithm
    except (ValueError, UnsupportedAlgorithm):
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)

    name_hash, key_hash = _issuer_hashes(issuer, algorithm)
    if not (
        hmac.compare_digest(name_hash, request.issuer_name_hash)
        and hmac.compare_digest(key_hash, request.issuer_key_hash)
    ):
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)

    status, revocation = lookup(request.serial_number)
    this_update = now.replace(microsecond=0)
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=name_hash,
        issuer_key_hash=key_hash,
        serial_number=request.serial_number,
        algorithm=algorithm,
        cert_status={
            "good": ocsp.OCSPCertStatus.GOOD,
            "revoked": ocsp.OCSPCertStatus.REVOKED,
            "unknown": ocsp.OCSPCertStatus.UNKNOWN,
        }[status],
        this_update=this_update,
        next_update=this_update + lifetime,
        revocation_time=revocation.revocation_time if revocation else None,
        revocation_reason=(
            revocation.reason
            if revocation and revocation.reason != x509.ReasonFlags.unspecified
            else None
        ),
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
    builder = builder.certificates([issuer])
    try:
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce)
        builder = builder.add_extension(nonce.value, critical=False)
    except x509.ExtensionNotFound:
        pass
    response = builder.sign(issuer_key, signature_hash(issuer_key))
    return response.public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(status)
    return response.public_bytes(serialization.Encoding.DER)
