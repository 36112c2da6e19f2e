"""Rejections: each bad request gets status rejection, the right bit and no token."""

from __future__ import annotations

import hashlib

import pytest
from asn1crypto import tsp
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.tsa.authority import TimeStampAuthority
from ledger.tsa.errors import RequestRejected
from ledger.tsa.request import build_request, parse_request
from ledger.tsa.response import TimeStampResp

from .helpers import openssl

# PKIFailureInfo bit numbers as RFC 3161 section 2.4.2 lists them.
RFC_3161_BITS = {
    "bad_alg": 0,
    "bad_request": 2,
    "bad_data_format": 5,
    "unaccepted_policy": 15,
    "unaccepted_extension": 16,
    "system_failure": 25,
}


def set_bits(bit_string) -> set[int]:
    """Return the numbers of the bits set in a BIT STRING, read from its octets."""
    octets = bit_string.contents[1:]
    return {
        index
        for index in range(len(octets) * 8)
        if octets[index // 8] >> (7 - index % 8) & 1
    }


DIGEST = hashlib.sha256(b"rejections").digest()


def request_with(**fields: object) -> bytes:
    """Encode a TimeStampReq through asn1crypto with fields overriding a valid one."""
    value: dict[str, object] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": "sha256"},
            "hashed_message": DIGEST,
        },
    }
    value.update(fields)
    return tsp.TimeStampReq(value).dump()


VALID = build_request(DIGEST, nonce=42, cert_req=True)

REJECTIONS = {
    "empty body": (b"", "bad_data_format"),
    "not DER": (b"GET / HTTP/1.1\r\n\r\n", "bad_data_format"),
    "truncated": (VALID[:-3], "bad_data_format"),
    "trailing bytes": (VALID + b"\x00", "bad_data_format"),
    "indefinite length": (b"\x30\x80" + VALID[2:] + b"\x00\x00", "bad_data_format"),
    "version 2": (request_with(version=2), "bad_data_format"),
    "sha1 imprint": (
        request_with(
            message_imprint={
                "hash_algorithm": {"algorithm": "sha1"},
                "hashed_message": hashlib.sha1(b"x").digest(),
            }
        ),
        "bad_alg",
    ),
    "md5 imprint": (
        request_with(
            message_imprint={
                "hash_algorithm": {"algorithm": "md5"},
                "hashed_message": hashlib.md5(b"x").digest(),
            }
        ),
        "bad_alg",
    ),
    "unknown algorithm": (
        request_with(
            message_imprint={
                "hash_algorithm": {"algorithm": "1.2.3.4.5"},
                "hashed_message": DIGEST,
            }
        ),
        "bad_alg",
    ),
    "short sha256 imprint": (
        request_with(
            message_imprint={
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": DIGEST[:31],
            }
        ),
        "bad_data_format",
    ),
    "sha512 imprint of sha256 size": (
        request_with(
            message_imprint={
                "hash_algorithm": {"algorithm": "sha512"},
                "hashed_message": DIGEST,
            }
        ),
        "bad_data_format",
    ),
    "unaccepted policy": (request_with(req_policy="1.2.3.4"), "unaccepted_policy"),
    "extension": (
        request_with(
            extensions=[{"extn_id": "1.2.3.4", "critical": False, "extn_value": b"x"}]
        ),
        "unaccepted_extension",
    ),
    "oversized nonce": (request_with(nonce=2**600), "bad_data_format"),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_rejection_status_and_bit(ecdsa_authority: TimeStampAuthority, case: str):
    request, expected_bit = REJECTIONS[case]

    response = TimeStampResp.load(ecdsa_authority.issue(request), strict=True)

    assert response["status"]["status"].native == "rejection"
    assert set_bits(response["status"]["fail_info"]) == {RFC_3161_BITS[expected_bit]}
    assert response["time_stamp_token"].native is None
    assert response["status"]["status_string"].native


def test_openssl_reads_rejection(ecdsa_authority, tmp_path):
    path = tmp_path / "reply.tsr"
    path.write_bytes(ecdsa_authority.issue(REJECTIONS["sha1 imprint"][0]))

    result = openssl("ts", "-reply", "-in", path, "-text")

    assert result.returncode == 0, result.stderr
    assert b"Status: Rejected" in result.stdout
    assert b"unrecognized or unsupported algorithm identifier" in result.stdout


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(ecdsa_authority_module, data):
    response = TimeStampResp.load(ecdsa_authority_module.issue(data), strict=True)
    if response["status"]["status"].native == "rejection":
        assert response["time_stamp_token"].native is None


@settings(max_examples=200, deadline=None)
@given(
    digest=st.sampled_from(["sha256", "sha384", "sha512"]).flatmap(
        lambda name: st.tuples(
            st.just(name),
            st.binary(
                min_size=hashlib.new(name).digest_size,
                max_size=hashlib.new(name).digest_size,
            ),
        )
    ),
    nonce=st.none() | st.integers(min_value=-(2**200), max_value=2**200),
    cert_req=st.booleans(),
    policy=st.none() | st.just("1.3.6.1.4.1.99999.7"),
    flip=st.integers(min_value=0, max_value=10_000),
)
def test_parser_agrees_with_asn1crypto(digest, nonce, cert_req, policy, flip):
    name, value = digest
    fields: dict[str, object] = {
        "message_imprint": {
            "hash_algorithm": {"algorithm": name},
            "hashed_message": value,
        },
        "cert_req": cert_req,
    }
    if nonce is not None:
        fields["nonce"] = nonce
    if policy is not None:
        fields["req_policy"] = policy
    encoded = request_with(**fields)

    parsed = parse_request(encoded, {"1.3.6.1.4.1.99999.7"})

    assert parsed.hash_algorithm == name
    assert parsed.digest == value
    assert parsed.nonce == nonce
    assert parsed.cert_req == cert_req
    assert parsed.policy == policy
    assert (
        parsed.message_imprint
        == tsp.TimeStampReq.load(encoded)["message_imprint"].dump()
    )

    # One flipped byte: our parser either rejects or reads what asn1crypto reads.
    mutated = bytearray(encoded)
    mutated[flip % len(mutated)] ^= 0x41
    try:
        ours = parse_request(bytes(mutated), {"1.3.6.1.4.1.99999.7"})
    except RequestRejected:
        return
    theirs = tsp.TimeStampReq.load(bytes(mutated), strict=True)
    assert ours.digest == theirs["message_imprint"]["hashed_message"].native
    assert ours.nonce == theirs["nonce"].native
    assert ours.cert_req == bool(theirs["cert_req"].native)
