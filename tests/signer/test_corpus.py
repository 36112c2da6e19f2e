"""End to end on real-world PDFs: prepare, sign, countersign, validate twice.

Each corpus file gets a first signature (visible) and a countersignature
(invisible) by two parties, as incremental updates, and is then upgraded to
PAdES B-LTA as the contract store does. pyHanko and poppler's
pdfsig must both find the two new signatures valid, the earlier signatures
still intact, and the file unmodified after the last signature. After one
signed byte is changed, both must report it.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from pyhanko.sign.diff_analysis import ModificationLevel

from signer.errors import ChangesForbiddenError, PasswordError, SignerError
from signer.pades import countersign_pdf, sign_pdf, upgrade_to_lta
from signer.prepare import prepare_pdf
from signer.validate import run_pdfsig, validation_context

from .conftest import SigningPki, change_one_signed_byte


@dataclass(frozen=True)
class Case:
    """What the corpus file is expected to do, from its MANIFEST entry."""

    file_name: str
    password: str | None = None
    error: type[SignerError] | None = None
    existing_signatures: int = 0
    repaired: bool = False
    fills_field: str | None = None
    pdfa: bool = False
    author: str | None = None


CASES = [
    Case("01-plain-multipage-us-constitution.pdf"),
    Case("02-acroform-empty-sigfield-acrobat.pdf", fills_field="Signature1"),
    Case("03-signed-once-acrobat-reader.pdf", existing_signatures=1),
    Case("04-signed-twice-two-fields.pdf", existing_signatures=2),
    Case("05-certified-docmdp-p1.pdf", error=ChangesForbiddenError),
    Case("06-xrefstream-objstm-pdflatex-forms.pdf"),
    Case("07-hybrid-xref.pdf", repaired=True),
    Case("08-incremental-updates-4-revisions.pdf", repaired=True),
    Case("09-encrypted-aes256-r6-empty-user-pw.pdf"),
    Case("10-encrypted-rc4-128-user-pw-openpassword.pdf", error=PasswordError),
    Case("10-encrypted-rc4-128-user-pw-openpassword.pdf", password="openpassword"),
    Case("11-pdfa-1b-ghostscript.pdf", pdfa=True),
    Case("12-damaged-xref-entry.pdf", repaired=True),
    Case(
        "13-nonascii-japanese-author-word.pdf", repaired=True, author="Windows ユーザー"
    ),
    Case("14-large-117-pages-geotopo.pdf"),
]


def _case_id(case: Case) -> str:
    suffix = "-with-password" if case.password else ""
    return case.file_name.removesuffix(".pdf")[:2] + suffix


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
async def test_corpus_file(case: Case, corpus_dir: Path, pki: SigningPki, timestamper):
    uploaded = (corpus_dir / case.file_name).read_bytes()

    # 1. Upload checks: the two unsignable cases stop here with a clear error.
    if case.error is not None:
        with pytest.raises(case.error) as raised:
            prepare_pdf(uploaded, case.password)
        assert "PDF" in str(raised.value)
        return
    prepared = prepare_pdf(uploaded, case.password)
    assert prepared.uploaded_sha256 == hashlib.sha256(uploaded).digest()
    assert prepared.prepared_sha256 == hashlib.sha256(prepared.data).digest()
    assert prepared.repaired is case.repaired
    assert prepared.signature_count == case.existing_signatures
    if case.repaired:
        assert prepared.data != uploaded
    else:
        assert prepared.data == uploaded

    # 2. Sign (visible) and countersign (invisible) as incremental updates.
    first = await sign_pdf(
        prepared.data,
        pki.signer("alice"),
        timestamper,
        box=(40, 40, 240, 90),
        password=case.password,
    )
    second = await countersign_pdf(
        first.data, pki.signer("bob"), timestamper, password=case.password
    )
    assert first.data.startswith(prepared.data)
    assert second.data.startswith(first.data)
    if case.fills_field is not None:
        assert first.field_name == case.fills_field

    # 3. pyHanko: earlier signatures intact, both new ones valid and trusted,
    #    nothing after the last one.
    reports = await pki.validate(second.data, case.password)
    assert len(reports) == case.existing_signatures + 2
    earlier, ours = reports[:-2], reports[-2:]
    for report in earlier:
        assert report.intact, report.summary
        assert report.valid, report.summary
    assert [r.field_name for r in ours] == [first.field_name, second.field_name]
    for report in ours:
        assert report.intact, report.summary
        assert report.valid, report.summary
        assert report.trusted, report.summary
        assert report.time_stamp_time is not None
    assert ours[0].coverage == "ENTIRE_REVISION"
    # The countersignature adds a signature field: LTA_UPDATES or FORM_FILLING
    # in pyHanko's order, never ANNOTATIONS or OTHER.
    level = ModificationLevel[ours[0].modification_level]
    assert level <= ModificationLevel.FORM_FILLING, ours[0].modification_level
    assert ours[1].coverage == "ENTIRE_FILE"
    assert ours[1].modification_level == "NONE"

    # 4. pdfsig agrees, and reports the whole file signed by the last one.
    pdfsig = run_pdfsig(second.data, case.password)
    assert len(pdfsig) == len(reports)
    assert all(signature.valid for signature in pdfsig), pdfsig
    by_name = {signature.field_name: signature for signature in pdfsig}
    assert by_name[second.field_name].total_document_signed
    assert not by_name[first.field_name].total_document_signed
    assert by_name[second.field_name].signer_common_name == "Bob Example"

    # 5. One changed byte inside the signed range: both validators notice.
    tampered = change_one_signed_byte(second.data)
    tampered_reports = await pki.validate(tampered, case.password, diff_analysis=False)
    assert not tampered_reports[-1].intact
    tampered_pdfsig = run_pdfsig(tampered, case.password)
    assert not tampered_pdfsig[-1].valid
    assert "Mismatch" in tampered_pdfsig[-1].signature_validation

    # 6. File-specific traps from the corpus manifest.
    if case.pdfa:
        update = second.data[len(prepared.data) :]
        assert b"/ObjStm" not in update
        assert b"/XRef" not in update
        assert b"\nxref\n" in update
        assert b"/FontFile2" in first.data[len(prepared.data) :]
        assert b"/Version /2.0" not in update
        # The XMP still identifies the file as PDF/A-1b after both updates.
        assert prepare_pdf(second.data).pdfa == "1B"
    if case.author is not None:
        with pikepdf.open(io.BytesIO(second.data), password=case.password or "") as pdf:
            assert str(pdf.docinfo["/Author"]) == case.author

    # 7. The stored form: B-LTA with the CRLs embedded and a document time
    #    stamp over the whole file. Foreign signatures get no validation data.
    context = validation_context(pki.trust_roots, other_certs=pki.chain, crls=pki.crls)
    lta = await upgrade_to_lta(
        second.data, context, timestamper, password=case.password
    )
    assert lta.covered_fields == (first.field_name, second.field_name)
    assert len(lta.skipped_fields) == case.existing_signatures
    lta_reports = await pki.validate(lta.data, case.password, diff_analysis=False)
    assert lta_reports[-1].kind == "document time stamp"
    assert lta_reports[-1].coverage == "ENTIRE_FILE"
    for report in lta_reports[-3:]:
        assert report.intact, report.summary
        assert report.valid, report.summary
        assert report.trusted, report.summary
    lta_pdfsig = run_pdfsig(lta.data, case.password)
    assert all(signature.valid for signature in lta_pdfsig[:-1]), lta_pdfsig
    assert lta_pdfsig[-1].total_document_signed
    if case.pdfa:
        assert prepare_pdf(lta.data).pdfa == "1B"
