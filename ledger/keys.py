"""Private keys at rest: PKCS#8 PEM encrypted under the owner's passphrase.

The passphrase comes from the LEDGER_PASSPHRASE environment variable of the
process that owns the key. Nothing in this module writes a private key
without encryption.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PASSPHRASE_VARIABLE = "LEDGER_PASSPHRASE"


class PassphraseMissingError(Exception):
    """LEDGER_PASSPHRASE is unset or empty; commands exit with status 2."""


class KeyFileError(Exception):
    """A key file is missing, unreadable, or not an encrypted Ed25519 key."""


def passphrase_from_environment() -> bytes:
    """Return the passphrase from LEDGER_PASSPHRASE, encoded as UTF-8.

    Raises PassphraseMissingError when the variable is unset or empty.
    """
    value = os.environ.get(PASSPHRASE_VARIABLE, "")
    if not value:
        raise PassphraseMissingError(
            f"{PASSPHRASE_VARIABLE} is not set; export the passphrase that"
            " encrypts the log key and run the command again"
        )
    return value.encode("utf-8")


def generate_key_file(path: Path, passphrase: bytes) -> Ed25519PrivateKey:
    """Generate an Ed25519 key and write it encrypted to a new file at path.

    The file is created with mode 0600 and never overwritten; raises
    KeyFileError if it exists. Requires len(passphrase) > 0.
    """
    key = Ed25519PrivateKey.generate()
    write_key_file(path, key, passphrase)
    return key


def write_key_file(path: Path, key: Ed25519PrivateKey, passphrase: bytes) -> None:
    """Write key to a new file as PKCS#8 PEM encrypted with the passphrase.

    Requires len(passphrase) > 0; raises KeyFileError if path exists.
    """
    if not passphrase:
        raise PassphraseMissingError(
            "the passphrase is empty; a key file needs a non-empty passphrase"
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise KeyFileError(
            f"key file {path} already exists; remove it or choose another folder"
        ) from error
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
        file.flush()
        os.fsync(file.fileno())


def read_key_file(path: Path, passphrase: bytes) -> Ed25519PrivateKey:
    """Read and decrypt the Ed25519 key at path.

    Raises KeyFileError when the file is missing, the passphrase is wrong,
    or the file contains an unencrypted or non-Ed25519 key.
    """
    try:
        pem = Path(path).read_bytes()
    except OSError as error:
        raise KeyFileError(f"cannot read key file {path}: {error.strerror}") from error
    if b"ENCRYPTED PRIVATE KEY" not in pem:
        raise KeyFileError(
            f"key file {path} is not encrypted; private keys must be stored as"
            " encrypted PKCS#8 PEM"
        )
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase)
    except (ValueError, TypeError) as error:
        raise KeyFileError(
            f"cannot decrypt key file {path}: wrong {PASSPHRASE_VARIABLE} or"
            " damaged file"
        ) from error
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(
            f"key file {path} contains a {type(key).__name__}, not an Ed25519 key"
        )
    return key
