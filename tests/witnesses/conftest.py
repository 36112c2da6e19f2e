"""Fixtures for the witness tests: a spec-only C2SP reference and test logs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_spec = importlib.util.spec_from_file_location(
    "c2sp_reference", Path(__file__).with_name("c2sp_reference.py")
)
reference = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("c2sp_reference", reference)
_spec.loader.exec_module(reference)


@pytest.fixture
def c2sp():
    """The independent C2SP implementation written from the specs."""
    return reference


@pytest.fixture
def reference_log():
    log = reference.ReferenceLog("example.test/log", Ed25519PrivateKey.generate())
    log.append(*[b"entry %d" % i for i in range(40)])
    return log


@pytest.fixture
def passphrase(monkeypatch):
    monkeypatch.setenv("LEDGER_PASSPHRASE", "witness test passphrase")
    return "witness test passphrase"
