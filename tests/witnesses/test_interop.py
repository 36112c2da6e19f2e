"""Our notes and cosignatures against the C2SP reference and public vectors."""

from __future__ import annotations

import base64
import string

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import note as note_format
from ledger.checkpoint import Checkpoint
from witnesses.nodes import open_witness

SIGNED_NOTE = "c2sp-signed-note"


def test_reference_verifies_spec_example(vectors_dir, c2sp):
    """The reference itself accepts the signed-note spec example."""
    folder = vectors_dir / SIGNED_NOTE
    note = (folder / "example.com-foo.note").read_bytes()
    vkey = (folder / "example.com-foo.vkey").read_text().strip()
    c2sp.verify_note_signature(note, vkey)
    note_format.verify_note(
        note_format.parse_note(note), [note_format.Ed25519Verifier.from_vkey(vkey)]
    )


def test_spec_checkpoints_parse_alike(vectors_dir, c2sp):
    folder = vectors_dir / SIGNED_NOTE
    for name in (
        "checkpoint-behind-the-sofa.note",
        "checkpoint-behind-the-sofa-cosigned.note",
    ):
        data = (folder / name).read_bytes()
        text, signatures = c2sp.split_note(data)
        ours = note_format.parse_note(data)
        assert ours.text == text
        assert [(s.name, s.key_id + s.signature) for s in ours.signatures] == signatures
        origin, tree_size, root_hash, extensions = c2sp.parse_checkpoint(text)
        checkpoint = Checkpoint.parse(ours.text)
        assert (checkpoint.origin, checkpoint.tree_size) == (origin, tree_size)
        assert checkpoint.root_hash == root_hash
        assert list(checkpoint.extensions) == extensions


def test_spec_cosignature_layout(vectors_dir):
    """The spec's cosignature line is key ID, 8-byte timestamp, 64-byte signature."""
    data = (
        vectors_dir / SIGNED_NOTE / "checkpoint-behind-the-sofa-cosigned.note"
    ).read_bytes()
    cosignature = note_format.parse_note(data).signatures[1]
    assert cosignature.name == "witness.example.com/w1"
    assert len(cosignature.signature) == 72
    assert note_format.cosignature_timestamp(cosignature.signature) == 1679315147


def test_witness_response_parses_by_go_rules(tmp_path, passphrase, reference_log, c2sp):
    witness = open_witness(tmp_path / "w", [reference_log.vkey], "witness.test/w1")
    lines = witness.add_checkpoint(reference_log.request(0, 12))
    witness.state.close()
    cosigned = reference_log.note(12) + lines
    _, signatures = c2sp.split_note(cosigned)
    assert [name for name, _ in signatures] == [reference_log.origin, "witness.test/w1"]
    assert len(signatures[1][1]) == 4 + 8 + 64
    c2sp.verify_note_signature(cosigned, reference_log.vkey)
    c2sp.verify_cosignature(cosigned, witness.vkey)


origins = st.text(
    alphabet=string.ascii_letters + string.digits + "./-_", min_size=1, max_size=40
)
extensions = st.lists(
    st.text(alphabet=string.ascii_letters + " =:", min_size=1, max_size=20), max_size=3
)


@settings(max_examples=40, deadline=None)
@given(
    origin=origins,
    tree_size=st.integers(min_value=0, max_value=(1 << 63) - 1),
    root_hash=st.binary(min_size=32, max_size=32),
    extension_lines=extensions,
    timestamp=st.integers(min_value=0, max_value=(1 << 63) - 1),
)
def test_our_formats_match_reference(
    origin, tree_size, root_hash, extension_lines, timestamp
):
    import importlib

    c2sp = importlib.import_module("c2sp_reference")
    log_key = Ed25519PrivateKey.generate()
    witness_key = Ed25519PrivateKey.generate()
    checkpoint = Checkpoint(origin, tree_size, root_hash, tuple(extension_lines))
    signer = note_format.Ed25519Signer(origin, log_key)
    note = note_format.sign_note(checkpoint.to_text(), [signer])

    # Our log note verifies with the reference, and the reference's note with ours.
    c2sp.verify_note_signature(note, signer.vkey)
    assert c2sp.parse_checkpoint(c2sp.split_note(note)[0]) == (
        origin,
        tree_size,
        root_hash,
        extension_lines,
    )
    theirs = c2sp.sign_note(checkpoint.to_text(), origin, log_key)
    assert theirs == note

    # Our cosignature verifies with the reference and carries the timestamp.
    cosigner = note_format.CosignatureSigner("witness.test/w", witness_key)
    line = cosigner.cosign(checkpoint.to_text(), timestamp)
    assert c2sp.verify_cosignature(note + line, cosigner.vkey) == timestamp
    blob = base64.b64decode(line.decode().split(" ")[2])
    assert blob[:4] == c2sp.key_id(
        "witness.test/w", 0x04, witness_key.public_key().public_bytes_raw()
    )
