"""Issuing tokens: independent verifiers (openssl, rfc3161-client) accept them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import rfc3161_client
from asn1crypto import cms, tsp
from cryptography import x509

from ledger.tsa.authority import DEFAULT_POLICY, TimeStampAuthority
from ledger.tsa.request import build_request
from ledger.tsa.response import token_from_response
from ledger.tsa.serial import SerialNumbers
from ledger.tsa.token import Accuracy
from ledger.tsa.verify import verify_token

from .helpers import openssl, write_pem


def issue_for(authority: TimeStampAuthority, data: bytes, tmp_path: Path, *flags: str):
    """Write data, an openssl query for it and the authority's reply; return paths."""
    data_path = tmp_path / "data.bin"
    data_path.write_bytes(data)
    query_path = tmp_path / "query.tsq"
    result = openssl("ts", "-query", "-data", data_path, *flags, "-out", query_path)
    assert result.returncode == 0, result.stderr
    reply_path = tmp_path / "reply.tsr"
    reply_path.write_bytes(authority.issue(query_path.read_bytes()))
    return data_path, query_path, reply_path


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
def test_openssl_verifies_token(authority, root, tmp_path, algorithm):
    data_path, query_path, reply_path = issue_for(
        authority, b"contract ledger checkpoint", tmp_path, f"-{algorithm}", "-cert"
    )
    root_path = write_pem(tmp_path / "root.pem", root)

    by_query = openssl(
        "ts",
        "-verify",
        "-in",
        reply_path,
        "-queryfile",
        query_path,
        "-CAfile",
        root_path,
    )
    by_data = openssl(
        "ts", "-verify", "-in", reply_path, "-data", data_path, "-CAfile", root_path
    )

    assert by_query.returncode == 0, by_query.stderr
    assert b"Verification: OK" in by_query.stdout
    assert by_data.returncode == 0, by_data.stderr


def test_openssl_verifies_token_without_certificate(
    authority, credentials, root, tmp_path
):
    _, query_path, reply_path = issue_for(authority, b"no cert", tmp_path)
    root_path = write_pem(tmp_path / "root.pem", root)
    tsa_path = write_pem(tmp_path / "tsa.pem", credentials.certificate)

    without = openssl(
        "ts",
        "-verify",
        "-in",
        reply_path,
        "-queryfile",
        query_path,
        "-CAfile",
        root_path,
    )
    with_untrusted = openssl(
        "ts",
        "-verify",
        "-in",
        reply_path,
        "-queryfile",
        query_path,
        "-CAfile",
        root_path,
        "-untrusted",
        tsa_path,
    )

    assert without.returncode != 0
    assert with_untrusted.returncode == 0, with_untrusted.stderr


def test_openssl_rejects_other_data(authority, root, tmp_path):
    _, _, reply_path = issue_for(authority, b"signed bytes", tmp_path, "-cert")
    other = tmp_path / "other.bin"
    other.write_bytes(b"other bytes")
    root_path = write_pem(tmp_path / "root.pem", root)

    result = openssl(
        "ts", "-verify", "-in", reply_path, "-data", other, "-CAfile", root_path
    )

    assert result.returncode != 0


def test_openssl_rejects_foreign_root(authority, pki, key_type, tmp_path):
    other_type = "rsa-2048" if key_type == "ecdsa-p256" else "ecdsa-p256"
    foreign_root = pki[other_type][1].chain[-1]
    _, query_path, reply_path = issue_for(authority, b"data", tmp_path, "-cert")
    root_path = write_pem(tmp_path / "foreign.pem", foreign_root)

    result = openssl(
        "ts",
        "-verify",
        "-in",
        reply_path,
        "-queryfile",
        query_path,
        "-CAfile",
        root_path,
    )

    assert result.returncode != 0


