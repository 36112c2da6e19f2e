"""Salted SHA-256 commitments."""

from __future__ import annotations

import hashlib

import pytest

from ledger.commitment import (
    LABELS,
    CommitmentError,
    commit,
    new_salt,
    verify_commitment,
)

SALT = bytes(range(32))


def test_known_answer() -> None:
    expected = hashlib.sha256(
        b"ledger-commitment/v1\nemail\n" + SALT + b"alice@example.org"
    ).digest()
    assert commit("email", b"alice@example.org", SALT) == expected


def test_verify_accepts_and_rejects() -> None:
    value = "Zoë Example".encode()
    for label in sorted(LABELS):
        commitment = commit(label, value, SALT)
        assert verify_commitment(label, value, SALT, commitment) is None
        with pytest.raises(CommitmentError, match="does not match"):
            verify_commitment(label, value + b"x", SALT, commitment)
        with pytest.raises(CommitmentError, match="does not match"):
            verify_commitment(label, value, bytes(32), commitment)
    with pytest.raises(CommitmentError, match="does not match"):
        verify_commitment("email", value, SALT, commit("name", value, SALT))


def test_labels_separate_domains() -> None:
    assert commit("name", b"x", SALT) != commit("email", b"x", SALT)


def test_invalid_inputs() -> None:
    with pytest.raises(CommitmentError, match="unknown"):
        commit("address", b"x", SALT)
    with pytest.raises(CommitmentError, match="32"):
        commit("name", b"x", SALT[:31])
    with pytest.raises(CommitmentError, match="bytes"):
        commit("name", "text", SALT)  # type: ignore[arg-type]


def test_new_salt() -> None:
    first = new_salt()
    assert len(first) == 32
    assert first != new_salt()
