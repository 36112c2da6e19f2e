"""Helpers shared by the TSA tests."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def write_pem(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def openssl(
    *args: str | Path, input: bytes | None = None
) -> subprocess.CompletedProcess:
    """Run openssl with the given arguments and capture its output."""
    return subprocess.run(
        ["openssl", *map(str, args)],
        input=input,
        capture_output=True,
        timeout=30,
        check=False,
    )


def utc(*fields: int) -> datetime.datetime:
    return datetime.datetime(*fields, tzinfo=datetime.UTC)
