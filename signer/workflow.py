"""The contract workflow: upload, sign, send, countersign and store, each one log entry.

`ContractService` moves a contract through the statuses

    uploaded -> signed -> sent -> countersigned -> stored

and appends one entry per step. Every entry after the upload carries `prev`,
the leaf hash of the contract's previous entry, so each contract is a hash
chain in the log. A step asked for in the wrong status, or by a party that
may not take it, raises a WorkflowError before anything is appended.

Entry fields beside the common `v`, `type`, `time`, `contract` and `prev`
(hashes are SHA-256, as 32-byte strings):

    upload       parties (party_ids, first signer first), uploaded (the
                 bytes as uploaded), prepared (after the qpdf repair, equal
                 to uploaded when none was needed)
    sign,        document_before, document_after, certificate (the signer
    countersign  certificate's fingerprint), time_stamp_token (hash of the
                 signature time-stamp token), consent (leaf hash of the
                 identity service's consent entry)
    send         document, recipient (salted commitment to the address),
                 message (hash of the delivered message bytes),
                 time_stamp_token (hash of a token over that message hash)
    store        document_before, document_after (the B-LTA document),
                 time_stamp_token (hash of the document time stamp),
                 ciphertext (hash of the sealed document), locations

Concurrency and crashes: one asyncio lock per contract serialises its steps,
and each step checks the status inside the lock. A step first saves its new
working copy, then records the encoded entry as `pending` in the contract
index, then appends it, then applies the step to the record. A crash after
the pending record is written is completed by the next call on that
contract, which appends the same entry bytes again. The log returns the
first copy's position for identical bytes, so the step is logged once.
An upload creates its record, with the upload entry pending, before the
append, so a failed append leaves an `uploaded` record that the next call
on it completes.

Consent comes first: the identity service logs the `consent` entry when it
unlocks the key, so a signature that fails after that (a time-stamp
authority down, say) leaves a consent entry without a `sign` entry.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyhanko.sign.timestamps import TimeStamper
from pyhanko_certvalidator import ValidationContext

from identity.service import IdentityService
from ledger.appender import Appender
from ledger.commitment import commit, new_salt
from ledger.entry import encode_entry
from signer.contracts import (
    ContractIndex,
    ContractSummary,
    Record,
)
from signer.envelope import open_sealed, seal
from signer.keys import InMemorySigner
from signer.notify import Notifier, build_contract_message
from signer.pades import countersign_pdf, sign_pdf, upgrade_to_lta
from signer.prepare import prepare_pdf
from signer.replicated import ReplicatedDocumentStore
from signer.storage import BlobStore

logger = logging.getLogger("signer.workflow")

SCHEMA_VERSION = 1

# The status a step requires, and the status it leaves.
TRANSITIONS = {
    "sign": ("uploaded", "signed"),
    "send": ("signed", "sent"),
    "countersign": ("sent", "countersigned"),
    "store": ("countersigned", "stored"),
}


class WorkflowError(Exception):
    """A workflow step was rejected; nothing was appended to the log."""


class StepOrderError(WorkflowError):
    """The contract is not in the status the requested step requires."""

    def __init__(self, contract_id: str, step: str, status: str) -> None:
        required = TRANSITIONS[step][0]
        super().__init__(
            f"cannot {step} contract {contract_id!r}: its status is {status!r}, "
            f"and {step} requires {required!r}"
        )
        self.contract_id = contract_id
        self.step = step
        self.status = status

    def __str__(self) -> str:
        return str(self.args[0])


class NotAPartyError(WorkflowError):
    """The party may not take this step of the contract."""


class DocumentIntegrityError(WorkflowError):
    """A working copy read back does not hash to the recorded document hash."""


@dataclass(frozen=True)
class EvidenceEntry:
    """One log entry about the contract: a workflow step or a consent."""

    type: str
    leaf_index: int
    leaf_hash: bytes
    # The leaf data for workflow steps; None for consent entries, which the
    # identity service appended and the log store returns by leaf_index.
    entry: bytes | None
    time_stamp_token: bytes | None = None


@dataclass(frozen=True)
class CommitmentOpening:
    """The value and salt that open one commitment of one entry."""

    leaf_index: int
    label: str
    value: str
    salt: bytes


@dataclass(frozen=True)
class ContractEvidence:
    """The inputs of a contract's evidence bundle, from the private index."""

    contract_id: str
    status: str
    document: bytes
    document_sha256: bytes
    entries: tuple[EvidenceEntry, ...]
    openings: tuple[CommitmentOpening, ...]
    # Each signing party's certificate and CA chain in DER, leaf first.
    certificates: dict[str, list[bytes]]


