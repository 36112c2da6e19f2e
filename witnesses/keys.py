"""The node's own Ed25519 key, encrypted at rest with LEDGER_PASSPHRASE."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PASSPHRASE_VARIABLE = "LEDGER_PASSPHRASE"


class NodeKeyError(Exception):
    """The node key is missing, cannot be decrypted, or has the wrong type."""


class PassphraseMissingError(NodeKeyError):
    """LEDGER_PASSPHRASE is unset or empty in this process's environment."""


def passphrase() -> bytes:
    """Return the passphrase from LEDGER_PASSPHRASE; raise if it is unset."""
    value = os.environ.get(PASSPHRASE_VARIABLE, "")
    if not value:
        raise PassphraseMissingError(
            f"{PASSPHRASE_VARIABLE} is not set; set it to the passphrase that "
            "encrypts this node's private key"
        )
    return value.encode()


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """Load the Ed25519 key at path, or create it there on first start.

    The file is PKCS#8 PEM encrypted with the best available encryption
    under LEDGER_PASSPHRASE, created with mode 0600.
    """
    secret = passphrase()
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), secret)
        except (ValueError, TypeError) as error:
            raise NodeKeyError(
                f"cannot decrypt the key in {path}: check {PASSPHRASE_VARIABLE}"
            ) from error
        if not isinstance(key, Ed25519PrivateKey):
            raise NodeKeyError(f"the key in {path} is not an Ed25519 key")
        return key

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name first so that a crash never leaves half a key.
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return key
