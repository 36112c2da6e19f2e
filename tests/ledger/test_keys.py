"""Keys at rest: encrypted PKCS#8 PEM, passphrase from the environment."""

from __future__ import annotations

import stat
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.keys import (
    KeyFileError,
    PassphraseMissingError,
    generate_key_file,
    passphrase_from_environment,
    read_key_file,
)


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def test_key_round_trip(tmp_path):
    path = tmp_path / "log.key"
    key = generate_key_file(path, b"correct horse")
    loaded = read_key_file(path, b"correct horse")
    assert public_bytes(loaded) == public_bytes(key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_file_is_encrypted_pkcs8(tmp_path):
    path = tmp_path / "log.key"
    generate_key_file(path, b"correct horse")
    text = path.read_text()
    assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    # openssl, as an independent reader, needs the passphrase too.
    without = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-passin", "pass:wrong", "-noout"],
        capture_output=True,
    )
    assert without.returncode != 0
    with_passphrase = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-passin", "pass:correct horse", "-noout"],
        capture_output=True,
    )
    assert with_passphrase.returncode == 0, with_passphrase.stderr


def test_wrong_passphrase_rejected(tmp_path):
    path = tmp_path / "log.key"
    generate_key_file(path, b"correct horse")
    with pytest.raises(KeyFileError, match="LEDGER_PASSPHRASE"):
        read_key_file(path, b"battery staple")


def test_existing_key_never_overwritten(tmp_path):
    path = tmp_path / "log.key"
    generate_key_file(path, b"one")
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key_file(path, b"two")
    assert path.read_bytes() == before


def test_unencrypted_key_rejected(tmp_path):
    path = tmp_path / "plain.key"
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    with pytest.raises(KeyFileError, match="not encrypted"):
        read_key_file(path, b"anything")


def test_missing_key_file(tmp_path):
    with pytest.raises(KeyFileError, match="cannot read"):
        read_key_file(tmp_path / "absent.key", b"x")


def test_passphrase_from_environment(monkeypatch):
    monkeypatch.setenv("LEDGER_PASSPHRASE", "s3cret")
    assert passphrase_from_environment() == b"s3cret"
    monkeypatch.delenv("LEDGER_PASSPHRASE")
    with pytest.raises(PassphraseMissingError, match="LEDGER_PASSPHRASE"):
        passphrase_from_environment()
    monkeypatch.setenv("LEDGER_PASSPHRASE", "")
    with pytest.raises(PassphraseMissingError):
        passphrase_from_environment()
