"""The contract workflow end to end on real components.

A real Sequencer over a temporary LMDB log, the real IdentityService with
its own CA and TOTP consent, real PDFs made with fpdf2, this project's TSA,
folder replicas and the outbox notifier.
"""

from __future__ import annotations

import asyncio
import email
import hashlib
import threading
from email.policy import default

import pyotp
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fpdf import FPDF

from gateway.sample_parties import lei
from identity.ca import CaSettings, CertificateAuthority, utc_now
from identity.details import EnterpriseDetails, PersonDetails
from identity.errors import ConsentError, CustodyError, UnknownPartyError
from identity.proofing import DocumentCodeVerifier
from identity.service import IdentityService
from identity.store import IdentityStore
from ledger.commitment import commit
from ledger.entry import decode_entry
from ledger.merkle import leaf_hash
from ledger.sequencer import Sequencer, SequencerClosedError
from ledger.store import LogConfig, LogStore
from ledger.tsa.verify import verify_token
from signer.contracts import ContractIndex, ContractNotFoundError
from signer.envelope import MasterKey, seal
from signer.errors import InvalidPdfError
from signer.notify import OutboxNotifier
from signer.pades import AuthorityTimeStamper, countersign_pdf, sign_pdf
from signer.replicated import ReplicatedDocumentStore, document_key
from signer.storage import FolderBlobStore
from signer.validate import async_validate_pdf, run_pdfsig, validation_context
from signer.workflow import (
    ClientSignatureError,
    ContractService,
    DocumentIntegrityError,
    NotAPartyError,
    StepOrderError,
    WorkflowError,
)

PASSPHRASE = b"workflow test passphrase"
PEOPLE = {
    "erika": PersonDetails(
        "Erika Mustermann", "L898902C36", "erika@example.org", "+49 151 1234 5678"
    ),
    "john": PersonDetails(
        "John Doe", "D231458907", "john@example.com", "+4915199887766"
    ),
    "carol": PersonDetails(
        "Carol Client", "C01X00T41", "carol@example.org", "+4930123456"
    ),
    "mallory": PersonDetails(
        "Mallory Other", "X12345677", "mallory@example.net", "+3312345678"
    ),
}


class CodeOutbox:
    """Keeps the last enrolment code sent to each address."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    async def __call__(self, channel: str, address: str, code: str) -> None:
        self.codes[address] = code


class Setup:
    """Every component of one test's contract service, for inspection."""

    def __init__(self, tmp_path, pki, timestamper) -> None:
        self.tmp_path = tmp_path
        self.pki = pki
        self.timestamper = timestamper
        self.log_store = LogStore(tmp_path / "log.lmdb", create=True)
        self.log_store.write_config(LogConfig("log.example/workflow-test"))
        self.ca = CertificateAuthority.create(
            tmp_path / "ca", PASSPHRASE, CaSettings("http://127.0.0.1:9")
        )
        self.identity_store = IdentityStore(tmp_path / "identity.lmdb", PASSPHRASE)
        self.index = ContractIndex(tmp_path / "contracts.lmdb")
        self.master_key = MasterKey.generate()
        self.replica_folders = [tmp_path / f"replica-{n}" for n in range(3)]
        self.outbox = tmp_path / "outbox"
        self.codes = CodeOutbox()
        self.parties: dict[str, str] = {}
        self.authenticators: dict[str, pyotp.TOTP] = {}

    async def start(self) -> None:
        self.sequencer = Sequencer(self.log_store)
        await self.sequencer.start()
        self.identity = IdentityService(
            self.identity_store,
            self.ca,
            self.sequencer,
            DocumentCodeVerifier(self.codes, utc_now),
        )
        self.service = self.new_service(self.sequencer)

    def new_service(self, appender, **options) -> ContractService:
        settings = {"timestamper": self.timestamper, **options}
        return ContractService(
            appender=appender,
            identity=self.identity,
            index=self.index,
            drafts=FolderBlobStore(self.tmp_path / "drafts"),
            documents=ReplicatedDocumentStore(
                [FolderBlobStore(folder) for folder in self.replica_folders],
                [self.master_key],
            ),
            notifier=OutboxNotifier(self.outbox),
            validation_context=self.validation_context,
            sender="contracts@ledger.example",
            **settings,
        )

    def validation_context(self):
        return validation_context(
            self.trust_roots,
            other_certs=[self.ca.issuing_certificate, *self.pki.chain],
            crls=self.crls,
        )

    @property
    def trust_roots(self):
        return [self.ca.root_certificate, self.pki.certs["root"]]

    @property
    def crls(self):
        return [self.ca.issuing_crl(), self.ca.root_crl(), *self.pki.crls]

    async def enrol(self, name: str, certificate=None) -> str:
        details = PEOPLE[name]
        challenge = await self.identity.begin_person_enrolment(
            details, certificate=certificate
        )
        party = await self.identity.complete_enrolment(
            challenge, self.codes.codes[details.email]
        )
        provisioning = self.identity.provision_totp(party.party_id)
        self.parties[name] = party.party_id
        self.authenticators[name] = pyotp.parse_uri(provisioning.uri)
        return party.party_id

    def code(self, name: str) -> str:
        return self.authenticators[name].now()

    @property
    def entries(self) -> list[bytes]:
        return [
            bytes(self.log_store.read_entry(i))
            for i in range(self.log_store.tree_size())
        ]

    def contract_entries(self, contract_id: str) -> list[dict]:
        decoded = [decode_entry(entry) for entry in self.entries]
        return [entry for entry in decoded if entry.get("contract") == contract_id]

    async def close(self) -> None:
        await self.sequencer.close()
        self.index.close()
        self.identity_store.close()
        self.ca.close()
        self.log_store.close()


