"""Signing consent: TOTP through the service, key custody, failures unlogged."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pyotp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from identity import certificates
from identity.custody import UnlockedKey
from identity.details import EnterpriseDetails
from identity.errors import (
    CertificateStatusError,
    ConsentError,
    CustodyError,
    InvalidInputError,
    RateLimitedError,
    UnknownPartyError,
)
from identity.keys import generate_key
from ledger.commitment import verify_commitment
from ledger.entry import decode_entry

from .test_enrolment import ERIKA, JOHN, LEI, enrol

DIGEST = hashlib.sha256(b"contract body").digest()


async def provisioned(service, outbox, details=ERIKA, **options):
    party = await enrol(service, outbox, details, **options)
    provisioning = service.provision_totp(party.party_id, account="erika")
    assert provisioning.qr_png.startswith(b"\x89PNG\r\n\x1a\n")
    return party, pyotp.parse_uri(provisioning.uri)


def code_at(authenticator: pyotp.TOTP, clock, seconds: float = 0) -> str:
    return authenticator.at(clock().timestamp() + seconds)


async def test_pyotp_code_unlocks_key_once(service, outbox, log, clock):
    party, authenticator = await provisioned(service, outbox)
    code = code_at(authenticator, clock)

    unlocked = await service.unlock_signing_key(party.party_id, code, DIGEST)
    assert unlocked.certificate == party.certificate
    assert unlocked.chain_der == [
        c.public_bytes(serialization.Encoding.DER) for c in party.chain
    ]
    assert "private_key" not in repr(unlocked)
    signature = unlocked.private_key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    party.certificate.public_key().verify(signature, b"data", ec.ECDSA(hashes.SHA256()))

    # The consent entry: chained to the enrolment, naming the document.
    assert len(log.entries) == 2
    entry = decode_entry(log.entries[1])
    assert entry["type"] == "consent"
    assert entry["document"] == DIGEST
    assert entry["prev"] == party.leaf_hash
    assert unlocked.consent.leaf_index == 1
    assert ERIKA.name.encode() not in log.entries[1]

    # The same code again is a replay, even within its 30 seconds.
    clock.advance(seconds=1)
    with pytest.raises(ConsentError, match="already used"):
        await service.unlock_signing_key(party.party_id, code, DIGEST)
    assert len(log.entries) == 2

    # The next code works.
    clock.advance(seconds=30)
    second = await service.unlock_signing_key(
        party.party_id, code_at(authenticator, clock), DIGEST
    )
    assert decode_entry(log.entries[2])["prev"] == unlocked.consent.leaf_hash
    assert second.consent.leaf_index == 2


async def test_skew_window(service, outbox, log, clock):
    party, authenticator = await provisioned(service, outbox)
    # One step behind and one step ahead are accepted; an earlier step after
    # a later one would be a replay, so go forward.
    await service.unlock_signing_key(
        party.party_id, code_at(authenticator, clock, -30), DIGEST
    )
    clock.advance(seconds=60)
    await service.unlock_signing_key(
        party.party_id, code_at(authenticator, clock, 30), DIGEST
    )
    assert len(log.entries) == 3

    clock.advance(seconds=120)
    for offset in (-90, -60, 60, 90):
        with pytest.raises(ConsentError, match="wrong or expired"):
            await service.unlock_signing_key(
                party.party_id, code_at(authenticator, clock, offset), DIGEST
            )
        clock.advance(seconds=40)
    assert len(log.entries) == 3


async def test_rate_limit_and_lockout(service, outbox, log, clock):
    party, authenticator = await provisioned(service, outbox)
    good = code_at(authenticator, clock)
    wrong = "000000" if good != "000000" else "111111"

    with pytest.raises(ConsentError, match="wrong"):
        await service.unlock_signing_key(party.party_id, wrong, DIGEST)
    # An attempt during the back-off is refused without checking the code.
    with pytest.raises(RateLimitedError) as refused:
        await service.unlock_signing_key(party.party_id, good, DIGEST)
    assert refused.value.retry_after == 1

    for failures in range(2, 6):
        clock.advance(seconds=2 ** (failures - 2))
        with pytest.raises(ConsentError, match="wrong"):
            await service.unlock_signing_key(party.party_id, wrong, DIGEST)

    # Five wrong codes in a row: locked for 15 minutes, even for a right code.
    clock.advance(seconds=60)
    with pytest.raises(RateLimitedError, match="locked") as locked:
        await service.unlock_signing_key(
            party.party_id, code_at(authenticator, clock), DIGEST
        )
    assert 0 < locked.value.retry_after <= 15 * 60
    assert len(log.entries) == 1

    clock.advance(minutes=15)
    await service.unlock_signing_key(
        party.party_id, code_at(authenticator, clock), DIGEST
    )
    assert len(log.entries) == 2


async def test_malformed_codes_rejected(service, outbox, log, clock):
    party, _ = await provisioned(service, outbox)
    for code in ("", "12345", "1234567", "12a456", "１２３４５６"):
        with pytest.raises(ConsentError):
            await service.unlock_signing_key(party.party_id, code, DIGEST)
        clock.advance(seconds=20)
    assert len(log.entries) == 1


async def test_unknown_signer(service, log):
    with pytest.raises(UnknownPartyError, match="not found"):
        await service.unlock_signing_key("f" * 32, "123456", DIGEST)
    with pytest.raises(InvalidInputError, match="party_id"):
        await service.unlock_signing_key("../etc", "123456", DIGEST)
    assert log.entries == []


async def test_bad_digest_and_missing_totp(service, outbox, log):
    party = await enrol(service, outbox)
    with pytest.raises(InvalidInputError, match="32-byte"):
        await service.unlock_signing_key(party.party_id, "123456", DIGEST[:31])
    with pytest.raises(InvalidInputError, match="provision_totp"):
        await service.unlock_signing_key(party.party_id, "123456", DIGEST)
    assert len(log.entries) == 1


async def test_expired_certificate(service, outbox, log, clock):
    party, authenticator = await provisioned(service, outbox)
    clock.advance(days=366)
    with pytest.raises(CertificateStatusError, match="expired"):
        await service.unlock_signing_key(
            party.party_id, code_at(authenticator, clock), DIGEST
        )
    assert len(log.entries) == 1


async def test_revoked_certificate(service, outbox, log, clock, ca):
    party, authenticator = await provisioned(service, outbox)
    revoked = await service.revoke(party.party_id)
    assert revoked.leaf_index == 1
    assert decode_entry(log.entries[1])["prev"] == party.leaf_hash
    assert await service.revoke(party.party_id) is None
    assert ca.revocation(party.certificate.serial_number) is not None
    with pytest.raises(CertificateStatusError, match="revoked"):
        await service.unlock_signing_key(
            party.party_id, code_at(authenticator, clock), DIGEST
        )
    assert len(log.entries) == 2


async def test_external_signer_consents_without_key(service, outbox, log, clock, ca):
    key = generate_key()
    brought = ca.issue(
        certificates.person_subject(JOHN.name, "cd" * 16),
        key.public_key(),
        timedelta(days=10),
    )
    party, authenticator = await provisioned(service, outbox, JOHN, certificate=brought)
    with pytest.raises(CustodyError, match="client-side"):
        await service.unlock_signing_key(
            party.party_id, code_at(authenticator, clock), DIGEST
        )
    appended = await service.confirm_consent(
        party.party_id, code_at(authenticator, clock), DIGEST
    )
    assert appended.leaf_index == 1
    assert decode_entry(log.entries[1])["type"] == "consent"


async def test_custody_key_encrypted_in_store(service, outbox):
    party, _ = await provisioned(service, outbox)
    record = service._store.get(party.party_id)
    assert record["key"].startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(record["key"], None)
    secret = pyotp.parse_uri(service.provision_totp(party.party_id).uri).byte_secret()
    assert secret not in record["totp"]["secret"]
    assert secret not in service._store.get(party.party_id)["totp"]["secret"]


async def test_same_code_concurrently_accepted_once(service, outbox, log, clock):
    party, authenticator = await provisioned(service, outbox)
    code = code_at(authenticator, clock)
    results = await asyncio.gather(
        *(service.unlock_signing_key(party.party_id, code, DIGEST) for _ in range(5)),
        return_exceptions=True,
    )
    unlocked = [r for r in results if isinstance(r, UnlockedKey)]
    rejected = [r for r in results if isinstance(r, ConsentError)]
    assert len(unlocked) == 1
    assert len(rejected) == 4
    assert len(log.entries) == 2


async def test_consent_commitment_opens(service, outbox, log, clock):
    party, authenticator = await provisioned(service, outbox)
    unlocked = await service.unlock_signing_key(
        party.party_id, code_at(authenticator, clock), DIGEST
    )
    label, name, salt = service.consent_opening(
        party.party_id, unlocked.consent.leaf_hash
    )
    assert label == "name"
    assert name == ERIKA.name
    entry = decode_entry(log.entries[unlocked.consent.leaf_index])
    verify_commitment("name", name.encode(), salt, entry["signer"])
    enrolment = decode_entry(log.entries[0])
    # A salt of its own, so the consent does not repeat the enrolment's bytes.
    assert entry["signer"] != enrolment["commitments"]["name"]
    with pytest.raises(InvalidInputError, match="no consent entry"):
        service.consent_opening(party.party_id, party.leaf_hash)


async def test_enterprise_consent_and_key(service, outbox, log, clock):
    person = await enrol(service, outbox)
    details = EnterpriseDetails("Musterfirma GmbH", LEI, person.party_id)
    challenge = await service.begin_enterprise_enrolment(details)
    enterprise = await service.complete_enrolment(challenge, outbox.codes[ERIKA.email])
    authenticator = pyotp.parse_uri(service.provision_totp(enterprise.party_id).uri)

    unlocked = await service.unlock_signing_key(
        enterprise.party_id, code_at(authenticator, clock), DIGEST
    )
    assert unlocked.certificate == enterprise.certificate
    entry = decode_entry(log.entries[unlocked.consent.leaf_index])
    assert entry["party"] == enterprise.party_id
    assert entry["prev"] == enterprise.leaf_hash
    label, value, salt = service.consent_opening(
        enterprise.party_id, unlocked.consent.leaf_hash
    )
    assert (label, value) == ("legal_name", "Musterfirma GmbH")
    verify_commitment(label, value.encode(), salt, entry["signer"])


async def test_non_text_code_counts_as_wrong(service, outbox, log):
    party, _ = await provisioned(service, outbox)
    with pytest.raises(ConsentError, match="wrong"):
        await service.unlock_signing_key(party.party_id, 123456, DIGEST)
    assert len(log.entries) == 1


async def test_erasure_deletes_consent_salts(service, outbox, log, clock):
    party, authenticator = await provisioned(service, outbox)
    other, other_authenticator = await provisioned(service, outbox, JOHN)
    unlocked = await service.unlock_signing_key(
        party.party_id, code_at(authenticator, clock), DIGEST
    )
    kept = await service.confirm_consent(
        other.party_id, code_at(other_authenticator, clock), DIGEST
    )

    await service.erase(party.party_id)
    assert (
        service._store.consent_salt(party.party_id, unlocked.consent.leaf_hash) is None
    )
    with pytest.raises(UnknownPartyError):
        service.consent_opening(party.party_id, unlocked.consent.leaf_hash)
    # The other party's consent salt is untouched.
    label, value, _ = service.consent_opening(other.party_id, kept.leaf_hash)
    assert (label, value) == ("name", JOHN.name)
