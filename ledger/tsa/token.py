"""Build and sign time-stamp tokens (RFC 3161 TSTInfo inside CMS SignedData).

A TokenSigner encodes the parts that stay the same for every token once,
through asn1crypto: the TSA certificates, the signer identifier, the
contentType and RFC 5816 signingCertificateV2 attributes and the
algorithm identifiers. Per token it encodes only TSTInfo, the
messageDigest attribute and the enclosing structures, then signs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from ledger.tsa import der
from ledger.tsa.keys import TsaCredentials

ID_CT_TSTINFO = "1.2.840.113549.1.9.16.1.4"
ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
ID_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
ID_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"


_PREHASHED = utils.Prehashed(hashes.SHA256())
_ECDSA_PREHASHED = ec.ECDSA(_PREHASHED)


def oid(dotted: str) -> bytes:
    """Return the DER encoding of an OBJECT IDENTIFIER."""
    return core.ObjectIdentifier(dotted).dump()


@dataclass(frozen=True)
class Accuracy:
    """The accuracy of genTime that the TSA claims (RFC 3161 section 2.4.2).

    0 <= seconds, 0 <= millis <= 999, 0 <= micros <= 999; zero parts are
    left out of the encoding.
    """

    seconds: int = 1
    millis: int = 0
    micros: int = 0

    def encode(self) -> bytes:
        """Encode the Accuracy SEQUENCE."""
        if not (
            0 <= self.millis <= 999 and 0 <= self.micros <= 999 and self.seconds >= 0
        ):
            raise ValueError(
                f"accuracy {self} is out of range; millis and micros must be "
                "in 0..999 and seconds at least 0"
            )
        value: dict[str, int] = {}
        if self.seconds:
            value["seconds"] = self.seconds
        if self.millis:
            value["millis"] = self.millis
        if self.micros:
            value["micros"] = self.micros
        return tsp.Accuracy(value).dump()


def encode_message_imprint(hash_algorithm: str, digest: bytes) -> bytes:
    """Encode a MessageImprint with the algorithm parameters left absent."""
    algorithm = der.tlv(
        der.SEQUENCE, oid(algos.DigestAlgorithmId.unmap(hash_algorithm))
    )
    return der.tlv(der.SEQUENCE, algorithm + der.tlv(der.OCTET_STRING, digest))


class TokenSigner:
    """Encodes and signs tokens for one TSA key, certificate and policy."""

    def __init__(
        self, credentials: TsaCredentials, policy: str, accuracy: Accuracy
    ) -> None:
        key = credentials.private_key
        certificate = credentials.certificate
        certificate_der = certificate.public_bytes(serialization.Encoding.DER)
        parsed = asn1_x509.Certificate.load(certificate_der)
        self._key = key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            signature_algorithm = algos.SignedDigestAlgorithm(
                {"algorithm": "sha256_ecdsa"}
            )
        elif isinstance(key, rsa.RSAPrivateKey):
            signature_algorithm = algos.SignedDigestAlgorithm(
                {"algorithm": "sha256_rsa", "parameters": core.Null()}
            )
        else:
            raise TypeError(f"unsupported TSA key type {type(key).__name__}")

        # Constant TSTInfo fields: version, policy, accuracy and tsa name.
        self._version = der.integer(1)
        self._policy = oid(policy)
        self._accuracy = accuracy.encode()
        tsa_name = asn1_x509.GeneralName(name="directory_name", value=parsed.subject)
        self._tsa_name = der.tlv(0xA0, tsa_name.dump())

        # certificates [0] IMPLICIT: the TSA certificate and the issuers
        # below the trust anchor; a self-signed root is left to the verifier.
        carried = [certificate_der]
        for issuer in credentials.chain:
            if issuer.issuer != issuer.subject:
                carried.append(issuer.public_bytes(serialization.Encoding.DER))
        # CertificateSet is a SET OF, which DER orders by encoding.
        self._certificates = der.tlv(0xA0, b"".join(sorted(carried)))

        # Constant signed attributes and SignerInfo fields.
        content_type = cms.CMSAttribute(
            {"type": "content_type", "values": [ID_CT_TSTINFO]}
        ).dump()
        signing_certificate = cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [
                    {
                        "certs": [
                            {
                                "cert_hash": hashlib.sha256(certificate_der).digest(),
                                "issuer_serial": {
                                    "issuer": [
                                        asn1_x509.GeneralName(
                                            name="directory_name",
                                            value=parsed.issuer,
                                        )
                                    ],
                                    "serial_number": parsed.serial_number,
                                },
                            }
                        ]
                    }
                ],
            }
        ).dump()
        self._constant_attributes = [content_type, signing_certificate]
        self._message_digest_type = oid(ID_MESSAGE_DIGEST)
        sid = cms.IssuerAndSerialNumber(
            {"issuer": parsed.issuer, "serial_number": parsed.serial_number}
        ).dump()
        sha256 = der.tlv(der.SEQUENCE, oid("2.16.840.1.101.3.4.2.1"))
        self._signer_info_head = der.integer(1) + sid + sha256
        self._signature_algorithm = signature_algorithm.dump()
        self._signed_data_head = der.integer(3) + der.tlv(der.SET, sha256)
        self._encapsulated_type = oid(ID_CT_TSTINFO)
        self._content_info_type = oid(ID_SIGNED_DATA)

    def encode_tst_info(
        self,
        message_imprint: bytes,
        serial_number: int,
        gen_time: datetime,
        nonce: int | None,
    ) -> bytes:
        """Encode TSTInfo around an already encoded MessageImprint."""
        parts = [
            self._version,
            self._policy,
            message_imprint,
            der.integer(serial_number),
            der.generalized_time(gen_time),
            self._accuracy,
        ]
        if nonce is not None:
            parts.append(der.integer(nonce))
        parts.append(self._tsa_name)
        return der.tlv(der.SEQUENCE, b"".join(parts))

    def sign(self, tst_info: bytes, include_certificates: bool) -> bytes:
        """Wrap TSTInfo in a signed ContentInfo (the TimeStampToken) and return it."""
        message_digest = der.tlv(
            der.SEQUENCE,
            self._message_digest_type
            + der.tlv(
                der.SET, der.tlv(der.OCTET_STRING, hashlib.sha256(tst_info).digest())
            ),
        )
        # DER orders the members of a SET OF by their encodings (X.690 11.6).
        attributes = b"".join(sorted([*self._constant_attributes, message_digest]))
        signature = self._sign(der.tlv(der.SET, attributes))
        signer_info = der.tlv(
            der.SEQUENCE,
            self._signer_info_head
            + der.tlv(0xA0, attributes)
            + self._signature_algorithm
            + der.tlv(der.OCTET_STRING, signature),
        )
        encapsulated = der.tlv(
            der.SEQUENCE,
            self._encapsulated_type
            + der.tlv(0xA0, der.tlv(der.OCTET_STRING, tst_info)),
        )
        body = self._signed_data_head + encapsulated
        if include_certificates:
            body += self._certificates
        body += der.tlv(der.SET, signer_info)
        return der.tlv(
            der.SEQUENCE,
            self._content_info_type + der.tlv(0xA0, der.tlv(der.SEQUENCE, body)),
        )

    def _sign(self, data: bytes) -> bytes:
        # hashlib then a prehashed signature is faster than letting
        # cryptography hash, which fetches the digest from OpenSSL per call.
        digest = hashlib.sha256(data).digest()
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(digest, _ECDSA_PREHASHED)
        return self._key.sign(digest, padding.PKCS1v15(), _PREHASHED)
