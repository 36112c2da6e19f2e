"""The service behind /api/v1: identity and contract workflow as JSON-ready calls.

`ServiceWorkflow` adapts `identity.service.IdentityService` and
`signer.workflow.ContractService` to the `gateway.api.Workflow` protocol:
it turns request fields into their typed arguments, results into JSON maps,
and checks that the caller is a party to the contract it reads. It also
remembers the leaf hash of each party's enrolment entry, so that an
evidence bundle can carry that entry and the salts that open it.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from gateway.errors import MalformedRequest


class EnrolmentIndex:
    """party_id -> leaf hash of its enrolment entry, kept in a JSON file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._hashes: dict[str, str] = {}
        if path.exists():
            self._hashes = json.loads(path.read_text())

    def add(self, party_id: str, leaf_hash: bytes) -> None:
        """Record the enrolment entry's leaf hash of `party_id`."""
        with self._lock:
            self._hashes[party_id] = leaf_hash.hex()
            temporary = self._path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self._hashes, indent=1, sort_keys=True))
            os.replace(temporary, self._path)

    def get(self, party_id: str) -> bytes | None:
        """Return the enrolment leaf hash of `party_id`, or None if unknown."""
        value = self._hashes.get(party_id)
        return bytes.fromhex(value) if value else None


def _person_details(details: dict[str, Any]):
    from identity.details import PersonDetails

    try:
        return PersonDetails(
            name=details["name"],
            national_id=details["national_id"],
            email=details["email"],
            phone=details["phone"],
        )
    except KeyError as error:
        raise MalformedRequest(f"person details lack the field {error.args[0]!r}") from error


def _enterprise_details(details: dict[str, Any]):
    from identity.details import EnterpriseDetails

    try:
        return EnterpriseDetails(
            legal_name=details["legal_name"],
            registration_number=details["registration_number"],
            signatory=details["signatory"],
        )
    except KeyError as error:
        raise MalformedRequest(
            f"enterprise details lack the field {error.args[0]!r}"
        ) from error


class ServiceWorkflow:
    """Implements `gateway.api.Workflow` over the identity and contract services."""

    def __init__(self, identity, contracts, store, enrolments: EnrolmentIndex, evidence) -> None:
        self.identity = identity
        self.contracts = contracts
        self.store = store
        self.enrolments = enrolments
        self.evidence_source = evidence

    # Enrolment.

    async def begin_enrolment(self, kind: str, details: dict[str, Any], channel: str) -> str:
        if kind == "person":
            return await self.identity.begin_person_enrolment(_person_details(details), channel)
        return await self.identity.begin_enterprise_enrolment(
            _enterprise_details(details), channel
        )

    async def complete_enrolment(self, challenge_id: str, code: str) -> dict[str, Any]:
        party = await self.identity.complete_enrolment(challenge_id, code)
        self.enrolments.add(party.party_id, party.leaf_hash)
        provisioning = self.identity.provision_totp(party.party_id)
        return {
            "party_id": party.party_id,
            "kind": party.kind,
            "certificate_pem": party.certificate.public_bytes(Encoding.PEM).decode(),
            "totp_uri": provisioning.uri,
            "leaf_index": self.store.find_leaf(party.leaf_hash),
        }
