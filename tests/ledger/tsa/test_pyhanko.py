"""pyHanko: its HTTP time stamper against POST /tsa, and the in-process stamper."""

from __future__ import annotations

import hashlib

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.timestamps import HTTPTimeStamper, TimestampRequestError
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from ledger.tsa.pyhanko_stamper import AuthorityTimeStamper
from ledger.tsa.server import make_app
from ledger.tsa.verify import verify_token


def validation_context(root) -> ValidationContext:
    anchor = asn1_x509.Certificate.load(root.public_bytes(serialization.Encoding.DER))
    return ValidationContext(
        trust_roots=[anchor], allow_fetching=False, revocation_mode="soft-fail"
    )


async def check_with_pyhanko(token, digest: bytes, root) -> dict:
    return await validate_tst_signed_data(
        token["content"], validation_context(root), lambda algorithm: digest
    )


async def test_pyhanko_http_stamper_accepts_tokens(aiohttp_server, authority, root):
    server = await aiohttp_server(make_app(authority), host="127.0.0.1")
    stamper = HTTPTimeStamper(str(server.make_url("/tsa")))
    digest = hashlib.sha256(b"signed PDF byte range").digest()

    token = await stamper.async_timestamp(digest, "sha256")

    status = await check_with_pyhanko(token, digest, root)
    assert status["intact"]
    assert status["valid"]
    assert status["trust_problem_indic"] is None
    assert status["validation_path"] is not None
    verify_token(token.dump(), digest, [root])


async def test_authority_stamper_accepts_tokens(authority, root):
    stamper = AuthorityTimeStamper(authority)
    digest = hashlib.sha512(b"countersignature").digest()

    token = await stamper.async_timestamp(digest, "sha512")

    status = await check_with_pyhanko(token, digest, root)
    assert status["trust_problem_indic"] is None
    info = verify_token(token.dump(), digest, [root], hash_algorithm="sha512")
    assert info.nonce is not None


async def test_authority_stamper_reports_rejection(ecdsa_authority):
    stamper = AuthorityTimeStamper(ecdsa_authority)

    with pytest.raises(
        TimestampRequestError, match="unrecognized or unsupported|bad_alg"
    ):
        await stamper.async_timestamp(hashlib.sha1(b"old").digest(), "sha1")


async def test_pyhanko_detects_other_digest(ecdsa_authority, pki):
    root = pki["ecdsa-p256"][1].chain[-1]
    stamper = AuthorityTimeStamper(ecdsa_authority)
    token = await stamper.async_timestamp(hashlib.sha256(b"one").digest(), "sha256")

    status = await check_with_pyhanko(token, hashlib.sha256(b"two").digest(), root)

    assert not status["intact"]
