"""The versioned write and query API under /api/v1.

Handlers authenticate the caller, read and validate the body, and call the
`Workflow` (identity plus contract service). Steps on one contract run one at
a time under a per-contract lock, so that concurrent clients cannot
interleave them. The workflow itself rejects a step out of order. Reads,
evidence included, take no lock.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from typing import Any, Protocol

from aiohttp import web

from gateway.auth import OPERATOR, TOKENS_KEY, authenticated_party, require_operator
from gateway.bodies import (
    JSON_LIMIT,
    PDF_LIMIT,
    UPLOAD_LIMIT,
    binary_field,
    read_map,
    text_field,
)
from gateway.errors import Forbidden, MalformedRequest
from gateway.openapi import openapi_document

_TOTP = re.compile(r"[0-9]{6,8}")
_CONTRACT_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")


class Workflow(Protocol):
    """The service operations the API exposes; errors are domain exceptions."""

    async def begin_enrolment(
        self, kind: str, details: dict[str, Any], channel: str
    ) -> str: ...

    async def complete_enrolment(
        self, challenge_id: str, code: str
    ) -> dict[str, Any]: ...

    async def upload(
        self,
        party_id: str,
        pdf: bytes,
        title: str | None,
        password: str | None,
        countersigner: str,
    ) -> dict[str, Any]: ...

    async def sign(
        self, party_id: str, contract_id: str, totp: str
    ) -> dict[str, Any]: ...

    async def send(
        self, party_id: str, contract_id: str, recipient: str | None
    ) -> dict[str, Any]: ...

    async def countersign(
        self, party_id: str, contract_id: str, totp: str
    ) -> dict[str, Any]: ...

    async def store(self, party_id: str, contract_id: str) -> dict[str, Any]: ...

    async def contracts_of(
        self, party_id: str, query: dict[str, str]
    ) -> list[dict[str, Any]]: ...

    async def contract(self, party_id: str, contract_id: str) -> dict[str, Any]: ...

    async def document(self, party_id: str, contract_id: str) -> bytes: ...

    async def evidence(
        self, party_id: str, contract_id: str, disclose: bool
    ) -> bytes: ...


WORKFLOW_KEY = web.AppKey("workflow", Workflow)
LOCKS_KEY = web.AppKey("contract_locks", weakref.WeakValueDictionary)


def _contract_lock(request: web.Request, contract_id: str) -> asyncio.Lock:
    locks: weakref.WeakValueDictionary[str, asyncio.Lock] = request.app[LOCKS_KEY]
    lock = locks.get(contract_id)
    if lock is None:
        lock = asyncio.Lock()
        locks[contract_id] = lock
    return lock


def _contract_id(request: web.Request) -> str:
    contract_id = request.match_info["contract_id"]
    if not _CONTRACT_ID.fullmatch(contract_id):
        raise MalformedRequest(f"contract id {contract_id!r} is malformed")
    return contract_id


def _party(request: web.Request) -> str:
    party_id = authenticated_party(request)
    if party_id == OPERATOR:
        raise Forbidden(
            "the operator token cannot act for a party; use the party's token"
        )
    return party_id


def _totp(body: dict[str, Any]) -> str:
    code = text_field(body, "totp", max_length=8)
    assert code is not None
    if not _TOTP.fullmatch(code):
        raise MalformedRequest("field 'totp' must be 6 to 8 digits")
    return code


async def begin_enrolment(request: web.Request) -> web.Response:
    require_operator(request)
    body = await read_map(request, JSON_LIMIT)
    kind = text_field(body, "kind", max_length=16)
    if kind not in ("person", "enterprise"):
        raise MalformedRequest("field 'kind' must be 'person' or 'enterprise'")
    details = body.get("details")
    if not isinstance(details, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in details.items()
    ):
        raise MalformedRequest("field 'details' must be a map of text fields")
    channel = text_field(body, "channel", required=False, max_length=8) or "email"
    if channel not in ("email", "phone"):
        raise MalformedRequest("field 'channel' must be 'email' or 'phone'")
    challenge_id = await request.app[WORKFLOW_KEY].begin_enrolment(
        kind, details, channel
    )
    return web.json_response({"challenge_id": challenge_id}, status=202)


async def complete_enrolment(request: web.Request) -> web.Response:
    require_operator(request)
    challenge_id = request.match_info["challenge_id"]
    if not _CONTRACT_ID.fullmatch(challenge_id):
        raise MalformedRequest(f"challenge id {challenge_id!r} is malformed")
    body = await read_map(request, JSON_LIMIT)
    code = text_field(body, "code", max_length=16)
    assert code is not None
    party = await request.app[WORKFLOW_KEY].complete_enrolment(challenge_id, code)
    party["api_token"] = request.app[TOKENS_KEY].issue(party["party_id"])
    return web.json_response(party, status=201)


async def upload(request: web.Request) -> web.Response:
    party_id = _party(request)
    body = await read_map(request, UPLOAD_LIMIT)
    pdf = binary_field(body, "pdf", max_size=PDF_LIMIT)
    title = text_field(body, "title", required=False)
    password = text_field(body, "password", required=False)
    countersigner = text_field(body, "countersigner", max_length=64)
    assert countersigner is not None
    result = await request.app[WORKFLOW_KEY].upload(
        party_id, pdf, title, password, countersigner
    )
    return web.json_response(result, status=201)


async def sign(request: web.Request) -> web.Response:
    party_id = _party(request)
    contract_id = _contract_id(request)
    code = _totp(await read_map(request))
    async with _contract_lock(request, contract_id):
        result = await request.app[WORKFLOW_KEY].sign(party_id, contract_id, code)
    return web.json_response(result)


async def send(request: web.Request) -> web.Response:
    party_id = _party(request)
    contract_id = _contract_id(request)
    body = await read_map(request)
    recipient = text_field(body, "recipient", required=False, max_length=254)
    async with _contract_lock(request, contract_id):
        result = await request.app[WORKFLOW_KEY].send(party_id, contract_id, recipient)
    return web.json_response(result)


async def countersign(request: web.Request) -> web.Response:
    party_id = _party(request)
    contract_id = _contract_id(request)
    code = _totp(await read_map(request))
    async with _contract_lock(request, contract_id):
        result = await request.app[WORKFLOW_KEY].countersign(
            party_id, contract_id, code
        )
    return web.json_response(result)


async def store(request: web.Request) -> web.Response:
    party_id = _party(request)
    contract_id = _contract_id(request)
    await read_map(request)
    async with _contract_lock(request, contract_id):
        result = await request.app[WORKFLOW_KEY].store(party_id, contract_id)
    return web.json_response(result)


async def list_contracts(request: web.Request) -> web.Response:
    party_id = _party(request)
    allowed = {"status", "party", "since", "until"}
    unknown = set(request.query) - allowed
    if unknown:
        raise MalformedRequest(f"unknown query parameters {sorted(unknown)}")
    query = {key: request.query[key] for key in allowed if key in request.query}
    contracts = await request.app[WORKFLOW_KEY].contracts_of(party_id, query)
    return web.json_response({"contracts": contracts})


async def get_contract(request: web.Request) -> web.Response:
    party_id = _party(request)
    result = await request.app[WORKFLOW_KEY].contract(party_id, _contract_id(request))
    return web.json_response(result)


async def download(request: web.Request) -> web.Response:
    party_id = _party(request)
    contract_id = _contract_id(request)
    pdf = await request.app[WORKFLOW_KEY].document(party_id, contract_id)
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{contract_id}.pdf"'},
    )


async def evidence(request: web.Request) -> web.Response:
    party_id = _party(request)
    contract_id = _contract_id(request)
    disclose = request.query.get("disclose", "false")
    if disclose not in ("true", "false"):
        raise MalformedRequest("query parameter 'disclose' must be true or false")
    # No contract lock: the contract service reads the record and document
    # of one step together, and the wait for a checkpoint that includes
    # them must not hold up the contract's next step.
    bundle = await request.app[WORKFLOW_KEY].evidence(
        party_id, contract_id, disclose == "true"
    )
    return web.Response(
        body=bundle,
        content_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{contract_id}.evidence"'
        },
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def add_api_routes(app: web.Application, workflow: Workflow) -> None:
    """Add the /api/v1 routes and /api/openapi.json, served by `workflow`."""
    app[WORKFLOW_KEY] = workflow
    app[LOCKS_KEY] = weakref.WeakValueDictionary()
    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_post("/api/v1/parties", begin_enrolment)
    app.router.add_post("/api/v1/parties/{challenge_id}/complete", complete_enrolment)
    app.router.add_post("/api/v1/contracts", upload)
    app.router.add_get("/api/v1/contracts", list_contracts)
    app.router.add_get("/api/v1/contracts/{contract_id}", get_contract)
    app.router.add_post("/api/v1/contracts/{contract_id}/sign", sign)
    app.router.add_post("/api/v1/contracts/{contract_id}/send", send)
    app.router.add_post("/api/v1/contracts/{contract_id}/countersign", countersign)
    app.router.add_post("/api/v1/contracts/{contract_id}/store", store)
    app.router.add_get("/api/v1/contracts/{contract_id}/document", download)
    app.router.add_get("/api/v1/contracts/{contract_id}/evidence", evidence)
