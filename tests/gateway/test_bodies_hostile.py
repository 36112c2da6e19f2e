"""Hostile input to the write API: every rejection is a 4xx JSON error.

One gateway (no witnesses) serves the module. Each test sends valid JSON that
the parser, the certificate builder, the e-mail library or the PDF checks
cannot handle, and checks for a 4xx JSON error with a reason and an
unchanged tree_size.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
from typing import Any

import aiohttp
import pikepdf
import pytest
import pytest_asyncio

from gateway import sample_parties
from gateway.client import EnrolledParty, GatewayClient
from gateway.contract_pdf import build_contract_pdf
from gateway.service import Gateway, GatewayOptions

pytestmark = pytest.mark.asyncio(loop_scope="module")

PASSPHRASE = b"hostile body test passphrase"

_serials = itertools.count(4_400_000)

# Text that every text field must reject, with the words the reason contains.
HOSTILE_TEXT = [
    ("\ud800", "surrogate"),
    ("Ada\x00Lovelace", "control"),
    ("Ada \x1b[31mLovelace", "control"),
    ("Ada\x85Lovelace", "control"),
    ("Ada\r\nLovelace", "control"),
    ("Ada \u202eecalevoL", "bidirectional"),
    ("Ada \u2066Lovelace\u2069", "bidirectional"),
    ("\u200b\u200b", "invisible"),
    ("\u200d \ufeff\u3000", "invisible"),
]
HOSTILE_IDS = [
    "surrogate",
    "nul",
    "escape",
    "c1",
    "crlf",
    "rlo",
    "isolate",
    "zero-width",
    "invisible-space",
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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session():
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def parties(gateway, session):
    """A first signer and a countersigner, both persons."""
    client = GatewayClient(gateway.url, session)
    enrolled = []
    for name in ("Ada Lovelace", "Charles Babbage"):
        details = sample_parties.person(next(_serials), name)
        enrolled.append(
            await client.enrol(
                gateway.operator_token,
                "person",
                details,
                gateway.outbox.latest_code,
                details["email"],
            )
        )
    return enrolled[0], enrolled[1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def signed_contract(gateway, session, parties) -> str:
    """The id of a contract that the first party has signed and not yet sent."""
    client = GatewayClient(gateway.url, session)
    first, second = parties
    contract = await client.upload(first, build_contract_pdf(), second)
    await client.sign(first, contract["contract_id"])
    return contract["contract_id"]


async def request(
    gateway: Gateway,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    token: str,
    **kwargs: Any,
) -> tuple[int, str, Any]:
    """Send one request; return the status, the content type and the body."""
    headers = dict(kwargs.pop("headers", {}))
    headers["Authorization"] = f"Bearer {token}"
    async with session.request(
        method, gateway.url + path, headers=headers, **kwargs
    ) as response:
        data = await response.read()
        if response.content_type == "application/json":
            return response.status, response.content_type, json.loads(data)
        return response.status, response.content_type, data


async def assert_rejected(
    gateway: Gateway,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    token: str,
    expected: int,
    words: str | None = None,
    **kwargs: Any,
) -> None:
    """Check that the request gets `expected` with a JSON reason and appends nothing."""
    before = gateway.store.tree_size()
    status, content_type, body = await request(
        gateway, session, method, path, token, **kwargs
    )
    assert status == expected, body
    assert content_type == "application/json"
    assert body["error"]
    assert body["reason"]
    if words is not None:
        assert words in body["reason"], body["reason"]
    assert gateway.store.tree_size() == before


def person_body(**change: str) -> dict[str, Any]:
    details = sample_parties.person(next(_serials), "Ada Lovelace")
    details.update(change)
    return {"kind": "person", "details": details}


# Bodies that the JSON parser cannot handle.


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"[" * 30_000 + b"]" * 30_000, "nested"),
        (b'{"kind": "person", "details": ' + b"[" * 30_000, "nested"),
        (b'{"kind": "person", "n": ' + b"7" * 5_000 + b"}", "digits"),
        (b'{"kind": ' + b"9" * 5_000 + b"}", "digits"),
    ],
    ids=["nested-array", "nested-unclosed", "long-integer", "long-integer-kind"],
)
async def test_unparsable_json_is_rejected(gateway, session, data, words):
    await assert_rejected(
        gateway,
        session,
        "POST",
        "/api/v1/parties",
        gateway.operator_token,
        400,
        words,
        data=data,
        headers={"Content-Type": "application/json"},
    )


async def test_deeply_nested_cbor_is_rejected(gateway, session):
    # 0x81 starts an array of one item, so the body nests 30,000 arrays.
    data = b"\x81" * 30_000 + b"\x00"
    await assert_rejected(
        gateway,
        session,
        "POST",
        "/api/v1/parties",
        gateway.operator_token,
        400,
        data=data,
        headers={"Content-Type": "application/cbor"},
    )


# Contract listing filters.


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("status=foo", "unknown status"),
        ("since=1969-12-31T23:59:59Z", "out of range"),
        ("until=1900-01-01T00:00:00Z", "out of range"),
        ("since=9999-12-31T23:59:59-12:00", "out of range"),
    ],
    ids=["status", "since-before-epoch", "until-before-epoch", "since-after-9999"],
)
async def test_bad_listing_filter_is_rejected(gateway, session, parties, query, words):
    first, _ = parties
    await assert_rejected(
        gateway,
        session,
        "GET",
        f"/api/v1/contracts?{query}",
        first.api_token,
        400,
        words,
    )


async def test_listing_at_epoch_is_accepted(gateway, session, parties):
    first, _ = parties
    status, _, body = await request(
        gateway,
        session,
        "GET",
        "/api/v1/contracts?since=1970-01-01T00:00:00Z&until=9999-12-31T00:00:00Z",
        first.api_token,
    )
    assert status == 200, body
    assert isinstance(body["contracts"], list)


# Enrolment details.


@pytest.mark.parametrize("length", [65, 100, 200])
async def test_long_name_is_rejected_at_begin(gateway, session, length):
    await assert_rejected(
        gateway,
        session,
        "POST",
        "/api/v1/parties",
        gateway.operator_token,
        400,
        "64 bytes",
        json=person_body(name="A" * length),
    )


async def test_long_legal_name_is_rejected_at_begin(gateway, session, parties):
    first, _ = parties
    details = sample_parties.enterprise(next(_serials), "N" * 65, first.party_id)
    await assert_rejected(
        gateway,
        session,
        "POST",
        "/api/v1/parties",
        gateway.operator_token,
        400,
        "64 bytes",
        json={"kind": "enterprise", "details": details},
    )


@pytest.mark.parametrize(("text", "words"), HOSTILE_TEXT, ids=HOSTILE_IDS)
async def test_hostile_name_is_rejected(gateway, session, text, words):
    await assert_rejected(
        gateway,
        session,
        "POST",
        "/api/v1/parties",
        gateway.operator_token,
        400,
        words,
        json=person_body(name=text),
    )


@pytest.mark.parametrize(("text", "words"), HOSTILE_TEXT, ids=HOSTILE_IDS)
async def test_hostile_email_is_rejected(gateway, session, text, words):
    await assert_rejected(
        gateway,
        session,
        "POST",
        "/api/v1/parties",
        gateway.operator_token,
        400,
        json=person_body(email=f"ada{text}@example.org"),
    )


@pytest.mark.parametrize(
    "name",
    ["Zoë Ångström-Nakamura", "山田 太郎", "O'Brien, Seán", "Ñuño Díaz d'Álava"],
)
async def test_unicode_name_is_enrolled(gateway, session, name):
    client = GatewayClient(gateway.url, session)
    serial = next(_serials)
    details = sample_parties.person(serial, "Unicode Person")
    details["name"] = name
    before = gateway.store.tree_size()
    party = await client.enrol(
        gateway.operator_token,
        "person",
        details,
        gateway.outbox.latest_code,
        details["email"],
    )
    assert party.party_id
    assert gateway.store.tree_size() == before + 1


async def test_name_of_64_bytes_is_enrolled(gateway, session):
    client = GatewayClient(gateway.url, session)
    details = sample_parties.person(next(_serials), "Long Name")
    # 21 three-byte characters and one ASCII letter: 64 bytes of UTF-8.
    details["name"] = "山" * 21 + "A"
    party = await client.enrol(
        gateway.operator_token,
        "person",
        details,
        gateway.outbox.latest_code,
        details["email"],
    )
    assert party.party_id


# Contract text fields.


def upload_body(other: EnrolledParty, **change: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pdf": base64.b64encode(build_contract_pdf()).decode(),
        "countersigner": other.party_id,
        "title": "contract",
    }
    body.update(change)
    return body


@pytest.mark.parametrize("field", ["title", "password", "countersigner"])
@pytest.mark.parametrize(("text", "words"), HOSTILE_TEXT, ids=HOSTILE_IDS)
async def test_hostile_upload_field_is_rejected(
    gateway, session, parties, field, text, words
):
    first, second = parties
    await assert_rejected(
        gateway,
        session,
        "POST",
        "/api/v1/contracts",
        first.api_token,
        400,
        words,
        json=upload_body(second, **{field: text}),
    )


async def test_pdf_without_pages_is_rejected(gateway, session, parties):
    first, second = parties
    output = io.BytesIO()
    pikepdf.new().save(output)
    pdf = base64.b64encode(output.getvalue()).decode()
    await assert_rejected(
        gateway,
        session,
        "POST",
        "/api/v1/contracts",
        first.api_token,
        422,
        "no pages",
        json=upload_body(second, pdf=pdf),
    )


async def test_damaged_pdf_reason_has_no_object_repr(gateway, session, parties):
    first, second = parties
    pdf = b"%PDF-1.4\n1 0 obj garbage\nstartxref\n99999\n%%EOF\n"
    before = gateway.store.tree_size()
    status, _, body = await request(
        gateway,
        session,
        "POST",
        "/api/v1/contracts",
        first.api_token,
        json=upload_body(second, pdf=base64.b64encode(pdf).decode()),
    )
    assert status == 422, body
    assert "damaged beyond repair" in body["reason"]
    assert "object at 0x" not in body["reason"]
    assert "BytesIO" not in body["reason"]
    assert gateway.store.tree_size() == before


@pytest.mark.parametrize(
    "recipient",
    [
        "not an email",
        "a@b.com\r\nBcc: x@y.z",
        "a@b.com\nBcc: x@y.z",
        "a@b.com, c@d.com",
        "\ud800@example.org",
        "user@\u202eexample.org",
        "nobody@localhost",
    ],
    ids=["no-at", "crlf-bcc", "lf-bcc", "two", "surrogate", "rlo", "no-tld"],
)
async def test_bad_recipient_is_rejected(
    gateway, session, parties, signed_contract, recipient
):
    first, _ = parties
    await assert_rejected(
        gateway,
        session,
        "POST",
        f"/api/v1/contracts/{signed_contract}/send",
        first.api_token,
        400,
        json={"recipient": recipient},
    )
    # The rejected send left the contract signed and unsent.
    _, _, contract = await request(
        gateway, session, "GET", f"/api/v1/contracts/{signed_contract}", first.api_token
    )
    assert contract["status"] == "signed"
