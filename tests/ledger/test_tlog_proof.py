"""C2SP tlog-proof: the sumdb vector, round trips and rejection."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.merkle import inclusion_proof, leaf_hash, root_hash, stored_hashes_for_leaf
from ledger.note import Ed25519Signer, Ed25519Verifier
from ledger.tlog_proof import (
    TlogProof,
    TlogProofError,
    parse_tlog_proof,
    verify_tlog_proof,
)

NAME = "go.sum-database-tree-43930254"


class _Reader(dict):
    def read_hashes(self, ids):
        return [self[node] for node in ids]


def _sumdb(vectors_dir: Path) -> tuple[bytes, bytes, Ed25519Verifier]:
    folder = vectors_dir / "tlog-proof-sumdb"
    data = (folder / f"{NAME}.tlog-proof").read_bytes()
    raw = (folder / f"{NAME}.raw").read_bytes()
    verifier = Ed25519Verifier.from_vkey((folder / "sum.golang.org.vkey").read_text())
    return data, raw, verifier


def _log(size: int) -> tuple[_Reader, Ed25519Signer, bytes]:
    reader = _Reader()
    for index in range(size):
        for level, position, value in stored_hashes_for_leaf(
            index, leaf_hash(b"entry %d" % index), reader
        ):
            reader[level, position] = value
    signer = Ed25519Signer(
        "example.org/log", Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)
    )
    checkpoint = Checkpoint("example.org/log", size, root_hash(size, reader))
    return reader, signer, sign_checkpoint(checkpoint, [signer])


def test_sumdb_vector(vectors_dir: Path) -> None:
    data, raw, verifier = _sumdb(vectors_dir)
    proof = parse_tlog_proof(data)
    assert proof.index == 43930254
    assert len(proof.hashes) == 26
    assert proof.extra is None
    assert proof.encode() == data
    # The sumdb origin differs from its key name, so the caller names it.
    checkpoint = verify_tlog_proof(
        proof, leaf_hash(raw), [verifier], origin="go.sum database tree"
    )
    assert checkpoint.tree_size == 58253265
    with pytest.raises(TlogProofError, match="origin"):
        verify_tlog_proof(proof, leaf_hash(raw), [verifier])
    with pytest.raises(TlogProofError, match="inclusion proof"):
        verify_tlog_proof(
            proof, leaf_hash(raw + b"x"), [verifier], origin="go.sum database tree"
        )
    moved = TlogProof(proof.index + 1, proof.hashes, proof.checkpoint)
    with pytest.raises(TlogProofError, match="inclusion proof"):
        verify_tlog_proof(
            moved, leaf_hash(raw), [verifier], origin="go.sum database tree"
        )


def test_round_trip_with_extra() -> None:
    reader, signer, note = _log(13)
    proof = TlogProof(7, inclusion_proof(7, 13, reader), note, extra=b"\x00vrf")
    data = proof.encode()
    assert data.startswith(b"c2sp.org/tlog-proof@v1\nextra AHZyZg==\nindex 7\n")
    parsed = parse_tlog_proof(data)
    assert parsed == TlogProof(7, list(proof.hashes), note, b"\x00vrf")
    checkpoint = verify_tlog_proof(parsed, leaf_hash(b"entry 7"), [signer.verifier()])
    assert checkpoint.tree_size == 13
    assert parsed.parsed_checkpoint() == checkpoint


def test_single_leaf_empty_proof() -> None:
    _, signer, note = _log(1)
    data = TlogProof(0, [], note).encode()
    assert data.startswith(b"c2sp.org/tlog-proof@v1\nindex 0\n\n")
    verify_tlog_proof(
        parse_tlog_proof(data), leaf_hash(b"entry 0"), [signer.verifier()]
    )


def test_wrong_log_key_rejected() -> None:
    reader, _, note = _log(4)
    other = Ed25519Signer(
        "example.org/log", Ed25519PrivateKey.from_private_bytes(b"\x06" * 32)
    )
    proof = TlogProof(1, inclusion_proof(1, 4, reader), note)
    with pytest.raises(TlogProofError, match="checkpoint failed"):
        verify_tlog_proof(proof, leaf_hash(b"entry 1"), [other.verifier()])


def test_malformed_rejected() -> None:
    reader, _, note = _log(4)
    good = TlogProof(1, inclusion_proof(1, 4, reader), note).encode()
    hash_line = base64.b64encode(bytes(32))
    cases = {
        "no blank line": b"c2sp.org/tlog-proof@v1\nindex 1\n",
        "wrong header": good.replace(b"@v1", b"@v2"),
        "missing index": good.replace(b"index 1\n", b""),
        "leading zero": good.replace(b"index 1", b"index 01"),
        "negative": good.replace(b"index 1", b"index -1"),
        "short hash": good.replace(b"index 1\n", b"index 1\nAAAA\n"),
        "bad base64": good.replace(b"index 1\n", b"index 1\n!!!!\n"),
        "bad extra": good.replace(b"index 1\n", b"extra !!\nindex 1\n", 1),
        "extra after index": good.replace(b"index 1\n", b"index 1\nextra AA==\n"),
        "bad checkpoint": good.split(b"\n\n")[0] + b"\n\nnot a note\n",
        "too many hashes": good.replace(
            b"index 1\n", b"index 1\n" + (hash_line + b"\n") * 65
        ),
    }
    for name, data in cases.items():
        with pytest.raises(TlogProofError):
            parse_tlog_proof(data)
            pytest.fail(name)
    with pytest.raises(TlogProofError):
        TlogProof(-1, [], note).encode()
    with pytest.raises(TlogProofError):
        TlogProof(0, [b"short"], note).encode()


def test_origin_needs_verified_signature() -> None:
    # The note carries a line named after the origin, but from a key the
    # verifier does not know; only the other log's signature verifies.
    reader, _, _ = _log(4)
    other = Ed25519Signer(
        "example.org/other", Ed25519PrivateKey.from_private_bytes(b"\x08" * 32)
    )
    impostor = Ed25519Signer(
        "example.org/log", Ed25519PrivateKey.from_private_bytes(b"\x09" * 32)
    )
    real = Ed25519Signer(
        "example.org/log", Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)
    )
    checkpoint = Checkpoint("example.org/log", 4, root_hash(4, reader))
    note = sign_checkpoint(checkpoint, [other, impostor])
    proof = TlogProof(1, inclusion_proof(1, 4, reader), note)
    with pytest.raises(TlogProofError, match="origin"):
        verify_tlog_proof(
            proof, leaf_hash(b"entry 1"), [other.verifier(), real.verifier()]
        )
