"""PAdES B-T signing, countersigning and the B-LTA upgrade on generated contracts."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pikepdf
import pytest
from aiohttp import web
from asn1crypto import cms, tsp
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.pdf_embedded import async_validate_pdf_signature

from ledger.tsa.authority import TimeStampAuthority
from ledger.tsa.keys import TsaCredentials
from ledger.tsa.request import build_request, new_nonce
from ledger.tsa.serial import SerialNumbers
from ledger.tsa.server import add_tsa_routes
from signer.errors import ChangesForbiddenError, PasswordError, SigningError
from signer.keys import InMemorySigner, to_asn1_certificate
from signer.pades import (
    AuthorityTimeStamper,
    countersign_pdf,
    encode_timestamp_request,
    sign_pdf,
    upgrade_to_lta,
)
from signer.prepare import prepare_pdf
from signer.validate import run_pdfsig, validation_context

from .conftest import SigningPki, make_contract


def _tst_gen_time(token: bytes):
    content = cms.ContentInfo.load(token)["content"]
    return content["encap_content_info"]["content"].parsed["gen_time"].native


async def test_sign_adds_trusted_bt_signature(
    pki: SigningPki, timestamper, contract_pdf
):
    result = await sign_pdf(contract_pdf, pki.signer("alice"), timestamper)

    assert result.data.startswith(contract_pdf)
    assert result.field_name == "Signature1"
    assert result.sha256_before == hashlib.sha256(contract_pdf).digest()
    assert result.sha256_after == hashlib.sha256(result.data).digest()
    assert (
        result.time_stamp_token_sha256
        == hashlib.sha256(result.time_stamp_token).digest()
    )
    expected_fingerprint = hashlib.sha256(
        to_asn1_certificate(pki.certs["alice"]).dump()
    )
    assert result.signer_certificate_sha256 == expected_fingerprint.digest()

    [report] = await pki.validate(result.data)
    assert report.field_name == "Signature1"
    assert "Alice Example" in report.signer_subject
    assert report.intact
    assert report.valid
    assert report.trusted
    assert report.coverage == "ENTIRE_FILE"
    assert report.time_stamp_time == _tst_gen_time(result.time_stamp_token)


async def test_signature_is_pades_with_time_stamp(
    pki: SigningPki, timestamper, contract_pdf
):
    result = await sign_pdf(contract_pdf, pki.signer("alice"), timestamper)

    reader = PdfFileReader(io.BytesIO(result.data))
    [embedded] = reader.embedded_signatures
    assert embedded.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    unsigned = embedded.signer_info["unsigned_attrs"]
    types = [attribute["type"].native for attribute in unsigned]
    assert "signature_time_stamp_token" in types
    signed_types = [a["type"].native for a in embedded.signer_info["signed_attrs"]]
    assert "signing_certificate_v2" in signed_types


async def test_visible_field_has_box(pki: SigningPki, timestamper, contract_pdf):
    box = (50, 700, 250, 760)
    result = await sign_pdf(
        contract_pdf, pki.signer("alice"), timestamper, box=box, field_name="Alice"
    )

    with pikepdf.open(io.BytesIO(result.data)) as pdf:
        [widget] = [a for a in pdf.pages[0].Annots if a.get("/T") == "Alice"]
        assert [float(value) for value in widget.Rect] == [float(v) for v in box]
        assert "/AP" in widget


async def test_invisible_field_has_empty_box(
    pki: SigningPki, timestamper, contract_pdf
):
    result = await sign_pdf(contract_pdf, pki.signer("alice"), timestamper)

    with pikepdf.open(io.BytesIO(result.data)) as pdf:
        [widget] = pdf.pages[0].Annots
        assert [float(value) for value in widget.Rect] == [0.0, 0.0, 0.0, 0.0]


async def test_countersign_keeps_first_signature(
    pki: SigningPki, timestamper, contract_pdf
):
    first = await sign_pdf(contract_pdf, pki.signer("alice"), timestamper)
    second = await countersign_pdf(first.data, pki.signer("bob"), timestamper)

    assert second.data.startswith(first.data)
    assert second.field_name == "Signature2"
    assert second.sha256_before == first.sha256_after
    reports = await pki.validate(second.data)
    assert [r.field_name for r in reports] == ["Signature1", "Signature2"]
    assert all(r.intact and r.valid and r.trusted for r in reports)
    assert reports[0].coverage == "ENTIRE_REVISION"
    assert reports[0].modification_level == "FORM_FILLING"
    assert reports[1].coverage == "ENTIRE_FILE"
    assert "Bob Example" in reports[1].signer_subject


async def test_countersign_unsigned_document_rejected(pki, timestamper, contract_pdf):
    with pytest.raises(SigningError, match="already signed"):
        await countersign_pdf(contract_pdf, pki.signer("bob"), timestamper)


async def test_signed_field_cannot_be_reused(
    pki: SigningPki, timestamper, contract_pdf
):
    first = await sign_pdf(
        contract_pdf, pki.signer("alice"), timestamper, field_name="A"
    )

    with pytest.raises(SigningError, match="'A' is already signed"):
        await sign_pdf(first.data, pki.signer("bob"), timestamper, field_name="A")


async def test_rsa_3072_signer_is_valid(pki: SigningPki, timestamper, contract_pdf):
    result = await sign_pdf(contract_pdf, pki.signer("rsa"), timestamper)

    [report] = await pki.validate(result.data)
    assert report.intact
    assert report.valid
    assert report.trusted


def test_signer_rejects_key_of_other_certificate(pki: SigningPki):
    with pytest.raises(SigningError, match="does not match"):
        InMemorySigner(pki.keys["alice"], pki.certs["bob"], pki.chain)  # type: ignore[arg-type]


async def test_revoked_signer_is_not_trusted(
    pki: SigningPki, timestamper, contract_pdf
):
    result = await sign_pdf(contract_pdf, pki.signer("revoked"), timestamper)

    [report] = await pki.validate(result.data)
    assert report.intact
    assert report.valid
    assert not report.trusted


@pytest.fixture
async def tsa_url(aiohttp_server, tsa_authority: TimeStampAuthority) -> str:
    """Serve the ledger TSA at POST /tsa on 127.0.0.1, on a free port."""
    app = web.Application()
    add_tsa_routes(app, tsa_authority)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("/tsa"))


async def test_sign_with_http_tsa(pki: SigningPki, tsa_url: str, contract_pdf):
    result = await sign_pdf(contract_pdf, pki.signer("alice"), HTTPTimeStamper(tsa_url))

    [report] = await pki.validate(result.data)
    assert report.intact
    assert report.valid
    assert report.trusted
    assert report.time_stamp_time == _tst_gen_time(result.time_stamp_token)


async def test_upgrade_to_lta_embeds_crls(pki: SigningPki, timestamper, contract_pdf):
    first = await sign_pdf(contract_pdf, pki.signer("alice"), timestamper)
    second = await countersign_pdf(first.data, pki.signer("bob"), timestamper)
    context = validation_context(pki.trust_roots, other_certs=pki.chain, crls=pki.crls)

    lta = await upgrade_to_lta(second.data, context, timestamper)

    assert lta.data.startswith(second.data)
    assert lta.covered_fields == ("Signature1", "Signature2")
    assert lta.skipped_fields == ()
    with pikepdf.open(io.BytesIO(lta.data)) as pdf:
        dss = pdf.Root.DSS
        assert len(dss.CRLs) == len(pki.crls)
        assert len(dss.Certs) >= 4
    reports = await pki.validate(lta.data)
    assert [r.kind for r in reports][-1] == "document time stamp"
    assert all(r.intact and r.valid and r.trusted for r in reports)
    assert reports[-1].coverage == "ENTIRE_FILE"
    # poppler 22.12 lists document time stamps without verifying them.
    signatures = run_pdfsig(lta.data)
    assert [s.valid for s in signatures[:2]] == [True, True]
    assert signatures[2].total_document_signed
    assert signatures[2].signer_common_name == "Test Time-Stamp Authority"


async def test_lta_validates_from_embedded_data_only(
    pki: SigningPki, timestamper, contract_pdf
):
    first = await sign_pdf(contract_pdf, pki.signer("alice"), timestamper)
    context = validation_context(pki.trust_roots, other_certs=pki.chain, crls=pki.crls)
    lta = await upgrade_to_lta(first.data, context, timestamper)

    # Only the trust root comes from outside: intermediates and CRLs must be
    # read from the document security store, and revocation is hard-fail.
    reader = PdfFileReader(io.BytesIO(lta.data))
    roots = [to_asn1_certificate(cert) for cert in pki.trust_roots]
    context = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {"trust_roots": roots, "allow_fetching": False, "revocation_mode": "hard-fail"}
    )
    signature = reader.embedded_regular_signatures[0]
    status = await async_validate_pdf_signature(
        signature, signer_validation_context=context, ts_validation_context=context
    )
    assert status.intact
    assert status.valid
    assert status.trusted


async def test_hundred_page_contract_signs(pki: SigningPki, timestamper):
    document = make_contract(100)

    result = await sign_pdf(document, pki.signer("alice"), timestamper)

    [report] = await pki.validate(result.data)
    assert report.intact
    assert report.valid
    assert report.trusted


@settings(max_examples=60, deadline=None)
@given(
    algorithm=st.sampled_from(["sha256", "sha384", "sha512"]),
    nonce=st.integers(min_value=0, max_value=2**160),
    data=st.binary(max_size=64),
)
def test_timestamp_request_parses_back(algorithm: str, nonce: int, data: bytes):
    digest = hashlib.new(algorithm, data).digest()

    der = encode_timestamp_request(digest, algorithm, nonce)

    request = tsp.TimeStampReq.load(der)
    imprint = request["message_imprint"]
    assert request["version"].native == "v1"
    assert imprint["hash_algorithm"]["algorithm"].native == algorithm
    # RFC 5754 section 2: SHA-2 identifiers are generated without parameters.
    assert imprint["hash_algorithm"]["parameters"].native is None
    assert imprint["hashed_message"].native == digest
    assert request["nonce"].native == nonce
    assert request["cert_req"].native is True
    assert request.dump(force=True) == der


def _append_strict_violation(signed: bytes) -> bytes:
    """Append an update whose xref section frees object 0 with generation
    65536, which real files carry and pyHanko's strict parser rejects."""
    trailer_start = signed.rindex(b"trailer")
    trailer_end = signed.rindex(b"startxref")
    trailer = signed[trailer_start:trailer_end]
    previous = int(signed[trailer_end + len(b"startxref") :].split()[0])
    if b"/Prev" in trailer:
        head, tail = trailer.split(b"/Prev", 1)
        tail = tail.lstrip()
        tail = tail[len(tail.split()[0]) :]
        trailer = head + b"/Prev " + str(previous).encode() + tail
    else:
        trailer = trailer.replace(b"<<", b"<< /Prev " + str(previous).encode(), 1)
    offset = len(signed) + 1
    section = b"\nxref\n0 1\n0000000000 65536 f \n" + trailer
    return signed + section + b"startxref\n" + str(offset).encode() + b"\n%%EOF\n"


