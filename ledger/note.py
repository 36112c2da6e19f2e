"""C2SP signed-note: Ed25519 note signatures and tlog-cosignature cosignature/v1.

A signed note is UTF-8 text ending in a newline, a blank line, then one or
more signature lines `— <key name> base64(key ID || signature)`. A key is
named by its key name and 4-byte key ID, the first four bytes of
SHA-256(key name || 0x0A || signature type || public key), and published as
a vkey string `<key name>+<key ID in hex>+base64(signature type || public key)`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519_TYPE = 0x01
COSIGNATURE_TYPE = 0x04
KEY_ID_SIZE = 4
ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
# The signed-note spec requires accepting at least 16 signatures.
MAX_SIGNATURES = 100
MAX_NOTE_SIZE = 1 << 20
SIGNATURE_PREFIX = "\u2014 "
COSIGNATURE_HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = (1 << 63) - 1


class NoteError(ValueError):
    """A note, signature line or vkey is malformed, or a signature is invalid."""


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: key name, 4-byte key ID and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def to_line(self) -> bytes:
        """Encode as `— <name> <base64>` with the trailing newline."""
        blob = base64.b64encode(self.key_id + self.signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {blob}\n".encode()


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed signed note: its text (with the final newline) and signatures."""

    text: str
    signatures: tuple[Signature, ...]

    def to_bytes(self) -> bytes:
        """Encode the note as text, blank line and signature lines."""
        lines = b"".join(signature.to_line() for signature in self.signatures)
        return self.text.encode() + b"\n" + lines

    def with_signatures(self, signatures: Iterable[Signature]) -> Note:
        """Return the note with more signature lines appended after its own."""
        return Note(self.text, self.signatures + tuple(signatures))


class Signer(Protocol):
    """Something that signs note text under a key name and key ID."""

    name: str
    key_id: bytes

    def sign(self, text: bytes) -> bytes:
        """Return the signature bytes (without key ID) over the note text."""
        ...


class Verifier(Protocol):
    """Something that verifies signatures of one key name and key ID."""

    name: str
    key_id: bytes

    def verify(self, text: bytes, signature: bytes) -> None:
        """Raise NoteError unless signature is valid for text."""
        ...


def compute_key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """Return SHA-256(name || 0x0A || signature_type || public_key)[:4]."""
    material = name.encode() + b"\n" + bytes([signature_type]) + public_key
    return hashlib.sha256(material).digest()[:KEY_ID_SIZE]


def check_key_name(name: str) -> None:
    """Raise NoteError unless name is non-empty, without spaces or '+'."""
    if not name:
        raise NoteError("key name is empty")
    for character in name:
        if character == "+" or character.isspace() or ord(character) < 0x20:
            raise NoteError(
                f"key name {name!r} contains {character!r}; key names must not"
                " contain spaces, '+' or control characters"
            )


def _format_vkey(name: str, key_id: bytes, signature_type: int, key: bytes) -> str:
    material = base64.b64encode(bytes([signature_type]) + key).decode()
    return f"{name}+{key_id.hex()}+{material}"


def parse_vkey(vkey: str) -> tuple[str, bytes, int, bytes]:
    """Parse a vkey into (key name, key ID, signature type, public key).

    Raises NoteError when a part is malformed or the key ID does not match
    the key name and public key.
    """
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError(
            f"vkey {vkey!r} must look like <name>+<8 hex digits>+<base64 key>"
        )
    name, key_id_hex, material_b64 = parts
    check_key_name(name)
    if len(key_id_hex) != 8 or any(c not in "0123456789abcdef" for c in key_id_hex):
        raise NoteError(f"vkey key ID {key_id_hex!r} is not 8 lowercase hex digits")
    try:
        material = base64.b64decode(material_b64, validate=True)
    except binascii.Error as error:
        raise NoteError(f"vkey key material is not valid base64: {error}") from error
    if len(material) < 2:
        raise NoteError("vkey key material is empty")
    key_id = bytes.fromhex(key_id_hex)
    signature_type, public_key = material[0], material[1:]
    expected = compute_key_id(name, signature_type, public_key)
    if key_id != expected:
        raise NoteError(
            f"vkey key ID {key_id_hex} does not match the key name and public"
            f" key, which give {expected.hex()}"
        )
    return name, key_id, signature_type, public_key


