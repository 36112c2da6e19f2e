"""Fixtures for the gateway tests: a real gateway on 127.0.0.1 and API helpers."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest

from gateway import sample_parties
from gateway.service import Gateway, GatewayOptions

PASSPHRASE = b"gateway test passphrase"

# Serials for sample parties, unique within one test session.
_serials = itertools.count(os.getpid() * 1000)


class ApiClient:
    """Calls the gateway's API the way a client program would."""

    def __init__(self, gateway: Gateway, session: aiohttp.ClientSession) -> None:
        self.gateway = gateway
        self.session = session
        self.url = gateway.url

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers.update(self.headers(token))
        async with self.session.request(
            method, self.url + path, headers=headers, **kwargs
        ) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.read()

    async def enrol(self, kind: str, details: dict[str, str]) -> dict[str, Any]:
        operator = self.gateway.operator_token
        status, body = await self.call(
            "POST", "/api/v1/parties", operator, json={"kind": kind, "details": details}
        )
        assert status == 202, body
        address = details["email"] if kind == "person" else self._signatory_email
        code = self.gateway.outbox.latest_code(address)
        status, party = await self.call(
            "POST",
            f"/api/v1/parties/{body['challenge_id']}/complete",
            operator,
            json={"code": code},
        )
        assert status == 201, party
        return party

    async def enrol_pair(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Enrol a person and an enterprise (with its own signatory); return both."""
        person = await self.enrol(
            "person", sample_parties.person(next(_serials), "Ada Lovelace")
        )
        signatory_details = sample_parties.person(next(_serials), "Charles Babbage")
        signatory = await self.enrol("person", signatory_details)
        self._signatory_email = signatory_details["email"]
        enterprise = await self.enrol(
            "enterprise",
            sample_parties.enterprise(
                next(_serials), "Northwind Hosting Ltd", signatory["party_id"]
            ),
        )
        return person, enterprise

    @staticmethod
    def totp(party: dict[str, Any]) -> str:
        return pyotp.parse_uri(party["totp_uri"]).now()

    async def upload(
        self, party: dict[str, Any], pdf: bytes, password: str | None = None
    ):
        body: dict[str, Any] = {
            "pdf": base64.b64encode(pdf).decode(),
            "title": "contract",
        }
        if password is not None:
            body["password"] = password
        return await self.call(
            "POST", "/api/v1/contracts", party["api_token"], json=body
        )


@pytest.fixture
async def gateway(tmp_path: Path):
    """A gateway without witnesses, serving on a free port of 127.0.0.1."""
    node = Gateway(
        GatewayOptions(tmp_path / "gateway", PASSPHRASE, publish_interval=0.1)
    )
    await node.start()
    try:
        yield node
    finally:
        await node.close()


@pytest.fixture
async def api(gateway: Gateway):
    async with aiohttp.ClientSession() as session:
        yield ApiClient(gateway, session)


async def wait_for_tree_size(
    gateway: Gateway, tree_size: int, timeout: float = 10.0
) -> None:
    """Wait until the gateway has published a checkpoint of at least tree_size."""
    await asyncio.wait_for(gateway.publisher.wait_for_tree_size(tree_size), timeout)