@pytest.fixture
async def setup(tmp_path, pki, timestamper):
    components = Setup(tmp_path, pki, timestamper)
    await components.start()
    await components.enrol("erika")
    await components.enrol("john")
    yield components
    await components.close()


def other_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.cell(0, 10, "A different agreement")
    return bytes(pdf.output())


async def upload(setup, contract_pdf, title="Service agreement"):
    parties = [setup.parties["erika"], setup.parties["john"]]
    return await setup.service.upload(contract_pdf, parties, title=title)


async def run_to(setup, contract_pdf, status):
    """Take a new contract through the workflow up to and including status."""
    service = setup.service
    record = await upload(setup, contract_pdf)
    contract_id = record["contract"]
    steps = [
        (
            "signed",
            lambda: service.sign(
                contract_id, setup.parties["erika"], setup.code("erika")
            ),
        ),
        ("sent", lambda: service.send(contract_id)),
        (
            "countersigned",
            lambda: service.countersign(
                contract_id, setup.parties["john"], setup.code("john")
            ),
        ),
        ("stored", lambda: service.store(contract_id)),
    ]
    for reached, step in steps:
        if record["status"] == status:
            break
        record = await step()
        assert record["status"] == reached
    return record


async def test_workflow_chain_end_to_end(setup, contract_pdf):
    record = await run_to(setup, contract_pdf, "stored")
    contract_id = record["contract"]

    # 1. Five contract entries in step order, chained by prev.
    entries = setup.contract_entries(contract_id)
    assert [entry["type"] for entry in entries] == [
        "upload",
        "sign",
        "send",
        "countersign",
        "store",
    ]
    assert "prev" not in entries[0]
    leaf_hashes = {
        leaf_hash(raw): raw
        for raw in setup.entries
        if decode_entry(raw).get("contract")
    }
    previous = None
    for step, entry in zip(record["steps"], entries):
        assert step["leaf_hash"] == leaf_hash(step["entry"])
        assert step["leaf_hash"] in leaf_hashes
        assert entry.get("prev") == previous
        previous = step["leaf_hash"]

    # 2. The document hashes link up from upload to store.
    upload_entry, sign, send, countersign, store = entries
    prepared = hashlib.sha256(contract_pdf).digest()
    assert upload_entry["uploaded"] == prepared
    assert upload_entry["prepared"] == prepared
    assert upload_entry["parties"] == [setup.parties["erika"], setup.parties["john"]]
    assert sign["document_before"] == prepared
    assert send["document"] == sign["document_after"]
    assert countersign["document_before"] == sign["document_after"]
    assert store["document_before"] == countersign["document_after"]

    # 3. Signer fingerprints and consent entries of the identity service.
    for entry, name in ((sign, "erika"), (countersign, "john")):
        party = setup.identity.party(setup.parties[name])
        certificate_der = party.certificate.public_bytes(Encoding.DER)
        assert entry["certificate"] == hashlib.sha256(certificate_der).digest()
        consent = next(
            decode_entry(raw)
            for raw in setup.entries
            if leaf_hash(raw) == entry["consent"]
        )
        assert consent["type"] == "consent"
        assert consent["party"] == setup.parties[name]
        assert consent["document"] == entry["document_before"]

    # 4. The send entry: the outbox message, its time stamp, the recipient.
    messages = list(setup.outbox.iterdir())
    assert len(messages) == 1
    delivered = messages[0].read_bytes()
    assert send["message"] == hashlib.sha256(delivered).digest()
    parsed = email.message_from_bytes(delivered, policy=default)
    assert parsed["To"] == PEOPLE["john"].email
    attachment = next(parsed.iter_attachments()).get_content()
    assert hashlib.sha256(attachment).digest() == sign["document_after"]
    send_step = record["steps"][2]
    assert (
        hashlib.sha256(send_step["time_stamp_token"]).digest()
        == send["time_stamp_token"]
    )
    verify_token(
        send_step["time_stamp_token"], send["message"], [setup.pki.certs["root"]]
    )
    salt = record["recipient"]["salt"]
    assert send["recipient"] == commit("recipient", PEOPLE["john"].email.encode(), salt)
    assert PEOPLE["john"].email.encode() not in b"".join(setup.entries)

    # 5. The store entry: three replicas of the ciphertext, the B-LTA document.
    replicas = [
        folder.joinpath(*document_key(contract_id).split("/")).read_bytes()
        for folder in setup.replica_folders
    ]
    assert replicas[0] == replicas[1] == replicas[2]
    assert store["ciphertext"] == hashlib.sha256(replicas[0]).digest()
    assert store["locations"] == [
        folder.resolve().as_uri() for folder in setup.replica_folders
    ]
    final = await setup.service.download(contract_id)
    assert hashlib.sha256(final).digest() == store["document_after"]
    assert final.startswith(contract_pdf[:8])
    assert list((setup.tmp_path / "drafts").rglob("*.sealed")) == []

    # 6. pyHanko: two valid, trusted signatures and a document time stamp.
    reports = await async_validate_pdf(
        final,
        setup.trust_roots,
        other_certs=[setup.ca.issuing_certificate],
        crls=setup.crls,
    )
    kinds = [report.kind for report in reports]
    assert len(reports) == 3, kinds
    for report in reports:
        assert report.intact, report.summary
        assert report.valid, report.summary
        assert report.trusted, report.summary

    # 7. poppler's pdfsig, an independent verifier, agrees.
    pdfsig = run_pdfsig(final)
    # poppler 22.12 lists the document time stamp with type "unknown" and does
    # not verify it, so only the two signature fields are checked here.
    assert len(pdfsig) == 3
    signed_fields = [record["steps"][1]["field"], record["steps"][3]["field"]]
    by_field = {item.field_name: item for item in pdfsig}
    for field_name in signed_fields:
        assert by_field[field_name].signature_type == "ETSI.CAdES.detached"
        assert by_field[field_name].valid, by_field[field_name].signature_validation


