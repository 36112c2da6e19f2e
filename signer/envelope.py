"""Envelope encryption of contract documents with AES-256-GCM.

Each sealed document has its own random 256-bit data key. The data key is
wrapped (encrypted with AES-256-GCM) under a master key, and both the
wrapped key and the document are bound to the contract id as associated
data, so a ciphertext copied under another contract id does not decrypt.

Sealed layout, all lengths in bytes:

    magic "LCE1" (4) | master key id (8) | wrap nonce (12)
    | wrapped data key (32 + 16 tag) | data nonce (12) | ciphertext + tag (16)

The document's associated data is the whole header (everything before the
ciphertext) followed by the contract id, so no header byte can change
without the tag check failing. This module is pure: no I/O, no logging.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"LCE1"
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_ID_SIZE = 8
HEADER_SIZE = len(MAGIC) + KEY_ID_SIZE + NONCE_SIZE + KEY_SIZE + TAG_SIZE + NONCE_SIZE

_WRAP_LABEL = b"ledger-envelope/v1 wrap\n"
_DATA_LABEL = b"ledger-envelope/v1 data\n"
_KEY_ID_LABEL = b"ledger-master-key/v1\n"

# Encrypted master key file: magic, scrypt salt, nonce, AES-GCM ciphertext.
_FILE_MAGIC = b"LMK1"
_SALT_SIZE = 16
# scrypt with n = 2**15 and r = 8 uses 32 MiB (128 * r * n bytes) per derivation,
# paid once each time a master key is loaded.
_SCRYPT_N = 2**15


class EnvelopeError(ValueError):
    """A sealed document is malformed, tampered with or under an unknown key."""


@dataclass(frozen=True, repr=False)
class MasterKey:
    """A 256-bit AES key that wraps data keys; `key_id` names it in envelopes."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != KEY_SIZE:
            raise ValueError(
                f"master key must be {KEY_SIZE} bytes, got {len(self.key)}"
            )

    @classmethod
    def generate(cls) -> MasterKey:
        """Return a new random master key."""
        return cls(AESGCM.generate_key(bit_length=256))

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(_KEY_ID_LABEL + self.key).digest()[:KEY_ID_SIZE]

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id.hex()})"

    def encrypt_for_storage(self, passphrase: bytes) -> bytes:
        """Return this key encrypted under a passphrase (scrypt, AES-256-GCM)."""
        if not passphrase:
            raise ValueError("passphrase is empty; set LEDGER_PASSPHRASE")
        salt = os.urandom(_SALT_SIZE)
        nonce = os.urandom(NONCE_SIZE)
        wrapping = _derive(passphrase, salt)
        header = _FILE_MAGIC + salt + nonce
        return header + AESGCM(wrapping).encrypt(nonce, self.key, header)

    @classmethod
    def decrypt_from_storage(cls, data: bytes, passphrase: bytes) -> MasterKey:
        """Return the master key that `encrypt_for_storage` wrote.

        Raise EnvelopeError for a malformed file or a wrong passphrase.
        """
        header_size = len(_FILE_MAGIC) + _SALT_SIZE + NONCE_SIZE
        if len(data) != header_size + KEY_SIZE + TAG_SIZE or not data.startswith(
            _FILE_MAGIC
        ):
            raise EnvelopeError(
                "not an encrypted master key file (bad magic or length)"
            )
        salt = data[len(_FILE_MAGIC) : len(_FILE_MAGIC) + _SALT_SIZE]
        nonce = data[len(_FILE_MAGIC) + _SALT_SIZE : header_size]
        try:
            key = AESGCM(_derive(passphrase, salt)).decrypt(
                nonce, data[header_size:], data[:header_size]
            )
        except InvalidTag as error:
            raise EnvelopeError(
                "could not decrypt the master key: wrong LEDGER_PASSPHRASE or damaged file"
            ) from error
        return cls(key)


def _derive(passphrase: bytes, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=KEY_SIZE, n=_SCRYPT_N, r=8, p=1).derive(passphrase)


def seal(plaintext: bytes, contract_id: str, master_key: MasterKey) -> bytes:
    """Encrypt plaintext for contract_id under a fresh data key; return the envelope."""
    associated = contract_id.encode()
    data_key = AESGCM.generate_key(bit_length=256)
    wrap_nonce = os.urandom(NONCE_SIZE)
    wrapped = AESGCM(master_key.key).encrypt(
        wrap_nonce, data_key, _WRAP_LABEL + associated
    )
    data_nonce = os.urandom(NONCE_SIZE)
    header = MAGIC + master_key.key_id + wrap_nonce + wrapped + data_nonce
    ciphertext = AESGCM(data_key).encrypt(
        data_nonce, plaintext, _DATA_LABEL + header + associated
    )
    return header + ciphertext


def open_sealed(
    sealed: bytes, contract_id: str, master_keys: Iterable[MasterKey]
) -> bytes:
    """Decrypt an envelope that `seal` made for contract_id; return the plaintext.

    master_keys may hold retired keys too; the envelope's key id picks one.
    Raise EnvelopeError if no key matches, the contract id differs or any
    byte was changed.
    """
    if len(sealed) < HEADER_SIZE + TAG_SIZE or not sealed.startswith(MAGIC):
        raise EnvelopeError(
            f"not a sealed document: expected magic {MAGIC!r} and at least "
            f"{HEADER_SIZE + TAG_SIZE} bytes, got {len(sealed)} bytes"
        )

    # 1. Pick the master key by id.
    offset = len(MAGIC)
    key_id = sealed[offset : offset + KEY_ID_SIZE]
    master_key = next(
        (key for key in master_keys if hmac.compare_digest(key.key_id, key_id)), None
    )
    if master_key is None:
        raise EnvelopeError(
            f"sealed with master key {key_id.hex()}, which is not loaded; "
            "load that key to decrypt"
        )

    # 2. Unwrap the data key, bound to the contract id.
    offset += KEY_ID_SIZE
    wrap_nonce = sealed[offset : offset + NONCE_SIZE]
    offset += NONCE_SIZE
    wrapped = sealed[offset : offset + KEY_SIZE + TAG_SIZE]
    offset += KEY_SIZE + TAG_SIZE
    data_nonce = sealed[offset : offset + NONCE_SIZE]
    associated = contract_id.encode()
    try:
        data_key = AESGCM(master_key.key).decrypt(
            wrap_nonce, wrapped, _WRAP_LABEL + associated
        )
    except InvalidTag as error:
        raise EnvelopeError(
            f"could not unwrap the data key for contract {contract_id!r}: "
            "wrong contract id or a changed header"
        ) from error

    # 3. Decrypt the document; the tag covers the header and the contract id.
    header = sealed[:HEADER_SIZE]
    try:
        return AESGCM(data_key).decrypt(
            data_nonce, sealed[HEADER_SIZE:], _DATA_LABEL + header + associated
        )
    except InvalidTag as error:
        raise EnvelopeError(
            f"sealed document of contract {contract_id!r} failed its integrity check"
        ) from error
