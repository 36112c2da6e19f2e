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
and each step checks the status inside the lock. The status is checked once
more in the index transaction that records the pending entry, so services
in separate processes over one index log each step once (though each may
have done the step's work, such as delivering a message). A step first saves its new
working copy, then records the encoded entry as `pending` in the contract
index, then appends it, then applies the step to the record. A crash after
the pending record is written is completed by the next call on that
contract, which appends the same entry bytes again. The log returns the
first copy's position for identical bytes, so the step is logged once.
An upload creates its record, with the upload entry pending, before the
append, so a failed append leaves an `uploaded` record that the next call
on it completes.

The CPU-heavy PDF work (signing, the B-LTA upgrade, validating a signature
made client-side) runs in a worker thread with an event loop of its own.
The service's event loop keeps serving other requests meanwhile, so a TOTP
code checked by another request does not expire behind a signature. The
contract lock stays held across that work, because it
orders the contract's steps.

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
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.timestamps import TimeStamper
from pyhanko_certvalidator import ValidationContext

from identity.service import IdentityService
from ledger.appender import Appender, AppendResult
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
from signer.pades import count_signatures, countersign_pdf, sign_pdf, upgrade_to_lta
from signer.prepare import prepare_pdf
from signer.replicated import ReplicatedDocumentStore
from signer.storage import BlobStore
from signer.validate import async_validate_pdf, open_pdf_reader

logger = logging.getLogger("signer.workflow")

T = TypeVar("T")

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


class ClientSignatureError(WorkflowError):
    """A document signed client-side does not carry the expected new signature."""


@dataclass(frozen=True)
class _Signature:
    data: bytes
    field_name: str
    certificate_sha256: bytes
    time_stamp_token: bytes
    # The signer's certificate and its CA chain in DER, leaf first.
    chain_der: list[bytes]


# pyHanko ModificationLevel names that an added signature may cause: a new
# signature field and its widget count as form filling.
_SIGNATURE_ONLY = ("NONE", "LTA_UPDATES", "FORM_FILLING")


def _signature_time_stamp_token(data: bytes, password: str | None) -> bytes:
    """Return the signature time-stamp token (DER) of the last signature in data.

    Raises `PasswordError` if data is encrypted and password does not open it:
    pyHanko reports a wrong password in the decrypt status, not by raising.
    """
    reader = open_pdf_reader(data, password)
    signer_info = reader.embedded_regular_signatures[-1].signer_info
    for attribute in signer_info["unsigned_attrs"] or []:
        if attribute["type"].native == "signature_time_stamp_token":
            return attribute["values"][0].dump()
    raise ClientSignatureError("the new signature has no signature time-stamp token")


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


# One thread for the PDF work of every contract service in the process.
# pyHanko's work is mostly pure Python, so more threads would not run it
# faster under the GIL, and each one more takes the GIL from the event loop.
_PDF_WORKER = ThreadPoolExecutor(1, thread_name_prefix="pdf-work")


async def _in_worker_thread(
    function: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
) -> T:
    """Run the coroutine function `function` to completion in the PDF worker thread.

    pyHanko's signing and validation coroutines compute for tens to hundreds
    of milliseconds between awaits, and on the service's event loop that
    would stall every other request. The coroutine gets an event loop of its
    own, so everything it awaits must be free of the caller's loop (the
    in-process time stamper is).
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _PDF_WORKER, lambda: asyncio.run(function(*args, **kwargs))
    )


def _now_ms(clock: Callable[[], datetime]) -> int:
    return int(clock().timestamp() * 1000)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class ContractService:
    """Runs the contract workflow over the log, identity, storage and notifier.

    `drafts` keeps the sealed working copy of each contract until it is
    stored. `documents` keeps the stored contracts on three or more
    locations and provides the master keys that seal the working copies.
    `validation_context` returns a fresh pyHanko context (trust roots of the
    CA and the TSA, current CRLs, no fetching) for the B-LTA upgrade.
    `signatory_of` returns the party_id of an enterprise's authorised
    signatory (the `signatory` of its enrolment entry), or None for a
    person. By default `send` delivers an enterprise's contracts to that
    signatory's enrolled e-mail address.
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
        signatory_of: Callable[[str], str | None] = lambda party_id: None,
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
        self.signatory_of = signatory_of
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
            self._check_signer(record, step, party_id)

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
            result = await _in_worker_thread(
                sign,
                document,
                signer,
                self.timestamper,
                box=box,
                password=self._password(record),
            )
            del signer
            signature = _Signature(
                result.data,
                result.field_name,
                result.signer_certificate_sha256,
                result.time_stamp_token,
                [unlocked.certificate_der, *unlocked.chain_der],
            )
            return await self._log_signature(
                step, record, party_id, document, signature, unlocked.consent
            )

    async def submit_signature(
        self, contract_id: str, party_id: str, code: str, signed_document: bytes
    ) -> Record:
        """Accept a signature that a party made client-side with its own key.

        The step is `sign` while the contract is uploaded and `countersign`
        once it is sent. signed_document must be the current document
        followed by one incremental update that adds one intact PAdES
        signature with a signature time stamp, made with the certificate the
        party enrolled. The TOTP code confirms consent to the current
        document. Raises ClientSignatureError, StepOrderError,
        NotAPartyError or ConsentError, each before any step entry.
        """
        async with self._lock(contract_id):
            record = await self._finish_pending(contract_id)
            step = "countersign" if record["status"] == "sent" else "sign"
            self._check_status(record, step)
            self._check_signer(record, step, party_id)
            document = await self._load_draft(record)
            signature = await self._check_client_signature(
                record, party_id, document, signed_document
            )
            consent = await self.identity.confirm_consent(
                party_id, code, _sha256(document)
            )
            return await self._log_signature(
                step, record, party_id, document, signature, consent
            )

    async def _log_signature(
        self,
        step: str,
        record: Record,
        party_id: str,
        document: bytes,
        signature: _Signature,
        consent: AppendResult,
    ) -> Record:
        """Keep the signed working copy, then log the `sign` or `countersign` entry."""
        contract_id = record["contract"]
        number = len(record["steps"])
        draft_key = await self._save_draft(contract_id, number, step, signature.data)
        document_after = _sha256(signature.data)

        entry = self._entry(record, step)
        entry.update(
            document_before=_sha256(document),
            document_after=document_after,
            certificate=signature.certificate_sha256,
            time_stamp_token=_sha256(signature.time_stamp_token),
            consent=consent.leaf_hash,
        )

        certificates = dict(record.get("certificates", {}))
        certificates[party_id] = signature.chain_der
        consent_record = {
            "party": party_id,
            "leaf_index": consent.leaf_index,
            "leaf_hash": consent.leaf_hash,
        }
        apply = {
            "status": TRANSITIONS[step][1],
            "document": document_after,
            "draft": draft_key,
            "certificates": certificates,
            "consents": [*record["consents"], consent_record],
        }
        extra = {
            "time_stamp_token": signature.time_stamp_token,
            "field": signature.field_name,
        }
        return await self._log_step(contract_id, entry, apply, extra)

    async def _check_client_signature(
        self, record: Record, party_id: str, document: bytes, signed: bytes
    ) -> _Signature:
        # 1. The upload must extend the current document, so that every
        #    earlier signature still covers the bytes it signed.
        if len(signed) <= len(document) or not signed.startswith(document):
            raise ClientSignatureError(
                f"the signed document of contract {record['contract']!r} does not "
                "extend its current document; sign the current document (download "
                "it again) with an incremental update"
            )

        # 2. Exactly one signature more, the last one in the file.
        password = self._password(record)
        before = await asyncio.to_thread(count_signatures, document, password)
        after = await asyncio.to_thread(count_signatures, signed, password)
        if after != before + 1:
            raise ClientSignatureError(
                f"the signed document carries {after} signatures, expected {before + 1}: "
                "add exactly one signature"
            )

        # 3. The new signature: intact, valid, time-stamped, covering the whole
        #    file, made with the enrolled certificate.
        party = self.identity.party(party_id)
        certificate_der = party.certificate.public_bytes(Encoding.DER)
        chain_der = [certificate_der] + [
            certificate.public_bytes(Encoding.DER) for certificate in party.chain
        ]
        reports = await _in_worker_thread(
            async_validate_pdf,
            signed,
            [party.certificate, *party.chain],
            password=password,
        )
        signatures = [report for report in reports if report.kind == "signature"]
        new = signatures[-1]
        problems = []
        if not (new.intact and new.valid):
            problems.append(f"it does not verify ({new.summary})")
        if new.coverage != "ENTIRE_FILE":
            problems.append("bytes follow its signed range")
        if new.time_stamp_time is None:
            problems.append("it has no signature time stamp (PAdES B-T)")
        if not hmac.compare_digest(
            new.signer_certificate_sha256, _sha256(certificate_der)
        ):
            problems.append(
                f"it is not made with the certificate party {party_id} enrolled"
            )

        # 4. Earlier signatures stay intact, and the update only added a
        #    signature (pyHanko's modification levels up to FORM_FILLING).
        for report in signatures[:-1]:
            if not (report.intact and report.valid):
                problems.append(
                    f"earlier signature {report.field_name} no longer verifies"
                )
        if (
            len(signatures) > 1
            and signatures[-2].modification_level not in _SIGNATURE_ONLY
        ):
            problems.append(
                "the update changes more than a signature field "
                f"({signatures[-2].modification_level})"
            )
        if problems:
            raise ClientSignatureError(
                f"signature {new.field_name!r} of party {party_id} on contract "
                f"{record['contract']!r} was rejected: {'; '.join(problems)}"
            )
        token = await asyncio.to_thread(_signature_time_stamp_token, signed, password)
        return _Signature(
            signed, new.field_name, _sha256(certificate_der), token, chain_der
        )

    async def send(self, contract_id: str, recipient: str | None = None) -> Record:
        """Deliver the signed contract to the countersigner and log `send`.

        recipient is an e-mail address; by default the countersigner's
        enrolled address, or for an enterprise its signatory's. The entry commits to the address with a fresh
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
            lta = await _in_worker_thread(
                upgrade_to_lta,
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
        """Return the document, entries, openings and certificates for the evidence.

        The record and the document are read under the contract lock, so
        that both belong to the same step.
        """
        async with self._lock(contract_id):
            record = await asyncio.to_thread(self.index.get, contract_id)
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

    @staticmethod
    def _check_signer(record: Record, step: str, party_id: str) -> None:
        expected = record["parties"][0 if step == "sign" else 1]
        if party_id == expected:
            return
        role = "first signer" if step == "sign" else "countersigner"
        if party_id in record["parties"]:
            reason = f"is a party but not the {role}"
        else:
            reason = "is not a party to it"
        raise NotAPartyError(
            f"party {party_id!r} cannot {step} contract {record['contract']!r}: it "
            f"{reason}; the {role} is {expected!r}"
        )

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
        required = TRANSITIONS[entry["type"]][0]

        # The status is checked again in the same LMDB transaction that
        # records the pending entry, so that two processes sharing the
        # index cannot both log the step; the asyncio lock covers only one.
        def set_pending(record: Record) -> None:
            if record["status"] != required or "pending" in record:
                raise StepOrderError(contract_id, entry["type"], record["status"])
            record["pending"] = pending

        await asyncio.to_thread(self.index.update, contract_id, set_pending)
        return await self._finish_pending(contract_id)

    async def _finish_pending(self, contract_id: str) -> Record:
        record = await asyncio.to_thread(self.index.get, contract_id)
        pending = record.get("pending")
        if pending is None:
            return record
        result = await self.appender.append(pending["entry"])
        now = _now_ms(self.clock)

        def apply(record: Record) -> None:
            # Another caller may have applied this entry meanwhile.
            current = record.get("pending")
            if current is None or current["entry"] != pending["entry"]:
                return
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
        """Return the enrolled e-mail address of a person, or of an
        enterprise's authorised signatory (an enterprise enrols none)."""
        openings = self.identity.commitment_openings(party_id)
        if "email" in openings:
            return openings["email"][0]
        signatory = self.signatory_of(party_id)
        if signatory is not None:
            openings = self.identity.commitment_openings(signatory)
            if "email" in openings:
                return openings["email"][0]
        raise WorkflowError(
            f"party {party_id!r} has no enrolled e-mail address, and no "
            "signatory with one is known; pass the recipient"
        )