async def test_countersign_in_non_strict_mode(
    pki: SigningPki, timestamper, contract_pdf
):
    first = await sign_pdf(contract_pdf, pki.signer("alice"), timestamper)
    odd = _append_strict_violation(first.data)

    prepared = prepare_pdf(odd)
    second = await countersign_pdf(prepared.data, pki.signer("bob"), timestamper)

    assert not prepared.strict
    assert not prepared.repaired
    assert any("65536" in reason for reason in prepared.repair_reasons)
    assert second.data.startswith(odd)
    reports = await pki.validate(second.data)
    assert [r.intact and r.valid and r.trusted for r in reports] == [True, True]
    assert reports[-1].coverage == "ENTIRE_FILE"
    assert [s.valid for s in run_pdfsig(second.data)] == [True, True]


async def test_lta_skips_foreign_signatures(
    pki: SigningPki, timestamper, corpus_dir: Path
):
    # 04 carries two Acrobat signatures from a self-signed test certificate.
    uploaded = (corpus_dir / "04-signed-twice-two-fields.pdf").read_bytes()
    first = await sign_pdf(uploaded, pki.signer("alice"), timestamper)
    second = await countersign_pdf(first.data, pki.signer("bob"), timestamper)
    context = validation_context(pki.trust_roots, other_certs=pki.chain, crls=pki.crls)

    lta = await upgrade_to_lta(second.data, context, timestamper)

    assert lta.covered_fields == (first.field_name, second.field_name)
    assert sorted(lta.skipped_fields) == ["Sig1", "Sig2"]
    reports = await pki.validate(lta.data)
    assert reports[-1].kind == "document time stamp"
    assert reports[-1].trusted
    assert reports[-1].coverage == "ENTIRE_FILE"
    assert all(report.intact for report in reports)


