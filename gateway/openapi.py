"""The OpenAPI 3.1 document of the write and query API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

API_VERSION = "1"

_ERROR = {"$ref": "#/components/responses/Error"}


def _json_or_cbor(schema_ref: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{schema_ref}"}
    return {
        "required": True,
        "content": {
            "application/json": {"schema": schema},
            "application/cbor": {"schema": schema},
        },
    }


def _ok(
    description: str, schema_ref: str | None = None, media: str = "application/json"
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema_ref:
        response["content"] = {
            media: {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}
        }
    elif media != "application/json":
        response["content"] = {
            media: {"schema": {"type": "string", "format": "binary"}}
        }
    return response


def _operation(
    summary: str,
    op_id: str,
    responses: dict[str, Any],
    *,
    body: str | None = None,
    operator: bool = False,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": op_id,
        "security": [{"apiToken": []}],
        "responses": {
            **responses,
            "400": _ERROR,
            "401": _ERROR,
            "403": _ERROR,
            "404": _ERROR,
            "409": _ERROR,
            "413": _ERROR,
            "422": _ERROR,
            "503": _ERROR,
        },
    }
    if operator:
        operation["description"] = "Needs the operator token."
    if body:
        operation["requestBody"] = _json_or_cbor(body)
    if params:
        operation["parameters"] = params
    return operation


_CONTRACT_ID = {
    "name": "contract_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document describing every /api/v1 route."""
    step = "Step"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Contract ledger API",
            "version": API_VERSION,
            "description": (
                "Write and query API of the contract ledger. Every write call "
                "takes a JSON or CBOR map, needs 'Authorization: Bearer <token>' "
                "and, for signing, the party's current TOTP code. Errors are "
                "JSON objects with 'error' and 'reason'. The log read API "
                "(C2SP tlog-tiles) is under /log/ and the time-stamping "
                "authority (RFC 3161) at /tsa."
            ),
        },
        "components": {
            "securitySchemes": {"apiToken": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Error": {
                    "description": "The request failed; nothing was logged.",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/Error"}
                        }
                    },
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "reason"],
                    "properties": {
                        "error": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
                "Enrolment": {
                    "type": "object",
                    "required": ["kind", "details"],
                    "properties": {
                        "kind": {"enum": ["person", "enterprise"]},
                        "details": {
                            "type": "object",
                            "description": (
                                "Person: name, national_id, email, phone. "
                                "Enterprise: legal_name, registration_number and "
                                "signatory (the party_id of an enrolled person)."
                            ),
                        },
                        "channel": {"enum": ["email", "phone"]},
                    },
                },
                "Challenge": {
                    "type": "object",
                    "properties": {"challenge_id": {"type": "string"}},
                },
                "ProofingCode": {
                    "type": "object",
                    "required": ["code"],
                    "properties": {"code": {"type": "string"}},
                },
                "Party": {
                    "type": "object",
                    "properties": {
                        "party_id": {"type": "string"},
                        "api_token": {"type": "string", "description": "Shown once."},
                        "totp_uri": {"type": "string"},
                        "certificate_pem": {"type": "string"},
                        "leaf_index": {"type": "integer"},
                    },
                },
                "Upload": {
                    "type": "object",
                    "required": ["pdf", "countersigner"],
                    "properties": {
                        "countersigner": {
                            "type": "string",
                            "description": "party_id of the other party",
                        },
                        "pdf": {
                            "description": "PDF bytes: CBOR byte string or base64 text in JSON"
                        },
                        "title": {"type": "string"},
                        "password": {"type": "string"},
                    },
                },
                "Sign": {
                    "type": "object",
                    "required": ["totp"],
                    "properties": {
                        "totp": {"type": "string", "pattern": "^[0-9]{6,8}$"}
                    },
                },
                "Send": {
                    "type": "object",
                    "properties": {
                        "recipient": {
                            "type": "string",
                            "description": "e-mail address; default: the other party's enrolled address",
                        }
                    },
                },
                "Empty": {"type": "object"},
                step: {
                    "type": "object",
                    "properties": {
                        "contract_id": {"type": "string"},
                        "step": {"type": "string"},
                        "status": {"type": "string"},
                        "leaf_index": {"type": "integer"},
                        "leaf_hash": {"type": "string"},
                        "document_sha256": {"type": "string"},
                    },
                },
                "Contract": {"type": "object", "additionalProperties": True},
            },
        },
        "paths": {
            "/api/v1/parties": {
                "post": _operation(
                    "Begin enrolling a person or an enterprise; a proofing code "
                    "goes to the e-mail address or phone",
                    "begin_enrolment",
                    {"202": _ok("Proofing started", "Challenge")},
                    body="Enrolment",
                    operator=True,
                )
            },
            "/api/v1/parties/{challenge_id}/complete": {
                "post": _operation(
                    "Complete the enrolment with the proofing code",
                    "complete_enrolment",
                    {"201": _ok("Enrolled", "Party")},
                    body="ProofingCode",
                    operator=True,
                    params=[
                        {
                            "name": "challenge_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                )
            },
            "/api/v1/contracts": {
                "post": _operation(
                    "Upload a contract PDF",
                    "upload",
                    {"201": _ok("Uploaded", step)},
                    body="Upload",
                ),
                "get": _operation(
                    "List and search the caller's contracts",
                    "list_contracts",
                    {"200": _ok("Contracts", "Contract")},
                    params=[
                        {"name": "status", "in": "query", "schema": {"type": "string"}},
                        {"name": "party", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "since",
                            "in": "query",
                            "schema": {"type": "string", "format": "date-time"},
                        },
                        {
                            "name": "until",
                            "in": "query",
                            "schema": {"type": "string", "format": "date-time"},
                        },
                    ],
                ),
            },
            "/api/v1/contracts/{contract_id}": {
                "get": _operation(
                    "Show a contract and the status of each step",
                    "get_contract",
                    {"200": _ok("Contract", "Contract")},
                    params=[_CONTRACT_ID],
                )
            },
            "/api/v1/contracts/{contract_id}/sign": {
                "post": _operation(
                    "Sign as the first party",
                    "sign",
                    {"200": _ok("Signed", step)},
                    body="Sign",
                    params=[_CONTRACT_ID],
                )
            },
            "/api/v1/contracts/{contract_id}/send": {
                "post": _operation(
                    "Send to the other party",
                    "send",
                    {"200": _ok("Sent", step)},
                    body="Send",
                    params=[_CONTRACT_ID],
                )
            },
            "/api/v1/contracts/{contract_id}/countersign": {
                "post": _operation(
                    "Countersign as the other party",
                    "countersign",
                    {"200": _ok("Countersigned", step)},
                    body="Sign",
                    params=[_CONTRACT_ID],
                )
            },
            "/api/v1/contracts/{contract_id}/store": {
                "post": _operation(
                    "Upgrade to PAdES B-LTA and store",
                    "store",
                    {"200": _ok("Stored", step)},
                    body="Empty",
                    params=[_CONTRACT_ID],
                )
            },
            "/api/v1/contracts/{contract_id}/document": {
                "get": _operation(
                    "Download the current PDF",
                    "download",
                    {"200": _ok("PDF", media="application/pdf")},
                    params=[_CONTRACT_ID],
                )
            },
            "/api/v1/contracts/{contract_id}/evidence": {
                "get": _operation(
                    "Download the evidence bundle",
                    "evidence",
                    {"200": _ok("Evidence bundle (ZIP)", media="application/zip")},
                    params=[
                        _CONTRACT_ID,
                        {
                            "name": "disclose",
                            "in": "query",
                            "schema": {"enum": ["true", "false"]},
                            "description": "add the caller's enrolment salts",
                        },
                    ],
                )
            },
        },
    }
