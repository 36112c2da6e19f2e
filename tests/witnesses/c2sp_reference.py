"""An independent reading of the C2SP formats, written from the specs only.

It shares no code with `ledger.note`, `ledger.checkpoint` or `witnesses`, so
that tests can check the project's notes and cosignatures against it:
signed-note (with the parsing rules of golang.org/x/mod/sumdb/note),
tlog-checkpoint and tlog-cosignature cosignature/v1 (Ed25519).
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

DASH = "\u2014"
ED25519_NOTE = 0x01
ED25519_COSIGNATURE = 0x04


class Invalid(Exception):
    """The input breaks one of the spec's rules."""


def key_id(name: str, algorithm: int, public_key: bytes) -> bytes:
    return hashlib.sha256(
        name.encode() + b"\n" + bytes([algorithm]) + public_key
    ).digest()[:4]


def parse_vkey(vkey: str) -> tuple[str, bytes, int, bytes]:
    """Return (name, key ID, algorithm, public key) of a vkey string."""
    parts = vkey.split("+", 2)
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise Invalid(f"bad vkey {vkey!r}")
    name = parts[0]
    material = base64.b64decode(parts[2], validate=True)
    algorithm, public_key = material[0], material[1:]
    if len(public_key) != 32:
        raise Invalid("Ed25519 keys are 32 bytes")
    kid = bytes.fromhex(parts[1])
    if kid != key_id(name, algorithm, public_key):
        raise Invalid("key ID does not match the name and key")
    return name, kid, algorithm, public_key


def split_note(data: bytes) -> tuple[str, list[tuple[str, bytes]]]:
    """Split a signed note into its text and (name, signature blob) pairs.

    Applies the Go note rules: UTF-8, no control characters except newline,
    text ends in a newline and is followed by one empty line, at least one
    signature line of the form "— name base64", at most 100 of them.
    """
    try:
        string = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Invalid("note is not UTF-8") from error
    for char in string:
        if (ord(char) < 0x20 and char != "\n") or ord(char) == 0x7F:
            raise Invalid(f"control character {ord(char):#x} in note")
    split = string.rfind("\n\n")
    if split < 0:
        raise Invalid("no empty line before the signatures")
    text, rest = string[: split + 1], string[split + 2 :]
    if not rest.endswith("\n"):
        raise Invalid("signature block does not end with a newline")
    signatures = []
    for line in rest[:-1].split("\n"):
        if not line.startswith(DASH + " "):
            raise Invalid(f"malformed signature line {line!r}")
        fields = line[2:].split(" ")
        if len(fields) != 2 or not fields[0] or "+" in fields[0]:
            raise Invalid(f"malformed signature line {line!r}")
        blob = base64.b64decode(fields[1], validate=True)
        if len(blob) < 5:
            raise Invalid("signature shorter than a key ID")
        signatures.append((fields[0], blob))
    if not 1 <= len(signatures) <= 100:
        raise Invalid("a note has 1 to 100 signatures")
    return text, signatures


