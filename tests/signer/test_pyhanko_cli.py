"""pyHanko's command line, `pyhanko sign validate`, as a second verifier.

The command runs in its own process, with the test root as its only trust
root, so it shares no validation context or cache with the library calls
the signer makes. A corpus file signed by Alice and countersigned by Bob
must pass; the same file with one signed byte changed must fail.
Revocation checking is switched off, because the command line takes no
CRL files and fetching would leave the machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from signer.pades import countersign_pdf, sign_pdf
from signer.prepare import prepare_pdf

from .conftest import SigningPki, build_pki, change_one_signed_byte

CORPUS_FILE = "06-xrefstream-objstm-pdflatex-forms.pdf"
PYHANKO_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def countersigned_corpus_file(pki: SigningPki, timestamper, corpus_dir: Path) -> bytes:
    """The corpus file with a signature by Alice and one by Bob, made once."""
    prepared = prepare_pdf((corpus_dir / CORPUS_FILE).read_bytes())

    async def sign_twice() -> bytes:
        first = await sign_pdf(prepared.data, pki.signer("alice"), timestamper)
        second = await countersign_pdf(first.data, pki.signer("bob"), timestamper)
        return second.data

    return asyncio.run(sign_twice())


def _write_pem(path: Path, certificates) -> Path:  # type: ignore[no-untyped-def]
    path.write_bytes(
        b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)
    )
    return path


def pyhanko_validate(
    data: bytes, pki: SigningPki, folder: Path
) -> subprocess.CompletedProcess[str]:
    """Run `pyhanko sign validate` on `data` in `folder`, trusting only pki's root.

    The working folder and HOME are `folder`, so that no pyhanko.yml or
    cache of the user running the tests is read.
    """
    document = folder / "document.pdf"
    document.write_bytes(data)
    root = _write_pem(folder / "root.pem", pki.trust_roots)
    issuing = _write_pem(folder / "issuing.pem", pki.chain[:1])
    command = [
        sys.executable,
        "-m",
        "pyhanko",
        "sign",
        "validate",
        "--trust",
        str(root),
        "--trust-replace",
        "--other-certs",
        str(issuing),
        "--no-revocation-check",
        str(document),
    ]
    return subprocess.run(
        command,
        cwd=folder,
        env={"HOME": str(folder), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=PYHANKO_TIMEOUT_SECONDS,
        check=False,
    )


def _status_lines(stdout: str) -> dict[str, tuple[str, str]]:
    """Map each field name to its signer fingerprint and status, from the
    `field:SHA-256 of the signer certificate:status` lines."""
    statuses = {}
    for line in stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            statuses[parts[0]] = (parts[1], parts[2])
    return statuses


def _fingerprint(pki: SigningPki, name: str) -> str:
    return hashlib.sha256(
        pki.certs[name].public_bytes(serialization.Encoding.DER)
    ).hexdigest()


def test_countersigned_file_validates(
    pki: SigningPki, countersigned_corpus_file: bytes, tmp_path: Path
):
    completed = pyhanko_validate(countersigned_corpus_file, pki, tmp_path)

    assert completed.returncode == 0, completed.stderr
    statuses = _status_lines(completed.stdout)
    assert statuses.keys() == {"Signature1", "Signature2"}
    assert statuses["Signature1"][0] == _fingerprint(pki, "alice")
    assert statuses["Signature2"][0] == _fingerprint(pki, "bob")
    for _, status in statuses.values():
        flags = status.split(",")
        assert flags[0] == "INTACT:TRUSTED", status
        assert flags[1] == "TIMESTAMP_TOKEN<INTACT:TRUSTED>", status
    # Bob's signature covers the whole file; after Alice's only a signature
    # field was filled in.
    assert statuses["Signature2"][1].endswith(",UNTOUCHED")
    assert "EXTENDED_WITH_FORM_FILLING" in statuses["Signature1"][1]
    assert "ACCEPTABLE_MODIFICATIONS" in statuses["Signature1"][1]


def test_changed_byte_fails(
    pki: SigningPki, countersigned_corpus_file: bytes, tmp_path: Path
):
    tampered = change_one_signed_byte(countersigned_corpus_file)

    completed = pyhanko_validate(tampered, pki, tmp_path)

    assert completed.returncode != 0
    assert "Validation failed" in completed.stderr
    statuses = _status_lines(completed.stdout)
    assert statuses.keys() == {"Signature1", "Signature2"}
    assert [status for _, status in statuses.values()] == ["INVALID", "INVALID"]


def test_other_root_fails(countersigned_corpus_file: bytes, tmp_path: Path):
    completed = pyhanko_validate(countersigned_corpus_file, build_pki(), tmp_path)

    assert completed.returncode != 0
    statuses = _status_lines(completed.stdout)
    assert statuses.keys() == {"Signature1", "Signature2"}
    for _, status in statuses.values():
        assert status.startswith("INTACT:UNTRUSTED,"), status
