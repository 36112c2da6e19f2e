"""Request time-stamp tokens from an RFC 3161 server over HTTP."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

import aiohttp

from ledger.tsa.authority import TimeStampAuthority
from ledger.tsa.errors import TimeStampError
from ledger.tsa.request import build_request, new_nonce
from ledger.tsa.response import token_from_response
from ledger.tsa.verify import parse_token_info

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30)

Stamper = Callable[[bytes], Awaitable[bytes]]


async def request_token(
    url: str,
    digest: bytes,
    hash_algorithm: str = "sha256",
    *,
    nonce: bool = True,
    cert_req: bool = True,
    policy: str | None = None,
    session: aiohttp.ClientSession | None = None,
) -> bytes:
    """Request a TimeStampToken for `digest` from the RFC 3161 server at `url`.

    Checks that the token's imprint is `digest` and that it echoes the
    nonce, but not its signature or certificates: call verify_token with
    the TSA's trust anchor for that. Raises TimeStampError when the server
    rejects the request, answers with another HTTP status or content type,
    or returns a token for something else.
    """
    nonce_value = new_nonce() if nonce else None
    body = build_request(
        digest, hash_algorithm, nonce=nonce_value, cert_req=cert_req, policy=policy
    )
    if session is None:
        async with aiohttp.ClientSession(timeout=DEFAULT_TIMEOUT) as own_session:
            reply = await _post(own_session, url, body)
    else:
        reply = await _post(session, url, body)

    token = token_from_response(reply)
    info = parse_token_info(token)
    imprint = info["message_imprint"]
    if imprint["hash_algorithm"]["algorithm"].native != hash_algorithm:
        raise TimeStampError(
            f"TSA at {url} returned a {imprint['hash_algorithm']['algorithm'].native} "
            f"imprint for a {hash_algorithm} request"
        )
    if not hmac.compare_digest(imprint["hashed_message"].native, digest):
        raise TimeStampError(f"TSA at {url} time-stamped another digest")
    if info["nonce"].native != nonce_value:
        raise TimeStampError(
            f"TSA at {url} returned nonce {info['nonce'].native}, sent {nonce_value}"
        )
    return token


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> bytes:
    try:
        async with session.post(
            url, data=body, headers={"Content-Type": QUERY_TYPE}
        ) as response:
            reply = await response.read()
            content_type = response.content_type
            status = response.status
    except aiohttp.ClientError as error:
        raise TimeStampError(f"time stamp request to {url} failed: {error}") from error
    if status != 200:
        raise TimeStampError(f"TSA at {url} responded with HTTP {status}: {reply[:200]!r}")
    if content_type != REPLY_TYPE:
        raise TimeStampError(
            f"TSA at {url} responded with content type {content_type}, "
            f"expected {REPLY_TYPE}"
        )
    return reply


def local_stamper(authority: TimeStampAuthority) -> Stamper:
    """Return an async callable that time-stamps data with an in-process authority."""

    async def stamp(data: bytes) -> bytes:
        return authority.stamp(data)

    return stamp


def remote_stamper(url: str, session: aiohttp.ClientSession | None = None) -> Stamper:
    """Return an async callable that time-stamps data at an RFC 3161 URL.

    The callable sends the SHA-256 digest of the data with a nonce and
    certReq set, and returns the token.
    """

    async def stamp(data: bytes) -> bytes:
        digest = hashlib.sha256(data).digest()
        return await request_token(url, digest, session=session)

    return stamp


def stamper_for(
    source: TimeStampAuthority | str, session: aiohttp.ClientSession | None = None
) -> Stamper:
    """Return a stamping callable for a local authority or a TSA URL."""
    if isinstance(source, TimeStampAuthority):
        return local_stamper(source)
    return remote_stamper(source, session)
