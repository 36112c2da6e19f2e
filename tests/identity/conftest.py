"""Fixtures for the identity tests: a frozen clock, a CA, a log, a service."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from identity.ca import CaSettings, CertificateAuthority
from identity.proofing import DocumentCodeVerifier
from identity.service import IdentityService, ServiceSettings
from identity.store import IdentityStore
from ledger.appender import AppendResult

PASSPHRASE = b"identity test passphrase"
BASE_URL = "http://127.0.0.1:8080"
START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)


class FrozenClock:
    """A clock that moves only when a test advances it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class MemoryLog:
    """An in-memory Appender that keeps every entry's bytes in order."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []

    async def append(self, entry: bytes) -> AppendResult:
        # RFC 9162 section 2.1.1 leaf hash.
        leaf_hash = hashlib.sha256(b"\x00" + entry).digest()
        self.entries.append(entry)
        return AppendResult(len(self.entries) - 1, leaf_hash)


class Outbox:
    """A code sender that keeps the last code sent to each address."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    async def __call__(self, channel: str, address: str, code: str) -> None:
        self.codes[address] = code


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def ca(tmp_path: Path, clock: FrozenClock):
    authority = CertificateAuthority.create(
        tmp_path / "ca", PASSPHRASE, CaSettings(BASE_URL), clock=clock
    )
    yield authority
    authority.close()


@pytest.fixture
def log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def service(tmp_path: Path, ca, log, outbox, clock):
    store = IdentityStore(tmp_path / "identity.lmdb", PASSPHRASE)
    verifier = DocumentCodeVerifier(outbox, clock)
    yield IdentityService(store, ca, log, verifier, ServiceSettings(), clock)
    store.close()
