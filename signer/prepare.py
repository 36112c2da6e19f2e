"""Check an uploaded PDF and, where needed, repair it before the first signature.

`prepare_pdf` rejects what no signer should touch and rewrites with qpdf
(through pikepdf) what pyHanko cannot sign as it is:

1. not a PDF (no `%PDF-` header) or truncated (no `startxref` and `%%EOF`
   at the end) raise `InvalidPdfError`;
2. an encrypted file is opened with the given password, or with the empty
   user password when none is given, and raises `PasswordError` otherwise;
3. a certification signature whose DocMDP permissions are /P 1 raises
   `ChangesForbiddenError`, because any change, even a signature, breaks it;
4. an unsigned file that qpdf had to repair while reading (a damaged
   cross-reference table, a wrong `startxref` offset), or that pyHanko's strict
   parser rejects, or that has hybrid cross-reference sections, is rewritten
   by qpdf. A file that already carries signatures is never rewritten, since
   that would break them: it is returned unchanged and later signed by
   incremental update, in pyHanko's non-strict mode where its syntax needs it.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

import pikepdf
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

from signer.errors import (
    ChangesForbiddenError,
    InvalidPdfError,
    NotPdfError,
    PasswordError,
    TruncatedPdfError,
)

# ISO 32000-2 section 7.5.2 lets readers accept up to 1024 bytes of junk
# before the header; Acrobat and qpdf search the same window at the end for
# the last `startxref`.
_SEARCH_WINDOW = 1024

# The PDF/A part and conformance that XMP metadata claims, written either as
# an attribute (pdfaid:part="1") or as an element (<pdfaid:part>1<...>).
PDFA_PART = re.compile(rb"pdfaid:part\s*(?:=\s*[\"']|>)\s*(\d)")
_PDFA_CONFORMANCE = re.compile(rb"pdfaid:conformance\s*(?:=\s*[\"']|>)\s*([ABUabu])")
# qpdf names an in-memory input by its Python repr, as in
# "stream <_io.BytesIO object at 0x7f...>: unable to find trailer".
_STREAM_NAME = re.compile(r"(?:stream\s+)?<[^<>]*\bobject at 0x[0-9A-Fa-f]+>:?\s*")


@dataclass(frozen=True)
class PreparedPdf:
    """An uploaded PDF after the checks, ready for its next signature.

    `data` equals the uploaded bytes unless `repaired` is true. `strict` is
    true when pyHanko's strict parser reads `data`. When it is false, the next
    signature is added in non-strict mode.
    """

    data: bytes
    uploaded_sha256: bytes
    prepared_sha256: bytes
    repaired: bool
    repair_reasons: tuple[str, ...]
    signature_count: int
    encrypted: bool
    strict: bool
    pdfa: str | None


@dataclass(frozen=True)
class _Inspection:
    qpdf_warnings: tuple[str, ...]
    page_count: int
    signature_count: int
    docmdp_permission: int | None
    encrypted: bool
    pdfa: str | None


def prepare_pdf(data: bytes, password: str | None = None) -> PreparedPdf:
    """Check `data` as an upload and return it ready to sign, repaired if needed.

    `password` is the user or owner password of an encrypted file; None tries
    the empty user password. Raises `InvalidPdfError`, `PasswordError` or
    `ChangesForbiddenError` (all `SignerError`) with the reason and the fix.
    """
    uploaded_sha256 = hashlib.sha256(data).digest()

    # 1. Framing: header at the start, trailer at the end.
    check_framing(data)

    # 2. qpdf reads every object, which repairs and reports a damaged
    #    cross-reference table, and lists the signatures and permissions.
    inspection = _inspect_with_qpdf(data, password)
    if inspection.page_count == 0:
        raise InvalidPdfError(
            "the PDF has no pages, so there is nothing to sign and no page to "
            "place a signature on; upload a PDF with at least one page"
        )
    if inspection.docmdp_permission == 1:
        raise ChangesForbiddenError(
            "the PDF carries a certification signature with DocMDP permission "
            "/P 1, which forbids any change including another signature; ask "
            "the author for a version certified with /P 2 or an unsigned copy"
        )

    # 3. Does pyHanko's strict parser accept the file as it is?
    strict_problem = pyhanko_strict_problem(data, password)
    reasons = list(inspection.qpdf_warnings)
    if strict_problem is not None:
        reasons.append(strict_problem)

    # 4. Signed files are never rewritten; unsigned ones are, if needed.
    if inspection.signature_count > 0 or not reasons:
        if strict_problem is not None:
            _check_non_strict(data, password, inspection.signature_count)
        return PreparedPdf(
            data=data,
            uploaded_sha256=uploaded_sha256,
            prepared_sha256=uploaded_sha256,
            repaired=False,
            repair_reasons=tuple(reasons),
            signature_count=inspection.signature_count,
            encrypted=inspection.encrypted,
            strict=strict_problem is None,
            pdfa=inspection.pdfa,
        )
    repaired = rewrite_with_qpdf(data, password, inspection.pdfa)
    remaining = pyhanko_strict_problem(repaired, password)
    if remaining is not None:
        raise InvalidPdfError(
            f"the PDF could not be repaired: after a qpdf rewrite pyHanko still "
            f"reports: {remaining}"
        )
    return PreparedPdf(
        data=repaired,
        uploaded_sha256=uploaded_sha256,
        prepared_sha256=hashlib.sha256(repaired).digest(),
        repaired=True,
        repair_reasons=tuple(reasons),
        signature_count=0,
        encrypted=inspection.encrypted,
        strict=True,
        pdfa=inspection.pdfa,
    )


def check_framing(data: bytes) -> None:
    """Raise `NotPdfError` unless `data` has a `%PDF-` header in its first
    1024 bytes, and `TruncatedPdfError` unless its last 1024 bytes hold
    `startxref` followed by `%%EOF`."""
    if b"%PDF-" not in data[:_SEARCH_WINDOW]:
        start = data[:16]
        raise NotPdfError(
            f"not a PDF: no %PDF- header in the first {_SEARCH_WINDOW} bytes "
            f"(the file starts with {start!r}); upload the PDF file itself"
        )
    tail = data[-_SEARCH_WINDOW:]
    startxref = tail.rfind(b"startxref")
    if startxref < 0 or tail.find(b"%%EOF", startxref) < 0:
        raise TruncatedPdfError(
            f"truncated PDF: the last {_SEARCH_WINDOW} bytes of the "
            f"{len(data)}-byte file hold no startxref and %%EOF trailer; "
            "upload the complete file"
        )


def _inspect_with_qpdf(data: bytes, password: str | None) -> _Inspection:
    try:
        pdf = pikepdf.open(io.BytesIO(data), password=password or "")
    except pikepdf.PasswordError as exc:
        raise _password_error(password) from exc
    except pikepdf.PdfError as exc:
        raise _damaged_error(exc) from exc
    with pdf:
        try:
            # Resolving every object makes qpdf check each cross-reference
            # entry and rebuild the table when one is wrong.
            for _ in pdf.objects:
                pass
            warnings = tuple(
                _qpdf_message(str(warning)) for warning in pdf.get_warnings()
            )
            page_count = len(pdf.pages)
            signature_count = _count_signatures(pdf)
            docmdp_permission = _docmdp_permission(pdf)
            pdfa = _pdfa_flavour(pdf)
        except pikepdf.PdfError as exc:
            raise _damaged_error(exc) from exc
        return _Inspection(
            qpdf_warnings=warnings,
            page_count=page_count,
            signature_count=signature_count,
            docmdp_permission=docmdp_permission,
            encrypted=pdf.is_encrypted,
            pdfa=pdfa,
        )


def _qpdf_message(text: str) -> str:
    """Return a qpdf message without the repr of the in-memory stream it names."""
    return _STREAM_NAME.sub("", text).strip()


def _damaged_error(exc: pikepdf.PdfError) -> InvalidPdfError:
    return InvalidPdfError(
        "the PDF is damaged beyond repair: qpdf cannot read it "
        f"({_qpdf_message(str(exc))}); ask the sender for an intact copy"
    )


def _password_error(password: str | None) -> PasswordError:
    if password is None:
        return PasswordError(
            "the PDF is encrypted and the empty user password does not open "
            "it; give the document's user or owner password"
        )
    return PasswordError(
        "the PDF is encrypted and the given password does not open it; give "
        "the document's user or owner password"
    )


def _signature_fields(pdf: pikepdf.Pdf) -> list[pikepdf.Dictionary]:
    acroform = pdf.Root.get("/AcroForm")
    if not isinstance(acroform, pikepdf.Dictionary):
        return []
    fields = []
    seen: set[tuple[int, int]] = set()
    # Each stack item is a field and its inherited /FT, ISO 32000-2 12.7.4.1.
    stack: list[tuple[pikepdf.Object, pikepdf.Object | None]] = [
        (field, None) for field in acroform.get("/Fields", [])
    ]
    while stack:
        field, inherited_type = stack.pop()
        if not isinstance(field, pikepdf.Dictionary):
            continue
        if field.is_indirect:
            if field.objgen in seen:
                continue
            seen.add(field.objgen)
        field_type = field.get("/FT", inherited_type)
        if field_type == pikepdf.Name.Sig:
            fields.append(field)
        for kid in field.get("/Kids", []):
            stack.append((kid, field_type))
    return fields


def _count_signatures(pdf: pikepdf.Pdf) -> int:
    return sum(
        1
        for field in _signature_fields(pdf)
        if isinstance(field.get("/V"), pikepdf.Dictionary)
    )


def _docmdp_permission(pdf: pikepdf.Pdf) -> int | None:
    """Return the /P value of the certification signature, or None."""
    perms = pdf.Root.get("/Perms")
    if not isinstance(perms, pikepdf.Dictionary):
        return None
    signature = perms.get("/DocMDP")
    if not isinstance(signature, pikepdf.Dictionary):
        return None
    for reference in signature.get("/Reference", []):
        if reference.get("/TransformMethod") != pikepdf.Name.DocMDP:
            continue
        params = reference.get("/TransformParams")
        if isinstance(params, pikepdf.Dictionary):
            # ISO 32000-2 table 257: /P defaults to 2.
            return int(params.get("/P", 2))
        return 2
    return None


def _pdfa_flavour(pdf: pikepdf.Pdf) -> str | None:
    """Return the PDF/A part and conformance claimed in the XMP ("1B"), or None."""
    metadata = pdf.Root.get("/Metadata")
    if not isinstance(metadata, pikepdf.Stream):
        return None
    xmp = metadata.read_bytes()
    part = PDFA_PART.search(xmp)
    if part is None:
        return None
    conformance = _PDFA_CONFORMANCE.search(xmp)
    level = conformance.group(1).decode().upper() if conformance else ""
    return part.group(1).decode() + level


def pyhanko_strict_problem(data: bytes, password: str | None) -> str | None:
    """Return why pyHanko's strict parser cannot sign `data`, or None if it can."""
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=True)
        if reader.encrypted:
            reader.decrypt(password or "")
        if reader.xrefs.hybrid_xrefs_present:
            return "hybrid cross-reference sections (a table with /XRefStm)"
        reader.root.get_object()
    except PdfError as exc:
        return f"pyHanko strict parser: {exc}"
    return None


