"""The node's own Ed25519 key, created on first start, encrypted at rest.

The file format and the passphrase rules are those of `ledger.keys`: PKCS#8
PEM with the best available encryption under this process's LEDGER_PASSPHRASE.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.keys import (
    PASSPHRASE_VARIABLE,
    KeyFileError,
    PassphraseMissingError,
    generate_key_file,
    passphrase_from_environment,
    read_key_file,
)

__all__ = [
    "PASSPHRASE_VARIABLE",
    "KeyFileError",
    "PassphraseMissingError",
    "load_or_create_key",
    "passphrase",
]


def passphrase() -> bytes:
    """Return LEDGER_PASSPHRASE; raise PassphraseMissingError if it is unset."""
    return passphrase_from_environment()


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """Load the Ed25519 key at path, or create it there on first start."""
    secret = passphrase()
    if path.exists():
        return read_key_file(path, secret)
    path.parent.mkdir(parents=True, exist_ok=True)
    return generate_key_file(path, secret)
