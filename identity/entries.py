"""The log entries the identity service appends, and the commitments in them.

Each entry is a `ledger.entry` map: `v`, `type`, `time` (milliseconds since
the epoch) and `prev` (the leaf hash of the party's previous entry, absent
on the first), plus the fields below. Values that identify a person appear
only as salted SHA-256 commitments (`ledger.commitment`); a party is named
by its party_id, a random pseudonym.

    enrol.person      party, commitments {name, national_id, email, phone},
                      proofing {verifier, method, result}, certificate,
                      custody ("service" or "external")
    enrol.enterprise  party, commitments {legal_name, registration_number},
                      signatory (the person's party_id), proofing,
                      certificate, custody
    consent           party, certificate, document (SHA-256 of the document
                      being signed), signer (a commitment to the person's
                      name or the enterprise's legal_name, under a salt of
                      its own)
    revoke            party, certificate, reason (an RFC 5280 reason name)

`certificate` is the SHA-256 fingerprint of the certificate's DER.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from identity.proofing import ProofingResult
from ledger.commitment import commit as ledger_commit
from ledger.commitment import new_salt
from ledger.entry import SCHEMA_VERSION, encode_entry


def commit(label: str, value: str, salt: bytes) -> bytes:
    """Return the salted commitment to one personal field (ledger.commitment)."""
    return ledger_commit(label, value.encode("utf-8"), salt)


def new_salts(labels: list[str]) -> dict[str, bytes]:
    """Return a fresh random 32-byte salt for each label."""
    return {label: new_salt() for label in labels}


def commitments(
    fields: Mapping[str, str], salts: Mapping[str, bytes]
) -> dict[str, bytes]:
    """Return the commitment of every field under its salt."""
    return {
        label: commit(label, value, salts[label]) for label, value in fields.items()
    }


def fingerprint(certificate_der: bytes) -> bytes:
    """Return the SHA-256 fingerprint of a DER certificate."""
    return hashlib.sha256(certificate_der).digest()


def _common(kind: str, time: datetime, prev: bytes | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "type": kind,
        "time": int(time.timestamp() * 1000),
    }
    if prev is not None:
        entry["prev"] = prev
    return entry


def enrolment_entry(
    kind: str,
    party_id: str,
    field_commitments: Mapping[str, bytes],
    proofing: ProofingResult,
    certificate_der: bytes,
    custody: str,
    time: datetime,
    signatory: str | None = None,
) -> dict[str, Any]:
    """Build an `enrol.person` or `enrol.enterprise` entry (the first of a party)."""
    entry = _common(f"enrol.{kind}", time, None)
    entry.update(
        party=party_id,
        commitments=dict(field_commitments),
        proofing={
            "verifier": proofing.verifier,
            "method": proofing.method,
            "result": proofing.result,
        },
        certificate=fingerprint(certificate_der),
        custody=custody,
    )
    if signatory is not None:
        entry["signatory"] = signatory
    return entry


def consent_entry(
    party_id: str,
    certificate_der: bytes,
    document_digest: bytes,
    signer_commitment: bytes,
    time: datetime,
    prev: bytes,
) -> dict[str, Any]:
    """Build a `consent` entry: the party agreed to sign `document_digest`."""
    entry = _common("consent", time, prev)
    entry.update(
        party=party_id,
        certificate=fingerprint(certificate_der),
        document=document_digest,
        signer=signer_commitment,
    )
    return entry


def revoke_entry(
    party_id: str, certificate_der: bytes, reason: str, time: datetime, prev: bytes
) -> dict[str, Any]:
    """Build a `revoke` entry for the party's certificate."""
    entry = _common("revoke", time, prev)
    entry.update(
        party=party_id, certificate=fingerprint(certificate_der), reason=reason
    )
    return entry


def encode(entry: dict[str, Any]) -> bytes:
    """Encode an entry as the deterministic CBOR that `ledger.entry` accepts."""
    return encode_entry(entry)
