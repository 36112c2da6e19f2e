"""Envelope encryption: round trips, binding to the contract id, tampering."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from signer.envelope import (
    HEADER_SIZE,
    MAGIC,
    EnvelopeError,
    MasterKey,
    open_sealed,
    seal,
)

MASTER = MasterKey(bytes(range(32)))
contract_ids = st.text(min_size=1, max_size=40)


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=2000), contract_id=contract_ids)
def test_seal_open_round_trip(plaintext, contract_id):
    sealed = seal(plaintext, contract_id, MASTER)
    assert len(sealed) == HEADER_SIZE + len(plaintext) + 16
    assert open_sealed(sealed, contract_id, [MASTER]) == plaintext


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=300), data=st.data())
def test_any_flipped_bit_rejected(plaintext, data):
    sealed = bytearray(seal(plaintext, "c-1", MASTER))
    position = data.draw(st.integers(0, len(sealed) * 8 - 1))
    sealed[position // 8] ^= 1 << (position % 8)
    with pytest.raises(EnvelopeError):
        open_sealed(bytes(sealed), "c-1", [MASTER])


def test_layout_matches_documentation():
    # Unwrap by hand from the documented offsets, without open_sealed.
    contract_id = "c-42"
    sealed = seal(b"%PDF-1.7 body", contract_id, MASTER)
    assert sealed[:4] == MAGIC
    key_id = hashlib.sha256(b"ledger-master-key/v1\n" + MASTER.key).digest()[:8]
    assert sealed[4:12] == key_id
    wrap_nonce, wrapped, data_nonce = sealed[12:24], sealed[24:72], sealed[72:84]
    data_key = AESGCM(MASTER.key).decrypt(
        wrap_nonce, wrapped, b"ledger-envelope/v1 wrap\n" + contract_id.encode()
    )
    associated = b"ledger-envelope/v1 data\n" + sealed[:84] + contract_id.encode()
    assert (
        AESGCM(data_key).decrypt(data_nonce, sealed[84:], associated)
        == b"%PDF-1.7 body"
    )


def test_fresh_data_key_per_seal():
    first = seal(b"same", "c", MASTER)
    second = seal(b"same", "c", MASTER)
    assert first[24:72] != second[24:72]
    assert first[84:] != second[84:]


def test_other_contract_id_rejected():
    sealed = seal(b"document", "contract-a", MASTER)
    with pytest.raises(EnvelopeError, match="contract-b"):
        open_sealed(sealed, "contract-b", [MASTER])


def test_unknown_master_key_rejected():
    sealed = seal(b"document", "c", MASTER)
    other = MasterKey.generate()
    with pytest.raises(EnvelopeError, match=MASTER.key_id.hex()):
        open_sealed(sealed, "c", [other])


def test_retired_master_key_still_opens():
    old = MasterKey.generate()
    sealed = seal(b"document", "c", old)
    assert open_sealed(sealed, "c", [MasterKey.generate(), old]) == b"document"


@pytest.mark.parametrize("cut", [0, 3, HEADER_SIZE, HEADER_SIZE + 15])
def test_truncated_envelope_rejected(cut):
    sealed = seal(b"", "c", MASTER)[:cut]
    with pytest.raises(EnvelopeError, match="not a sealed document"):
        open_sealed(sealed, "c", [MASTER])


def test_master_key_storage_round_trip():
    key = MasterKey.generate()
    stored = key.encrypt_for_storage(b"correct horse")
    assert key.key not in stored
    assert MasterKey.decrypt_from_storage(stored, b"correct horse") == key
    with pytest.raises(EnvelopeError, match="LEDGER_PASSPHRASE"):
        MasterKey.decrypt_from_storage(stored, b"wrong")
    with pytest.raises(EnvelopeError, match="bad magic"):
        MasterKey.decrypt_from_storage(stored[:-1], b"correct horse")


def test_master_key_checks_length_and_hides_repr():
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey(b"short")
    assert MASTER.key.hex() not in repr(MASTER)