def parse_checkpoint(text: str) -> tuple[str, int, bytes, list[str]]:
    """Return (origin, tree_size, root_hash, extension lines) of a checkpoint."""
    if not text.endswith("\n"):
        raise Invalid("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise Invalid("a checkpoint has at least three lines")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin:
        raise Invalid("empty origin")
    if not re.fullmatch(r"0|[1-9][0-9]*", size):
        raise Invalid(f"bad tree size {size!r}")
    root_hash = base64.b64decode(root, validate=True)
    if len(root_hash) != 32:
        raise Invalid("root hash is not 32 bytes")
    if any(not line for line in lines[3:]):
        raise Invalid("empty extension line")
    return origin, int(size), root_hash, lines[3:]


def verify_note_signature(data: bytes, vkey: str) -> None:
    """Check that a note carries a valid Ed25519 signature by vkey."""
    name, kid, algorithm, public_key = parse_vkey(vkey)
    if algorithm != ED25519_NOTE:
        raise Invalid("not an Ed25519 note key")
    text, signatures = split_note(data)
    for signer, blob in signatures:
        if signer == name and blob[:4] == kid:
            Ed25519PublicKey.from_public_bytes(public_key).verify(
                blob[4:], text.encode()
            )
            return
    raise Invalid(f"no signature by {name}")


def verify_cosignature(data: bytes, vkey: str) -> int:
    """Check a cosignature/v1 by vkey on a note; return its timestamp."""
    name, kid, algorithm, public_key = parse_vkey(vkey)
    if algorithm != ED25519_COSIGNATURE:
        raise Invalid("not a cosignature/v1 key")
    text, signatures = split_note(data)
    for signer, blob in signatures:
        if signer == name and blob[:4] == kid:
            if len(blob) != 4 + 8 + 64:
                raise Invalid("cosignature/v1 blob is 76 bytes")
            (timestamp,) = struct.unpack(">Q", blob[4:12])
            message = b"cosignature/v1\ntime %d\n" % timestamp + text.encode()
            Ed25519PublicKey.from_public_bytes(public_key).verify(blob[12:], message)
            return timestamp
    raise Invalid(f"no cosignature by {name}")


def sign_note(text: str, name: str, private_key) -> bytes:
    """Sign text as a note with an Ed25519 key (for forging test logs)."""
    public_key = private_key.public_key().public_bytes_raw()
    kid = key_id(name, ED25519_NOTE, public_key)
    blob = kid + private_key.sign(text.encode())
    return (
        text + "\n" + f"{DASH} {name} " + base64.b64encode(blob).decode() + "\n"
    ).encode()


def note_vkey(name: str, private_key) -> str:
    public_key = private_key.public_key().public_bytes_raw()
    kid = key_id(name, ED25519_NOTE, public_key)
    material = base64.b64encode(bytes([ED25519_NOTE]) + public_key).decode()
    return f"{name}+{kid.hex()}+{material}"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n, for n >= 2 (RFC 9162 2.1.1)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def tree_root(hashes: list[bytes]) -> bytes:
    """MTH over leaf hashes, RFC 9162 section 2.1.1."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return hashlib.sha256(
        b"\x01" + tree_root(hashes[:k]) + tree_root(hashes[k:])
    ).digest()


def consistency_proof(size1: int, hashes: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1, for 0 < size1 <= len(hashes)."""

    def subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
        n = len(leaves)
        if m == n:
            return [] if complete else [tree_root(leaves)]
        k = _split(n)
        if m <= k:
            return subproof(m, leaves[:k], complete) + [tree_root(leaves[k:])]
        return subproof(m - k, leaves[k:], False) + [tree_root(leaves[:k])]

    return subproof(size1, hashes, True)


@dataclass
class ReferenceLog:
    """A log kept in memory and signed by the reference implementation.

    Two instances with the same key and different entries are a forked log.
    """

    origin: str
    key: Ed25519PrivateKey
    leaf_hashes: list[bytes] = field(default_factory=list)

    @property
    def vkey(self) -> str:
        return note_vkey(self.origin, self.key)

    def append(self, *entries: bytes) -> None:
        self.leaf_hashes.extend(leaf_hash(entry) for entry in entries)

    def root(self, tree_size: int) -> bytes:
        return tree_root(self.leaf_hashes[:tree_size])

    def checkpoint_text(self, tree_size: int) -> str:
        import base64

        root = base64.b64encode(self.root(tree_size)).decode()
        return f"{self.origin}\n{tree_size}\n{root}\n"

    def note(self, tree_size: int) -> bytes:
        return sign_note(self.checkpoint_text(tree_size), self.origin, self.key)

    def proof(self, size1: int, size2: int) -> list[bytes]:
        if size1 == 0 or size1 == size2:
            return []
        return consistency_proof(size1, self.leaf_hashes[:size2])

    def request(self, old_size: int, tree_size: int) -> bytes:
        import base64

        lines = [f"old {old_size}\n".encode()]
        lines += [
            base64.b64encode(node) + b"\n" for node in self.proof(old_size, tree_size)
        ]
        return b"".join(lines) + b"\n" + self.note(tree_size)

    def fork(self, keep: int, *entries: bytes) -> ReferenceLog:
        """Return a log with the same key, the first keep leaves, then entries."""
        forked = ReferenceLog(self.origin, self.key, list(self.leaf_hashes[:keep]))
        forked.append(*entries)
        return forked
