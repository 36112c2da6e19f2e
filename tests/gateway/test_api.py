"""The write API on a real gateway: authentication, limits, validation, errors.

Every rejected request must get a 4xx JSON error with a reason and append
nothing to the log, which each test checks through the store's tree_size.
"""

from __future__ import annotations

import cbor2
import pytest

from gateway import sample_parties
from gateway.bodies import JSON_LIMIT, UPLOAD_LIMIT

WRITE_ROUTES = [
    "/api/v1/parties",
    "/api/v1/parties/0123456789abcdef/complete",
    "/api/v1/contracts",
    "/api/v1/contracts/c1/sign",
    "/api/v1/contracts/c1/send",
    "/api/v1/contracts/c1/countersign",
    "/api/v1/contracts/c1/store",
]


def assert_error(status: int, body: object, expected: int) -> None:
    assert status == expected, body
    assert isinstance(body, dict)
    assert body["reason"]
    assert body["error"]


async def test_openapi_lists_every_api_route(api, gateway):
    status, document = await api.call("GET", "/api/openapi.json")
    assert status == 200
    assert document["openapi"].startswith("3.")
    assert api_routes(api) == set(document["paths"])


def api_routes(api) -> set[str]:
    """Return the /api/v1 route templates the running app serves."""
    # The app is not reachable from the client, so rebuild its route table.
    from aiohttp import web

    from gateway.api import add_api_routes

    app = web.Application()
    add_api_routes(app, api.gateway.workflow)
    routes = set()
    for resource in app.router.resources():
        path = resource.get_info().get("formatter") or resource.get_info().get("path")
        if path.startswith("/api/v1"):
            routes.add(path)
    return routes


@pytest.mark.parametrize("path", WRITE_ROUTES)
async def test_write_without_token_is_rejected(api, gateway, path):
    before = gateway.store.tree_size()
    status, body = await api.call("POST", path, json={})
    assert_error(status, body, 401)
    status, body = await api.call("POST", path, "operator.not-the-token", json={})
    assert_error(status, body, 401)
    assert gateway.store.tree_size() == before


async def test_party_token_cannot_enrol(api, gateway):
    person, _ = await api.enrol_pair()
    before = gateway.store.tree_size()
    details = sample_parties.person(424242, "Mallory Intruder")
    status, body = await api.call(
        "POST",
        "/api/v1/parties",
        person["api_token"],
        json={"kind": "person", "details": details},
    )
    assert_error(status, body, 403)
    assert gateway.store.tree_size() == before


async def test_operator_token_cannot_act_as_party(api, gateway):
    status, body = await api.call(
        "POST", "/api/v1/contracts", gateway.operator_token, json={"pdf": ""}
    )
    assert_error(status, body, 403)


@pytest.mark.parametrize(
    ("path", "size"),
    [("/api/v1/parties", JSON_LIMIT + 1), ("/api/v1/contracts", UPLOAD_LIMIT + 1)],
)
async def test_oversized_body_is_rejected(api, gateway, path, size):
    person, _ = await api.enrol_pair()
    token = gateway.operator_token if path.endswith("parties") else person["api_token"]
    before = gateway.store.tree_size()
    status, body = await api.call(
        "POST",
        path,
        token,
        data=b"{" + b" " * size,
        headers={"Content-Type": "application/json"},
    )
    assert_error(status, body, 413)
    assert gateway.store.tree_size() == before


@pytest.mark.parametrize(
    ("content_type", "data", "expected"),
    [
        ("application/json", b'{"kind": "person", "details": ', 400),
        ("application/json", b"\xff\xfe not utf-8", 400),
        ("application/json", b'["a list", "not a map"]', 400),
        ("application/cbor", b"\xa2\x64kind", 400),
        ("application/cbor", b"\xff", 400),
        ("application/cbor", cbor2.dumps({1: "integer key"}), 400),
        ("text/plain", b"kind=person", 415),
    ],
)
async def test_malformed_body_is_rejected(api, gateway, content_type, data, expected):
    before = gateway.store.tree_size()
    status, body = await api.call(
        "POST",
        "/api/v1/parties",
        gateway.operator_token,
        data=data,
        headers={"Content-Type": content_type},
    )
    assert_error(status, body, expected)
    assert gateway.store.tree_size() == before


async def test_enrolment_in_cbor_is_accepted(api, gateway):
    details = sample_parties.person(777001, "Grace Hopper")
    status, body = await api.call(
        "POST",
        "/api/v1/parties",
        gateway.operator_token,
        data=cbor2.dumps({"kind": "person", "details": details}),
        headers={"Content-Type": "application/cbor"},
    )
    assert status == 202, body
    before = gateway.store.tree_size()
    code = gateway.outbox.latest_code(details["email"])
    status, party = await api.call(
        "POST",
        f"/api/v1/parties/{body['challenge_id']}/complete",
        gateway.operator_token,
        json={"code": code},
    )
    assert status == 201, party
    assert gateway.store.tree_size() == before + 1
    assert party["api_token"].startswith(party["party_id"] + ".")
    assert party["totp_uri"].startswith("otpauth://totp/")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"national_id": "D000000002"}, 400),  # wrong ICAO check digit
        ({"email": "not an address"}, 400),
        ({"name": None}, 400),
    ],
)
async def test_invalid_person_details_append_nothing(api, gateway, change, expected):
    details = sample_parties.person(555001, "Alan Turing")
    details.update(change)
    details = {key: value for key, value in details.items() if value is not None}
    before = gateway.store.tree_size()
    status, body = await api.call(
        "POST",
        "/api/v1/parties",
        gateway.operator_token,
        json={"kind": "person", "details": details},
    )
    assert_error(status, body, expected)
    assert gateway.store.tree_size() == before


async def test_wrong_proofing_code_is_forbidden(api, gateway):
    details = sample_parties.person(666001, "Edsger Dijkstra")
    status, body = await api.call(
        "POST",
        "/api/v1/parties",
        gateway.operator_token,
        json={"kind": "person", "details": details},
    )
    assert status == 202
    real = gateway.outbox.latest_code(details["email"])
    wrong = f"{(int(real) + 1) % 10 ** len(real):0{len(real)}d}"
    before = gateway.store.tree_size()
    status, body = await api.call(
        "POST",
        f"/api/v1/parties/{body['challenge_id']}/complete",
        gateway.operator_token,
        json={"code": wrong},
    )
    assert_error(status, body, 403)
    assert gateway.store.tree_size() == before


async def test_unknown_path_gets_json_404(api):
    status, body = await api.call("GET", "/api/v1/nothing-here")
    assert_error(status, body, 404)


async def test_oversized_chunked_body_is_rejected(api, gateway):
    async def chunks():
        # No Content-Length: the limit must hold while the body streams in.
        yield b'{"kind": "person", "details": {"name": "'
        for _ in range(JSON_LIMIT // 1024 + 1):
            yield b"x" * 1024
        yield b'"}}'

    before = gateway.store.tree_size()
    status, body = await api.call(
        "POST",
        "/api/v1/parties",
        gateway.operator_token,
        data=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert_error(status, body, 413)
    assert gateway.store.tree_size() == before