def _now_ms(clock: Callable[[], datetime]) -> int:
    return int(clock().timestamp() * 1000)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class ContractService:
    """Runs the contract workflow over the log, identity, storage and notifier.

    `drafts` keeps the sealed working copy of each contract until it is
    stored; `documents` keeps the stored contracts on three or more
    locations and provides the master keys that seal the working copies.
    `validation_context` returns a fresh pyHanko context (trust roots of the
    CA and the TSA, current CRLs, no fetching) for the B-LTA upgrade.
    """

    def __init__(
        self,
        *,
        appender: Appender,
        identity: IdentityService,
        index: ContractIndex,
        drafts: BlobStore,
        documents: ReplicatedDocumentStore,
        notifier: Notifier,
        timestamper: TimeStamper,
        validation_context: Callable[[], ValidationContext],
        sender: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.appender = appender
        self.identity = identity
        self.index = index
        self.drafts = drafts
        self.documents = documents
        self.notifier = notifier
        self.timestamper = timestamper
        self.validation_context = validation_context
        self.sender = sender
        self.clock = clock
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def _lock(self, contract_id: str) -> asyncio.Lock:
        lock = self._locks.get(contract_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[contract_id] = lock
        return lock

    # Steps.

    async def upload(
        self,
        document: bytes,
        parties: Sequence[str],
        *,
        title: str = "",
        password: str | None = None,
    ) -> Record:
        """Check and prepare a PDF, open a contract for two parties and log `upload`.

        parties = (first signer, countersigner), two distinct enrolled
        party_ids. Raises SignerError subclasses for a PDF that cannot be
        signed, NotAPartyError or UnknownPartyError for the parties.
        """
        if len(parties) != 2 or parties[0] == parties[1]:
            raise NotAPartyError(
                f"a contract needs two distinct parties (signer, countersigner), got {list(parties)}"
            )
        for party_id in parties:
            self.identity.party(party_id)
        prepared = await asyncio.to_thread(prepare_pdf, document, password)

        contract_id = secrets.token_hex(16)
        now = _now_ms(self.clock)
        draft_key = await self._save_draft(contract_id, 0, "upload", prepared.data)
        entry = {
            "v": SCHEMA_VERSION,
            "type": "upload",
            "time": now,
            "contract": contract_id,
            "parties": list(parties),
            "uploaded": prepared.uploaded_sha256,
            "prepared": prepared.prepared_sha256,
        }
        record: Record = {
            "contract": contract_id,
            "title": title,
            "parties": list(parties),
            "status": "uploaded",
            "created": now,
            "updated": now,
            "document": prepared.prepared_sha256,
            "draft": draft_key,
            "repaired": prepared.repaired,
            "password": None,
            "steps": [],
            "consents": [],
            "pending": self._pending(entry, {}, {}),
        }
        if password is not None:
            record["password"] = seal(
                password.encode(), contract_id, self.documents.master_keys[0]
            )
        await asyncio.to_thread(self.index.insert, record)
        async with self._lock(contract_id):
            record = await self._finish_pending(contract_id)
        logger.info(
            "contract uploaded contract=%s repaired=%s", contract_id, prepared.repaired
        )
        return record

    async def sign(
        self,
        contract_id: str,
        party_id: str,
        code: str,
        *,
        box: tuple[int, int, int, int] | None = None,
    ) -> Record:
        """Sign the contract as its first party after TOTP consent; log `sign`.

        box = (x1, y1, x2, y2) in PDF points on the first page makes the
        signature visible. Raises StepOrderError, NotAPartyError, or the
        identity service's ConsentError, each before any `sign` entry.
        """
        return await self._signature_step("sign", contract_id, party_id, code, box)

    async def countersign(
        self,
        contract_id: str,
        party_id: str,
        code: str,
        *,
        box: tuple[int, int, int, int] | None = None,
    ) -> Record:
        """Countersign the sent contract as its second party; log `countersign`."""
        return await self._signature_step(
            "countersign", contract_id, party_id, code, box
        )

    async def _signature_step(
        self,
        step: str,
        contract_id: str,
        party_id: str,
        code: str,
        box: tuple[int, int, int, int] | None,
    ) -> Record:
        async with self._lock(contract_id):
            # 1. Check the status and the party under the lock.
            record = await self._finish_pending(contract_id)
            self._check_status(record, step)
            expected = record["parties"][0 if step == "sign" else 1]
            if party_id != expected:
                role = "first signer" if step == "sign" else "countersigner"
                if party_id in record["parties"]:
                    reason = f"is a party but not the {role}"
                else:
                    reason = "is not a party to it"
                raise NotAPartyError(
                    f"party {party_id!r} cannot {step} contract {contract_id!r}: it "
                    f"{reason}; the {role} is {expected!r}"
                )

            # 2. TOTP consent unlocks the key for this one document digest,
            #    and the identity service logs the consent entry.
            document = await self._load_draft(record)
            unlocked = await self.identity.unlock_signing_key(
                party_id, code, _sha256(document)
            )
            signer = InMemorySigner(
                unlocked.private_key, unlocked.certificate, unlocked.chain
            )

            # 3. Sign as an incremental update with a B-T time stamp.
            sign = sign_pdf if step == "sign" else countersign_pdf
            result = await sign(
                document,
                signer,
                self.timestamper,
                box=box,
                password=self._password(record),
            )
            del signer

            # 4. Keep the new working copy, then log the step.
            number = len(record["steps"])
            draft_key = await self._save_draft(contract_id, number, step, result.data)
            entry = self._entry(record, step)
            entry.update(
                document_before=result.sha256_before,
                document_after=result.sha256_after,
                certificate=result.signer_certificate_sha256,
                time_stamp_token=result.time_stamp_token_sha256,
                consent=unlocked.consent.leaf_hash,
            )
            certificates = dict(record.get("certificates", {}))
            certificates[party_id] = [unlocked.certificate_der, *unlocked.chain_der]
            consent = {
                "party": party_id,
                "leaf_index": unlocked.consent.leaf_index,
                "leaf_hash": unlocked.consent.leaf_hash,
            }
            apply = {
                "status": TRANSITIONS[step][1],
                "document": result.sha256_after,
                "draft": draft_key,
                "certificates": certificates,
                "consents": [*record["consents"], consent],
            }
            extra = {
                "time_stamp_token": result.time_stamp_token,
                "field": result.field_name,
            }
            return await self._log_step(contract_id, entry, apply, extra)

    async def send(self, contract_id: str, recipient: str | None = None) -> Record:
        """Deliver the signed contract to the countersigner and log `send`.

        recipient is an e-mail address; by default the countersigner's
        enrolled address. The entry commits to the address with a fresh
        salt and records a time-stamp token over the delivered bytes.
        """
        async with self._lock(contract_id):
            record = await self._finish_pending(contract_id)
            self._check_status(record, "send")
            if recipient is None:
                recipient = self._enrolled_email(record["parties"][1])
            document = await self._load_draft(record)
            message = build_contract_message(
                sender=self.sender,
                recipient=recipient,
                subject=f"Contract {record.get('title') or contract_id} to countersign",
                body=(
                    f"The attached contract {contract_id} is signed by the first "
                    "party and waits for your countersignature."
                ),
                document=document,
                filename=f"{contract_id}.pdf",
            )
            delivered = await self.notifier.deliver(message)
            message_hash = _sha256(delivered)
            token = (
                await self.timestamper.async_timestamp(message_hash, "sha256")
            ).dump()
            salt = new_salt()
            entry = self._entry(record, "send")
            entry.update(
                document=record["document"],
                recipient=commit("recipient", recipient.encode(), salt),
                message=message_hash,
                time_stamp_token=_sha256(token),
            )
            apply = {"status": "sent", "recipient": {"value": recipient, "salt": salt}}
            return await self._log_step(
                contract_id, entry, apply, {"time_stamp_token": token}
            )

    async def store(self, contract_id: str) -> Record:
        """Upgrade the countersigned contract to B-LTA, store it sealed on every
        location and log `store`."""
        async with self._lock(contract_id):
            record = await self._finish_pending(contract_id)
            self._check_status(record, "store")
            document = await self._load_draft(record)
            lta = await upgrade_to_lta(
                document,
                self.validation_context(),
                self.timestamper,
                password=self._password(record),
            )
            stored = await self.documents.put(contract_id, lta.data)
            final_hash = _sha256(lta.data)
            entry = self._entry(record, "store")
            entry.update(
                document_before=record["document"],
                document_after=final_hash,
                time_stamp_token=_sha256(lta.time_stamp_token),
                ciphertext=stored.ciphertext_hash,
                locations=list(stored.locations),
            )
            apply = {
                "status": "stored",
                "document": final_hash,
                "stored": {
                    "key": stored.key,
                    "ciphertext_hash": stored.ciphertext_hash,
                    "size": stored.size,
                    "locations": list(stored.locations),
                },
            }
            record = await self._log_step(
                contract_id, entry, apply, {"time_stamp_token": lta.time_stamp_token}
            )
            await self._delete_drafts(contract_id)
        logger.info(
            "contract stored contract=%s locations=%d",
            contract_id,
            len(stored.locations),
        )
        return record

    # Reads.

    def contract(self, contract_id: str) -> Record:
        """Return the index record of contract_id, with every step's status."""
        return self.index.get(contract_id)

    def list_contracts(
        self,
        *,
        party: str | None = None,
        status: str | None = None,
        created_from: datetime | None = None,
        created_until: datetime | None = None,
        limit: int = 100,
    ) -> list[ContractSummary]:
        """Return contracts matching every given filter, oldest first."""
        return self.index.search(
            party=party,
            status=status,
            created_from=None
            if created_from is None
            else int(created_from.timestamp() * 1000),
            created_until=None
            if created_until is None
            else int(created_until.timestamp() * 1000),
            limit=limit,
        )

    async def download(self, contract_id: str) -> bytes:
        """Return the contract's current PDF: the stored B-LTA document once stored.

        Reads of a stored contract check and repair its replicas.
        """
        record = self.index.get(contract_id)
        if record["status"] == "stored":
            document = await self.documents.get(
                contract_id, record["stored"]["ciphertext_hash"]
            )
        else:
            document = await self._load_draft(record)
        self._check_hash(record, document)
        return document

    async def evidence_inputs(self, contract_id: str) -> ContractEvidence:
        """Return the document, entries, openings and certificates for the evidence."""
        record = self.index.get(contract_id)
        document = await self.download(contract_id)
        entries: list[EvidenceEntry] = []
        openings: list[CommitmentOpening] = []
        for step in record["steps"]:
            entries.append(
                EvidenceEntry(
                    step["type"],
                    step["leaf_index"],
                    step["leaf_hash"],
                    step["entry"],
                    step.get("time_stamp_token"),
                )
            )
            if step["type"] == "send":
                recipient = record["recipient"]
                openings.append(
                    CommitmentOpening(
                        step["leaf_index"],
                        "recipient",
                        recipient["value"],
                        recipient["salt"],
                    )
                )
        for consent in record["consents"]:
            entries.append(
                EvidenceEntry(
                    "consent", consent["leaf_index"], consent["leaf_hash"], None
                )
            )
        entries.sort(key=lambda item: item.leaf_index)
        certificates = {
            party_id: list(chain)
            for party_id, chain in record.get("certificates", {}).items()
        }
        return ContractEvidence(
            contract_id,
            record["status"],
            document,
            _sha256(document),
            tuple(entries),
            tuple(openings),
            certificates,
        )

    # Helpers.

    def _check_status(self, record: Record, step: str) -> None:
        if record["status"] != TRANSITIONS[step][0]:
            raise StepOrderError(record["contract"], step, record["status"])

    def _entry(self, record: Record, step: str) -> dict[str, Any]:
        return {
            "v": SCHEMA_VERSION,
            "type": step,
            "time": _now_ms(self.clock),
            "contract": record["contract"],
            "prev": record["last_leaf_hash"],
        }

    @staticmethod
    def _pending(
        entry: dict[str, Any], apply: dict[str, Any], step: dict[str, Any]
    ) -> dict:
        return {
            "entry": encode_entry(entry),
            "type": entry["type"],
            "apply": apply,
            "step": step,
        }

    async def _log_step(
        self,
        contract_id: str,
        entry: dict[str, Any],
        apply: dict[str, Any],
        step: dict[str, Any],
    ) -> Record:
        pending = self._pending(entry, apply, step)
        await asyncio.to_thread(
            self.index.update,
            contract_id,
            lambda record: record.update(pending=pending),
        )
        return await self._finish_pending(contract_id)

    async def _finish_pending(self, contract_id: str) -> Record:
        record = await asyncio.to_thread(self.index.get, contract_id)
        pending = record.get("pending")
        if pending is None:
            return record
        result = await self.appender.append(pending["entry"])
        now = _now_ms(self.clock)

        def apply(record: Record) -> None:
            record.update(pending["apply"])
            record["steps"].append(
                {
                    "type": pending["type"],
                    "leaf_index": result.leaf_index,
                    "leaf_hash": result.leaf_hash,
                    "entry": pending["entry"],
                    **pending["step"],
                }
            )
            record["last_leaf_hash"] = result.leaf_hash
            record["updated"] = now
            del record["pending"]

        record = await asyncio.to_thread(self.index.update, contract_id, apply)
        logger.info(
            "contract step logged contract=%s type=%s leaf_index=%d",
            contract_id,
            pending["type"],
            result.leaf_index,
        )
        return record

    async def _save_draft(
        self, contract_id: str, number: int, step: str, document: bytes
    ) -> str:
        key = f"drafts/{contract_id}/{number}-{step}.pdf.sealed"
        await self.drafts.put(
            key, seal(document, contract_id, self.documents.master_keys[0])
        )
        return key

    async def _load_draft(self, record: Record) -> bytes:
        sealed = await self.drafts.get(record["draft"])
        document = open_sealed(sealed, record["contract"], self.documents.master_keys)
        self._check_hash(record, document)
        return document

    async def _delete_drafts(self, contract_id: str) -> None:
        for key in await self.drafts.list(f"drafts/{contract_id}/"):
            await self.drafts.delete(key)

    @staticmethod
    def _check_hash(record: Record, document: bytes) -> None:
        if not hmac.compare_digest(_sha256(document), record["document"]):
            raise DocumentIntegrityError(
                f"the document of contract {record['contract']!r} does not match its "
                f"recorded SHA-256 {record['document'].hex()}; restore it from a backup"
            )

    def _password(self, record: Record) -> str | None:
        if record.get("password") is None:
            return None
        return open_sealed(
            record["password"], record["contract"], self.documents.master_keys
        ).decode()

    def _enrolled_email(self, party_id: str) -> str:
        openings = self.identity.commitment_openings(party_id)
        if "email" not in openings:
            raise WorkflowError(
                f"party {party_id!r} has no enrolled e-mail address; pass the recipient"
            )
        return openings["email"][0]
