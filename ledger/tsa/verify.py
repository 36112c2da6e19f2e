"""Verify RFC 3161 time-stamp tokens against a digest and trust anchors."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from ledger.tsa import der
from ledger.tsa.errors import TimeStampError
from ledger.tsa.token import (
    ID_CONTENT_TYPE,
    ID_CT_TSTINFO,
    ID_MESSAGE_DIGEST,
    ID_SIGNING_CERTIFICATE,
    ID_SIGNING_CERTIFICATE_V2,
)

MAX_PATH_LENGTH = 8
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class TimeStampInfo:
    """The verified content of a time-stamp token."""

    gen_time: datetime
    serial_number: int
    policy: str
    hash_algorithm: str
    digest: bytes
    nonce: int | None
    accuracy: timedelta | None
    tsa_certificate: x509.Certificate


def verify_token(
    token_der: bytes,
    digest: bytes,
    trust_roots: Sequence[x509.Certificate],
    *,
    nonce: int | None = None,
    hash_algorithm: str | None = None,
    certificates: Sequence[x509.Certificate] = (),
) -> TimeStampInfo:
    """Verify a TimeStampToken over `digest` and return what it states.

    The TSA certificate comes from the token or from `certificates` (for
    tokens requested without certReq). It must chain to one of
    `trust_roots`, with every certificate valid at genTime; revocation is
    not checked. `hash_algorithm`, when given, must be the imprint's
    algorithm, and `nonce`, when given, must be the token's nonce.
    Raises TimeStampError naming the first check that failed.
    """
    try:
        return _verify(
            token_der, digest, trust_roots, nonce, hash_algorithm, certificates
        )
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        UnsupportedAlgorithm,
        x509.InvalidVersion,
    ) as error:
        # asn1crypto and cryptography parse lazily, so malformed fields of
        # the token or its certificates surface here.
        raise TimeStampError(f"malformed time-stamp token: {error}") from error


def _verify(
    token_der: bytes,
    digest: bytes,
    trust_roots: Sequence[x509.Certificate],
    nonce: int | None,
    hash_algorithm: str | None,
    certificates: Sequence[x509.Certificate],
) -> TimeStampInfo:
    # 1. Unwrap ContentInfo, SignedData and the encapsulated TSTInfo.
    signed_data, tst_info_der, signer_info = _unwrap(token_der)
    try:
        tst_info = tsp.TSTInfo.load(tst_info_der, strict=True)
        imprint = tst_info["message_imprint"]
        token_algorithm = imprint["hash_algorithm"]["algorithm"].native
        token_digest = imprint["hashed_message"].native
        token_nonce = tst_info["nonce"].native
        gen_time = tst_info["gen_time"].native
        serial_number = tst_info["serial_number"].native
        policy = tst_info["policy"].dotted
        accuracy = _accuracy(tst_info["accuracy"])
        if tst_info["version"].native != "v1":
            raise TimeStampError(
                f"TSTInfo version {tst_info['version'].native} is not v1"
            )
    except (ValueError, TypeError, KeyError) as error:
        raise TimeStampError(f"malformed TSTInfo: {error}") from error

    # 2. The imprint must be the caller's digest.
    if hash_algorithm is not None and token_algorithm != hash_algorithm:
        raise TimeStampError(
            f"token imprint uses {token_algorithm}, expected {hash_algorithm}"
        )
    if token_algorithm not in HASHES:
        raise TimeStampError(
            f"token imprint algorithm {token_algorithm} is not accepted"
        )
    if not hmac.compare_digest(token_digest, digest):
        raise TimeStampError(
            f"token imprint {token_digest.hex()} does not match digest {digest.hex()}"
        )

    # 3. The nonce must be the one the client sent.
    if nonce is not None and token_nonce != nonce:
        raise TimeStampError(f"token nonce {token_nonce} does not match nonce {nonce}")

    # 4. Find the signer's certificate.
    pool = _certificates(signed_data) + list(certificates)
    signer = _find_signer(signer_info["sid"], pool)

    # 5. Check the signed attributes and the signature over them.
    _check_signed_attributes(signer_info, tst_info_der, signer)

    # 6. The TSTInfo tsa name, when present, names the TSA certificate's
    # subject (RFC 3161 section 2.4.2).
    _check_tsa_name(tst_info["tsa"], signer)

    # 7. The TSA certificate may sign time stamps, and chains to a root at genTime.
    _check_time_stamping_usage(signer)
    _check_path(signer, pool, trust_roots, gen_time)

    return TimeStampInfo(
        gen_time=gen_time,
        serial_number=serial_number,
        policy=policy,
        hash_algorithm=token_algorithm,
        digest=token_digest,
        nonce=token_nonce,
        accuracy=accuracy,
        tsa_certificate=signer,
    )


def parse_token_info(token_der: bytes) -> tsp.TSTInfo:
    """Return the TSTInfo of a token without verifying anything."""
    _, tst_info_der, _ = _unwrap(token_der)
    try:
        return tsp.TSTInfo.load(tst_info_der, strict=True)
    except ValueError as error:
        raise TimeStampError(f"malformed TSTInfo: {error}") from error


def _unwrap(token_der: bytes) -> tuple[cms.SignedData, bytes, cms.SignerInfo]:
    try:
        content_info = cms.ContentInfo.load(token_der, strict=True)
        if content_info["content_type"].native != "signed_data":
            raise TimeStampError(
                f"token content type is {content_info['content_type'].native}, "
                "expected signed_data"
            )
        signed_data = content_info["content"]
        encapsulated = signed_data["encap_content_info"]
        if encapsulated["content_type"].dotted != ID_CT_TSTINFO:
            raise TimeStampError(
                f"encapsulated content type is {encapsulated['content_type'].dotted}, "
                f"expected id-ct-TSTInfo {ID_CT_TSTINFO}"
            )
        content = encapsulated["content"]
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:
            raise TimeStampError(
                f"token has {len(signer_infos)} signer infos, expected exactly 1"
            )
        signer_info = signer_infos[0]

        # The fields outside the signed attributes are checked one by one:
        # the versions RFC 5652 section 5 fixes and the digest algorithms.
        if signed_data["version"].native != "v3":
            raise TimeStampError(
                f"SignedData version is {signed_data['version'].native}, expected v3"
            )
        expected_version = (
            "v1" if signer_info["sid"].name == "issuer_and_serial_number" else "v3"
        )
        if signer_info["version"].native != expected_version:
            raise TimeStampError(
                f"SignerInfo version is {signer_info['version'].native}, "
                f"expected {expected_version} for its signer identifier"
            )
        digest_algorithm = signer_info["digest_algorithm"]["algorithm"].native
        listed = [item["algorithm"].native for item in signed_data["digest_algorithms"]]
        if digest_algorithm not in listed:
            raise TimeStampError(
                f"SignedData digestAlgorithms {listed} lack the signer's "
                f"{digest_algorithm}"
            )
        return signed_data, _octets(content), signer_info
    except (ValueError, TypeError, KeyError) as error:
        raise TimeStampError(f"malformed time-stamp token: {error}") from error


def _octets(content: object) -> bytes:
    # eContent is an OCTET STRING holding the DER TSTInfo; its content
    # octets are hashed, so they are taken as received.
    value = getattr(content, "contents", None)
    if not isinstance(value, bytes) or not value:
        raise TimeStampError("token carries no TSTInfo content")
    return value


def _accuracy(value: tsp.Accuracy) -> timedelta | None:
    if value.native is None:
        return None
    parts = value.native
    return timedelta(
        seconds=parts.get("seconds") or 0,
        milliseconds=parts.get("millis") or 0,
        microseconds=parts.get("micros") or 0,
    )


def _certificates(signed_data: cms.SignedData) -> list[x509.Certificate]:
    found = []
    for choice in signed_data["certificates"] or ():
        if choice.name == "certificate":
            try:
                found.append(x509.load_der_x509_certificate(choice.chosen.dump()))
            except (ValueError, x509.InvalidVersion) as error:
                raise TimeStampError(
                    f"token carries a malformed certificate: {error}"
                ) from error
    return found


def _find_signer(
    sid: cms.SignerIdentifier, pool: list[x509.Certificate]
) -> x509.Certificate:
    if sid.name == "issuer_and_serial_number":
        serial = sid.chosen["serial_number"].native
        issuer = sid.chosen["issuer"].dump()
        for certificate in pool:
            if (
                certificate.serial_number == serial
                and certificate.issuer.public_bytes() == issuer
            ):
                return certificate
        raise TimeStampError(
            f"TSA certificate with serial {serial:x} is neither in the token nor "
            "among the given certificates; pass it in certificates="
        )
    key_id = sid.chosen.native
    for certificate in pool:
        try:
            extension = certificate.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            )
        except x509.ExtensionNotFound:
            continue
        if extension.value.digest == key_id:
            return certificate
    raise TimeStampError(
        f"TSA certificate with key identifier {key_id.hex()} is neither in the "
        "token nor among the given certificates; pass it in certificates="
    )


def _check_signed_attributes(
    signer_info: cms.SignerInfo, tst_info_der: bytes, signer: x509.Certificate
) -> None:
    attributes = signer_info["signed_attrs"]
    if not isinstance(attributes, cms.CMSAttributes):
        raise TimeStampError("token signer info has no signed attributes")
    # The signature covers the attributes as received, with a SET tag in
    # place of [0] (RFC 5652 section 5.4). asn1crypto re-encodes them once
    # their children are read, so the octets are taken first.
    signed = der.tlv(der.SET, bytes(attributes.contents))
    values: dict[str, list[cms.CMSAttribute]] = {}
    for attribute in attributes:
        values.setdefault(attribute["type"].dotted, []).append(attribute)

    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in HASHES:
        raise TimeStampError(f"signer digest algorithm {digest_name} is not accepted")

    content_type = _single(values, ID_CONTENT_TYPE, "contentType")
    if content_type["values"][0].dotted != ID_CT_TSTINFO:
        raise TimeStampError("signed contentType attribute is not id-ct-TSTInfo")

    message_digest = _single(values, ID_MESSAGE_DIGEST, "messageDigest")
    expected = hashlib.new(digest_name, tst_info_der).digest()
    if not hmac.compare_digest(message_digest["values"][0].native, expected):
        raise TimeStampError("messageDigest attribute does not match the TSTInfo")

    _check_signature(signer_info, signed, signer, digest_name)
    _check_signing_certificate(values, signer)


def _single(
    values: dict[str, list[cms.CMSAttribute]], dotted: str, name: str
) -> cms.CMSAttribute:
    found = values.get(dotted, [])
    if len(found) != 1 or len(found[0]["values"]) != 1:
        raise TimeStampError(f"token must carry exactly one {name} attribute")
    return found[0]


def _check_signature(
    signer_info: cms.SignerInfo,
    signed: bytes,
    signer: x509.Certificate,
    digest_name: str,
) -> None:
    algorithm = signer_info["signature_algorithm"]
    signature = signer_info["signature"].native
    try:
        hash_name = algorithm.hash_algo
    except ValueError:
        hash_name = digest_name
    if hash_name not in HASHES:
        raise TimeStampError(f"signature hash {hash_name} is not accepted")
    chosen_hash = HASHES[hash_name]()
    public_key = signer.public_key()
    kind = algorithm.signature_algo
    try:
        if kind == "ecdsa" and isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, signed, ec.ECDSA(chosen_hash))
        elif kind == "rsassa_pkcs1v15" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, signed, padding.PKCS1v15(), chosen_hash)
        else:
            raise TimeStampError(
                f"signature algorithm {kind} does not fit the TSA key "
                f"{type(public_key).__name__}"
            )
    except InvalidSignature as error:
        raise TimeStampError(
            f"token signature does not verify with the key of "
            f"{signer.subject.rfc4514_string()}"
        ) from error


def _check_signing_certificate(
    values: dict[str, list[cms.CMSAttribute]], signer: x509.Certificate
) -> None:
    # RFC 5816 signingCertificateV2, or RFC 2634 signingCertificate
    # (SHA-1) that older TSAs still send, binds the signer certificate.
    signer_der = signer.public_bytes(Encoding.DER)
    if ID_SIGNING_CERTIFICATE_V2 in values:
        attribute = _single(values, ID_SIGNING_CERTIFICATE_V2, "signingCertificateV2")
        first = attribute["values"][0]["certs"][0]
        hash_name = first["hash_algorithm"]["algorithm"].native
        if hash_name not in HASHES:
            raise TimeStampError(f"ESSCertIDv2 hash {hash_name} is not accepted")
    elif ID_SIGNING_CERTIFICATE in values:
        attribute = _single(values, ID_SIGNING_CERTIFICATE, "signingCertificate")
        first = attribute["values"][0]["certs"][0]
        hash_name = "sha1"
    else:
        raise TimeStampError(
            "token carries neither a signingCertificateV2 nor a signingCertificate "
            "attribute, so the TSA certificate is not bound to the signature"
        )
    expected = hashlib.new(hash_name, signer_der).digest()
    if not hmac.compare_digest(first["cert_hash"].native, expected):
        raise TimeStampError(
            "ESSCertID hash does not match the TSA certificate "
            f"{signer.subject.rfc4514_string()}"
        )
    issuer_serial = first["issuer_serial"]
    if issuer_serial.native is not None:
        if issuer_serial["serial_number"].native != signer.serial_number:
            raise TimeStampError(
                "ESSCertID serial number does not match the TSA certificate"
            )
        names = [
            name.chosen.untag().dump()
            for name in issuer_serial["issuer"]
            if name.name == "directory_name"
        ]
        if signer.issuer.public_bytes() not in names:
            raise TimeStampError("ESSCertID issuer does not match the TSA certificate")


def _check_tsa_name(name: object, signer: x509.Certificate) -> None:
    if not isinstance(name, asn1_x509.GeneralName):
        return
    parsed = asn1_x509.Certificate.load(signer.public_bytes(Encoding.DER))
    candidates = [asn1_x509.GeneralName(name="directory_name", value=parsed.subject)]
    candidates.extend(parsed.subject_alt_name_value or ())
    expected_name = name.chosen.untag().dump()
    for candidate in candidates:
        if (
            candidate.name == name.name
            and candidate.chosen.untag().dump() == expected_name
        ):
            return
    raise TimeStampError(
        f"TSTInfo tsa name {name.native} is not among the names of the TSA "
        f"certificate {signer.subject.rfc4514_string()}"
    )


def _check_time_stamping_usage(signer: x509.Certificate) -> None:
    # RFC 3161 section 2.3: a critical extended key usage with timeStamping.
    try:
        usage = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as error:
        raise TimeStampError(
            f"TSA certificate {signer.subject.rfc4514_string()} has no extended key usage"
        ) from error
    if not usage.critical:
        raise TimeStampError(
            f"extended key usage of {signer.subject.rfc4514_string()} is not critical"
        )
    if ExtendedKeyUsageOID.TIME_STAMPING not in usage.value:
        raise TimeStampError(
            f"TSA certificate {signer.subject.rfc4514_string()} lacks timeStamping usage"
        )


def _check_validity(certificate: x509.Certificate, moment: datetime) -> None:
    if (
        not certificate.not_valid_before_utc
        <= moment
        <= certificate.not_valid_after_utc
    ):
        raise TimeStampError(
            f"genTime {moment.isoformat()} lies outside the validity "
            f"{certificate.not_valid_before_utc.isoformat()} to "
            f"{certificate.not_valid_after_utc.isoformat()} of "
            f"{certificate.subject.rfc4514_string()}"
        )


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_path(
    signer: x509.Certificate,
    pool: list[x509.Certificate],
    trust_roots: Sequence[x509.Certificate],
    gen_time: datetime,
) -> None:
    current = signer
    # CA certificates between the issuer being checked and the TSA
    # certificate, compared with each issuer's pathLenConstraint.
    below = 0
    for _ in range(MAX_PATH_LENGTH):
        _check_validity(current, gen_time)
        if current in trust_roots:
            return
        for root in trust_roots:
            if root.subject == current.issuer and _issued_by(current, root):
                _check_validity(root, gen_time)
                _check_ca(root, below)
                return
        issuers = [
            candidate
            for candidate in pool
            if candidate != current
            and candidate.subject == current.issuer
            and _issued_by(current, candidate)
        ]
        if not issuers:
            raise TimeStampError(
                f"no path from {current.subject.rfc4514_string()} to a trust root; "
                "pass the TSA's root certificate in trust_roots"
            )
        current = issuers[0]
        _check_ca(current, below)
        below += 1
    raise TimeStampError(f"certificate path exceeds {MAX_PATH_LENGTH} certificates")


def _check_ca(issuer: x509.Certificate, below: int) -> None:
    """Raise unless `issuer` is a CA that may have `below` >= 0 CAs under it."""
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.value.ca:
        raise TimeStampError(
            f"issuer {issuer.subject.rfc4514_string()} is not a CA certificate"
        )
    path_length = constraints.value.path_length
    if path_length is not None and path_length < below:
        raise TimeStampError(
            f"issuer {issuer.subject.rfc4514_string()} allows {path_length} "
            f"intermediate CAs below it, the path has {below}"
        )
