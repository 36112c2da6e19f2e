"""C2SP signed-note and tlog-cosignature: vectors, rejection, independent check."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.note import (
    MAX_SIGNATURES,
    CosignatureSigner,
    CosignatureVerifier,
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    NoteError,
    Signature,
    cosignature_timestamp,
    parse_note,
    parse_signature_line,
    parse_vkey,
    sign_note,
    verified_signatures,
    verify_note,
)

DASH = "\u2014"


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def _notes(vectors_dir: Path) -> Path:
    return vectors_dir / "c2sp-signed-note"


def _sumdb_checkpoint(vectors_dir: Path) -> bytes:
    proof = (
        vectors_dir / "tlog-proof-sumdb" / "go.sum-database-tree-43930254.tlog-proof"
    ).read_bytes()
    return proof[proof.index(b"\n\n") + 2 :]


# Known-answer vectors.


def test_spec_example_verifies(vectors_dir: Path) -> None:
    data = (_notes(vectors_dir) / "example.com-foo.note").read_bytes()
    vkey = (_notes(vectors_dir) / "example.com-foo.vkey").read_text().strip()
    verifier = Ed25519Verifier.from_vkey(vkey)
    assert verifier.key_id.hex() == "530d903a"
    assert verifier.vkey == vkey
    note = parse_note(data)
    assert note.text == "This is an example message.\n"
    assert len(note.signatures) == 1
    assert verify_note(note, [verifier]) is None
    assert note.to_bytes() == data


def test_sumdb_checkpoint_verifies(vectors_dir: Path) -> None:
    vkey = (vectors_dir / "tlog-proof-sumdb" / "sum.golang.org.vkey").read_text()
    verifier = Ed25519Verifier.from_vkey(vkey)
    assert verifier.name == "sum.golang.org"
    assert verifier.key_id.hex() == "033de0ae"
    data = _sumdb_checkpoint(vectors_dir)
    note = parse_note(data)
    assert note.text.startswith("go.sum database tree\n58253265\n")
    assert verify_note(note, [verifier]) is None
    tampered = data.replace(b"58253265", b"58253266")
    with pytest.raises(NoteError, match="invalid signature"):
        verify_note(parse_note(tampered), [verifier])


def test_quasimodo_parses(vectors_dir: Path) -> None:
    data = (_notes(vectors_dir) / "quasimodo-unverifiable.note").read_bytes()
    note = parse_note(data)
    # The text keeps its own blank line and its non-ASCII letter.
    assert note.text.endswith(
        "trafitto da un raggio di sole:\n\ned \u00e8 subito sera.\n"
    )
    assert [s.name for s in note.signatures] == ["quasimodo.example/salvatore"]
    assert note.to_bytes() == data
    # No known key: the note does not verify.
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify_note(
            note, [Ed25519Signer("quasimodo.example/salvatore", _key(1)).verifier()]
        )


def test_cosigned_spec_example_parses(vectors_dir: Path) -> None:
    data = (
        _notes(vectors_dir) / "checkpoint-behind-the-sofa-cosigned.note"
    ).read_bytes()
    note = parse_note(data)
    assert [s.name for s in note.signatures] == [
        "example.com/behind-the-sofa",
        "witness.example.com/w1",
    ]
    cosignature = note.signatures[1]
    assert len(cosignature.signature) == 8 + 64
    # The spec's signed-message example uses this same timestamp.
    assert cosignature_timestamp(cosignature.signature) == 1679315147
    assert note.to_bytes() == data


# Signing, unknown keys and bad signatures.


def test_sign_and_verify_round_trip() -> None:
    signer = Ed25519Signer("example.org/log", _key(2))
    data = sign_note("hello\nworld\n", [signer])
    note = parse_note(data)
    assert note.text == "hello\nworld\n"
    verify_note(note, [signer.verifier()])
    assert Ed25519Verifier.from_vkey(signer.vkey).key_id == signer.key_id


def test_unknown_signatures_kept_not_verified() -> None:
    signer = Ed25519Signer("example.org/log", _key(3))
    other = Ed25519Signer("example.org/other", _key(4))
    data = sign_note("text\n", [signer, other])
    # A well-formed signature line with an unknown key and garbage bytes.
    garbage = Signature("unknown.example", b"\x01\x02\x03\x04", b"\x00" * 64)
    note = parse_note(data + garbage.to_line())
    assert len(note.signatures) == 3
    verify_note(note, [signer.verifier()])
    pairs = verified_signatures(note, [signer.verifier()])
    assert [pair[1].name for pair in pairs] == ["example.org/log"]


def test_same_name_other_key_ignored() -> None:
    signer = Ed25519Signer("example.org/log", _key(5))
    impostor = Ed25519Signer("example.org/log", _key(6))
    note = parse_note(sign_note("text\n", [impostor, signer]))
    verify_note(note, [signer.verifier()])
    with pytest.raises(NoteError):
        verify_note(parse_note(sign_note("text\n", [impostor])), [signer.verifier()])


def test_known_key_bad_signature_rejects() -> None:
    signer = Ed25519Signer("example.org/log", _key(7))
    note = parse_note(sign_note("text\n", [signer]))
    forged = Signature(signer.name, signer.key_id, bytes(64))
    bad = note.with_signatures([forged])
    with pytest.raises(NoteError, match="invalid signature by example.org/log"):
        verify_note(bad, [signer.verifier()])


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"text\n\n\xe2\x80\x94 a AAAAAAA=", "newline"),
        (b"text\n\xe2\x80\x94 a AAAAAAA=\n", "blank line"),
        (b"text\n\n", "no signature lines"),
        (b"text\n\n- a AAAAAAA=\n", "em dash"),
        (b"text\n\n\xe2\x80\x94 a  AAAAAAA=\n", "must be"),
        (b"text\n\n\xe2\x80\x94 a AAAAAAA= x\n", "must be"),
        (b"text\n\n\xe2\x80\x94  AAAAAAA=\n", "key name"),
        (b"text\n\n\xe2\x80\x94 a+b AAAAAAA=\n", "'\\+'"),
        (b"text\n\n\xe2\x80\x94 a AAAA!AA=\n", "base64"),
        (b"text\n\n\xe2\x80\x94 a AAAAAA==\n", "4-byte key ID"),
        (b"text\n\n\xe2\x80\x94 a AAAAAAA=\n\n", "no signature lines"),
        (b"te\rxt\n\n\xe2\x80\x94 a AAAAAAA=\n", "control character"),
        (b"te\txt\n\n\xe2\x80\x94 a AAAAAAA=\n", "control character"),
        (b"\xff\n\n\xe2\x80\x94 a AAAAAAA=\n", "UTF-8"),
        (b"text\n\n\xe2\x80\x94 a AAAAAAA=\ngarbage\n", "em dash"),
        (b"text\n\n\xe2\x80\x94 a AAAAAAA=\n\xe2\x80\x94 b\n", "must be"),
    ],
)
def test_malformed_notes_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        parse_note(data)


def test_signature_count_limit() -> None:
    line = Signature("a", b"\x00" * 4, b"\x00" * 64).to_line()
    assert len(parse_note(b"t\n\n" + line * 16).signatures) == 16
    assert (
        len(parse_note(b"t\n\n" + line * MAX_SIGNATURES).signatures) == MAX_SIGNATURES
    )
    with pytest.raises(NoteError, match="over the limit"):
        parse_note(b"t\n\n" + line * (MAX_SIGNATURES + 1))


def test_sign_rejects_bad_text() -> None:
    signer = Ed25519Signer("example.org/log", _key(8))
    with pytest.raises(NoteError, match="newline"):
        sign_note("no newline", [signer])
    with pytest.raises(NoteError, match="control character"):
        sign_note("bell\a\n", [signer])
    with pytest.raises(NoteError, match="at least one signer"):
        sign_note("text\n", [])
    with pytest.raises(NoteError):
        Ed25519Signer("bad name", _key(8))


def test_vkey_errors() -> None:
    signer = Ed25519Signer("example.org/log", _key(9))
    name, key_id, kind, public_key = parse_vkey(signer.vkey)
    assert (name, key_id, kind, len(public_key)) == (
        "example.org/log",
        signer.key_id,
        1,
        32,
    )
    with pytest.raises(NoteError, match="does not match"):
        parse_vkey(signer.vkey.replace(signer.key_id.hex(), "00000000"))
    with pytest.raises(NoteError, match="must look like"):
        parse_vkey("example.org/log")
    with pytest.raises(NoteError, match="hex"):
        parse_vkey("a+XYZ+AQ==")
    with pytest.raises(NoteError, match="base64"):
        parse_vkey(f"a+{signer.key_id.hex()}+!!!")
    with pytest.raises(NoteError, match="signature type 0x01"):
        CosignatureVerifier.from_vkey(signer.vkey)
    cosigner = CosignatureSigner("witness.example/w", _key(10))
    with pytest.raises(NoteError, match="signature type 0x04"):
        Ed25519Verifier.from_vkey(cosigner.vkey)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs"])), min_size=1
    )
)
def test_round_trip_any_text(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    signer = Ed25519Signer("example.org/log", _key(11))
    data = sign_note(text, [signer])
    note = parse_note(data)
    assert note.text == text
    verify_note(note, [signer.verifier()])


# Cosignatures.


def test_cosignature_round_trip() -> None:
    log = Ed25519Signer("example.org/log", _key(12))
    cosigner = CosignatureSigner(
        "witness.example/w1", _key(13), clock=lambda: 1700000000.7
    )
    note = parse_note(sign_note("example.org/log\n5\n" + "A" * 43 + "=\n", [log]))
    line = cosigner.cosign(note.text)
    cosigned = parse_note(note.to_bytes() + line)
    verify_note(cosigned, [log.verifier(), cosigner.verifier()])
    pairs = verified_signatures(cosigned, [cosigner.verifier()])
    assert cosignature_timestamp(pairs[0][1].signature) == 1700000000
    # The cosignature key ID uses type 0x04, so an Ed25519 verifier of the
    # same key and name does not match it.
    plain = Ed25519Verifier("witness.example/w1", _key(13).public_key())
    assert plain.key_id != cosigner.key_id
    with pytest.raises(NoteError):
        verify_note(parse_note(note.to_bytes() + line).with_signatures([]), [plain])


def test_cosignature_bound_to_timestamp() -> None:
    cosigner = CosignatureSigner("witness.example/w1", _key(14))
    signature = cosigner.sign(b"o\n1\n" + b"A" * 43 + b"=\n", 1000)
    moved = (1001).to_bytes(8, "big") + signature[8:]
    verifier = cosigner.verifier()
    verifier.verify(b"o\n1\n" + b"A" * 43 + b"=\n", signature)
    with pytest.raises(NoteError, match="invalid signature"):
        verifier.verify(b"o\n1\n" + b"A" * 43 + b"=\n", moved)
    with pytest.raises(NoteError, match="72|cosignature/v1"):
        verifier.verify(b"x\n", signature[:-1])
    with pytest.raises(NoteError, match="exceeds"):
        cosignature_timestamp(b"\xff" * 72)


# An independent reimplementation written from the specs.


def _independent_verify(data: bytes, vkey: str, cosignature: bool) -> int | None:
    """Verify one signature of data for vkey, from the spec text alone.

    Returns the cosignature timestamp for cosignature/v1 and None otherwise.
    """
    name, key_id_hex, material = vkey.split("+", 2)
    decoded = base64.b64decode(material)
    assert decoded[0] == (4 if cosignature else 1)
    public = decoded[1:]
    key_id = hashlib.sha256(name.encode() + b"\n" + decoded[:1] + public).digest()[:4]
    assert key_id.hex() == key_id_hex
    text_end = data.rindex(b"\n\n") + 1
    text = data[:text_end]
    found = None
    for line in data[text_end + 1 :].decode().splitlines():
        dash, line_name, blob_b64 = line.split(" ")
        assert dash == "\u2014"
        blob = base64.b64decode(blob_b64)
        if line_name == name and blob[:4] == key_id:
            found = blob[4:]
    assert found is not None
    key = Ed25519PublicKey.from_public_bytes(public)
    if not cosignature:
        key.verify(found, text)
        return None
    timestamp = int.from_bytes(found[:8], "big")
    message = b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + text
    key.verify(found[8:], message)
    return timestamp


def test_independent_verifier_accepts_our_notes() -> None:
    log = Ed25519Signer("example.org/log", _key(15))
    cosigner = CosignatureSigner("witness.example/w2", _key(16))
    data = sign_note(
        "example.org/log\n42\n" + base64.b64encode(bytes(32)).decode() + "\n", [log]
    )
    data += cosigner.cosign(parse_note(data).text, 1234567890)
    assert _independent_verify(data, log.vkey, cosignature=False) is None
    assert _independent_verify(data, cosigner.vkey, cosignature=True) == 1234567890


def test_note_dataclass_encoding() -> None:
    note = Note("a\n\nb\n", (Signature("k", b"\x00\x01\x02\x03", b"s"),))
    assert note.to_bytes() == "a\n\nb\n\n\u2014 k AAECA3M=\n".encode()
    assert parse_note(note.to_bytes()) == note
    assert parse_signature_line("\u2014 k AAECA3M=") == note.signatures[0]


def test_go_sumdb_note_known_answer() -> None:
    # The PeterNeumann key and note of golang.org/x/mod/sumdb/note's tests.
    # Ed25519 signatures are deterministic, so signing the same text with
    # the same key reproduces the published note byte for byte.
    seed = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
    assert seed[0] == 0x01
    signer = Ed25519Signer(
        "PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed[1:])
    )
    assert signer.vkey == (
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    text = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
    )
    expected = (
        text
        + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgY"
        "N1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    ).encode()
    assert sign_note(text, [signer]) == expected
    verify_note(parse_note(expected), [Ed25519Verifier.from_vkey(signer.vkey)])
    # Go rejects these manglings of the vkey: a key of the wrong length and
    # an unknown signature type, each with a matching key ID.
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(NoteError):
            Ed25519Verifier.from_vkey(bad)


def test_vkey_manglings_rejected() -> None:
    # As in Go's TestNewVerifier: every proper substring of a vkey, and
    # every one-byte increment of it, is rejected.
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    Ed25519Verifier.from_vkey(vkey)
    mangled = [
        vkey[i:j]
        for i in range(len(vkey) + 1)
        for j in range(i + 1, len(vkey) + 1)
        if (i, j) != (0, len(vkey))
    ]
    mangled += [
        vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :] for i in range(len(vkey))
    ]
    for bad in mangled:
        with pytest.raises(NoteError):
            Ed25519Verifier.from_vkey(bad)
            pytest.fail(bad)


def test_transparency_dev_cosignature_vectors() -> None:
    # From transparency-dev/formats note/note_cosigv1_test.go.
    witness = CosignatureVerifier.from_vkey(
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    )
    assert witness.key_id.hex() == "da77ade7"
    log = Ed25519Verifier.from_vkey(
        "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
    )
    assert log.name == "TEST"
    blob = base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+"
        "8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
    )
    assert cosignature_timestamp(blob[4:]) == 1727964367
    plain = base64.b64decode(
        "eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnky"
        "V+MUMLXpWs1hPb/W/4xkNQY="
    )
    with pytest.raises(NoteError, match="cosignature/v1"):
        cosignature_timestamp(plain[4:])
