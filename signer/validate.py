"""Validate every signature of a PDF, with pyHanko and with poppler's pdfsig.

`validate_pdf` is the reference check: pyHanko verifies each signature and
document time stamp against the given trust roots and CRLs, without fetching
anything over the network, and runs its difference analysis over the
revisions that follow each signature. `run_pdfsig` runs poppler's `pdfsig`
as an independent second opinion for tests and reports.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.crypt.api import AuthStatus
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.pdf_embedded import (
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    PdfSignatureStatus,
)
from pyhanko_certvalidator import ValidationContext

from signer.errors import InvalidPdfError, PasswordError, SignatureInvalidError
from signer.keys import to_asn1_certificate

Certificate: TypeAlias = x509.Certificate | asn1_x509.Certificate


@dataclass(frozen=True)
class SignatureReport:
    """pyHanko's findings for one signature or document time stamp.

    `intact`: the signed byte ranges hash to the digest in the CMS. `valid`:
    the CMS signature verifies. `trusted`: the signer certificate chains to a
    trust root, unrevoked. `coverage` is the name of pyHanko's
    SignatureCoverageLevel (ENTIRE_FILE for the last signature of an unmodified
    document, ENTIRE_REVISION for earlier ones) and `modification_level` the
    name of its ModificationLevel for the revisions that follow (NONE,
    LTA_UPDATES, FORM_FILLING, ANNOTATIONS, OTHER).
    """

    field_name: str
    kind: str
    signer_subject: str
    signer_certificate_sha256: bytes
    signing_time: datetime | None
    time_stamp_time: datetime | None
    intact: bool
    valid: bool
    trusted: bool
    coverage: str | None
    modification_level: str | None
    docmdp_ok: bool | None
    summary: str

    @property
    def unmodified(self) -> bool:
        """True if no byte follows the signed range of this signature."""
        return self.coverage == "ENTIRE_FILE"


def validation_context(
    trust_roots: Iterable[Certificate],
    *,
    other_certs: Iterable[Certificate] = (),
    crls: Iterable[bytes | x509.CertificateRevocationList] = (),
    moment: datetime | None = None,
) -> ValidationContext:
    """Build a pyHanko validation context that never fetches over the network.

    With CRLs given, revocation checking is hard-fail: every certificate
    below a trust root needs a CRL here. Without CRLs it is soft-fail.
    """
    crl_ders = [
        crl.public_bytes(serialization.Encoding.DER)
        if isinstance(crl, x509.CertificateRevocationList)
        else crl
        for crl in crls
    ]
    return ValidationContext(
        trust_roots=[to_asn1_certificate(cert) for cert in trust_roots],
        other_certs=[to_asn1_certificate(cert) for cert in other_certs],
        crls=[asn1_crl.CertificateList.load(der) for der in crl_ders],
        allow_fetching=False,
        revocation_mode="hard-fail" if crl_ders else "soft-fail",
        moment=moment,
    )


def open_pdf_reader(data: bytes, password: str | None = None) -> PdfFileReader:
    """Open `data` with pyHanko, strictly if it can, and decrypt it if needed.

    Raises `InvalidPdfError` if pyHanko cannot parse the file and
    `PasswordError` if it is encrypted and `password` (or the empty user
    password when None) does not open it.
    """
    try:
        try:
            reader = PdfFileReader(io.BytesIO(data), strict=True)
        except PdfError:
            reader = PdfFileReader(io.BytesIO(data), strict=False)
    except PdfError as exc:
        raise InvalidPdfError(f"pyHanko cannot read the PDF: {exc}") from exc
    if reader.encrypted:
        # pyHanko reports a wrong password as AuthStatus.FAILED, not by raising.
        try:
            status = reader.decrypt(password or "").status
        except PdfError as exc:
            raise PasswordError(
                "the PDF is encrypted and the password does not open it; give "
                "the document's user or owner password"
            ) from exc
        if status is AuthStatus.FAILED:
            raise PasswordError(
                "the PDF is encrypted and the password does not open it; give "
                "the document's user or owner password"
            )
    return reader


def _report(
    field_name: str, status: PdfSignatureStatus | DocumentTimestampStatus
) -> SignatureReport:
    cert = status.signing_cert
    signing_time: datetime | None
    time_stamp_time: datetime | None
    if isinstance(status, DocumentTimestampStatus):
        kind = "document time stamp"
        signing_time = None
        time_stamp_time = status.timestamp
    else:
        kind = "signature"
        signing_time = status.signer_reported_dt
        ts = status.timestamp_validity
        time_stamp_time = ts.timestamp if ts is not None else None
    level = status.modification_level
    return SignatureReport(
        field_name=field_name,
        kind=kind,
        signer_subject=cert.subject.human_friendly,
        signer_certificate_sha256=hashlib.sha256(cert.dump()).digest(),
        signing_time=signing_time,
        time_stamp_time=time_stamp_time,
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        coverage=status.coverage.name if status.coverage is not None else None,
        modification_level=level.name if level is not None else None,
        docmdp_ok=status.docmdp_ok,
        summary=status.summary(),
    )


async def async_validate_pdf(
    data: bytes,
    trust_roots: Iterable[Certificate],
    *,
    other_certs: Iterable[Certificate] = (),
    crls: Iterable[bytes | x509.CertificateRevocationList] = (),
    password: str | None = None,
    diff_analysis: bool = True,
) -> list[SignatureReport]:
    """Validate every signature and document time stamp of `data`, in file order.

    Each one is checked against `trust_roots`, with `other_certs` as extra
    intermediates and `crls` as the only revocation data. Without
    `diff_analysis` pyHanko skips comparing the revisions after each
    signature, which takes seconds on long documents, and reports no
    modification level. Raises
    `InvalidPdfError` or `PasswordError` if the file cannot be read; a bad
    signature is reported, not raised (see `require_valid`).
    """
    roots = list(trust_roots)
    others = list(other_certs)
    crl_list = list(crls)
    reader = open_pdf_reader(data, password)
    reports = []
    for embedded in reader.embedded_signatures:
        # A fresh context per signature, because pyHanko caches validated
        # paths in it and each signature is judged on its own.
        context = validation_context(roots, other_certs=others, crls=crl_list)
        status: PdfSignatureStatus | DocumentTimestampStatus
        if embedded.sig_object_type == "/DocTimeStamp":
            status = await async_validate_pdf_timestamp(
                embedded, context, skip_diff=not diff_analysis
            )
        else:
            status = await async_validate_pdf_signature(
                embedded,
                signer_validation_context=context,
                ts_validation_context=context,
                skip_diff=not diff_analysis,
            )
        reports.append(_report(embedded.field_name, status))
    return reports


def validate_pdf(
    data: bytes,
    trust_roots: Iterable[Certificate],
    *,
    other_certs: Iterable[Certificate] = (),
    crls: Iterable[bytes | x509.CertificateRevocationList] = (),
    password: str | None = None,
    diff_analysis: bool = True,
) -> list[SignatureReport]:
    """Run `async_validate_pdf` in a new event loop, for callers without one."""
    return asyncio.run(
        async_validate_pdf(
            data,
            trust_roots,
            other_certs=other_certs,
            crls=crls,
            password=password,
            diff_analysis=diff_analysis,
        )
    )


def require_valid(
    reports: Sequence[SignatureReport], field_names: Iterable[str]
) -> None:
    """Raise `SignatureInvalidError` unless each named signature is intact,
    valid and trusted, and the last signature covers the whole file."""
    by_name = {report.field_name: report for report in reports}
    for name in field_names:
        report = by_name.get(name)
        if report is None:
            raise SignatureInvalidError(
                f"signature field {name!r} not found in the PDF"
            )
        if not (report.intact and report.valid and report.trusted):
            raise SignatureInvalidError(
                f"signature {name!r} is not valid: {report.summary} "
                f"(intact={report.intact}, valid={report.valid}, "
                f"trusted={report.trusted})"
            )
    if not reports or not reports[-1].unmodified:
        raise SignatureInvalidError(
            "the PDF was modified after its last signature "
            f"(coverage {reports[-1].coverage if reports else None})"
        )


@dataclass(frozen=True)
class PdfsigSignature:
    """One signature as poppler's `pdfsig` reports it."""

    field_name: str
    signer_common_name: str
    signature_type: str
    ranges: tuple[tuple[int, int], ...]
    total_document_signed: bool
    signature_validation: str
    certificate_validation: str | None

    @property
    def valid(self) -> bool:
        """True if pdfsig found the signature valid over its byte ranges."""
        return self.signature_validation == "Signature is Valid."

    @property
    def trusted(self) -> bool:
        """True if NSS chained the signer's certificate to a trusted root."""
        return self.certificate_validation == "Certificate is Trusted."


