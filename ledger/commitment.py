"""Salted SHA-256 commitments to personal data that must not appear in the log.

commit(label, value, salt) = SHA-256(b"ledger-commitment/v1\\n" || label ||
b"\\n" || salt || value), with a fresh 32-byte random salt per field. The
salt stays private; handing it to a court with the value opens the
commitment, and deleting it leaves the entry unlinkable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = b"ledger-commitment/v1\n"
SALT_SIZE = 32
LABELS = frozenset(
    {
        "name",
        "national_id",
        "email",
        "phone",
        "legal_name",
        "registration_number",
        "recipient",
    }
)


class CommitmentError(ValueError):
    """A commitment's inputs are invalid or it does not open to the value."""


def new_salt() -> bytes:
    """Return a fresh random 32-byte salt."""
    return secrets.token_bytes(SALT_SIZE)


def commit(label: str, value: bytes, salt: bytes) -> bytes:
    """Return the commitment to value under label and salt.

    Requires label in LABELS and len(salt) == 32.
    """
    if label not in LABELS:
        raise CommitmentError(
            f"commitment label {label!r} is unknown; expected one of {sorted(LABELS)}"
        )
    if not isinstance(value, bytes):
        raise CommitmentError(
            f"commitment value must be bytes, not {type(value).__name__};"
            " encode text as UTF-8"
        )
    if len(salt) != SALT_SIZE:
        raise CommitmentError(f"salt is {len(salt)} bytes; it must be 32")
    return hashlib.sha256(PREFIX + label.encode() + b"\n" + salt + value).digest()


def verify_commitment(label: str, value: bytes, salt: bytes, commitment: bytes) -> None:
    """Check that commitment opens to value under label and salt.

    Compares in constant time; raises CommitmentError on a mismatch.
    """
    if not hmac.compare_digest(commit(label, value, salt), commitment):
        raise CommitmentError(
            f"commitment for {label!r} does not match the value and salt"
        )
