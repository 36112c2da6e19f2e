"""Fixtures shared by every test package: where the shared inputs live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """Return the folder of public corpus files and vectors beside the checkout.

    LEDGER_SHARED overrides the default, which is `../shared` next to the
    repository root.
    """
    return Path(os.environ.get("LEDGER_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    path = shared_dir() / "vectors"
    if not path.is_dir():
        pytest.skip(f"public test vectors not found at {path}; set LEDGER_SHARED")
    return path


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    path = shared_dir() / "corpus"
    if not path.is_dir():
        pytest.skip(f"PDF corpus not found at {path}; set LEDGER_SHARED")
    return path