_PDFSIG_TIMEOUT_SECONDS = 60
_RANGE = re.compile(r"\[(\d+) - (\d+)\]")


def run_pdfsig(
    data: bytes, password: str | None = None, *, nss_dir: str | None = None
) -> list[PdfsigSignature]:
    """Run poppler's `pdfsig` on `data` and parse its report, one entry per
    signature in the order pdfsig prints them.

    OCSP requests are disabled and HOME points at an empty folder. pdfsig
    reads trust from the NSS database `nss_dir`, a `sql:` path such as
    `signer.nss.nss_database` yields. Without one it uses an empty database
    and reports every certificate issuer as untrusted, but the signature
    check itself is the same.

    NOTE: pdfsig 22.12 reads NSS's last error code after each certificate
    check without testing the check's result. After one certificate has
    verified, it reports later ones as "Unknown issue with Certificate or
    corrupted data." even when their paths are trusted.
    """
    with tempfile.TemporaryDirectory(prefix="pdfsig-") as folder:
        path = os.path.join(folder, "document.pdf")
        with open(path, "wb") as handle:
            handle.write(data)
        command = ["pdfsig", "-no-ocsp"]
        if nss_dir is not None:
            command += ["-nssdir", nss_dir]
        if password is not None:
            command += ["-upw", password]
        command.append(path)
        environment = {"HOME": folder, "PATH": os.environ.get("PATH", "/usr/bin")}
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=environment,
            timeout=_PDFSIG_TIMEOUT_SECONDS,
            check=False,
        )
    return parse_pdfsig(completed.stdout, completed.stderr)


