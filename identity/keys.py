"""Key generation and the encrypted PEM form every private key takes at rest."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from identity.errors import InvalidInputError

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# ECDSA P-256 is the default. RSA-3072 is the option for verifiers that
# lack ECDSA; neither is Ed25519, which poppler's pdfsig (as of 24.x)
# cannot verify in PDF signatures.
KEY_TYPES = ("ec-p256", "rsa-3072")


def generate_key(key_type: str = "ec-p256") -> SigningKey:
    """Generate a private key of `key_type` ("ec-p256" or "rsa-3072")."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise InvalidInputError(
        f"unknown key type {key_type!r}; use one of {', '.join(KEY_TYPES)}"
    )


def signature_hash(key: SigningKey) -> hashes.SHA256:
    """Return the hash that certificates and CRLs signed by `key` use."""
    return hashes.SHA256()


def encrypt_private_key(key: SigningKey, passphrase: bytes) -> bytes:
    """Return `key` as PKCS#8 PEM encrypted under `passphrase` (non-empty)."""
    if not passphrase:
        raise InvalidInputError("an empty passphrase cannot protect a private key")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def decrypt_private_key(pem: bytes, passphrase: bytes) -> SigningKey:
    """Load an encrypted PKCS#8 PEM private key; raises ValueError if wrong."""
    key = serialization.load_pem_private_key(pem, passphrase)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise TypeError(f"unsupported private key type {type(key).__name__}")
    return key


def write_new_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to a file that must not exist yet, and sync it to disk."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_folder(path: Path) -> None:
    """Sync a folder, so that the files created in it survive a crash."""
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
