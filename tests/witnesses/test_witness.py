"""The witness's checks, state and cosignatures, verified by the C2SP reference."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from witnesses.nodes import open_witness
from witnesses.witness import (
    ConflictError,
    ConsistencyError,
    MalformedRequestError,
    SignatureError,
    UnknownOriginError,
)


@pytest.fixture
def witness(tmp_path, passphrase, reference_log):
    witness = open_witness(tmp_path / "w", [reference_log.vkey], "witness.test/w1")
    yield witness
    witness.state.close()


def test_first_checkpoint_from_zero(witness, reference_log, c2sp):
    lines = witness.add_checkpoint(reference_log.request(0, 10))
    note = reference_log.note(10) + lines
    timestamp = c2sp.verify_cosignature(note, witness.vkey)
    assert timestamp > 1_700_000_000
    assert witness.state.latest(reference_log.origin).tree_size == 10
    assert witness.state.latest(reference_log.origin).note == note


def test_vkey_written_on_first_start(tmp_path, witness, c2sp):
    written = (tmp_path / "w" / "witness.vkey").read_text().strip()
    assert written == witness.vkey
    name, _, algorithm, _ = c2sp.parse_vkey(written)
    assert name == "witness.test/w1"
    assert algorithm == c2sp.ED25519_COSIGNATURE


def test_key_encrypted_at_rest(tmp_path, witness):
    pem = (tmp_path / "w" / "witness.key").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_growing_log_cosigned_each_step(witness, reference_log, c2sp):
    old = 0
    for tree_size in (1, 2, 3, 7, 8, 9, 16, 17, 31, 40, 40):
        lines = witness.add_checkpoint(reference_log.request(old, tree_size))
        c2sp.verify_cosignature(reference_log.note(tree_size) + lines, witness.vkey)
        old = tree_size
    stored = witness.state.cosigned(reference_log.origin, 17)
    assert stored.root_hash == reference_log.root(17)


def test_every_old_size_to_40(tmp_path, passphrase, reference_log, c2sp):
    """From each old size 1..39 to 40, each proof verifies in a fresh witness."""
    for old in range(1, 40):
        witness = open_witness(tmp_path / f"w{old}", [reference_log.vkey], None)
        witness.add_checkpoint(reference_log.request(0, old))
        lines = witness.add_checkpoint(reference_log.request(old, 40))
        c2sp.verify_cosignature(reference_log.note(40) + lines, witness.vkey)
        witness.state.close()


def test_empty_tree_checkpoint(witness, reference_log, c2sp):
    lines = witness.add_checkpoint(reference_log.request(0, 0))
    c2sp.verify_cosignature(reference_log.note(0) + lines, witness.vkey)


def test_unknown_origin_rejected(witness, c2sp):
    other = c2sp.ReferenceLog("other.test/log", Ed25519PrivateKey.generate())
    other.append(b"a")
    with pytest.raises(UnknownOriginError) as caught:
        witness.add_checkpoint(other.request(0, 1))
    assert caught.value.status == 404


def test_foreign_key_signature_rejected(witness, reference_log, c2sp):
    impostor = c2sp.ReferenceLog(reference_log.origin, Ed25519PrivateKey.generate())
    impostor.append(b"a")
    with pytest.raises(SignatureError) as caught:
        witness.add_checkpoint(impostor.request(0, 1))
    assert caught.value.status == 403
    assert witness.state.latest(reference_log.origin) is None


def test_tampered_note_rejected(witness, reference_log):
    body = reference_log.request(0, 5).replace(b"\n5\n", b"\n6\n")
    with pytest.raises(SignatureError):
        witness.add_checkpoint(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 0\n",
        b"old x\n\nexample.test/log\n",
        b"old 0\n\nnot a note",
    ],
)
def test_malformed_requests_rejected(witness, body):
    with pytest.raises(MalformedRequestError) as caught:
        witness.add_checkpoint(body)
    assert caught.value.status == 400


def test_old_size_above_tree_size_rejected(witness, reference_log):
    body = b"old 6\n\n" + reference_log.note(5)
    with pytest.raises(MalformedRequestError):
        witness.add_checkpoint(body)


def test_old_zero_with_proof_rejected(witness, reference_log):
    proof_line = b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    with pytest.raises(MalformedRequestError):
        witness.add_checkpoint(b"old 0\n" + proof_line + b"\n" + reference_log.note(5))


def test_stale_old_size_conflict(witness, reference_log):
    witness.add_checkpoint(reference_log.request(0, 10))
    with pytest.raises(ConflictError) as caught:
        witness.add_checkpoint(reference_log.request(4, 12))
    assert caught.value.status == 409
    assert caught.value.tree_size == 10
    with pytest.raises(ConflictError) as caught:
        witness.add_checkpoint(reference_log.request(0, 12))
    assert caught.value.tree_size == 10


def test_bad_proof_rejected(witness, reference_log):
    witness.add_checkpoint(reference_log.request(0, 10))
    body = bytearray(reference_log.request(10, 20))
    # Flip one bit inside the first proof line's base64 text.
    first_line = body.index(b"\n") + 1
    body[first_line + 5] ^= 0x01
    with pytest.raises((ConsistencyError, MalformedRequestError)):
        witness.add_checkpoint(bytes(body))
    assert witness.state.latest(reference_log.origin).tree_size == 10


def test_each_flipped_proof_hash_rejected(witness, reference_log):
    import base64

    witness.add_checkpoint(reference_log.request(0, 13))
    proof = reference_log.proof(13, 37)
    for position in range(len(proof)):
        for bit in (0, 77, 255):
            broken = list(proof)
            damaged = bytearray(broken[position])
            damaged[bit // 8] ^= 1 << (bit % 8)
            broken[position] = bytes(damaged)
            body = b"old 13\n" + b"".join(
                base64.b64encode(node) + b"\n" for node in broken
            )
            with pytest.raises(ConsistencyError) as caught:
                witness.add_checkpoint(body + b"\n" + reference_log.note(37))
            assert caught.value.status == 422
    assert witness.state.latest(reference_log.origin).tree_size == 13


def test_forked_log_not_cosigned(witness, reference_log):
    witness.add_checkpoint(reference_log.request(0, 20))
    forked = reference_log.fork(15, *[b"forged %d" % i for i in range(10)])
    with pytest.raises(ConsistencyError):
        witness.add_checkpoint(forked.request(20, 25))
    records = witness.state.evidence(reference_log.origin)
    assert len(records) == 1
    assert records[0].note == forked.note(25)
    assert records[0].conflicting_note.startswith(reference_log.note(20))


def test_replayed_note_recorded_once(witness, reference_log):
    witness.add_checkpoint(reference_log.request(0, 20))
    forked = reference_log.fork(15, *[b"forged %d" % i for i in range(10)])
    for _ in range(5):
        with pytest.raises(ConsistencyError):
            witness.add_checkpoint(forked.request(20, 25))
    records = witness.state.evidence(reference_log.origin)
    assert [r.note for r in records] == [forked.note(25)]


def test_second_root_for_size_rejected(witness, reference_log):
    witness.add_checkpoint(reference_log.request(0, 20))
    forked = reference_log.fork(15, *[b"forged %d" % i for i in range(5)])
    with pytest.raises(ConflictError) as caught:
        witness.add_checkpoint(forked.request(20, 20))
    assert caught.value.tree_size == 20
    assert witness.state.latest(reference_log.origin).root_hash == reference_log.root(
        20
    )
    assert [r.note for r in witness.state.evidence(reference_log.origin)] == [
        forked.note(20)
    ]


def test_state_survives_restart(tmp_path, passphrase, reference_log, c2sp):
    first = open_witness(tmp_path / "w", [reference_log.vkey], "witness.test/w1")
    first.add_checkpoint(reference_log.request(0, 20))
    vkey = first.vkey
    first.state.close()

    again = open_witness(tmp_path / "w", [reference_log.vkey], None)
    assert again.vkey == vkey
    forked = reference_log.fork(15, *[b"forged %d" % i for i in range(5)])
    with pytest.raises(ConflictError):
        again.add_checkpoint(forked.request(20, 20))
    lines = again.add_checkpoint(reference_log.request(20, 30))
    c2sp.verify_cosignature(reference_log.note(30) + lines, vkey)
    again.state.close()


def test_extra_signatures_on_note_ignored(witness, reference_log, c2sp):
    other_key = Ed25519PrivateKey.generate()
    extra = c2sp.sign_note(
        reference_log.checkpoint_text(5), "someone.else/key", other_key
    )
    signature_line = extra.split(b"\n\n", 1)[1]
    body = reference_log.request(0, 5) + signature_line
    lines = witness.add_checkpoint(body)
    c2sp.verify_cosignature(reference_log.note(5) + lines, witness.vkey)


def test_stale_size_is_no_evidence(witness, reference_log):
    """A log that restarts from old size 0 gets 409, and nothing is kept."""
    witness.add_checkpoint(reference_log.request(0, 20))
    with pytest.raises(ConflictError) as caught:
        witness.add_checkpoint(reference_log.request(0, 20))
    assert caught.value.tree_size == 20
    assert witness.state.evidence(reference_log.origin) == []


@settings(max_examples=25, deadline=None)
@given(
    leaves=st.integers(min_value=2, max_value=70),
    data=st.data(),
)
def test_reference_proofs_accepted_flips_rejected(tmp_path_factory, leaves, data):
    """Any reference proof verifies; the same proof with one bit flipped does not."""
    import base64
    import importlib
    import os

    c2sp = importlib.import_module("c2sp_reference")
    previous = os.environ.get("LEDGER_PASSPHRASE")
    os.environ["LEDGER_PASSPHRASE"] = "property test passphrase"
    log = c2sp.ReferenceLog("example.test/property", Ed25519PrivateKey.generate())
    log.append(*[b"leaf %d" % i for i in range(leaves)])
    old = data.draw(st.integers(min_value=1, max_value=leaves - 1))
    witness = open_witness(tmp_path_factory.mktemp("w"), [log.vkey], None)
    try:
        witness.add_checkpoint(log.request(0, old))
        proof = log.proof(old, leaves)
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bit = data.draw(st.integers(min_value=0, max_value=255))
        broken = list(proof)
        damaged = bytearray(broken[position])
        damaged[bit // 8] ^= 1 << (bit % 8)
        broken[position] = bytes(damaged)
        body = b"old %d\n" % old
        body += b"".join(base64.b64encode(node) + b"\n" for node in broken)
        with pytest.raises(ConsistencyError):
            witness.add_checkpoint(body + b"\n" + log.note(leaves))
        lines = witness.add_checkpoint(log.request(old, leaves))
        c2sp.verify_cosignature(log.note(leaves) + lines, witness.vkey)
    finally:
        witness.state.close()
        if previous is None:
            del os.environ["LEDGER_PASSPHRASE"]
        else:
            os.environ["LEDGER_PASSPHRASE"] = previous


def test_log_with_two_keys(tmp_path, passphrase, reference_log, c2sp):
    """Two vkeys for one origin: a checkpoint signed by either is accepted."""
    rotated = c2sp.ReferenceLog(
        reference_log.origin,
        Ed25519PrivateKey.generate(),
        list(reference_log.leaf_hashes),
    )
    witness = open_witness(tmp_path / "w", [reference_log.vkey, rotated.vkey], None)
    try:
        witness.add_checkpoint(reference_log.request(0, 10))
        lines = witness.add_checkpoint(rotated.request(10, 20))
        c2sp.verify_cosignature(rotated.note(20) + lines, witness.vkey)
    finally:
        witness.state.close()
