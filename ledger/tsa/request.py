"""Parse, check and build RFC 3161 TimeStampReq messages."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass

from asn1crypto import core, tsp

from ledger.tsa import der
from ledger.tsa.errors import RequestRejected

# Digest sizes in bytes of the message imprint algorithms the TSA accepts.
DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
MAX_REQUEST_SIZE = 16 * 1024
MAX_NONCE_BITS = 512


@dataclass(frozen=True)
class TimeStampRequest:
    """A checked TimeStampReq.

    `message_imprint` is the request's MessageImprint re-encoded in DER, so
    the token echoes the same algorithm and digest (RFC 3161 section 2.4.2).
    """

    hash_algorithm: str
    digest: bytes
    message_imprint: bytes
    policy: str | None
    nonce: int | None
    cert_req: bool


# DER content octets of the imprint algorithm OIDs (NIST arc 2.16.840.1.101.3.4.2).
_DIGEST_OIDS = {
    bytes.fromhex("608648016503040201"): "sha256",
    bytes.fromhex("608648016503040202"): "sha384",
    bytes.fromhex("608648016503040203"): "sha512",
}
_NULL = b"\x05\x00"


def parse_request(
    request_der: bytes, accepted_policies: Collection[str]
) -> TimeStampRequest:
    """Parse and check a DER TimeStampReq (RFC 3161 section 2.4.1).

    Raises RequestRejected with the PKIFailureInfo bit of RFC 3161
    section 2.4.2. badDataFormat marks input that is not a strict DER
    TimeStampReq, a version other than 1, a wrong imprint length or a
    nonce over MAX_NONCE_BITS. badAlg marks a hash algorithm other than
    SHA-256/384/512, unacceptedPolicy a policy outside
    `accepted_policies`, and unacceptedExtension any extension.
    """
    if len(request_der) > MAX_REQUEST_SIZE:
        raise RequestRejected(
            "bad_data_format",
            f"request of {len(request_der)} bytes exceeds {MAX_REQUEST_SIZE}",
        )
    try:
        return _parse(request_der, accepted_policies)
    except der.DerError as error:
        raise RequestRejected(
            "bad_data_format", f"malformed TimeStampReq: {error}"
        ) from error


def _parse(data: bytes, accepted_policies: Collection[str]) -> TimeStampRequest:
    # The fields are read by hand because asn1crypto's parser costs more
    # than signing the token; the tests compare this parser with asn1crypto.
    tag, position, end = der.read_element(data, 0, len(data))
    if tag != der.SEQUENCE or end != len(data):
        raise der.DerError("not a single SEQUENCE")

    # 1. version, which must be v1.
    tag, start, stop = der.read_element(data, position, end)
    if tag != der.INTEGER:
        raise der.DerError("version is not an INTEGER")
    version = der.read_integer(data, start, stop)
    if version != 1:
        raise RequestRejected("bad_data_format", f"unsupported version {version}")
    position = stop

    # 2. messageImprint: AlgorithmIdentifier and the digest.
    tag, imprint_start, imprint_end = der.read_element(data, position, end)
    if tag != der.SEQUENCE:
        raise der.DerError("messageImprint is not a SEQUENCE")
    message_imprint = data[position:imprint_end]
    position = imprint_end
    tag, algorithm_start, algorithm_end = der.read_element(
        data, imprint_start, imprint_end
    )
    if tag != der.SEQUENCE:
        raise der.DerError("hashAlgorithm is not a SEQUENCE")
    tag, oid_start, oid_end = der.read_element(data, algorithm_start, algorithm_end)
    if tag != OBJECT_IDENTIFIER:
        raise der.DerError("hashAlgorithm has no OBJECT IDENTIFIER")
    parameters = data[oid_end:algorithm_end]
    tag, digest_start, digest_end = der.read_element(data, algorithm_end, imprint_end)
    if tag != der.OCTET_STRING or digest_end != imprint_end:
        raise der.DerError("hashedMessage is not a single OCTET STRING")
    algorithm_name = _DIGEST_OIDS.get(data[oid_start:oid_end])
    if algorithm_name is None:
        raise RequestRejected(
            "bad_alg",
            f"hash algorithm {_dotted(data[oid_start:oid_end])} is not accepted; "
            "use SHA-256, SHA-384 or SHA-512",
        )
    if parameters not in (b"", _NULL):
        raise RequestRejected(
            "bad_alg", f"hash algorithm {algorithm_name} has parameters other than NULL"
        )
    digest = data[digest_start:digest_end]
    if len(digest) != DIGEST_SIZES[algorithm_name]:
        raise RequestRejected(
            "bad_data_format",
            f"{algorithm_name} imprint has {len(digest)} bytes, expected "
            f"{DIGEST_SIZES[algorithm_name]}",
        )

    # 3. The optional fields: a repeated or out-of-order one is rejected.
    policy = None
    nonce = None
    cert_req = False
    has_extensions = False
    order = 0
    while position < end:
        tag, start, stop = der.read_element(data, position, end)
        rank = _OPTIONAL_ORDER.get(tag, 0)
        if rank <= order:
            raise der.DerError(f"unexpected element with tag 0x{tag:02x}")
        order = rank
        if tag == OBJECT_IDENTIFIER:
            policy = _dotted(data[start:stop])
        elif tag == der.INTEGER:
            nonce = der.read_integer(data, start, stop)
        elif tag == BOOLEAN:
            if stop - start != 1 or data[start] not in (0x00, 0xFF):
                raise der.DerError("certReq is not a DER BOOLEAN")
            cert_req = data[start] == 0xFF
        else:
            has_extensions = True
        position = stop

    # 4. Check what the TSA accepts.
    if policy is not None and policy not in accepted_policies:
        raise RequestRejected(
            "unaccepted_policy",
            f"policy {policy} is not accepted; accepted: "
            + ", ".join(sorted(accepted_policies)),
        )
    if nonce is not None and abs(nonce).bit_length() > MAX_NONCE_BITS:
        raise RequestRejected("bad_data_format", f"nonce exceeds {MAX_NONCE_BITS} bits")
    if has_extensions:
        raise RequestRejected(
            "unaccepted_extension", "this TSA accepts no request extensions"
        )
    return TimeStampRequest(
        hash_algorithm=algorithm_name,
        digest=digest,
        message_imprint=message_imprint,
        policy=policy,
        nonce=nonce,
        cert_req=cert_req,
    )


OBJECT_IDENTIFIER = 0x06
BOOLEAN = 0x01
# Rank of each optional TimeStampReq field: reqPolicy, nonce, certReq, [0] extensions.
_OPTIONAL_ORDER = {OBJECT_IDENTIFIER: 1, der.INTEGER: 2, BOOLEAN: 3, 0xA0: 4}


def _dotted(content: bytes) -> str:
    """Decode OBJECT IDENTIFIER content octets to dotted form, strictly."""
    try:
        return core.ObjectIdentifier.load(der.tlv(OBJECT_IDENTIFIER, content)).dotted
    except ValueError as error:
        raise der.DerError(f"malformed OBJECT IDENTIFIER {content.hex()}") from error


def new_nonce() -> int:
    """Return a random 64-bit nonce with the top bit set, so it is always 8 bytes."""
    return secrets.randbits(63) | 1 << 63


def build_request(
    digest: bytes,
    hash_algorithm: str = "sha256",
    *,
    nonce: int | None = None,
    cert_req: bool = True,
    policy: str | None = None,
) -> bytes:
    """Encode a TimeStampReq for `digest`; len(digest) must fit hash_algorithm."""
    if DIGEST_SIZES.get(hash_algorithm) != len(digest):
        raise ValueError(
            f"digest of {len(digest)} bytes does not fit {hash_algorithm!r}; "
            f"use one of {sorted(DIGEST_SIZES)} with its digest size"
        )
    value: dict[str, object] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": hash_algorithm},
            "hashed_message": digest,
        },
        "cert_req": cert_req,
    }
    if policy is not None:
        value["req_policy"] = policy
    if nonce is not None:
        value["nonce"] = nonce
    return tsp.TimeStampReq(value).dump()
