"""The service behind /api/v1: identity and contract workflow as JSON-ready calls.

`ServiceWorkflow` adapts `identity.service.IdentityService` and
`signer.workflow.ContractService` to the `gateway.api.Workflow` protocol:
it turns request fields into their typed arguments, results into JSON maps,
and checks that the caller is a party to the contract it reads. It also
remembers the leaf hash of each party's enrolment entry, so that an
evidence bundle can carry that entry and the salts that open it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from gateway.errors import Conflict, Forbidden, MalformedRequest


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
        raise MalformedRequest(
            f"person details lack the field {error.args[0]!r}"
        ) from error


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

    def __init__(
        self,
        identity,
        contracts,
        sequencer,
        enrolments: EnrolmentIndex,
        trust,
    ) -> None:
        self.identity = identity
        self.contracts = contracts
        self.sequencer = sequencer
        self.log_store = sequencer.store
        self.enrolments = enrolments
        # Provides policy_text(), tsa_chain_pem, tsa_root_pem and ca_root_pem().
        self.trust = trust
        # An enterprise enrols no e-mail address; its enrolment entry names
        # its signatory, whose address receives the enterprise's contracts.
        contracts.signatory_of = self.signatory_of

    def signatory_of(self, party_id: str) -> str | None:
        """Return the signatory's party_id that the enrolment entry of
        `party_id` names, or None for a person or an unknown party."""
        from ledger.entry import EntryError, decode_entry

        enrolment = self.enrolments.get(party_id)
        leaf_index = None if enrolment is None else self.log_store.find_leaf(enrolment)
        if leaf_index is None:
            return None
        try:
            entry = decode_entry(bytes(self.log_store.read_entry(leaf_index)))
        except EntryError:
            return None
        signatory = entry.get("signatory")
        return signatory if isinstance(signatory, str) else None

    # Enrolment.

    async def begin_enrolment(
        self, kind: str, details: dict[str, Any], channel: str
    ) -> str:
        if kind == "person":
            return await self.identity.begin_person_enrolment(
                _person_details(details), channel
            )
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
            "leaf_index": self.log_store.find_leaf(party.leaf_hash),
        }

    # Contracts.

    def _record(self, party_id: str, contract_id: str) -> dict[str, Any]:
        record = self.contracts.contract(contract_id)
        if party_id not in record["parties"]:
            raise Forbidden(
                f"party {party_id} is not a party to contract {contract_id}"
            )
        return record

    async def upload(
        self,
        party_id: str,
        pdf: bytes,
        title: str | None,
        password: str | None,
        countersigner: str,
    ) -> dict[str, Any]:
        record = await self.contracts.upload(
            pdf, [party_id, countersigner], title=title or "", password=password
        )
        return contract_view(record)

    async def sign(self, party_id: str, contract_id: str, totp: str) -> dict[str, Any]:
        self._record(party_id, contract_id)
        return contract_view(await self.contracts.sign(contract_id, party_id, totp))

    async def send(
        self, party_id: str, contract_id: str, recipient: str | None
    ) -> dict[str, Any]:
        record = self._record(party_id, contract_id)
        if record["parties"][0] != party_id:
            raise Forbidden(
                "only the first signer sends the contract to the other party"
            )
        return contract_view(await self.contracts.send(contract_id, recipient))

    async def countersign(
        self, party_id: str, contract_id: str, totp: str
    ) -> dict[str, Any]:
        self._record(party_id, contract_id)
        return contract_view(
            await self.contracts.countersign(contract_id, party_id, totp)
        )

    async def store(self, party_id: str, contract_id: str) -> dict[str, Any]:
        self._record(party_id, contract_id)
        return contract_view(await self.contracts.store(contract_id))

    async def contracts_of(
        self, party_id: str, query: dict[str, str]
    ) -> list[dict[str, Any]]:
        since = _parse_time(query.get("since"), "since")
        until = _parse_time(query.get("until"), "until")
        summaries = self.contracts.list_contracts(
            party=party_id,
            status=query.get("status"),
            created_from=since,
            created_until=until,
        )
        other = query.get("party")
        return [
            {
                "contract_id": s.contract_id,
                "title": s.title,
                "parties": list(s.parties),
                "status": s.status,
                "created": _iso(s.created),
                "updated": _iso(s.updated),
            }
            for s in summaries
            if other is None or other in s.parties
        ]

    async def contract(self, party_id: str, contract_id: str) -> dict[str, Any]:
        return contract_view(self._record(party_id, contract_id))

    async def document(self, party_id: str, contract_id: str) -> bytes:
        self._record(party_id, contract_id)
        return await self.contracts.download(contract_id)

    async def evidence(self, party_id: str, contract_id: str, disclose: bool) -> bytes:
        """Build the contract's evidence bundle; `disclose` adds the caller's salts."""
        from gateway.evidence_builder import TrustMaterial, build_bundle
        from ledger.evidence import Salt

        record = self._record(party_id, contract_id)
        # A bundle's document is the stored, twice-signed PDF; before the
        # store step there is no final document to prove.
        if record["status"] != "stored":
            raise Conflict(
                f"contract {contract_id} is {record['status']}, not stored; its "
                "evidence bundle is available once the store step is done"
            )
        inputs = await self.contracts.evidence_inputs(contract_id)
        leaf_indexes = [entry.leaf_index for entry in inputs.entries]
        salts = [Salt(o.leaf_index, o.label, o.value, o.salt) for o in inputs.openings]
        if disclose:
            enrolment = self.enrolments.get(party_id)
            leaf_index = (
                None if enrolment is None else self.log_store.find_leaf(enrolment)
            )
            if leaf_index is None:
                raise Conflict(
                    f"the enrolment entry of party {party_id} is not known to "
                    "this gateway, so its salts cannot be disclosed"
                )
            leaf_indexes.append(leaf_index)
            for label, (value, salt) in self.identity.commitment_openings(
                party_id
            ).items():
                salts.append(Salt(leaf_index, label, value, salt))

        # The bundle's checkpoint must include every entry it proves.
        await self.sequencer.wait_for_checkpoint(max(leaf_indexes))
        chains = {
            party: b"".join(_der_to_pem(der) for der in chain)
            for party, chain in inputs.certificates.items()
        }
        types = {entry.leaf_index: entry.type for entry in inputs.entries}
        trust = TrustMaterial(
            policy=self.trust.policy_text(),
            tsa_chain_pem=self.trust.tsa_chain_pem,
            tsa_root_pem=self.trust.tsa_root_pem,
            ca_root_pem=self.trust.ca_root_pem(),
        )
        return build_bundle(
            self.log_store,
            contract_id=contract_id,
            leaf_indexes=leaf_indexes,
            document=inputs.document,
            trust=trust,
            certificate_chains=chains,
            salts=salts,
            entry_types=types,
        )


def _der_to_pem(der: bytes) -> bytes:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def _iso(milliseconds: int) -> str:
    moment = dt.datetime.fromtimestamp(milliseconds / 1000, dt.UTC)
    return moment.isoformat(timespec="milliseconds")


def _parse_time(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as error:
        raise MalformedRequest(
            f"query parameter {name}={value!r} is not an ISO 8601 time"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


def contract_view(record: dict[str, Any]) -> dict[str, Any]:
    """Return the public fields of a contract record as JSON-ready values.

    Leaves out the sealed password, the recipient's salt and the storage
    keys, which are not the caller's to see.
    """
    steps = [
        {
            "step": step["type"],
            "leaf_index": step["leaf_index"],
            "leaf_hash": step["leaf_hash"].hex(),
        }
        for step in record.get("steps", [])
    ]
    return {
        "contract_id": record["contract"],
        "title": record.get("title", ""),
        "parties": list(record["parties"]),
        "status": record["status"],
        "created": _iso(record["created"]),
        "updated": _iso(record["updated"]),
        "document_sha256": record["document"].hex(),
        "repaired": bool(record.get("repaired")),
        "steps": steps,
    }