async def test_stored_contract_rejects_steps(setup, contract_pdf):
    record = await run_to(setup, contract_pdf, "stored")
    contract_id = record["contract"]
    size = setup.log_store.tree_size()
    with pytest.raises(StepOrderError, match="status is 'stored'"):
        await setup.service.store(contract_id)
    with pytest.raises(StepOrderError, match="requires 'uploaded'"):
        await setup.service.sign(
            contract_id, setup.parties["erika"], setup.code("erika")
        )
    assert setup.log_store.tree_size() == size


async def test_out_of_order_steps_append_nothing(setup, contract_pdf):
    record = await upload(setup, contract_pdf)
    contract_id = record["contract"]
    mallory = await setup.enrol("mallory")
    size = setup.log_store.tree_size()
    service = setup.service

    with pytest.raises(StepOrderError, match="countersign requires 'sent'"):
        await service.countersign(
            contract_id, setup.parties["john"], setup.code("john")
        )
    with pytest.raises(StepOrderError, match="send requires 'signed'"):
        await service.send(contract_id)
    with pytest.raises(StepOrderError, match="store requires 'countersigned'"):
        await service.store(contract_id)
    with pytest.raises(NotAPartyError, match="is not a party"):
        await service.sign(contract_id, mallory, setup.code("mallory"))
    with pytest.raises(NotAPartyError, match="not the first signer"):
        await service.sign(contract_id, setup.parties["john"], setup.code("john"))
    assert setup.log_store.tree_size() == size
    assert service.contract(contract_id)["status"] == "uploaded"