async def test_lta_rejects_revoked_signer(pki: SigningPki, timestamper, contract_pdf):
    signed = await sign_pdf(contract_pdf, pki.signer("revoked"), timestamper)
    context = validation_context(pki.trust_roots, other_certs=pki.chain, crls=pki.crls)

    with pytest.raises(SigningError, match="fails validation"):
        await upgrade_to_lta(signed.data, context, timestamper)


async def test_signer_never_parses_key(
    pki: SigningPki, timestamper, contract_pdf, monkeypatch
):
    from pyhanko.sign.signers import pdf_cms

    private_der = pki.keys["rsa"].private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = InMemorySigner(
        asn1_keys.PrivateKeyInfo.load(private_der), pki.certs["rsa"], pki.chain
    )

    def fail_on_key_parse(*args, **kwargs):
        raise AssertionError("a private key was parsed during signing")

    monkeypatch.setattr(
        pdf_cms.serialization, "load_der_private_key", fail_on_key_parse
    )
    monkeypatch.setattr(
        "cryptography.hazmat.primitives.serialization.load_der_private_key",
        fail_on_key_parse,
    )
    result = await sign_pdf(contract_pdf, signer, timestamper)

    [report] = await pki.validate(result.data)
    assert report.intact
    assert report.valid
    assert report.trusted


