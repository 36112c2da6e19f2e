"""Fixtures for the TSA tests: a test PKI built from code and real authorities."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from ledger.tsa.authority import TimeStampAuthority
from ledger.tsa.keys import TsaCredentials, create_credentials
from ledger.tsa.serial import SerialNumbers

PASSPHRASE = b"test passphrase"


@pytest.fixture(scope="session")
def pki(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, TsaCredentials]]:
    """Create one TSA data folder per key type, shared by the session."""
    folders = {}
    for key_type in ("ecdsa-p256", "rsa-2048"):
        folder = tmp_path_factory.mktemp(key_type)
        folders[key_type] = (folder, create_credentials(folder, PASSPHRASE, key_type))
    return folders


@pytest.fixture(params=["ecdsa-p256", "rsa-2048"])
def key_type(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def tsa_dir(pki: dict, key_type: str) -> Path:
    return pki[key_type][0]


@pytest.fixture
def credentials(pki: dict, key_type: str) -> TsaCredentials:
    return pki[key_type][1]


@pytest.fixture
def root(credentials: TsaCredentials) -> x509.Certificate:
    return credentials.chain[-1]


@pytest.fixture
def authority(tsa_dir: Path, credentials: TsaCredentials) -> TimeStampAuthority:
    return TimeStampAuthority(credentials, SerialNumbers(tsa_dir))


@pytest.fixture
def ecdsa_authority(pki: dict) -> TimeStampAuthority:
    folder, credentials = pki["ecdsa-p256"]
    return TimeStampAuthority(credentials, SerialNumbers(folder))


@pytest.fixture(scope="module")
def ecdsa_authority_module(pki: dict) -> TimeStampAuthority:
    folder, credentials = pki["ecdsa-p256"]
    return TimeStampAuthority(credentials, SerialNumbers(folder))
