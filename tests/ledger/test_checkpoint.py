"""C2SP tlog-checkpoint parsing, formatting and signing."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    open_checkpoint,
    sign_checkpoint,
)
from ledger.note import Ed25519Signer, NoteError, parse_note

ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")


def _signer(name: str = "example.org/log") -> Ed25519Signer:
    return Ed25519Signer(name, Ed25519PrivateKey.from_private_bytes(b"\x07" * 32))


def test_spec_example(vectors_dir: Path) -> None:
    data = (
        vectors_dir / "c2sp-signed-note" / "checkpoint-behind-the-sofa.note"
    ).read_bytes()
    checkpoint = Checkpoint.parse(parse_note(data).text)
    assert checkpoint == Checkpoint("example.com/behind-the-sofa", 20852163, ROOT)
    assert checkpoint.to_text() == parse_note(data).text


def test_extension_lines_round_trip() -> None:
    checkpoint = Checkpoint("example.org/log", 0, bytes(32), ("ext one", "ext two"))
    text = checkpoint.to_text()
    assert text.endswith("\next one\next two\n")
    assert Checkpoint.parse(text) == checkpoint
    assert Checkpoint.parse(text.encode()) == checkpoint


@pytest.mark.parametrize(
    "text, reason",
    [
        ("o\n1\n" + base64.b64encode(ROOT).decode(), "newline"),
        ("o\n1\n", "lines"),
        ("\n1\n" + base64.b64encode(ROOT).decode() + "\n", "origin"),
        ("o\n01\n" + base64.b64encode(ROOT).decode() + "\n", "tree_size"),
        ("o\n-1\n" + base64.b64encode(ROOT).decode() + "\n", "tree_size"),
        ("o\n\n" + base64.b64encode(ROOT).decode() + "\n", "tree_size"),
        ("o\n1 \n" + base64.b64encode(ROOT).decode() + "\n", "tree_size"),
        ("o\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n", "32 bytes"),
        ("o\n1\nnot base64!\n", "base64"),
        ("o\n1\n" + base64.b64encode(ROOT).decode() + "\n\n", "extension"),
        ("o\n1\n" + base64.b64encode(ROOT).decode() + "\next\n\n", "extension"),
    ],
)
def test_malformed_rejected(text: str, reason: str) -> None:
    with pytest.raises(CheckpointError, match=reason):
        Checkpoint.parse(text)


def test_constructor_checks() -> None:
    with pytest.raises(CheckpointError):
        Checkpoint("", 1, ROOT)
    with pytest.raises(CheckpointError):
        Checkpoint("o", -1, ROOT)
    with pytest.raises(CheckpointError, match="2\\*\\*64"):
        Checkpoint.parse(f"o\n{1 << 64}\n" + base64.b64encode(ROOT).decode() + "\n")
    with pytest.raises(CheckpointError):
        Checkpoint("o", 1, ROOT[:5])
    with pytest.raises(CheckpointError):
        Checkpoint("o", 1, ROOT, ("",))


def test_sign_and_open() -> None:
    signer = _signer()
    checkpoint = Checkpoint("example.org/log", 12, ROOT)
    data = sign_checkpoint(checkpoint, [signer])
    opened, note = open_checkpoint(data, signer.verifier())
    assert opened == checkpoint
    assert note.signatures[0].name == "example.org/log"
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(data, signer.verifier(), origin="example.org/other")
    foreign = sign_checkpoint(Checkpoint("example.org/other", 1, ROOT), [signer])
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(foreign, signer.verifier())
    with pytest.raises(NoteError):
        open_checkpoint(data, _signer("example.org/other").verifier())