async def test_sign_certified_no_changes_rejected(pki, timestamper, corpus_dir: Path):
    # Without prepare_pdf in front, pyHanko's own DocMDP check must still stop it.
    certified = (corpus_dir / "05-certified-docmdp-p1.pdf").read_bytes()

    with pytest.raises(ChangesForbiddenError, match="forbids"):
        await sign_pdf(certified, pki.signer("alice"), timestamper)


async def test_sign_wrong_password_rejected(pki, timestamper, corpus_dir: Path):
    encrypted = (
        corpus_dir / "10-encrypted-rc4-128-user-pw-openpassword.pdf"
    ).read_bytes()

    with pytest.raises(PasswordError, match="given password"):
        await sign_pdf(encrypted, pki.signer("alice"), timestamper, password="wrong")


class _PolicyRequestingStamper(AuthorityTimeStamper):
    """The in-process stamper, with a reqPolicy in every request it sends."""

    def __init__(self, authority: TimeStampAuthority, policy: str) -> None:
        super().__init__(authority)
        self.policy = policy

    def request_cms(self, message_digest: bytes, md_algorithm: str):  # type: ignore[no-untyped-def]
        nonce = new_nonce()
        request = build_request(
            message_digest, md_algorithm, nonce=nonce, policy=self.policy
        )
        return nonce, tsp.TimeStampReq.load(request)


@pytest.fixture
def strict_policy_authority(pki: SigningPki, tmp_path: Path) -> TimeStampAuthority:
    """An authority that accepts its default policy and 1.3.6.1.4.1.99999.1 only."""
    credentials = TsaCredentials(
        private_key=pki.keys["tsa"],  # type: ignore[arg-type]
        certificate=pki.certs["tsa"],
        chain=[pki.certs["root"]],
    )
    return TimeStampAuthority(
        credentials,
        SerialNumbers(tmp_path),
        accepted_policies=("1.3.6.1.4.1.99999.1",),
    )


async def test_rejected_sha1_request_raises_pyhanko_error(
    strict_policy_authority: TimeStampAuthority,
):
    stamper = AuthorityTimeStamper(strict_policy_authority)

    with pytest.raises(TimestampRequestError, match="bad_alg") as raised:
        await stamper.async_timestamp(hashlib.sha1(b"contract").digest(), "sha1")

    assert not isinstance(raised.value, ValueError)


async def test_accepted_policy_request_is_granted(
    pki: SigningPki, strict_policy_authority: TimeStampAuthority, contract_pdf
):
    stamper = _PolicyRequestingStamper(strict_policy_authority, "1.3.6.1.4.1.99999.1")

    result = await sign_pdf(contract_pdf, pki.signer("alice"), stamper)

    [report] = await pki.validate(result.data, diff_analysis=False)
    assert report.trusted and report.time_stamp_time is not None


async def test_rejected_policy_request_fails_signing(
    pki: SigningPki, strict_policy_authority: TimeStampAuthority, contract_pdf
):
    stamper = _PolicyRequestingStamper(strict_policy_authority, "1.3.6.1.4.1.99999.2")

    with pytest.raises(
        SigningError, match="did not return a time_stamp_token"
    ) as raised:
        await sign_pdf(contract_pdf, pki.signer("alice"), stamper)

    assert isinstance(raised.value.__cause__, TimestampRequestError)
    assert "1.3.6.1.4.1.99999.2" in str(raised.value)