# rfc3161-client 1.0 builds requests with SHA-256 and SHA-512 only.
@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_rfc3161_client_verifies_token(authority, root, algorithm):
    message = b"countersigned contract"
    request = (
        rfc3161_client.TimestampRequestBuilder()
        .data(message)
        .hash_algorithm(getattr(rfc3161_client.HashAlgorithm, algorithm.upper()))
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    reply = authority.issue(request.as_bytes())
    response = rfc3161_client.decode_timestamp_response(reply)
    verifier = (
        rfc3161_client.VerifierBuilder.from_request(request)
        .add_root_certificate(root)
        .build()
    )

    assert response.status == rfc3161_client.PKIStatus.GRANTED
    assert response.tst_info.nonce == request.nonce
    verifier.verify_message(response, message)
    with pytest.raises(rfc3161_client.VerificationError):
        verifier.verify_message(response, b"another contract")


def test_rfc3161_client_reads_fields(authority, credentials):
    request = (
        rfc3161_client.TimestampRequestBuilder()
        .data(b"fields")
        .nonce(nonce=True)
        .cert_request(cert_request=False)
        .build()
    )
    response = rfc3161_client.decode_timestamp_response(
        authority.issue(request.as_bytes())
    )
    info = response.tst_info

    assert info.version == 1
    assert info.policy.dotted_string == DEFAULT_POLICY
    assert info.accuracy.seconds == 1
    assert info.nonce == request.nonce
    assert info.message_imprint.message == hashlib.sha512(b"fields").digest()
    assert len(response.signed_data.certificates) == 0


def parse_reply(reply: bytes) -> tuple[tsp.TimeStampResp, tsp.TSTInfo, cms.SignedData]:
    response = tsp.TimeStampResp.load(reply, strict=True)
    signed_data = response["time_stamp_token"]["content"]
    tst_info = signed_data["encap_content_info"]["content"].parsed
    return response, tst_info, signed_data


def test_nonce_echoed(authority):
    digest = hashlib.sha256(b"nonce").digest()
    for nonce in (1, 2**63 + 5, 2**160 - 1):
        _, tst_info, _ = parse_reply(
            authority.issue(build_request(digest, nonce=nonce))
        )
        assert tst_info["nonce"].native == nonce


def test_nonce_absent_when_not_sent(authority):
    digest = hashlib.sha256(b"no nonce").digest()
    _, tst_info, _ = parse_reply(authority.issue(build_request(digest)))
    assert tst_info["nonce"].native is None


def test_cert_req_honoured(authority, credentials):
    digest = hashlib.sha256(b"cert req").digest()
    _, _, with_certificate = parse_reply(
        authority.issue(build_request(digest, cert_req=True))
    )
    _, _, without = parse_reply(authority.issue(build_request(digest, cert_req=False)))
    carried = [
        x509.load_der_x509_certificate(choice.chosen.dump())
        for choice in with_certificate["certificates"]
    ]

    assert carried == [credentials.certificate]
    assert without["certificates"].native is None


def test_imprint_echoed_with_null_parameters(authority):
    digest = hashlib.sha384(b"null").digest()
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha384", "parameters": None},
                "hashed_message": digest,
            },
        }
    )
    request_imprint = request["message_imprint"].dump()

    _, tst_info, _ = parse_reply(authority.issue(request.dump()))

    assert tst_info["message_imprint"].dump() == request_imprint


def test_requested_policy_used_when_accepted(credentials, tsa_dir, root):
    authority = TimeStampAuthority(
        credentials,
        SerialNumbers(tsa_dir),
        policy="1.3.6.1.4.1.99999.1",
        accepted_policies=["1.3.6.1.4.1.99999.1"],
        accuracy=Accuracy(seconds=0, millis=500),
    )
    digest = hashlib.sha256(b"policy").digest()
    reply = authority.issue(build_request(digest, policy="1.3.6.1.4.1.99999.1"))
    _, tst_info, _ = parse_reply(reply)

    assert tst_info["policy"].dotted == "1.3.6.1.4.1.99999.1"
    assert tst_info["accuracy"].native == {
        "seconds": None,
        "millis": 500,
        "micros": None,
    }
    info = verify_token(token_from_response(reply), digest, [root])
    assert info.accuracy.total_seconds() == 0.5


def test_serial_numbers_distinct(authority):
    digest = hashlib.sha256(b"serial").digest()
    serials = {
        parse_reply(authority.issue(build_request(digest)))[1]["serial_number"].native
        for _ in range(200)
    }
    assert len(serials) == 200


def test_stamp_hashes_data(ecdsa_authority, pki):
    root = pki["ecdsa-p256"][1].chain[-1]
    token = ecdsa_authority.stamp(b"checkpoint note", "sha512")
    info = verify_token(token, hashlib.sha512(b"checkpoint note").digest(), [root])
    assert info.hash_algorithm == "sha512"


def test_stamp_prehashed_digest(ecdsa_authority, pki):
    root = pki["ecdsa-p256"][1].chain[-1]
    digest = hashlib.sha256(b"checkpoint note").digest()
    token = ecdsa_authority.stamp(digest, prehashed=True)
    info = verify_token(token, digest, [root])
    assert info.digest == digest


def test_stamp_rejects_wrong_digest_size(ecdsa_authority):
    with pytest.raises(ValueError, match="must have 32 bytes"):
        ecdsa_authority.stamp(b"short", prehashed=True)
