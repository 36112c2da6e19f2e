"""The whole workflow over the API on every corpus file, and concurrent clients.

One gateway (no witnesses) serves the module. Each signable corpus file goes
from upload to store over HTTP, and its evidence bundle must pass every
offline check; the two unsignable files must be rejected with a reason and
append nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from gateway.client import ApiCallError, GatewayClient
from gateway.contract_pdf import build_contract_pdf
from gateway.demo import run_workflow
from gateway.service import Gateway, GatewayOptions
from gateway.verify import verify_bundle

pytestmark = pytest.mark.asyncio(loop_scope="module")

PASSPHRASE = b"workflow test passphrase"

SIGNABLE = [
    ("01-plain-multipage-us-constitution.pdf", None),
    ("02-acroform-empty-sigfield-acrobat.pdf", None),
    ("03-signed-once-acrobat-reader.pdf", None),
    ("04-signed-twice-two-fields.pdf", None),
    ("06-xrefstream-objstm-pdflatex-forms.pdf", None),
    ("07-hybrid-xref.pdf", None),
    ("08-incremental-updates-4-revisions.pdf", None),
    ("09-encrypted-aes256-r6-empty-user-pw.pdf", None),
    ("10-encrypted-rc4-128-user-pw-openpassword.pdf", "openpassword"),
    ("11-pdfa-1b-ghostscript.pdf", None),
    ("12-damaged-xref-entry.pdf", None),
    ("13-nonascii-japanese-author-word.pdf", None),
    ("14-large-117-pages-geotopo.pdf", None),
]

UNSIGNABLE = [
    ("05-certified-docmdp-p1.pdf", "forbids"),
    ("10-encrypted-rc4-128-user-pw-openpassword.pdf", "password"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory):
    node = Gateway(
        GatewayOptions(
            tmp_path_factory.mktemp("gateway"), PASSPHRASE, publish_interval=0.1
        )
    )
    await node.start()
    yield node
    await node.close()


@pytest_asyncio.fixture(loop_scope="module")
async def client(gateway):
    async with aiohttp.ClientSession() as session:
        yield GatewayClient(gateway.url, session)


async def workflow(client, gateway, pdf: bytes, password: str | None = None):
    return await run_workflow(
        client,
        gateway.operator_token,
        gateway.outbox.latest_code,
        pdf,
        password=password,
    )


def assert_valid(evidence: bytes, password: str | None = None) -> None:
    result = verify_bundle(evidence, source="test", password=password)
    failed = [(c.number, c.title, c.reason) for c in result.checks if not c.passed]
    assert not failed
    assert [step.step for step in result.timeline] == [
        "upload",
        "sign",
        "send",
        "countersign",
        "store",
    ]


async def test_generated_contract_end_to_end(client, gateway):
    outcome = await workflow(client, gateway, build_contract_pdf())
    await asyncio.to_thread(assert_valid, outcome.evidence)


@pytest.mark.parametrize(
    ("name", "password"), SIGNABLE, ids=[n[:2] for n, _ in SIGNABLE]
)
async def test_corpus_file_end_to_end(
    client, gateway, corpus_dir: Path, name, password
):
    pdf = (corpus_dir / name).read_bytes()
    outcome = await workflow(client, gateway, pdf, password)
    await asyncio.to_thread(assert_valid, outcome.evidence, password)


@pytest.mark.parametrize(
    ("name", "word"), UNSIGNABLE, ids=[n[:2] for n, _ in UNSIGNABLE]
)
async def test_unsignable_corpus_file_is_rejected(
    client, gateway, corpus_dir: Path, name, word
):
    pdf = (corpus_dir / name).read_bytes()
    serial_before = gateway.store.tree_size()
    with pytest.raises(ApiCallError) as raised:
        await workflow(client, gateway, pdf)
    assert raised.value.status == 422
    assert word in raised.value.reason.lower()
    # Only the three enrolments were appended; the upload was not.
    assert gateway.store.tree_size() == serial_before + 3


async def test_concurrent_steps_cannot_interleave(client, gateway):
    from gateway import sample_parties

    outcome = await workflow(client, gateway, build_contract_pdf())
    first, second = outcome.first_signer, outcome.countersigner
    contract = await client.upload(first, build_contract_pdf(), second)
    contract_id = contract["contract_id"]

    # Every step of the contract at once, twice each, from both parties.
    attempts = [
        client.sign(first, contract_id),
        client.sign(first, contract_id),
        client.send(first, contract_id, second.email),
        client.countersign(second, contract_id),
        client.store(second, contract_id),
        client.countersign(second, contract_id),
    ]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            assert isinstance(result, ApiCallError), result
            assert result.status in (403, 409), result
    record = await client.call(
        "GET", f"/api/v1/contracts/{contract_id}", first.api_token
    )
    taken = [step["step"] for step in record["steps"]]
    order = ["upload", "sign", "send", "countersign", "store"]
    # Whatever won the races, the logged steps are a prefix of the workflow,
    # each exactly once.
    assert taken == order[: len(taken)]
    assert sum(not isinstance(r, Exception) for r in results) == len(taken) - 1
    del sample_parties


async def test_step_out_of_order_appends_nothing(client, gateway):
    outcome = await workflow(client, gateway, build_contract_pdf())
    first, second = outcome.first_signer, outcome.countersigner
    contract = await client.upload(first, build_contract_pdf(), second)
    before = gateway.store.tree_size()
    with pytest.raises(ApiCallError) as raised:
        await client.countersign(second, contract["contract_id"])
    assert raised.value.status == 409
    with pytest.raises(ApiCallError) as raised:
        await client.send(second, contract["contract_id"], first.email)
    assert raised.value.status == 403
    assert gateway.store.tree_size() == before


async def test_evidence_needs_stored_contract(client, gateway):
    outcome = await workflow(client, gateway, build_contract_pdf())
    first, second = outcome.first_signer, outcome.countersigner
    contract = await client.upload(first, build_contract_pdf(), second)
    with pytest.raises(ApiCallError) as raised:
        await client.evidence(first, contract["contract_id"])
    assert raised.value.status == 409
    assert "not stored" in str(raised.value)


async def test_other_party_cannot_read_contract(client, gateway):
    owner = await workflow(client, gateway, build_contract_pdf())
    stranger = await workflow(client, gateway, build_contract_pdf())
    with pytest.raises(ApiCallError) as raised:
        await client.document(stranger.first_signer, owner.contract_id)
    assert raised.value.status == 403
    with pytest.raises(ApiCallError) as raised:
        await client.evidence(stranger.first_signer, owner.contract_id)
    assert raised.value.status == 403


async def test_list_and_search_contracts(client, gateway):
    outcome = await workflow(client, gateway, build_contract_pdf())
    listed = await client.call(
        "GET", "/api/v1/contracts?status=stored", outcome.first_signer.api_token
    )
    ids = [c["contract_id"] for c in listed["contracts"]]
    assert outcome.contract_id in ids
    none = await client.call(
        "GET", "/api/v1/contracts?status=uploaded", outcome.first_signer.api_token
    )
    assert outcome.contract_id not in [c["contract_id"] for c in none["contracts"]]
    with pytest.raises(ApiCallError) as raised:
        await client.call(
            "GET", "/api/v1/contracts?since=yesterday", outcome.first_signer.api_token
        )
    assert raised.value.status == 400


async def test_send_without_recipient_reaches_the_signatory(client, gateway):
    # The countersigner is an enterprise, which enrols no e-mail address:
    # the contract goes to the address of the signatory its enrolment names.
    from gateway import sample_parties

    serial = 9_000_000 + gateway.store.tree_size()
    person = sample_parties.person(serial, "Ada Lovelace")
    signatory = sample_parties.person(serial + 1, "Charles Babbage")
    code_for = gateway.outbox.latest_code
    token = gateway.operator_token
    first = await client.enrol(token, "person", person, code_for, person["email"])
    signer = await client.enrol(
        token, "person", signatory, code_for, signatory["email"]
    )
    enterprise = await client.enrol(
        token,
        "enterprise",
        sample_parties.enterprise(serial, "Northwind Hosting Ltd", signer.party_id),
        code_for,
        signatory["email"],
    )
    contract = await client.upload(first, build_contract_pdf(), enterprise)
    contract_id = contract["contract_id"]
    await client.sign(first, contract_id)
    sent = await client.step(first, contract_id, "send", {})
    assert sent["status"] == "sent"
    record = gateway.contracts.contract(contract_id)
    assert record["recipient"]["value"] == signatory["email"]
