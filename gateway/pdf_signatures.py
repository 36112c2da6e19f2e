"""Validate the signatures embedded in a PDF offline, with pyHanko.

The evidence verifier uses this module instead of the signer's code, so that
the check does not depend on the software that made the signatures. It
fetches nothing: trust comes from the CA root given, and revocation data only
from what the PDF embeds (soft-fail when none is there).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import dataclass

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509


class PdfSignatureError(ValueError):
    """A PDF signature is invalid or the PDF cannot be read; the message names which."""


@dataclass(frozen=True)
class SignatureReport:
    """The validation outcome of one embedded signature."""

    field_name: str
    subject: str
    certificate_sha256: bytes
    signing_time: str
    trusted: bool
    coverage: str
    modification_level: str

    def summary(self) -> str:
        """Return one line naming the field, signer, time and coverage."""
        trust = "chains to the CA root" if self.trusted else "not issued by the CA root"
        return (
            f"field {self.field_name}: {self.subject}, signed {self.signing_time}, "
            f"{trust}, coverage {self.coverage}, changes after it: "
            f"{self.modification_level}"
        )


def load_certificates(pem_bytes: bytes, name: str) -> list[asn1_x509.Certificate]:
    """Parse every certificate of a PEM file; raise PdfSignatureError naming `name` otherwise.

    Empty or blank input gives no certificate. Any other block than a
    CERTIFICATE, or DER that cryptography cannot parse strictly, is rejected,
    so a damaged file fails its check with a reason instead of failing
    later inside pyHanko.
    """
    if not pem_bytes.strip():
        return []
    certificates = []
    try:
        for block_type, _, der in pem.unarmor(pem_bytes, multiple=True):
            if block_type != "CERTIFICATE":
                raise PdfSignatureError(
                    f"{name} contains a {block_type} block where a CERTIFICATE "
                    "is expected"
                )
            x509.load_der_x509_certificate(der)
            certificates.append(asn1_x509.Certificate.load(der))
    except PdfSignatureError:
        raise
    except ValueError as error:
        raise PdfSignatureError(
            f"{name} is not a PEM certificate file: {error}"
        ) from error
    return certificates


def check_certificate_chains(chains: dict[str, bytes]) -> None:
    """Check that each signer chain (party id to PEM) parses as certificates.

    Raises PdfSignatureError naming the member `certs/<party_id>.pem`. It
    compares them with nothing: check 9 matches the PDF signers against the
    certificates the log entries name.
    """
    for party_id, chain in sorted(chains.items()):
        name = f"the signer chain certs/{party_id}.pem"
        if not load_certificates(chain, name):
            raise PdfSignatureError(f"{name} contains no certificate")


async def _validate(
    pdf: bytes, ca_root_pem: bytes, tsa_root_pem: bytes, password: str | None
) -> list[SignatureReport]:
    from pyhanko.pdf_utils.crypt import AuthStatus
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        if reader.encrypted:
            # An empty user password opens many encrypted PDFs for reading.
            result = reader.decrypt(password or "")
            if result.status == AuthStatus.FAILED:
                raise PdfSignatureError(
                    "the PDF is encrypted; pass its password (ledger verify --password)"
                )
        signatures = reader.embedded_regular_signatures
    except (PdfReadError, ValueError, KeyError) as error:
        raise PdfSignatureError(f"PDF cannot be read: {error}") from error
    if not signatures:
        raise PdfSignatureError("the PDF contains no signature")
    # The TSA root is trusted for the signatures' time stamps only in effect:
    # a signer certificate chains to it only if the TSA issued it.
    context = ValidationContext(
        trust_roots=load_certificates(ca_root_pem, "the CA root")
        + load_certificates(tsa_root_pem, "the TSA root"),
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    reports = []
    for signature in signatures:
        name = signature.field_name
        try:
            status = await async_validate_pdf_signature(
                signature, signer_validation_context=context
            )
        except Exception as error:  # pyHanko raises many unrelated types
            raise PdfSignatureError(
                f"signature {name} cannot be validated: {error}"
            ) from error
        if not status.intact:
            raise PdfSignatureError(
                f"signature {name}: the signed bytes were changed (digest mismatch)"
            )
        if not status.valid:
            raise PdfSignatureError(
                f"signature {name}: the cryptographic signature is invalid"
            )
        if status.docmdp_ok is False:
            raise PdfSignatureError(
                f"signature {name}: the document was changed after it in a way "
                "its permissions forbid"
            )
        certificate = status.signing_cert
        signed_at = (
            status.timestamp_validity.timestamp
            if status.timestamp_validity
            else status.signer_reported_dt
        )
        reports.append(
            SignatureReport(
                field_name=name,
                subject=certificate.subject.human_friendly,
                certificate_sha256=hashlib.sha256(certificate.dump()).digest(),
                signing_time=signed_at.isoformat() if signed_at else "unknown",
                trusted=bool(status.trusted),
                coverage=status.coverage.name if status.coverage else "unknown",
                modification_level=(
                    status.modification_level.name
                    if status.modification_level
                    else "unknown"
                ),
            )
        )
    return reports


def validate_signatures(
    pdf: bytes,
    ca_root_pem: bytes,
    tsa_root_pem: bytes = b"",
    password: str | None = None,
) -> list[SignatureReport]:
    """Validate every regular signature of `pdf`; raise PdfSignatureError on the first bad one.

    Must not be called from a running event loop (it runs pyHanko's async
    validator to completion); use `asyncio.to_thread` there.
    """
    return asyncio.run(_validate(pdf, ca_root_pem, tsa_root_pem, password))