async def test_wrong_totp_code_appends_nothing(setup, contract_pdf):
    record = await upload(setup, contract_pdf)
    size = setup.log_store.tree_size()
    wrong = f"{(int(setup.code('erika')) + 1) % 1_000_000:06d}"
    with pytest.raises(ConsentError):
        await setup.service.sign(record["contract"], setup.parties["erika"], wrong)
    assert setup.log_store.tree_size() == size
    assert setup.service.contract(record["contract"])["status"] == "uploaded"


async def test_concurrent_signs_log_once(setup, contract_pdf):
    record = await upload(setup, contract_pdf)
    contract_id = record["contract"]
    code = setup.code("erika")
    results = await asyncio.gather(
        *(
            setup.service.sign(contract_id, setup.parties["erika"], code)
            for _ in range(3)
        ),
        return_exceptions=True,
    )
    signed = [result for result in results if isinstance(result, dict)]
    rejected = [result for result in results if isinstance(result, StepOrderError)]
    assert len(signed) == 1
    assert len(rejected) == 2
    types = [entry["type"] for entry in setup.contract_entries(contract_id)]
    assert types == ["upload", "sign"]


async def test_two_services_log_step_once(setup, contract_pdf):
    # Two services over one index, as two processes would be: their locks
    # are separate, so both deliver, but the index lets only one log.
    record = await run_to(setup, contract_pdf, "signed")
    contract_id = record["contract"]
    other = setup.new_service(setup.sequencer)
    results = await asyncio.gather(
        setup.service.send(contract_id),
        other.send(contract_id),
        return_exceptions=True,
    )
    sent = [result for result in results if isinstance(result, dict)]
    rejected = [result for result in results if isinstance(result, StepOrderError)]
    assert len(sent) == 1, results
    assert len(rejected) == 1, results
    types = [entry["type"] for entry in setup.contract_entries(contract_id)]
    assert types == ["upload", "sign", "send"]


