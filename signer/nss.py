"""Build NSS certificate databases that poppler's `pdfsig` reads trust from.

pdfsig checks the signer's certificate path with NSS, for the e-mail signer
usage, against the database given with `-nssdir`. Without one it opens an
empty database and reports every issuer as untrusted. NSS also needs
revocation data for every certificate that names a CRL distribution point.
With OCSP off and no fetching, it reports a path without that data as an
unknown error. `nss_database` therefore writes a fresh database in a
temporary folder with the trusted roots, the intermediate certificates and
their CRLs, and removes it afterwards.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

# NSS trust flags for TLS, e-mail and object signing, where "C" marks a CA
# trusted to issue certificates for that use. pdfsig verifies signer
# certificates for the e-mail signer usage, so it reports a root trusted for
# TLS alone ("C,,") as an untrusted issuer.
TRUSTED_CA_FLAGS = ",C,"
UNTRUSTED_FLAGS = ",,"

_NSS_TOOL_TIMEOUT_SECONDS = 60


class NssDatabaseError(RuntimeError):
    """certutil or crlutil could not create the NSS database or add to it."""


def _run_nss_tool(command: list[str], folder: Path) -> None:
    """Run an NSS tool (`certutil` or `crlutil`) and raise on a failure."""
    # HOME points at the database folder so that the tool reads no
    # database or configuration of the user running it.
    environment = {"HOME": str(folder), "PATH": os.environ.get("PATH", "/usr/bin")}
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=environment,
            timeout=_NSS_TOOL_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError as exc:
        raise NssDatabaseError(
            f"{command[0]} is not on the PATH; install libnss3-tools"
        ) from exc
    if completed.returncode != 0:
        raise NssDatabaseError(
            f"{' '.join(command[:2])} failed with status "
            f"{completed.returncode}: {completed.stderr.strip() or completed.stdout.strip()}"
        )


def _add_certificate(
    database: str, folder: Path, nickname: str, cert: x509.Certificate, flags: str
) -> None:
    pem_path = folder / f"{nickname}.pem"
    pem_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _run_nss_tool(
        [
            "certutil",
            "-A",
            "-d",
            database,
            "-n",
            nickname,
            "-t",
            flags,
            "-a",
            "-i",
            str(pem_path),
        ],
        folder,
    )


def create_nss_database(
    folder: Path,
    trust_roots: Iterable[x509.Certificate],
    *,
    intermediates: Iterable[x509.Certificate] = (),
    crls: Iterable[x509.CertificateRevocationList] = (),
    trust_flags: str = TRUSTED_CA_FLAGS,
) -> str:
    """Create an NSS database in the empty folder `folder` and return its
    `sql:` path, which `pdfsig -nssdir` takes.

    `trust_roots` get `trust_flags` (certutil's "SSL,e-mail,object
    signing" letters), `intermediates` none (NSS still uses them to build paths). Each CRL is imported after
    the certificates and NSS checks its signature, so its issuer must be
    among them. Raises `NssDatabaseError` if certutil or crlutil fails.
    """
    folder = Path(folder)
    database = f"sql:{folder}"
    _run_nss_tool(["certutil", "-N", "-d", database, "--empty-password"], folder)
    for number, root in enumerate(trust_roots, start=1):
        _add_certificate(database, folder, f"root-{number}", root, trust_flags)
    for number, cert in enumerate(intermediates, start=1):
        _add_certificate(
            database, folder, f"intermediate-{number}", cert, UNTRUSTED_FLAGS
        )
    for number, crl in enumerate(crls, start=1):
        crl_path = folder / f"crl-{number}.der"
        crl_path.write_bytes(crl.public_bytes(serialization.Encoding.DER))
        _run_nss_tool(["crlutil", "-I", "-d", database, "-i", str(crl_path)], folder)
    return database


@contextmanager
def nss_database(
    trust_roots: Iterable[x509.Certificate],
    *,
    intermediates: Iterable[x509.Certificate] = (),
    crls: Iterable[x509.CertificateRevocationList] = (),
) -> Iterator[str]:
    """Yield the `sql:` path of a temporary NSS database built by
    `create_nss_database`; the folder is removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix="nssdb-") as folder:
        yield create_nss_database(
            Path(folder), trust_roots, intermediates=intermediates, crls=crls
        )
