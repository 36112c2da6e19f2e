"""Fixtures for the identity tests: a frozen clock, a CA, a real log, a service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from identity.ca import CaSettings, CertificateAuthority
from identity.proofing import DocumentCodeVerifier
from identity.service import IdentityService, ServiceSettings
from identity.store import IdentityStore
from ledger.sequencer import Sequencer
from ledger.store import LogConfig, LogStore

PASSPHRASE = b"identity test passphrase"
BASE_URL = "http://127.0.0.1:8080"
# A cheap scrypt cost keeps the many short-lived test stores fast; the
# restart test opens one at the default cost.
TEST_SCRYPT_N = 2**10
START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


class FrozenClock:
    """A clock that moves only when a test advances it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class LogView:
    """The raw leaf bytes of a log store, read back after each append."""

    def __init__(self, store: LogStore) -> None:
        self.store = store

    @property
    def entries(self) -> list[bytes]:
        return [
            bytes(self.store.read_entry(leaf_index))
            for leaf_index in range(self.store.tree_size())
        ]


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
def log_store(tmp_path: Path):
    with LogStore(tmp_path / "log.lmdb", create=True) as store:
        store.write_config(LogConfig("log.example/identity-test"))
        yield store


@pytest.fixture
async def sequencer(log_store: LogStore):
    async with Sequencer(log_store) as running:
        yield running


@pytest.fixture
def log(log_store: LogStore) -> LogView:
    return LogView(log_store)


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
async def service(tmp_path: Path, ca, sequencer, outbox, clock):
    store = IdentityStore(
        tmp_path / "identity.lmdb", PASSPHRASE, scrypt_n=TEST_SCRYPT_N
    )
    verifier = DocumentCodeVerifier(outbox, clock)
    yield IdentityService(store, ca, sequencer, verifier, ServiceSettings(), clock)
    store.close()