def parse_pdfsig(stdout: str, stderr: str = "") -> list[PdfsigSignature]:
    """Parse the text report of `pdfsig` (poppler 22.12) into signatures."""
    if (
        "Digital Signature Info of" not in stdout
        and "does not contain any" not in stdout
    ):
        raise InvalidPdfError(f"pdfsig failed: {stderr.strip() or stdout.strip()}")
    signatures = []
    for block in re.split(r"^Signature #\d+:\s*$", stdout, flags=re.MULTILINE)[1:]:
        fields: dict[str, str] = {}
        total = False
        for line in block.splitlines():
            line = line.strip().removeprefix("- ")
            if line == "Total document signed":
                total = True
            elif ": " in line:
                key, value = line.split(": ", 1)
                fields[key] = value
        ranges = tuple(
            (int(start), int(end))
            for start, end in _RANGE.findall(fields.get("Signed Ranges", ""))
        )
        signatures.append(
            PdfsigSignature(
                field_name=fields.get("Signature Field Name", ""),
                signer_common_name=fields.get("Signer Certificate Common Name", ""),
                signature_type=fields.get("Signature Type", ""),
                ranges=ranges,
                total_document_signed=total,
                signature_validation=fields.get("Signature Validation", ""),
                certificate_validation=fields.get("Certificate Validation"),
            )
        )
    return signatures
