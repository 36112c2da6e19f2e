"""A client of the gateway's write API, as a party's program or the operator uses it.

The demo, the benchmark and the tests drive the service through this client
over HTTP, so that they exercise the same path as any other caller.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import aiohttp
import pyotp


class ApiCallError(Exception):
    """The gateway rejected a call; carries the HTTP status and the reason."""

    def __init__(self, method: str, path: str, status: int, reason: str) -> None:
        super().__init__(f"{method} {path} failed with HTTP {status}: {reason}")
        self.status = status
        self.reason = reason


@dataclass
class EnrolledParty:
    """A party as its client program knows it after enrolment."""

    party_id: str
    kind: str
    api_token: str
    totp_uri: str
    email: str
    leaf_index: int | None = None

    def totp(self) -> str:
        """Return the current TOTP code, as the party's authenticator app shows it."""
        otp = pyotp.parse_uri(self.totp_uri)
        if not isinstance(otp, pyotp.TOTP):
            raise TypeError(f"{self.totp_uri!r} is not a TOTP provisioning URI")
        return otp.now()


class GatewayClient:
    """Calls /api/v1 of the gateway at `url` with one aiohttp session."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url.rstrip("/")
        self.session = session

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Send one request; return the JSON or the bytes, raise ApiCallError for 4xx and 5xx."""
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with self.session.request(
            method, self.url + path, headers=headers, **kwargs
        ) as response:
            if response.content_type == "application/json":
                body = await response.json()
            else:
                body = await response.read()
            if response.status >= 400:
                reason = body.get("reason") if isinstance(body, dict) else str(body)
                raise ApiCallError(method, path, response.status, str(reason))
            return body

    async def enrol(
        self,
        operator_token: str,
        kind: str,
        details: dict[str, str],
        code_for: Any,
        email: str,
    ) -> EnrolledParty:
        """Enrol a party; `code_for(address)` returns the proofing code sent to `email`."""
        started = await self.call(
            "POST",
            "/api/v1/parties",
            operator_token,
            json={"kind": kind, "details": details, "channel": "email"},
        )
        party = await self.call(
            "POST",
            f"/api/v1/parties/{started['challenge_id']}/complete",
            operator_token,
            json={"code": code_for(email)},
        )
        return EnrolledParty(
            party["party_id"],
            party["kind"],
            party["api_token"],
            party["totp_uri"],
            email,
            party.get("leaf_index"),
        )

    async def upload(
        self,
        party: EnrolledParty,
        pdf: bytes,
        countersigner: EnrolledParty,
        title: str = "",
        password: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "pdf": base64.b64encode(pdf).decode(),
            "countersigner": countersigner.party_id,
            "title": title or "contract",
        }
        if password is not None:
            body["password"] = password
        return await self.call("POST", "/api/v1/contracts", party.api_token, json=body)

    async def step(
        self, party: EnrolledParty, contract_id: str, step: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Take one workflow step (sign, send, countersign or store)."""
        return await self.call(
            "POST",
            f"/api/v1/contracts/{contract_id}/{step}",
            party.api_token,
            json=body,
        )

    async def sign(self, party: EnrolledParty, contract_id: str) -> dict[str, Any]:
        return await self.step(party, contract_id, "sign", {"totp": party.totp()})

    async def send(
        self, party: EnrolledParty, contract_id: str, recipient: str
    ) -> dict[str, Any]:
        return await self.step(party, contract_id, "send", {"recipient": recipient})

    async def countersign(
        self, party: EnrolledParty, contract_id: str
    ) -> dict[str, Any]:
        return await self.step(
            party, contract_id, "countersign", {"totp": party.totp()}
        )

    async def store(self, party: EnrolledParty, contract_id: str) -> dict[str, Any]:
        return await self.step(party, contract_id, "store", {})

    async def document(self, party: EnrolledParty, contract_id: str) -> bytes:
        return await self.call(
            "GET", f"/api/v1/contracts/{contract_id}/document", party.api_token
        )

    async def evidence(
        self, party: EnrolledParty, contract_id: str, disclose: bool = False
    ) -> bytes:
        flag = "true" if disclose else "false"
        return await self.call(
            "GET",
            f"/api/v1/contracts/{contract_id}/evidence?disclose={flag}",
            party.api_token,
        )
