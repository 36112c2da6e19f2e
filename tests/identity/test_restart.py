"""State that must survive a restart: CA, custody keys, TOTP replay state."""

from __future__ import annotations

import hashlib

import pyotp
import pytest
from cryptography.exceptions import InvalidTag

from identity.ca import CaSettings, CertificateAuthority
from identity.errors import ConsentError
from identity.proofing import DocumentCodeVerifier
from identity.service import IdentityService
from identity.store import IdentityStore
from ledger.entry import decode_entry
from ledger.sequencer import Sequencer
from ledger.store import LogConfig, LogStore

from .conftest import BASE_URL, PASSPHRASE, TEST_SCRYPT_N, FrozenClock, Outbox
from .test_enrolment import ERIKA, enrol

DIGEST = hashlib.sha256(b"contract body").digest()


async def test_restart_keeps_keys_and_replay_state(tmp_path):
    clock = FrozenClock()
    outbox = Outbox()

    # 1. First run: create everything, enrol, provision and sign once.
    ca = CertificateAuthority.create(
        tmp_path / "ca", PASSPHRASE, CaSettings(BASE_URL), clock=clock
    )
    log_store = LogStore(tmp_path / "log", create=True)
    log_store.write_config(LogConfig("log.example/identity-test"))
    store = IdentityStore(tmp_path / "identity", PASSPHRASE, scrypt_n=TEST_SCRYPT_N)
    async with Sequencer(log_store) as sequencer:
        service = IdentityService(
            store, ca, sequencer, DocumentCodeVerifier(outbox, clock), clock=clock
        )
        party = await enrol(service, outbox, ERIKA)
        authenticator = pyotp.parse_uri(service.provision_totp(party.party_id).uri)
        code = authenticator.at(clock().timestamp())
        first = await service.unlock_signing_key(party.party_id, code, DIGEST)
    store.close()
    ca.close()
    log_store.close()

    # 2. Second run from the same folders; the store reads its scrypt N back.
    ca = CertificateAuthority.open(
        tmp_path / "ca", PASSPHRASE, CaSettings(BASE_URL), clock=clock
    )
    log_store = LogStore(tmp_path / "log")
    store = IdentityStore(tmp_path / "identity", PASSPHRASE)
    async with Sequencer(log_store) as sequencer:
        service = IdentityService(
            store, ca, sequencer, DocumentCodeVerifier(outbox, clock), clock=clock
        )
        with pytest.raises(ConsentError, match="already used"):
            await service.unlock_signing_key(party.party_id, code, DIGEST)
        clock.advance(seconds=30)
        second = await service.unlock_signing_key(
            party.party_id, authenticator.at(clock().timestamp()), DIGEST
        )
    assert ca.is_issued(party.certificate.serial_number)
    store.close()
    ca.close()

    assert second.certificate == party.certificate
    assert second.private_key.private_numbers() == first.private_key.private_numbers()
    entry = decode_entry(log_store.read_entry(second.consent.leaf_index))
    assert entry["prev"] == first.consent.leaf_hash
    assert log_store.tree_size() == 3
    log_store.close()


def test_wrong_passphrase_cannot_read_secrets(tmp_path):
    store = IdentityStore(tmp_path / "identity", PASSPHRASE)
    sealed = store.seal(b"totp secret", b"party")
    assert store.unseal(sealed, b"party") == b"totp secret"
    with pytest.raises(InvalidTag):
        store.unseal(sealed, b"other party")
    store.close()

    reopened = IdentityStore(tmp_path / "identity", b"another passphrase")
    with pytest.raises(InvalidTag):
        reopened.unseal(sealed, b"party")
    reopened.close()
