"""Per-party API tokens: issued once, stored only as SHA-256 hashes.

A token reads `<party_id>.<secret>`, where the secret is 32 random bytes in
URL-safe base64. The party id in front selects the stored hash, and the
secret's hash is compared with `hmac.compare_digest`, so that neither the
lookup nor the comparison depends on how much of a guess was right. The
operator token, which may enrol parties, is held the same way under the
reserved id `operator`.

`TokenStore` keeps the hashes in a JSON file when given a path, so that the
tokens survive a restart. The file contains no secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from pathlib import Path

from aiohttp import web

from gateway.errors import Forbidden, Unauthenticated

OPERATOR = "operator"


def _hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class TokenStore:
    """The SHA-256 hashes of the API tokens, by party id."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._hashes: dict[str, bytes] = {}
        self._lock = threading.Lock()
        if path is not None and path.exists():
            stored = json.loads(path.read_text())
            self._hashes = {key: bytes.fromhex(value) for key, value in stored.items()}

    def issue(self, party_id: str) -> str:
        """Create and return a new token for `party_id`, replacing any earlier one."""
        if "." in party_id or not party_id:
            raise ValueError(f"party id {party_id!r} must be non-empty without '.'")
        secret = secrets.token_urlsafe(32)
        with self._lock:
            self._hashes[party_id] = _hash_secret(secret)
            self._save()
        return f"{party_id}.{secret}"

    def authenticate(self, token: str) -> str:
        """Return the party id that `token` belongs to; raise Unauthenticated if none."""
        party_id, dot, secret = token.partition(".")
        expected = self._hashes.get(party_id)
        # Compare against a dummy hash for unknown ids, so that the time taken
        # does not reveal which party ids exist.
        candidate = _hash_secret(secret)
        matches = hmac.compare_digest(candidate, expected or bytes(32))
        if expected is None or not dot or not matches:
            raise Unauthenticated(
                "invalid API token; use the token issued at enrolment"
            )
        return party_id

    def _save(self) -> None:
        if self._path is None:
            return
        data = {key: value.hex() for key, value in self._hashes.items()}
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(temporary, self._path)


TOKENS_KEY = web.AppKey("tokens", TokenStore)


def bearer_token(request: web.Request) -> str:
    """Return the token of the `Authorization: Bearer` header or raise Unauthenticated."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing API token; send 'Authorization: Bearer <token>'")
    return token.strip()


def authenticated_party(request: web.Request) -> str:
    """Return the party id of the request's API token or raise Unauthenticated."""
    return request.app[TOKENS_KEY].authenticate(bearer_token(request))


def require_operator(request: web.Request) -> None:
    """Raise unless the request carries the operator token."""
    if authenticated_party(request) != OPERATOR:
        raise Forbidden("only the operator token may enrol parties")