def _check_non_strict(data: bytes, password: str | None, signature_count: int) -> None:
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if reader.encrypted:
            reader.decrypt(password or "")
        reader.root.get_object()
    except PdfError as exc:
        raise InvalidPdfError(
            f"pyHanko cannot read this PDF even in non-strict mode ({exc}), and "
            f"it carries {signature_count} signature(s) that a repair would "
            "break; ask the sender for a well-formed copy"
        ) from exc


def rewrite_with_qpdf(data: bytes, password: str | None, pdfa: str | None) -> bytes:
    """Rewrite `data` with qpdf as one clean revision, keeping its encryption.

    PDF/A-1 forbids object streams and cross-reference streams, so a PDF/A-1
    file is written without them; other files keep their object streams.
    """
    try:
        with pikepdf.open(io.BytesIO(data), password=password or "") as pdf:
            if pdfa is not None and pdfa.startswith("1"):
                mode = pikepdf.ObjectStreamMode.disable
            else:
                mode = pikepdf.ObjectStreamMode.preserve
            output = io.BytesIO()
            pdf.save(
                output,
                object_stream_mode=mode,
                linearize=False,
                encryption=pdf.is_encrypted,
            )
    except pikepdf.PdfError as exc:
        raise InvalidPdfError(
            f"qpdf failed to rewrite the PDF: {_qpdf_message(str(exc))}"
        ) from exc
    return output.getvalue()


__all__ = [
    "PDFA_PART",
    "PreparedPdf",
    "check_framing",
    "prepare_pdf",
    "pyhanko_strict_problem",
    "rewrite_with_qpdf",
]
