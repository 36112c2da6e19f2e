"""Upload checks and repair: what `prepare_pdf` rejects, keeps and rewrites."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pikepdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import MDPPerm

from signer.errors import (
    ChangesForbiddenError,
    NotPdfError,
    PasswordError,
    TruncatedPdfError,
)
from signer.pades import countersign_pdf, sign_pdf
from signer.prepare import prepare_pdf, pyhanko_strict_problem, rewrite_with_qpdf

from .conftest import SigningPki, make_contract

ENCRYPTED_RC4 = "10-encrypted-rc4-128-user-pw-openpassword.pdf"
ENCRYPTED_AES = "09-encrypted-aes256-r6-empty-user-pw.pdf"


def test_plain_contract_is_kept(contract_pdf: bytes):
    prepared = prepare_pdf(contract_pdf)

    assert prepared.data == contract_pdf
    assert not prepared.repaired
    assert prepared.repair_reasons == ()
    assert prepared.strict
    assert prepared.signature_count == 0
    assert prepared.uploaded_sha256 == hashlib.sha256(contract_pdf).digest()
    assert prepared.prepared_sha256 == prepared.uploaded_sha256


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, world\n" * 100, b"\x89PNG\r\n\x1a\n" + bytes(2000)],
    ids=["empty", "text", "png"],
)
def test_not_a_pdf_rejected(data: bytes):
    with pytest.raises(NotPdfError, match="no %PDF- header"):
        prepare_pdf(data)


def test_header_after_junk_accepted(contract_pdf: bytes):
    prepared = prepare_pdf(b"junk before the header\n" + contract_pdf)

    assert prepared.signature_count == 0


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(fraction=st.floats(min_value=0.02, max_value=0.98))
def test_truncated_pdf_rejected(contract_pdf: bytes, fraction: float):
    cut = int(len(contract_pdf) * fraction)
    # Any cut before the final startxref drops the trailer.
    cut = min(cut, contract_pdf.rindex(b"startxref") - 1)

    with pytest.raises(TruncatedPdfError, match="upload the complete file"):
        prepare_pdf(contract_pdf[:cut])


def test_encrypted_without_password_rejected(corpus_dir: Path):
    data = (corpus_dir / ENCRYPTED_RC4).read_bytes()

    with pytest.raises(PasswordError, match="empty user password"):
        prepare_pdf(data)


def test_encrypted_wrong_password_rejected(corpus_dir: Path):
    data = (corpus_dir / ENCRYPTED_RC4).read_bytes()

    with pytest.raises(PasswordError, match="given password"):
        prepare_pdf(data, "not-the-password")


@pytest.mark.parametrize("password", ["openpassword", "permissionpassword"])
def test_encrypted_user_or_owner_password_opens(corpus_dir: Path, password: str):
    data = (corpus_dir / ENCRYPTED_RC4).read_bytes()

    prepared = prepare_pdf(data, password)

    assert prepared.encrypted
    assert prepared.data == data


def test_empty_user_password_opens(corpus_dir: Path):
    prepared = prepare_pdf((corpus_dir / ENCRYPTED_AES).read_bytes())

    assert prepared.encrypted
    assert not prepared.repaired


def test_pdfa_flavour_detected(corpus_dir: Path):
    prepared = prepare_pdf((corpus_dir / "11-pdfa-1b-ghostscript.pdf").read_bytes())

    assert prepared.pdfa == "1B"


def test_pdfa1_rewrite_drops_object_streams(corpus_dir: Path):
    data = (corpus_dir / "06-xrefstream-objstm-pdflatex-forms.pdf").read_bytes()
    assert b"/ObjStm" in data

    rewritten = rewrite_with_qpdf(data, None, pdfa="1B")

    assert b"/ObjStm" not in rewritten
    assert b"/XRef" not in rewritten
    assert pyhanko_strict_problem(rewritten, None) is None


def test_hybrid_xref_rewritten(corpus_dir: Path):
    data = (corpus_dir / "07-hybrid-xref.pdf").read_bytes()
    assert pyhanko_strict_problem(data, None) is not None

    prepared = prepare_pdf(data)

    assert prepared.repaired
    assert any("hybrid" in reason for reason in prepared.repair_reasons)
    assert prepared.prepared_sha256 == hashlib.sha256(prepared.data).digest()
    assert prepared.prepared_sha256 != prepared.uploaded_sha256
    with pikepdf.open(io.BytesIO(prepared.data)) as pdf:
        assert len(pdf.pages) == 30


def test_damaged_xref_rewritten(corpus_dir: Path):
    prepared = prepare_pdf((corpus_dir / "12-damaged-xref-entry.pdf").read_bytes())

    assert prepared.repaired
    assert any("expected n n obj" in reason for reason in prepared.repair_reasons)
    with pikepdf.open(io.BytesIO(prepared.data)) as pdf:
        for _ in pdf.objects:
            pass
        assert pdf.get_warnings() == []


async def _certify(data: bytes, pki: SigningPki, permission: MDPPerm) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    metadata = signers.PdfSignatureMetadata(
        field_name="Author", certify=True, docmdp_permissions=permission
    )
    output = await signers.async_sign_pdf(writer, metadata, signer=pki.signer("alice"))
    return output.getvalue()


async def test_certification_no_changes_rejected(pki: SigningPki, contract_pdf: bytes):
    certified = await _certify(contract_pdf, pki, MDPPerm.NO_CHANGES)

    with pytest.raises(ChangesForbiddenError, match="/P 1"):
        prepare_pdf(certified)


async def test_certification_fill_forms_accepted(
    pki: SigningPki, timestamper, contract_pdf
):
    certified = await _certify(contract_pdf, pki, MDPPerm.FILL_FORMS)

    prepared = prepare_pdf(certified)
    result = await countersign_pdf(prepared.data, pki.signer("bob"), timestamper)

    assert prepared.signature_count == 1
    reports = await pki.validate(result.data)
    assert [r.docmdp_ok for r in reports] == [True, True]


async def test_signed_file_never_rewritten(pki: SigningPki, timestamper):
    signed = (await sign_pdf(make_contract(2), pki.signer("alice"), timestamper)).data
    # Point the xref entry of object 1 at a wrong offset, as a careless
    # editor would, so that qpdf reports the file damaged.
    xref = signed.index(b"xref\n0 ")
    entry = signed.index(b" 00000 n", xref) - 10
    damaged = signed[:entry] + b"0000000042" + signed[entry + 10 :]

    prepared = prepare_pdf(damaged)

    assert prepared.signature_count == 1
    assert not prepared.repaired
    assert prepared.data == damaged
    assert prepared.repair_reasons