def _public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _load_public_key(key: bytes) -> Ed25519PublicKey:
    if len(key) != ED25519_KEY_SIZE:
        raise NoteError(f"Ed25519 public key is {len(key)} bytes, not 32")
    try:
        return Ed25519PublicKey.from_public_bytes(key)
    except ValueError as error:
        raise NoteError(f"invalid Ed25519 public key: {error}") from error


class Ed25519Verifier:
    """Verifier of Ed25519 note signatures (signature type 0x01)."""

    signature_type = ED25519_TYPE

    def __init__(self, name: str, public_key: Ed25519PublicKey) -> None:
        check_key_name(name)
        self.name = name
        self.public_key = public_key
        self.key_id = compute_key_id(
            name, self.signature_type, _public_bytes(public_key)
        )

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        """Build the verifier of a vkey; raises NoteError if malformed."""
        name, _, signature_type, key = parse_vkey(vkey)
        if signature_type != cls.signature_type:
            raise NoteError(
                f"vkey {name!r} has signature type 0x{signature_type:02x},"
                f" expected 0x{cls.signature_type:02x}"
            )
        return cls(name, _load_public_key(key))

    @property
    def vkey(self) -> str:
        """The verifier key string `<name>+<key ID>+<base64 key>`."""
        return _format_vkey(
            self.name, self.key_id, self.signature_type, _public_bytes(self.public_key)
        )

    def verify(self, text: bytes, signature: bytes) -> None:
        """Raise NoteError unless signature is this key's signature of text."""
        if len(signature) != ED25519_SIGNATURE_SIZE:
            raise NoteError(
                f"signature by {self.name} is {len(signature)} bytes, not 64"
            )
        try:
            self.public_key.verify(signature, text)
        except InvalidSignature as error:
            raise NoteError(f"invalid signature by {self.name}") from error


class Ed25519Signer:
    """Signer of Ed25519 note signatures (signature type 0x01)."""

    signature_type = ED25519_TYPE

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_key_name(name)
        self.name = name
        self.private_key = private_key
        self.key_id = compute_key_id(
            name, self.signature_type, _public_bytes(private_key.public_key())
        )

    @property
    def vkey(self) -> str:
        """The verifier key string of this signer."""
        return self.verifier().vkey

    def verifier(self) -> Ed25519Verifier:
        """Return the verifier for this signer's key."""
        return Ed25519Verifier(self.name, self.private_key.public_key())

    def sign(self, text: bytes) -> bytes:
        """Return the Ed25519 signature of the note text."""
        return self.private_key.sign(text)


def cosignature_message(text: bytes, timestamp: int) -> bytes:
    """Return the cosignature/v1 signed message for a checkpoint text.

    The message is `cosignature/v1\\ntime <timestamp>\\n` and then the
    checkpoint note text. Requires 0 <= timestamp <= 2**63 - 1.
    """
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is out of range")
    return COSIGNATURE_HEADER + b"time %d\n" % timestamp + text


class CosignatureVerifier(Ed25519Verifier):
    """Verifier of tlog-cosignature cosignature/v1 lines (signature type 0x04)."""

    signature_type = COSIGNATURE_TYPE

    def verify(self, text: bytes, signature: bytes) -> None:
        """Raise NoteError unless signature is a valid cosignature of text.

        The signature is an 8-byte big-endian timestamp then 64 bytes of
        Ed25519 signature over cosignature_message(text, timestamp).
        """
        timestamp = cosignature_timestamp(signature)
        super().verify(cosignature_message(text, timestamp), signature[8:])


def cosignature_timestamp(signature: bytes) -> int:
    """Return the timestamp of a cosignature/v1 signature (key ID removed)."""
    if len(signature) != 8 + ED25519_SIGNATURE_SIZE:
        raise NoteError(
            f"cosignature is {len(signature)} bytes; cosignature/v1 has 8"
            " bytes of timestamp and 64 of signature"
        )
    timestamp = int.from_bytes(signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} exceeds 2**63 - 1")
    return timestamp


class CosignatureSigner(Ed25519Signer):
    """Signer of cosignature/v1 lines, timestamped by `clock` (POSIX seconds)."""

    signature_type = COSIGNATURE_TYPE

    def __init__(
        self,
        name: str,
        private_key: Ed25519PrivateKey,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, private_key)
        self.clock = clock

    def verifier(self) -> CosignatureVerifier:
        """Return the verifier for this cosigner's key."""
        return CosignatureVerifier(self.name, self.private_key.public_key())

    def sign(self, text: bytes, timestamp: int | None = None) -> bytes:
        """Return timestamp || Ed25519 signature of the cosignature message.

        The timestamp defaults to the clock's current time in whole seconds.
        """
        if timestamp is None:
            timestamp = int(self.clock())
        message = cosignature_message(text, timestamp)
        return timestamp.to_bytes(8, "big") + self.private_key.sign(message)

    def cosign(self, text: str | bytes, timestamp: int | None = None) -> bytes:
        """Return the cosignature line (with newline) for a checkpoint text."""
        if isinstance(text, str):
            text = text.encode()
        signature = self.sign(text, timestamp)
        return Signature(self.name, self.key_id, signature).to_line()