async def test_upload_rejects_bad_input(setup, contract_pdf):
    size = setup.log_store.tree_size()
    erika, john = setup.parties["erika"], setup.parties["john"]
    with pytest.raises(InvalidPdfError):
        await setup.service.upload(b"not a pdf at all", [erika, john])
    with pytest.raises(InvalidPdfError):
        await setup.service.upload(
            contract_pdf[: len(contract_pdf) // 2], [erika, john]
        )
    with pytest.raises(NotAPartyError, match="two distinct parties"):
        await setup.service.upload(contract_pdf, [erika, erika])
    with pytest.raises(UnknownPartyError):
        await setup.service.upload(contract_pdf, [erika, "f" * 32])
    assert setup.log_store.tree_size() == size
    assert setup.service.list_contracts() == []


async def test_list_and_search(setup, contract_pdf):
    first = await upload(setup, contract_pdf, title="First")
    second = await run_to(setup, contract_pdf, "signed")
    service = setup.service
    erika = setup.parties["erika"]
    assert [c.contract_id for c in service.list_contracts(party=erika)] == [
        first["contract"],
        second["contract"],
    ]
    assert [c.contract_id for c in service.list_contracts(status="signed")] == [
        second["contract"]
    ]
    assert [c.contract_id for c in service.list_contracts(status="uploaded")] == [
        first["contract"]
    ]
    summary = service.list_contracts(party=setup.parties["john"], status="uploaded")[0]
    assert summary.title == "First"
    assert summary.parties == (erika, setup.parties["john"])
    with pytest.raises(ContractNotFoundError):
        service.contract("0" * 32)


async def test_download_repairs_replica(setup, contract_pdf):
    record = await run_to(setup, contract_pdf, "stored")
    contract_id = record["contract"]
    replica = setup.replica_folders[1].joinpath(*document_key(contract_id).split("/"))
    replica.unlink()
    document = await setup.service.download(contract_id)
    assert hashlib.sha256(document).digest() == record["document"]
    assert replica.exists()


async def test_tampered_draft_detected(setup, contract_pdf):
    record = await upload(setup, contract_pdf)
    contract_id = record["contract"]
    draft = setup.tmp_path / "drafts" / record["draft"]
    draft.write_bytes(
        seal(contract_pdf + b"\n% appended", contract_id, setup.master_key)
    )
    size = setup.log_store.tree_size()
    with pytest.raises(DocumentIntegrityError, match=record["document"].hex()):
        await setup.service.sign(
            contract_id, setup.parties["erika"], setup.code("erika")
        )
    assert setup.log_store.tree_size() == size


async def test_pending_step_finished_after_crash(setup, contract_pdf):
    record = await run_to(setup, contract_pdf, "signed")
    contract_id = record["contract"]

    # The log goes away between the pending record and the append.
    await setup.sequencer.close()
    with pytest.raises(SequencerClosedError):
        await setup.service.send(contract_id)
    assert setup.service.contract(contract_id)["status"] == "signed"
    assert "pending" in setup.service.contract(contract_id)

    # A restarted service completes the pending send before the next step.
    setup.sequencer = Sequencer(setup.log_store)
    await setup.sequencer.start()
    setup.identity = IdentityService(
        setup.identity_store,
        setup.ca,
        setup.sequencer,
        DocumentCodeVerifier(setup.codes, utc_now),
    )
    setup.service = setup.new_service(setup.sequencer)
    record = await setup.service.countersign(
        contract_id, setup.parties["john"], setup.code("john")
    )
    assert record["status"] == "countersigned"
    types = [entry["type"] for entry in setup.contract_entries(contract_id)]
    assert types == ["upload", "sign", "send", "countersign"]


async def test_evidence_inputs(setup, contract_pdf):
    record = await run_to(setup, contract_pdf, "stored")
    evidence = await setup.service.evidence_inputs(record["contract"])
    assert evidence.status == "stored"
    assert evidence.document_sha256 == record["document"]
    types = [entry.type for entry in evidence.entries]
    assert types == [
        "upload",
        "consent",
        "sign",
        "send",
        "consent",
        "countersign",
        "store",
    ]
    indices = [entry.leaf_index for entry in evidence.entries]
    assert indices == sorted(indices)
    for entry in evidence.entries:
        raw = bytes(setup.log_store.read_entry(entry.leaf_index))
        assert leaf_hash(raw) == entry.leaf_hash
        if entry.entry is not None:
            assert raw == entry.entry
    (opening,) = evidence.openings
    send = decode_entry(bytes(setup.log_store.read_entry(opening.leaf_index)))
    assert send["recipient"] == commit(
        "recipient", opening.value.encode(), opening.salt
    )
    assert set(evidence.certificates) == {setup.parties["erika"], setup.parties["john"]}


@pytest.mark.parametrize(
    ("name", "password", "repaired"),
    [
        ("07-hybrid-xref.pdf", None, True),
        ("12-damaged-xref-entry.pdf", None, True),
        ("04-signed-twice-two-fields.pdf", None, False),
        ("10-encrypted-rc4-128-user-pw-openpassword.pdf", "openpassword", False),
    ],
)
async def test_corpus_file_through_workflow(
    setup, corpus_dir, name, password, repaired
):
    uploaded = (corpus_dir / name).read_bytes()
    parties = [setup.parties["erika"], setup.parties["john"]]
    record = await setup.service.upload(uploaded, parties, password=password)
    contract_id = record["contract"]
    assert record["repaired"] is repaired
    assert password is None or password.encode() not in record["password"]

    upload_entry = setup.contract_entries(contract_id)[0]
    assert upload_entry["uploaded"] == hashlib.sha256(uploaded).digest()
    if repaired:
        assert upload_entry["prepared"] != upload_entry["uploaded"]
    else:
        assert upload_entry["prepared"] == upload_entry["uploaded"]

    service = setup.service
    await service.sign(contract_id, parties[0], setup.code("erika"))
    await service.send(contract_id)
    await service.countersign(contract_id, parties[1], setup.code("john"))
    record = await service.store(contract_id)
    final = await service.download(contract_id)
    assert hashlib.sha256(final).digest() == record["document"]

    # Both new signatures chain to the service CA and verify. Signatures
    # made before upload stay intact, but their signers are outside this
    # trust, so only ours must be trusted.
    reports = await async_validate_pdf(
        final,
        setup.trust_roots,
        other_certs=[setup.ca.issuing_certificate],
        crls=setup.crls,
        password=password,
        diff_analysis=False,
    )
    ours = {record["steps"][1]["field"], record["steps"][3]["field"]}
    assert ours <= {report.field_name for report in reports}
    for report in reports:
        assert report.intact, report.summary
        assert report.valid, report.summary
        if report.field_name in ours:
            assert report.trusted, report.summary


async def test_client_side_signature_accepted(setup, contract_pdf):
    # Carol keeps her own key: the test PKI's "alice" key and certificate.
    carol = await setup.enrol("carol", certificate=setup.pki.certs["alice"])
    john = setup.parties["john"]
    record = await setup.service.upload(contract_pdf, [carol, john])
    contract_id = record["contract"]
    with pytest.raises(CustodyError):
        await setup.service.sign(contract_id, carol, setup.code("carol"))

    draft = await setup.service.download(contract_id)
    signed = await sign_pdf(draft, setup.pki.signer("alice"), setup.timestamper)
    record = await setup.service.submit_signature(
        contract_id, carol, setup.code("carol"), signed.data
    )
    assert record["status"] == "signed"
    assert await setup.service.download(contract_id) == signed.data

    entry = setup.contract_entries(contract_id)[-1]
    assert entry["type"] == "sign"
    assert entry["document_before"] == hashlib.sha256(draft).digest()
    assert entry["document_after"] == signed.sha256_after
    assert entry["certificate"] == signed.signer_certificate_sha256
    assert entry["time_stamp_token"] == signed.time_stamp_token_sha256
    consent = next(
        decode_entry(raw) for raw in setup.entries if leaf_hash(raw) == entry["consent"]
    )
    assert consent["type"] == "consent"
    assert consent["party"] == carol


async def test_client_side_signature_rejected(setup, contract_pdf):
    carol = await setup.enrol("carol", certificate=setup.pki.certs["alice"])
    record = await setup.service.upload(contract_pdf, [carol, setup.parties["john"]])
    contract_id = record["contract"]
    draft = await setup.service.download(contract_id)
    size = setup.log_store.tree_size()
    service = setup.service

    # Another key than the enrolled certificate's.
    by_bob = await sign_pdf(draft, setup.pki.signer("bob"), setup.timestamper)
    with pytest.raises(ClientSignatureError, match="not made with the certificate"):
        await service.submit_signature(
            contract_id, carol, setup.code("carol"), by_bob.data
        )

    # A signed document that does not extend the current one.
    other = await sign_pdf(other_pdf(), setup.pki.signer("alice"), setup.timestamper)
    with pytest.raises(ClientSignatureError, match="does not extend"):
        await service.submit_signature(
            contract_id, carol, setup.code("carol"), other.data
        )

    # An update that adds no signature.
    with pytest.raises(ClientSignatureError, match="expected 1"):
        await service.submit_signature(
            contract_id, carol, setup.code("carol"), draft + b"\n% comment\n"
        )

    # A valid signature whose signed range no longer covers the file.
    signed = await sign_pdf(draft, setup.pki.signer("alice"), setup.timestamper)
    tampered = signed.data + b"\n% appended after signing\n"
    with pytest.raises(ClientSignatureError, match="bytes follow its signed range"):
        await service.submit_signature(
            contract_id, carol, setup.code("carol"), tampered
        )

    # The countersigner may not submit the first signature.
    with pytest.raises(NotAPartyError):
        await service.submit_signature(
            contract_id, setup.parties["john"], setup.code("john"), signed.data
        )
    assert setup.log_store.tree_size() == size
    assert service.contract(contract_id)["status"] == "uploaded"


async def test_client_side_countersignature_stored(setup, contract_pdf):
    carol = await setup.enrol("carol", certificate=setup.pki.certs["alice"])
    erika = setup.parties["erika"]
    service = setup.service
    record = await service.upload(contract_pdf, [erika, carol])
    contract_id = record["contract"]
    await service.sign(contract_id, erika, setup.code("erika"))
    await service.send(contract_id)

    sent = await service.download(contract_id)
    countersigned = await countersign_pdf(
        sent, setup.pki.signer("alice"), setup.timestamper
    )
    record = await service.submit_signature(
        contract_id, carol, setup.code("carol"), countersigned.data
    )
    assert record["status"] == "countersigned"
    record = await service.store(contract_id)

    types = [entry["type"] for entry in setup.contract_entries(contract_id)]
    assert types == ["upload", "sign", "send", "countersign", "store"]
    final = await service.download(contract_id)
    reports = await async_validate_pdf(
        final,
        setup.trust_roots,
        other_certs=[setup.ca.issuing_certificate],
        crls=setup.crls,
    )
    assert [report.kind for report in reports].count("signature") == 2
    for report in reports:
        assert report.intact, report.summary
        assert report.valid, report.summary
        assert report.trusted, report.summary


class ThreadNotingTimeStamper(AuthorityTimeStamper):
    """The in-process time stamper, noting the thread of each request."""

    def __init__(self, authority) -> None:
        super().__init__(authority)
        self.threads: list[int] = []

    async def async_request_tsa_response(self, req):
        self.threads.append(threading.get_ident())
        return await super().async_request_tsa_response(req)


async def test_concurrent_signs_accept_fresh_codes(setup, contract_pdf, tsa_authority):
    await setup.enrol("carol")
    await setup.enrol("mallory")
    names = ["erika", "john", "carol", "mallory"]
    stamper = ThreadNotingTimeStamper(tsa_authority)
    service = setup.new_service(setup.sequencer, timestamper=stamper)
    contracts = []
    for position, name in enumerate(names):
        countersigner = names[(position + 1) % len(names)]
        record = await service.upload(
            contract_pdf, [setup.parties[name], setup.parties[countersigner]]
        )
        contracts.append(record["contract"])

    # Each party's code is taken just before the four signatures start
    # together; every consent must be accepted.
    codes = [setup.code(name) for name in names]
    results = await asyncio.gather(
        *(
            service.sign(contract_id, setup.parties[name], code)
            for contract_id, name, code in zip(contracts, names, codes)
        ),
        return_exceptions=True,
    )
    assert [r["status"] if isinstance(r, dict) else r for r in results] == [
        "signed"
    ] * len(names)
    for contract_id in contracts:
        types = [entry["type"] for entry in setup.contract_entries(contract_id)]
        assert types == ["upload", "sign"]

    # pyHanko signed in worker threads: the time-stamp requests it made
    # while signing came from threads other than the event loop's.
    assert len(stamper.threads) >= len(names)
    assert threading.get_ident() not in stamper.threads


async def enrol_enterprise(setup, signatory: str) -> str:
    details = EnterpriseDetails(
        "Northwind Hosting Ltd", lei(4711), setup.parties[signatory]
    )
    challenge = await setup.identity.begin_enterprise_enrolment(details)
    party = await setup.identity.complete_enrolment(
        challenge, setup.codes.codes[PEOPLE[signatory].email]
    )
    setup.identity.provision_totp(party.party_id)
    return party.party_id


def signatory_from_log(setup):
    """Read an enterprise's signatory from its enrolment entry in the log."""

    def signatory_of(party_id: str) -> str | None:
        for raw in setup.entries:
            entry = decode_entry(raw)
            if entry.get("party") == party_id and "signatory" in entry:
                return entry["signatory"]
        return None

    return signatory_of


async def test_send_to_enterprise_goes_to_its_signatory(setup, contract_pdf):
    enterprise = await enrol_enterprise(setup, "john")
    service = setup.new_service(setup.sequencer, signatory_of=signatory_from_log(setup))
    record = await service.upload(contract_pdf, [setup.parties["erika"], enterprise])
    contract_id = record["contract"]
    await service.sign(contract_id, setup.parties["erika"], setup.code("erika"))

    record = await service.send(contract_id)

    assert record["status"] == "sent"
    john = PEOPLE["john"].email
    assert record["recipient"]["value"] == john
    (message,) = list(setup.outbox.iterdir())
    parsed = email.message_from_bytes(message.read_bytes(), policy=default)
    assert parsed["To"] == john
    send = setup.contract_entries(contract_id)[-1]
    assert send["recipient"] == commit(
        "recipient", john.encode(), record["recipient"]["salt"]
    )


async def test_send_to_enterprise_without_signatory_names_the_fix(setup, contract_pdf):
    enterprise = await enrol_enterprise(setup, "john")
    record = await setup.service.upload(
        contract_pdf, [setup.parties["erika"], enterprise]
    )
    contract_id = record["contract"]
    await setup.service.sign(contract_id, setup.parties["erika"], setup.code("erika"))
    with pytest.raises(WorkflowError, match="pass the recipient"):
        await setup.service.send(contract_id)
    types = [entry["type"] for entry in setup.contract_entries(contract_id)]
    assert types == ["upload", "sign"]
