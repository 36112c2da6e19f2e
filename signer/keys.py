"""Signing keys for PDF signatures, held in memory as loaded key objects.

pyHanko's `SimpleSigner` keeps the private key as PKCS#8 DER and parses it
again with `load_der_private_key` for every raw signature, which costs tens
of milliseconds for an RSA key. `InMemorySigner` keeps the parsed
`cryptography` key object and the parsed certificates for the life of the
signer, and returns a placeholder for pyHanko's size-estimation dry run
instead of signing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from asn1crypto import cms, tsp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign.attributes import CMSAttributeProvider
from pyhanko.sign.general import as_signing_certificate_v2
from pyhanko.sign.signers.pdf_cms import SignedAttributeProviderSpec, Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signer.errors import SigningError

# The largest DER encoding of an ECDSA (r, s) pair adds to the two integers a
# SEQUENCE header, two INTEGER headers and a sign byte per INTEGER.
_ECDSA_DER_OVERHEAD = 8

# A bound on what a PAdES CMS SignedData adds to its certificates, signature
# and time-stamp token: framing, algorithm identifiers, the issuer name twice
# (signer identifier and signing-certificate-v2), digests and attribute OIDs.
_CMS_FRAMING_BOUND = 1024

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class KeyAlgorithm(enum.Enum):
    """Key types for signer certificates.

    ECDSA P-256 is the default because poppler's `pdfsig` and Adobe Reader
    verify it, while they cannot verify Ed25519 PDF signatures.
    """

    ECDSA_P256 = "ecdsa-p256"
    RSA_3072 = "rsa-3072"


def generate_signing_key(
    algorithm: KeyAlgorithm = KeyAlgorithm.ECDSA_P256,
) -> SigningKey:
    """Generate a fresh private key of the given algorithm."""
    if algorithm is KeyAlgorithm.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def to_asn1_certificate(
    certificate: x509.Certificate | asn1_x509.Certificate,
) -> asn1_x509.Certificate:
    """Return `certificate` as an asn1crypto certificate, converting a
    `cryptography` one through its DER encoding."""
    if isinstance(certificate, asn1_x509.Certificate):
        return certificate
    der = certificate.public_bytes(serialization.Encoding.DER)
    return asn1_x509.Certificate.load(der)


class _SigningCertificateV2(CMSAttributeProvider):
    """The signing-certificate-v2 attribute (RFC 5035), encoded once.

    asn1crypto re-encodes a freshly built attribute on every signature,
    including the issuer name with its sorted RDN sets. An attribute value
    parsed from DER keeps its encoding and costs nothing to serialise.
    """

    attribute_type = "signing_certificate_v2"

    def __init__(self, der: bytes) -> None:
        self._der = der

    async def build_attr_value(self, dry_run: bool = False) -> tsp.SigningCertificateV2:
        return tsp.SigningCertificateV2.load(self._der)


class _PadesSignedAttributes(SignedAttributeProviderSpec):
    """The signed attributes of a PAdES baseline signature.

    pyHanko adds content-type and message-digest itself. Like pyHanko's own
    CAdES provider for PAdES (0.38), this leaves out the signing-time
    attribute, which PAdES forbids, so the only other one is
    signing-certificate-v2.
    """

    def __init__(self, provider: _SigningCertificateV2) -> None:
        self._provider = provider

    def signed_attr_providers(
        self, data_digest: bytes, digest_algorithm: str
    ) -> Iterable[CMSAttributeProvider]:
        yield self._provider


class InMemorySigner(Signer):
    """A pyHanko `Signer` over a private key object that is already loaded.

    The certificate and chain are converted to asn1crypto once, here, and
    pyHanko reuses their cached DER encodings in every CMS structure it
    builds. The key, a `cryptography` key object or an asn1crypto
    PrivateKeyInfo, must be ECDSA or RSA and must match the certificate.
    The signed attributes are those of PAdES baseline, so this signer makes
    PAdES signatures (subfilter ETSI.CAdES.detached) only.
    """

    def __init__(
        self,
        private_key: SigningKey | asn1_keys.PrivateKeyInfo,
        certificate: x509.Certificate | asn1_x509.Certificate,
        chain: Iterable[x509.Certificate | asn1_x509.Certificate] = (),
        *,
        embed_roots: bool = True,
    ) -> None:
        if isinstance(private_key, asn1_keys.PrivateKeyInfo):
            # Parsed once here, where SimpleSigner parses it for every signature.
            private_key = serialization.load_der_private_key(  # type: ignore[assignment]
                private_key.dump(), password=None
            )
        if not isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise SigningError(
                f"unsupported signing key type {type(private_key).__name__}; "
                "use an ECDSA or RSA key"
            )
        signing_cert = to_asn1_certificate(certificate)
        registry = SimpleCertificateStore.from_certs(
            [to_asn1_certificate(cert) for cert in chain]
        )
        super().__init__(
            embed_roots=embed_roots,
            signing_cert=signing_cert,
            cert_registry=registry,
        )
        public_der = private_key.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        if public_der != signing_cert.public_key.dump():
            raise SigningError(
                "the private key does not match the public key of certificate "
                f"{signing_cert.subject.human_friendly!r}"
            )
        self._private_key = private_key
        signing_certificate = as_signing_certificate_v2(signing_cert).dump()
        self.signed_attr_prov_spec = _PadesSignedAttributes(
            _SigningCertificateV2(signing_certificate)
        )
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            order_bytes = (private_key.curve.key_size + 7) // 8
            self._max_signature_size = 2 * order_bytes + _ECDSA_DER_OVERHEAD
        else:
            self._max_signature_size = private_key.key_size // 8

    def cms_size_bound(self, unsigned_attributes_size: int) -> int:
        """Return an upper bound on the DER size of a CMS SignedData made by
        this signer whose unsigned attributes take `unsigned_attributes_size`
        bytes, such as a signature time-stamp token."""
        signing_cert = self.signing_cert
        assert signing_cert is not None, "set in __init__"
        certificates = [signing_cert, *self.cert_registry]
        issuer = len(signing_cert.issuer.dump())
        return (
            sum(len(cert.dump()) for cert in certificates)
            + self._max_signature_size
            + 2 * issuer
            + unsigned_attributes_size
            + _CMS_FRAMING_BOUND
        )

    async def unsigned_attrs(self, *args, **kwargs):  # type: ignore[override]
        """Return pyHanko's unsigned attributes (the signature time-stamp
        token) as a lazily parsed copy of their DER encoding.

        pyHanko retags them as [1] IMPLICIT inside SignerInfo. asn1crypto
        copies a parsed object child by child and re-encodes it, time-stamp
        certificates included, but copies an unparsed one with its encoding.
        """
        attributes = await super().unsigned_attrs(*args, **kwargs)
        if attributes is None:
            return None
        return cms.CMSAttributes.load(attributes.dump())

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        """Sign `data` with the held key, or return a placeholder of the
        maximum signature size when pyHanko only estimates the CMS size."""
        if dry_run:
            return bytes(self._max_signature_size)
        return self.sign_raw(data, digest_algorithm)

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        """Sign `data`, hashing it with `digest_algorithm` (sha256, sha384 or
        sha512), as ECDSA or RSA PKCS#1 v1.5 depending on the key."""
        try:
            hash_algorithm = _HASHES[digest_algorithm]()
        except KeyError:
            raise SigningError(
                f"unsupported digest algorithm {digest_algorithm!r}; "
                f"use one of {sorted(_HASHES)}"
            ) from None
        key = self._private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(hash_algorithm))
        return key.sign(data, padding.PKCS1v15(), hash_algorithm)
