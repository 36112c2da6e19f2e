"""PAdES signatures as incremental updates: sign, countersign, upgrade to B-LTA.

Every function takes the document as bytes and returns the new bytes, which
are the old bytes followed by one incremental update, so that earlier
signatures keep covering exactly the bytes they signed.

- `sign_pdf` adds a PAdES baseline B-T signature (ETSI EN 319 142-1 section
  6.3): a CAdES detached CMS with signed attributes and a signature time
  stamp from the given RFC 3161 time-stamp authority. It fills the first
  empty signature field, or a named one, or creates a new field that is
  visible when a box is given.
- `countersign_pdf` does the same on a document that is already signed.
- `upgrade_to_lta` adds the certificates and CRLs of every signature to the
  document security store and then a document time stamp, which makes the
  document PAdES B-LTA.

pyHanko's incremental writer writes a cross-reference stream only when the
document already uses one, and writes no object streams. A PDF/A-1 document,
which forbids both, therefore keeps a classic cross-reference table, and its
visible signature appearance embeds its font.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from importlib import resources
from typing import Protocol

from asn1crypto import cms, tsp
from pyhanko.pdf_utils.crypt.api import AuthStatus
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.general import SigningError as PyhankoSigningError
from pyhanko.sign.signers.constants import ESIC_EXTENSION_1
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko.sign.signers.pdf_signer import TimestampDSSContentSettings
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError, get_nonce
from pyhanko.sign.validation.dss import (
    DocumentSecurityStore,
    collect_validation_info,
)
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import (
    InvalidCertificateError,
    PathBuildingError,
    PathValidationError,
)

from ledger.tsa.response import TimeStampResp
from signer.errors import (
    ChangesForbiddenError,
    InvalidPdfError,
    PasswordError,
    SigningError,
)
from signer.keys import InMemorySigner
from signer.prepare import PDFA_PART

DIGEST_ALGORITHM = "sha256"


# pyHanko's default stamp uses Courier, a standard font that is not embedded,
# which PDF/A forbids. python-barcode, a dependency of pyHanko's image
# support, ships DejaVu Sans Mono.
_EMBEDDED_FONT = ("barcode", "fonts/DejaVuSansMono.ttf")


@dataclass(frozen=True)
class SignatureResult:
    """A signed document and the facts that its log entry records."""

    data: bytes
    field_name: str
    sha256_before: bytes
    sha256_after: bytes
    signer_certificate_sha256: bytes
    time_stamp_token: bytes
    time_stamp_token_sha256: bytes


@dataclass(frozen=True)
class LtaResult:
    """A document upgraded to PAdES B-LTA.

    `skipped_fields` names signatures whose certificates do not chain to the
    trust roots of the validation context (a foreign signature made before
    upload), so that no validation data was embedded for them.
    """

    data: bytes
    time_stamp_token: bytes
    covered_fields: tuple[str, ...]
    skipped_fields: tuple[str, ...] = field(default=())


class TokenIssuer(Protocol):
    """An in-process RFC 3161 authority, such as `ledger.tsa.TimeStampAuthority`."""

    def issue(self, request_der: bytes) -> bytes:
        """Return the DER TimeStampResp for a DER TimeStampReq."""
        ...


# DER encodings of the digest AlgorithmIdentifiers. RFC 5754 section 2
# requires SHA-2 identifiers to be generated with the parameters absent.
_DIGEST_ALGORITHM_DER = {
    "sha256": bytes.fromhex("300b0609608648016503040201"),
    "sha384": bytes.fromhex("300b0609608648016503040202"),
    "sha512": bytes.fromhex("300b0609608648016503040203"),
}


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def _der_integer(value: int) -> bytes:
    """Encode a non-negative INTEGER, with a leading zero byte where the top
    bit would otherwise make it negative."""
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def encode_timestamp_request(digest: bytes, md_algorithm: str, nonce: int) -> bytes:
    """Encode an RFC 3161 TimeStampReq (version 1, nonce, certReq true) as DER.

    Precondition: 0 <= nonce. Encoding the fixed structure directly costs a
    few microseconds, where building it with asn1crypto costs milliseconds.
    """
    imprint = _der(0x30, _DIGEST_ALGORITHM_DER[md_algorithm] + _der(0x04, digest))
    body = _der_integer(1) + imprint + _der_integer(nonce) + b"\x01\x01\xff"
    return _der(0x30, body)


class AuthorityTimeStamper(TimeStamper):
    """A pyHanko time stamper that calls an in-process authority, with no HTTP.

    pyHanko checks the response status and the nonce as it does for
    `HTTPTimeStamper`, so both paths produce the same signatures.
    """

    def __init__(self, authority: TokenIssuer) -> None:
        super().__init__(include_nonce=True)
        self._authority = authority

    def request_cms(self, message_digest: bytes, md_algorithm: str):  # type: ignore[override]
        """Return a fresh nonce and the TimeStampReq over `message_digest`."""
        if md_algorithm not in _DIGEST_ALGORITHM_DER:
            return super().request_cms(message_digest, md_algorithm)
        nonce = get_nonce()
        der = encode_timestamp_request(message_digest, md_algorithm, nonce)
        return nonce, tsp.TimeStampReq.load(der)

    async def async_request_tsa_response(
        self, req: tsp.TimeStampReq
    ) -> tsp.TimeStampResp:
        """Issue a response to `req`; a rejection reaches pyHanko as its status.

        asn1crypto's TimeStampResp declares the token mandatory, so it cannot
        read a rejection, which carries none. The class of ledger.tsa declares
        it optional, and pyHanko then raises TimestampRequestError.
        """
        return TimeStampResp.load(self._authority.issue(req.dump()))  # type: ignore[return-value]


class _RecordingTimeStamper(TimeStamper):
    """Delegate to another time stamper and keep the last token it returned.

    The dummy token that pyHanko requests to size the signature container
    goes through `async_dummy_response` and is not recorded.
    """

    def __init__(self, inner: TimeStamper) -> None:
        super().__init__(include_nonce=inner.include_nonce)
        self._inner = inner
        self.token: cms.ContentInfo | None = None

    async def async_dummy_response(self, md_algorithm: str) -> cms.ContentInfo:
        return await self._inner.async_dummy_response(md_algorithm)

    async def validation_paths(self, validation_context):  # type: ignore[override]
        async for path in self._inner.validation_paths(validation_context):
            yield path

    async def async_timestamp(self, message_digest, md_algorithm) -> cms.ContentInfo:
        token = await self._inner.async_timestamp(message_digest, md_algorithm)
        self.token = token
        return token


class _MetadataKeepingWriter(IncrementalPdfFileWriter):
    """An incremental writer that can leave the document metadata untouched.

    pyHanko 0.38 rewrites the metadata on every write. When the catalog's
    /Metadata is a stream read from the file, it replaces the whole XMP packet
    with one holding only ModifyDate and Producer, which drops the pdfaid
    identification of a PDF/A file. With `keep_metadata` set, the XMP and the
    Info dictionary, which PDF/A requires to agree, both stay as they are.

    Other documents keep pyHanko's rewrite, because pyHanko's difference
    analysis rates any revision OTHER when the XMP it finds is not an
    x:xmpmeta packet, as in older files written with x:xapmeta.
    """

    keep_metadata = False

    def _update_meta(self) -> None:
        if not self.keep_metadata:
            super()._update_meta()


def _open_writer(data: bytes, password: str | None) -> IncrementalPdfFileWriter:
    """Open `data` for an incremental update, strictly if pyHanko can."""
    writer = None
    try:
        writer = _MetadataKeepingWriter(io.BytesIO(data), strict=True)
        if writer.prev.xrefs.hybrid_xrefs_present:
            writer = None
    except PdfError:
        writer = None
    try:
        if writer is None:
            writer = _MetadataKeepingWriter(io.BytesIO(data), strict=False)
    except PdfError as exc:
        raise InvalidPdfError(
            f"pyHanko cannot read the PDF ({exc}); pass it through "
            "prepare_pdf before signing"
        ) from exc
    if writer.prev.encrypted:
        # pyHanko reports a wrong password as AuthStatus.FAILED, not by raising.
        try:
            status = writer.encrypt(password or "").status
        except PdfError as exc:
            raise _password_error(password) from exc
        if status is AuthStatus.FAILED:
            raise _password_error(password)
    writer.keep_metadata = _pdfa_part(writer.prev) is not None
    return writer


def _password_error(password: str | None) -> PasswordError:
    tried = "empty user password" if password is None else "given password"
    return PasswordError(
        f"the PDF is encrypted and the {tried} does not open it; give the "
        "document's user or owner password"
    )


def _pdfa_part(reader: PdfFileReader) -> bytes | None:
    """Return the PDF/A part number that the XMP metadata claims, or None."""
    try:
        metadata = reader.root.get("/Metadata")
        if metadata is None:
            return None
        match = PDFA_PART.search(metadata.get_object().data)
    except (PdfError, AttributeError):
        return None
    return match.group(1) if match is not None else None


class _PdfA1Signer(signers.PdfSigner):
    """A PdfSigner that declares only the PAdES (ESIC) extension.

    For an ECDSA key, pyHanko 0.38 also declares ISO/TS 32002 and sets the
    catalog /Version to 2.0, which contradicts a PDF/A-1 file's PDF 1.4
    base. This keeps pyHanko's PAdES declaration for PDF 1.7 (catalog
    /Version 1.7 and the ESIC developer extension) and nothing more.
    """

    def register_extensions(self, pdf_out, *, md_algorithm: str) -> None:  # type: ignore[no-untyped-def]
        pdf_out.ensure_output_version(version=(1, 7))
        pdf_out.register_extension(ESIC_EXTENSION_1)


def _embedded_font_stamp_style() -> TextStampStyle:
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    from pyhanko.pdf_utils.text import TextBoxStyle

    font_path = resources.files(_EMBEDDED_FONT[0]).joinpath(_EMBEDDED_FONT[1])
    return TextStampStyle(
        stamp_text="Digitally signed by %(signer)s\n%(ts)s",
        text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(str(font_path))),
    )


def _choose_field(reader: PdfFileReader, field_name: str | None) -> tuple[str, bool]:
    """Return the field to sign and whether it exists already (empty)."""
    existing: dict[str, bool] = {}
    for name, value, _ in fields.enumerate_sig_fields(reader):
        existing[name] = value is not None
    if field_name is not None:
        if existing.get(field_name):
            raise SigningError(
                f"signature field {field_name!r} is already signed; choose "
                "another field name or leave it unset"
            )
        return field_name, field_name in existing
    for name, filled in existing.items():
        if not filled:
            return name, True
    number = len(existing) + 1
    while f"Signature{number}" in existing:
        number += 1
    return f"Signature{number}", False


def _time_stamp_error(exc: TimestampRequestError) -> SigningError:
    return SigningError(
        f"the time-stamp authority did not return a time_stamp_token ({exc}); "
        "remove the cause that its status names, or use another authority"
    )


# Time-stamp tokens from one authority differ in size only by a few bytes
# (serial number, nonce, fractional seconds, ECDSA signature length).
_TOKEN_SIZE_MARGIN = 256


async def _contents_size(signer: Signer, timestamper: TimeStamper) -> int | None:
    """Return the hex length to reserve for /Contents, or None for pyHanko's
    own estimate, which signs a dummy CMS first and costs a second signing."""
    if not isinstance(signer, InMemorySigner):
        return None
    # pyHanko caches this token per digest algorithm after the first request.
    token = await timestamper.async_dummy_response(DIGEST_ALGORITHM)
    bound = signer.cms_size_bound(len(token.dump()) + _TOKEN_SIZE_MARGIN)
    return 2 * bound


async def sign_pdf(
    data: bytes,
    signer: Signer,
    timestamper: TimeStamper,
    *,
    field_name: str | None = None,
    box: tuple[int, int, int, int] | None = None,
    page: int = 0,
    password: str | None = None,
    reason: str | None = None,
    location: str | None = None,
    bytes_reserved: int | None = None,
) -> SignatureResult:
    """Add a PAdES B-T signature to `data` as an incremental update.

    The signature fills the field `field_name`, or the first empty signature
    field, or a new field named `SignatureN`. A new field is visible on page
    `page` (0-based) inside `box` = (x1, y1, x2, y2) in PDF points when `box`
    is given, and invisible otherwise. `bytes_reserved` fixes the hex length
    of /Contents, at least twice the DER size of the CMS; when it is None an
    `InMemorySigner` computes a bound and other signers let pyHanko estimate
    it. `password` opens an encrypted document.
    Raises `SignerError` subclasses on bad input or a failed time stamp.
    """
    signing_cert = signer.signing_cert
    if signing_cert is None:
        raise SigningError("the signer has no certificate; PAdES needs one")
    writer = _open_writer(data, password)
    reader = writer.prev
    name, exists = _choose_field(reader, field_name)
    new_field_spec = None
    if not exists:
        new_field_spec = SigFieldSpec(sig_field_name=name, on_page=page, box=box)
    visible = box is not None or exists
    pdfa1 = _pdfa_part(reader) == b"1"
    stamp_style = None
    if visible and pdfa1:
        stamp_style = _embedded_font_stamp_style()
    metadata = signers.PdfSignatureMetadata(
        field_name=name,
        md_algorithm=DIGEST_ALGORITHM,
        subfilter=SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
    )
    if bytes_reserved is None:
        try:
            bytes_reserved = await _contents_size(signer, timestamper)
        except TimestampRequestError as exc:
            raise _time_stamp_error(exc) from exc
    recorder = _RecordingTimeStamper(timestamper)
    signer_class = _PdfA1Signer if pdfa1 else signers.PdfSigner
    pdf_signer = signer_class(
        metadata,
        signer,
        timestamper=recorder,
        stamp_style=stamp_style,
        new_field_spec=new_field_spec,
    )
    try:
        output = await pdf_signer.async_sign_pdf(
            writer, bytes_reserved=bytes_reserved, output=io.BytesIO()
        )
    except PyhankoSigningError as exc:
        if "forbids all changes" in str(exc):
            raise ChangesForbiddenError(
                f"the certification signature of this PDF forbids changes: {exc}"
            ) from exc
        raise SigningError(f"pyHanko failed to sign field {name!r}: {exc}") from exc
    except TimestampRequestError as exc:
        raise _time_stamp_error(exc) from exc
    except PdfError as exc:
        raise SigningError(f"pyHanko failed to sign field {name!r}: {exc}") from exc
    signed = output.getvalue()
    if recorder.token is None:
        raise SigningError("the signature was written without a time_stamp_token")
    token = recorder.token.dump()
    return SignatureResult(
        data=signed,
        field_name=name,
        sha256_before=hashlib.sha256(data).digest(),
        sha256_after=hashlib.sha256(signed).digest(),
        signer_certificate_sha256=hashlib.sha256(signing_cert.dump()).digest(),
        time_stamp_token=token,
        time_stamp_token_sha256=hashlib.sha256(token).digest(),
    )


def count_signatures(data: bytes, password: str | None = None) -> int:
    """Return how many signature fields of `data` carry a signature value."""
    reader = _open_writer(data, password).prev
    return sum(1 for _, value, _ in fields.enumerate_sig_fields(reader) if value)


async def countersign_pdf(
    data: bytes,
    signer: Signer,
    timestamper: TimeStamper,
    **options,
) -> SignatureResult:
    """Add a second party's PAdES B-T signature to an already signed `data`.

    Precondition: `data` carries at least one signature. Takes the keyword
    options of `sign_pdf`.
    """
    if count_signatures(data, options.get("password")) < 1:
        raise SigningError(
            "countersigning needs a document that is already signed; sign it "
            "first with sign_pdf"
        )
    return await sign_pdf(data, signer, timestamper, **options)


async def upgrade_to_lta(
    data: bytes,
    validation_context: ValidationContext,
    timestamper: TimeStamper,
    *,
    password: str | None = None,
) -> LtaResult:
    """Upgrade every signature of `data` to PAdES B-LTA in one incremental update.

    The update ends with the document time stamp, so that it covers the whole
    file. Before it, the document security store receives the certificates
    and the CRLs that `validation_context` holds for each signature and its
    time stamp. Build the context with `crls=` and `allow_fetching=False`, so
    that nothing is fetched over the network.
    """
    writer = _open_writer(data, password)
    reader = writer.prev
    covered: list[str] = []
    skipped: list[str] = []
    for embedded in reader.embedded_regular_signatures:
        try:
            paths = await collect_validation_info(embedded, validation_context)
        except (PathBuildingError, InvalidCertificateError):
            # No path to a trust root: a foreign signature made before upload.
            skipped.append(embedded.field_name)
            continue
        except PathValidationError as exc:
            raise SigningError(
                f"the certificate of signature {embedded.field_name!r} chains to "
                f"a trust root but fails validation ({exc}); B-LTA needs a valid "
                "path with its CRLs in the validation context"
            ) from exc
        # No VRI entry: PAdES baseline does not use it, and leaving it out
        # lets the whole upgrade be one revision ending in the time stamp.
        DocumentSecurityStore.supply_dss_in_writer(
            writer, None, validation_context=validation_context, paths=paths
        )
        covered.append(embedded.field_name)
    if not covered:
        raise SigningError(
            "no signature of the PDF chains to the trust roots of the "
            f"validation context (skipped {skipped}); sign it first"
        )
    recorder = _RecordingTimeStamper(timestamper)
    try:
        output = await signers.PdfTimeStamper(recorder).async_timestamp_pdf(
            writer,
            DIGEST_ALGORITHM,
            validation_context=validation_context,
            output=io.BytesIO(),
            dss_settings=TimestampDSSContentSettings(
                include_vri=False, update_before_ts=True
            ),
        )
    except (PyhankoSigningError, TimestampRequestError, PdfError) as exc:
        raise SigningError(
            f"pyHanko failed to add the document time stamp: {exc}"
        ) from exc
    if recorder.token is None:
        raise SigningError("the document time stamp was written without a token")
    return LtaResult(
        data=output.getvalue(),
        time_stamp_token=recorder.token.dump(),
        covered_fields=tuple(covered),
        skipped_fields=tuple(skipped),
    )


__all__ = [
    "DIGEST_ALGORITHM",
    "AuthorityTimeStamper",
    "LtaResult",
    "SignatureResult",
    "count_signatures",
    "countersign_pdf",
    "sign_pdf",
    "upgrade_to_lta",
]
