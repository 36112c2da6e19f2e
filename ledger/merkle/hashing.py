"""RFC 9162 section 2.1 hashing: SHA-256 with leaf and node prefixes."""

from __future__ import annotations

from hashlib import sha256

HASH_SIZE = 32

# MTH({}) = SHA-256() for the empty tree (RFC 9162 section 2.1.1).
EMPTY_ROOT = sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Return the leaf hash SHA-256(0x00 || data) of one entry."""
    return sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the interior node hash SHA-256(0x01 || left || right)."""
    return sha256(_NODE_PREFIX + left + right).digest()
