"""Parse, check and build RFC 3161 TimeStampReq messages."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass

from asn1crypto import core, tsp

from ledger.tsa.errors import RequestRejected
from ledger.tsa.token import encode_message_imprint

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


def parse_request(
    request_der: bytes, accepted_policies: Collection[str]
) -> TimeStampRequest:
    """Parse and check a DER TimeStampReq.

    Raises RequestRejected with the PKIFailureInfo bit that RFC 3161
    section 2.4.2 names: badDataFormat for malformed DER, another version
    than 1, a wrong imprint length or an oversized nonce; badAlg for a hash
    algorithm other than SHA-256/384/512; unacceptedPolicy for a policy
    outside `accepted_policies`; unacceptedExtension for any extension.
    """
    if len(request_der) > MAX_REQUEST_SIZE:
        raise RequestRejected(
            "bad_data_format",
            f"request of {len(request_der)} bytes exceeds {MAX_REQUEST_SIZE}",
        )
    try:
        request = tsp.TimeStampReq.load(request_der, strict=True)
        version = request["version"].native
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]
        algorithm_oid = algorithm["algorithm"].dotted
        algorithm_name = algorithm["algorithm"].native
        parameters = algorithm["parameters"]
        digest = imprint["hashed_message"].native
        policy = request["req_policy"].dotted if request["req_policy"].native else None
        nonce = request["nonce"].native
        cert_req = bool(request["cert_req"].native)
        has_extensions = request["extensions"].native is not None
    except (ValueError, TypeError, KeyError) as error:
        raise RequestRejected(
            "bad_data_format", f"malformed TimeStampReq: {error}"
        ) from error

    if version != "v1":
        raise RequestRejected("bad_data_format", f"unsupported version {version}")
    if algorithm_name not in DIGEST_SIZES:
        raise RequestRejected(
            "bad_alg",
            f"hash algorithm {algorithm_oid} is not accepted; use SHA-256, "
            "SHA-384 or SHA-512",
        )
    if not isinstance(parameters, core.Void | core.Null):
        raise RequestRejected(
            "bad_alg", f"hash algorithm {algorithm_oid} has unexpected parameters"
        )
    if len(digest) != DIGEST_SIZES[algorithm_name]:
        raise RequestRejected(
            "bad_data_format",
            f"{algorithm_name} imprint has {len(digest)} bytes, expected "
            f"{DIGEST_SIZES[algorithm_name]}",
        )
    if policy is not None and policy not in accepted_policies:
        raise RequestRejected(
            "unaccepted_policy",
            f"policy {policy} is not accepted; accepted: "
            + ", ".join(sorted(accepted_policies)),
        )
    if nonce is not None and abs(nonce).bit_length() > MAX_NONCE_BITS:
        raise RequestRejected(
            "bad_data_format", f"nonce exceeds {MAX_NONCE_BITS} bits"
        )
    if has_extensions:
        raise RequestRejected(
            "unaccepted_extension", "this TSA accepts no request extensions"
        )

    return TimeStampRequest(
        hash_algorithm=algorithm_name,
        digest=digest,
        message_imprint=_reencode_imprint(imprint),
        policy=policy,
        nonce=nonce,
        cert_req=cert_req,
    )


def _reencode_imprint(imprint: tsp.MessageImprint) -> bytes:
    # A NULL parameter in the request is echoed, because some verifiers
    # compare the AlgorithmIdentifier of the token with the request's.
    algorithm = imprint["hash_algorithm"]
    if isinstance(algorithm["parameters"], core.Null):
        return tsp.MessageImprint(
            {
                "hash_algorithm": {
                    "algorithm": algorithm["algorithm"].native,
                    "parameters": core.Null(),
                },
                "hashed_message": imprint["hashed_message"].native,
            }
        ).dump()
    return encode_message_imprint(
        algorithm["algorithm"].native, imprint["hashed_message"].native
    )


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
