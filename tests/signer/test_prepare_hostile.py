"""Uploads that `prepare_pdf` must reject before any signature: empty and
damaged PDFs, with reasons free of Python object reprs."""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf
import pytest

from signer.errors import InvalidPdfError
from signer.prepare import prepare_pdf


def pdf_without_pages(**save_options) -> bytes:
    output = io.BytesIO()
    pikepdf.new().save(output, **save_options)
    return output.getvalue()


@pytest.mark.parametrize(
    "save_options",
    [{}, {"object_stream_mode": pikepdf.ObjectStreamMode.generate}],
    ids=["xref-table", "object-streams"],
)
def test_pdf_without_pages_is_rejected(save_options):
    data = pdf_without_pages(**save_options)
    # qpdf, an independent reader, agrees that the file is a PDF with no pages.
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert len(pdf.pages) == 0
    with pytest.raises(InvalidPdfError, match="no pages"):
        prepare_pdf(data)


def test_pdf_with_one_page_is_kept():
    output = io.BytesIO()
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(output)
    prepared = prepare_pdf(output.getvalue())
    assert not prepared.repaired
    assert prepared.signature_count == 0


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n1 0 obj garbage\nstartxref\n99999\n%%EOF\n",
        b"%PDF-1.7\n" + bytes(range(256)) * 4 + b"\nstartxref\n0\n%%EOF\n",
        b"%PDF-1.4\ntrailer\n<< /Root 1 0 R >>\nstartxref\n9\n%%EOF\n",
    ],
    ids=["garbage-object", "binary-body", "root-missing"],
)
def test_damaged_pdf_reason_has_no_repr(data):
    with pytest.raises(InvalidPdfError) as raised:
        prepare_pdf(data)
    reason = str(raised.value)
    assert "damaged beyond repair" in reason
    assert "object at 0x" not in reason
    assert "BytesIO" not in reason
    assert "<_io" not in reason


def test_repair_reasons_have_no_repr(corpus_dir: Path):
    data = (corpus_dir / "12-damaged-xref-entry.pdf").read_bytes()
    prepared = prepare_pdf(data)
    assert prepared.repaired
    assert prepared.repair_reasons
    for reason in prepared.repair_reasons:
        assert "object at 0x" not in reason
        assert "BytesIO" not in reason