def _check_text(text: str, context: str) -> None:
    for character in text:
        if ord(character) < 0x20 and character != "\n":
            raise NoteError(
                f"{context} contains control character {character!r}; only"
                " newline is allowed"
            )


def parse_signature_line(line: str) -> Signature:
    """Parse one signature line, with or without its final newline.

    Raises NoteError naming what is wrong with the line.
    """
    line = line.removesuffix("\n")
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(
            f"signature line {line!r} must start with an em dash and a space"
        )
    fields = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(fields) != 2:
        raise NoteError(
            f"signature line {line!r} must be '— <key name> <base64 signature>'"
        )
    name, blob_b64 = fields
    check_key_name(name)
    try:
        blob = base64.b64decode(blob_b64, validate=True)
    except binascii.Error as error:
        raise NoteError(f"signature by {name} is not valid base64: {error}") from error
    if len(blob) <= KEY_ID_SIZE:
        raise NoteError(
            f"signature by {name} is {len(blob)} bytes; it needs a 4-byte key"
            " ID and a signature"
        )
    return Signature(name, blob[:KEY_ID_SIZE], blob[KEY_ID_SIZE:])


def parse_note(data: bytes) -> Note:
    """Parse a signed note, keeping every signature line, verified or not.

    Raises NoteError for anything that is not a well-formed signed note:
    invalid UTF-8, control characters, no blank line before the signatures,
    no signatures, more than MAX_SIGNATURES, or any malformed signature line.
    """
    if len(data) > MAX_NOTE_SIZE:
        raise NoteError(f"note is {len(data)} bytes, over the {MAX_NOTE_SIZE} limit")
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NoteError(f"note is not valid UTF-8: {error}") from error
    _check_text(decoded, "note")
    if not decoded.endswith("\n"):
        raise NoteError("note does not end with a newline")
    # The text ends at the last blank line; signature lines are never empty.
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line between text and signatures")
    text = decoded[: split + 1]
    block = decoded[split + 2 :]
    if not block:
        raise NoteError("note has no signature lines")
    lines = block.removesuffix("\n").split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(
            f"note has {len(lines)} signatures, over the limit of {MAX_SIGNATURES}"
        )
    signatures = tuple(parse_signature_line(line) for line in lines)
    return Note(text, signatures)


def sign_note(text: str | bytes, signers: Sequence[Signer]) -> bytes:
    """Sign text with each signer and return the encoded signed note.

    Requires text to be non-empty UTF-8 ending in a newline, with no control
    characters except newline, and at least one signer.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise NoteError(f"note text is not valid UTF-8: {error}") from error
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    _check_text(text, "note text")
    if not signers:
        raise NoteError("a signed note needs at least one signer")
    message = text.encode()
    signatures = []
    for signer in signers:
        check_key_name(signer.name)
        signatures.append(Signature(signer.name, signer.key_id, signer.sign(message)))
    return Note(text, tuple(signatures)).to_bytes()


def verified_signatures(
    note: Note, verifiers: Sequence[Verifier]
) -> list[tuple[Verifier, Signature]]:
    """Verify the signatures of known keys and return (verifier, signature) pairs.

    A signature is from a known key when a verifier has both its key name
    and key ID; other signatures are ignored, as the signed-note spec
    requires. Raises NoteError if any signature from a known key is invalid.
    The list may be empty.
    """
    known = {(verifier.name, verifier.key_id): verifier for verifier in verifiers}
    message = note.text.encode()
    result = []
    for signature in note.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        verifier.verify(message, signature.signature)
        result.append((verifier, signature))
    return result


def verify_note(note: Note, verifiers: Sequence[Verifier]) -> None:
    """Verify a note against trusted verifiers; raises NoteError on failure.

    Every signature from a known key must verify and at least one must be
    present. Signatures from unknown keys are ignored.
    """
    if not verified_signatures(note, verifiers):
        names = ", ".join(sorted({v.name for v in verifiers})) or "none"
        raise NoteError(f"note has no signature from a known key (known: {names})")
