"""Enrolment: entries without personal data, proofing, bad input, erasure."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from pyhanko_certvalidator.errors import RevokedError

from identity import certificates
from identity.details import EnterpriseDetails, PersonDetails
from identity.errors import (
    CertificateStatusError,
    DuplicateEnrolmentError,
    InvalidInputError,
    ProofingError,
    UnknownPartyError,
)
from identity.keys import generate_key
from ledger.commitment import verify_commitment
from ledger.entry import decode_entry
from ledger.merkle import consistency_proof, root_hash, verify_consistency

from .test_ca import pyhanko_validate, validation_context

ERIKA = PersonDetails(
    name="Erika Mustermann",
    # ICAO 9303 specimen document number L898902C3 with its check digit 6.
    national_id="L898902C36",
    email="erika.mustermann@example.org",
    phone="+49 151 1234 5678",
)
JOHN = PersonDetails(
    name="John Doe",
    national_id="D231458907",
    email="john.doe@example.com",
    phone="+4915199887766",
)
# A Legal Entity Identifier whose ISO 7064 check digits are valid.
LEI = "5493001KJTIIGC8Y1R12"


async def enrol(service, outbox, details=ERIKA, **options):
    challenge = await service.begin_person_enrolment(details, **options)
    channel = options.get("channel", "email")
    address = details.email if channel == "email" else details.phone.replace(" ", "")
    return await service.complete_enrolment(challenge, outbox.codes[address])


def personal_values(details: PersonDetails) -> list[bytes]:
    """Every field as it was given and as it is stored, in several encodings."""
    values = set()
    for field in (details.name, details.national_id, details.email, details.phone):
        normal = field.replace(" ", "")
        for text in (field, normal, field.lower(), field.upper()):
            values.add(text.encode("utf-8"))
            values.add(text.encode("utf-16-be"))
    for part in details.name.split() + details.email.split("@"):
        values.add(part.encode())
    return sorted(values)


async def test_person_entry_has_no_personal_data(service, outbox, log):
    party = await enrol(service, outbox)
    assert len(log.entries) == 1
    leaf = log.entries[0]
    for value in personal_values(ERIKA):
        assert value not in leaf, value

    entry = decode_entry(leaf)
    assert entry["type"] == "enrol.person"
    assert entry["party"] == party.party_id
    assert "prev" not in entry
    assert entry["proofing"] == {
        "verifier": "builtin-document-code",
        "method": "icao9303-check-digit+email-otp",
        "result": "verified",
    }
    assert entry["custody"] == "service"
    assert (
        entry["certificate"]
        == hashlib.sha256(
            party.certificate.public_bytes(serialization.Encoding.DER)
        ).digest()
    )

    # Each commitment opens to the stored value with its salt.
    openings = service.commitment_openings(party.party_id)
    assert set(entry["commitments"]) == {"name", "national_id", "email", "phone"}
    for label, commitment in entry["commitments"].items():
        value, salt = openings[label]
        assert len(salt) == 32
        verify_commitment(label, value.encode(), salt, commitment)
    assert openings["phone"][0] == "+4915112345678"


async def test_certificate_subject_from_enrolment(service, outbox):
    party = await enrol(service, outbox)
    subject = party.certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ERIKA.name
    serial = subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    assert serial == party.party_id
    assert ERIKA.national_id.encode() not in party.certificate.tbs_certificate_bytes
    validity = (
        party.certificate.not_valid_after_utc - party.certificate.not_valid_before_utc
    )
    assert validity == timedelta(days=365)
    assert party.chain[0].subject == party.certificate.issuer


async def test_enterprise_entry_has_no_personal_data(service, outbox, log):
    person = await enrol(service, outbox)
    details = EnterpriseDetails("Musterfirma GmbH", LEI, person.party_id)
    challenge = await service.begin_enterprise_enrolment(details, channel="phone")
    enterprise = await service.complete_enrolment(
        challenge, outbox.codes["+4915112345678"]
    )

    leaf = log.entries[-1]
    for value in (b"Musterfirma", LEI.encode(), LEI.lower().encode()):
        assert value not in leaf
    for value in personal_values(ERIKA):
        assert value not in leaf
    entry = decode_entry(leaf)
    assert entry["type"] == "enrol.enterprise"
    assert entry["signatory"] == person.party_id
    assert set(entry["commitments"]) == {"legal_name", "registration_number"}
    assert entry["proofing"]["method"] == "lei-check-digits+phone-otp"
    organisation = enterprise.certificate.subject.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME
    )
    assert organisation[0].value == "Musterfirma GmbH"


@pytest.mark.parametrize(
    "national_id",
    [
        "L898902C37",
        "L898902C35",
        "L898902C",
        "L8989*02C36",
        "",
        "X",
        "L898902C3612345678901",
    ],
)
async def test_malformed_national_id_rejected(service, outbox, log, national_id):
    details = PersonDetails(ERIKA.name, national_id, ERIKA.email, ERIKA.phone)
    with pytest.raises(InvalidInputError, match="national_id"):
        await service.begin_person_enrolment(details)
    assert log.entries == []
    assert outbox.codes == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "erika.example.org"),
        ("email", "erika@localhost"),
        ("phone", "0151 1234"),
        ("phone", "+0151123456789"),
        ("name", "   "),
    ],
)
async def test_malformed_fields_rejected(service, outbox, log, field, value):
    details = PersonDetails(**{**ERIKA.__dict__, field: value})
    with pytest.raises(InvalidInputError, match=field):
        await service.begin_person_enrolment(details)
    assert log.entries == []


async def test_malformed_lei_rejected(service, outbox, log):
    person = await enrol(service, outbox)
    bad = LEI[:-1] + "3"
    with pytest.raises(InvalidInputError, match="registration_number"):
        await service.begin_enterprise_enrolment(
            EnterpriseDetails("Musterfirma GmbH", bad, person.party_id)
        )
    assert len(log.entries) == 1


async def test_duplicate_enrolment_rejected(service, outbox, log):
    party = await enrol(service, outbox)
    same_person = PersonDetails(
        ERIKA.name, "l898902c36", "other@example.org", "+4930123456"
    )
    with pytest.raises(DuplicateEnrolmentError, match=party.party_id):
        await service.begin_person_enrolment(same_person)
    assert len(log.entries) == 1


async def test_duplicate_caught_at_completion(service, outbox, log):
    first = await service.begin_person_enrolment(ERIKA)
    first_code = outbox.codes[ERIKA.email]
    second = await service.begin_person_enrolment(ERIKA, channel="phone")
    await service.complete_enrolment(second, outbox.codes["+4915112345678"])
    with pytest.raises(DuplicateEnrolmentError):
        await service.complete_enrolment(first, first_code)
    assert len(log.entries) == 1


async def test_wrong_proofing_code(service, outbox, log):
    challenge = await service.begin_person_enrolment(ERIKA)
    wrong = "000000" if outbox.codes[ERIKA.email] != "000000" else "111111"
    with pytest.raises(ProofingError, match="wrong proofing code"):
        await service.complete_enrolment(challenge, wrong)
    with pytest.raises(ProofingError):
        await service.complete_enrolment(challenge, wrong)
    with pytest.raises(ProofingError, match="attempts used"):
        await service.complete_enrolment(challenge, wrong)
    # The challenge is gone, so the right code no longer works either.
    with pytest.raises(ProofingError, match="not found"):
        await service.complete_enrolment(challenge, outbox.codes[ERIKA.email])
    assert log.entries == []


async def test_expired_proofing_code(service, outbox, log, clock):
    challenge = await service.begin_person_enrolment(ERIKA)
    clock.advance(minutes=11)
    with pytest.raises(ProofingError, match="expired"):
        await service.complete_enrolment(challenge, outbox.codes[ERIKA.email])
    assert log.entries == []


async def test_unknown_signatory_rejected(service, log):
    with pytest.raises(UnknownPartyError, match="enrol"):
        await service.begin_enterprise_enrolment(
            EnterpriseDetails("Musterfirma GmbH", LEI, "0" * 32)
        )
    with pytest.raises(InvalidInputError, match="party_id"):
        await service.begin_enterprise_enrolment(
            EnterpriseDetails("Musterfirma GmbH", LEI, "nobody")
        )
    assert log.entries == []


async def test_external_certificate(service, outbox, log, ca, clock):
    key = generate_key()
    brought = ca.issue(
        certificates.person_subject("John Doe", "cd" * 16),
        key.public_key(),
        timedelta(days=10),
    )
    party = await enrol(service, outbox, JOHN, certificate=brought)
    assert party.custody == "external"
    assert party.certificate == brought
    assert decode_entry(log.entries[-1])["custody"] == "external"


async def test_expired_external_certificate_rejected(service, outbox, log, ca, clock):
    key = generate_key()
    brought = ca.issue(
        certificates.person_subject("John Doe", "cd" * 16),
        key.public_key(),
        timedelta(days=1),
    )
    clock.advance(days=2)
    with pytest.raises(CertificateStatusError, match="expired"):
        await service.begin_person_enrolment(JOHN, certificate=brought)
    assert log.entries == []
    assert outbox.codes == {}


async def test_erasure_unlinks_entries(service, outbox, log, ca):
    party = await enrol(service, outbox)
    enrolment = decode_entry(log.entries[0])
    await service.erase(party.party_id)

    # The erasure revoked the certificate, as a logged step.
    assert len(log.entries) == 2
    revoke = decode_entry(log.entries[1])
    assert revoke["type"] == "revoke"
    assert revoke["reason"] == "cessation_of_operation"
    assert revoke["prev"] == party.leaf_hash
    assert ca.revocation(party.certificate.serial_number) is not None

    # The salts are gone, and so is every way to reach the person's data.
    with pytest.raises(UnknownPartyError):
        service.commitment_openings(party.party_id)
    with pytest.raises(UnknownPartyError):
        service.party(party.party_id)
    record = service._store.get(party.party_id)
    assert record == {"kind": "person", "status": "erased"}
    store = service._store
    with store._env.begin() as txn:
        raw = b"".join(
            bytes(key) + bytes(value)
            for db in (store._parties, store._index, store._consents)
            for key, value in txn.cursor(db=db)
        )
    assert party.party_id.encode() in raw
    for value in personal_values(ERIKA):
        assert value not in raw

    # The log is unchanged, and the person may enrol again under a new party_id.
    assert decode_entry(log.entries[0]) == enrolment
    again = await enrol(service, outbox)
    assert again.party_id != party.party_id
    assert decode_entry(log.entries[-1])["commitments"] != enrolment["commitments"]


async def test_enrolled_certificate_validates_in_pyhanko(service, outbox, ca, clock):
    party = await enrol(service, outbox)
    context = validation_context(ca, clock, crls=[ca.root_crl(), ca.issuing_crl()])
    await pyhanko_validate(ca, party.certificate, context)

    clock.advance(minutes=1)
    await service.revoke(party.party_id, x509.ReasonFlags.key_compromise)
    clock.advance(minutes=1)
    context = validation_context(ca, clock, crls=[ca.root_crl(), ca.issuing_crl()])
    with pytest.raises(RevokedError):
        await pyhanko_validate(ca, party.certificate, context)


async def test_bad_channel_and_revoked_signatory(service, outbox, log):
    with pytest.raises(InvalidInputError, match="channel"):
        await service.begin_person_enrolment(ERIKA, channel="fax")
    assert outbox.codes == {}

    person = await enrol(service, outbox)
    await service.revoke(person.party_id)
    with pytest.raises(CertificateStatusError, match="revoked"):
        await service.begin_enterprise_enrolment(
            EnterpriseDetails("Musterfirma GmbH", LEI, person.party_id)
        )
    assert len(log.entries) == 2


async def test_erasure_keeps_log_consistent(service, outbox, log_store):
    party = await enrol(service, outbox)
    await service.revoke(party.party_id)
    size1 = log_store.tree_size()
    root1 = root_hash(size1, log_store)

    # Erasing a party already revoked appends nothing more.
    await service.erase(party.party_id)
    again = await enrol(service, outbox)
    size2 = log_store.tree_size()
    assert size2 == size1 + 1
    proof = consistency_proof(size1, size2, log_store)
    verify_consistency(size1, size2, proof, root1, root_hash(size2, log_store))
    assert again.party_id != party.party_id


async def test_operator_validity(service, outbox, ca):
    party = await enrol(service, outbox, validity=timedelta(days=30))
    certificate = party.certificate
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == (
        timedelta(days=30)
    )
    for validity in (timedelta(0), timedelta(seconds=-1)):
        with pytest.raises(InvalidInputError, match="validity"):
            await service.begin_person_enrolment(JOHN, validity=validity)

    # No certificate outlives the issuing CA that signed it.
    key = generate_key()
    long_lived = ca.issue(
        certificates.person_subject("John Doe", "cd" * 16),
        key.public_key(),
        timedelta(days=100 * 365),
    )
    assert long_lived.not_valid_after_utc == ca.issuing_certificate.not_valid_after_utc
