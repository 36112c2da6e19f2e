"""PDF signature validation with damaged root and signer certificate files.

The unit tests feed a signed corpus PDF and a generated CA root, damaged in
several ways, to validate_signatures. The end-to-end test runs a gateway on
127.0.0.1, takes a contract through the workflow and checks that a bundle
whose own roots are garbage still gives a report with check 9 failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import zipfile

import aiohttp
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.client import GatewayClient
from gateway.contract_pdf import build_contract_pdf
from gateway.demo import run_workflow
from gateway.pdf_signatures import (
    PdfSignatureError,
    check_certificate_chains,
    load_certificates,
    validate_signatures,
)
from gateway.service import Gateway, GatewayOptions
from gateway.verify import verify_bundle
from ledger.evidence import read_bundle

PASSPHRASE = b"pdf signatures test passphrase"

CERTIFICATE_HEADER = b"-----BEGIN CERTIFICATE-----\n"
CERTIFICATE_FOOTER = b"-----END CERTIFICATE-----\n"


def generated_root() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Root")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def public_key_pem() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def damaged_roots() -> list[tuple[str, bytes, str]]:
    """Return (case, PEM bytes, expected reason) for each kind of damage."""
    root = generated_root()
    body = root.split(b"\n", 1)[1].rsplit(b"-----END", 1)[0]
    return [
        ("garbage", b"garbage\x00\xff", "not a PEM certificate file"),
        ("bad base64", CERTIFICATE_HEADER + b"@@@@\n" + CERTIFICATE_FOOTER, "not a PEM"),
        ("not DER", CERTIFICATE_HEADER + b"AAAA\n" + CERTIFICATE_FOOTER, "not a PEM"),
        ("cut short", CERTIFICATE_HEADER + body[: len(body) // 2] + b"\n", "not a PEM"),
        ("public key", public_key_pem(), "PUBLIC KEY block"),
        ("second block garbage", root + CERTIFICATE_HEADER + b"AAAA\n" + CERTIFICATE_FOOTER,
         "not a PEM"),
    ]


@pytest.fixture(scope="module")
def signed_pdf(corpus_dir) -> bytes:
    return (corpus_dir / "03-signed-once-acrobat-reader.pdf").read_bytes()


def test_generated_root_is_accepted(signed_pdf):
    reports = validate_signatures(signed_pdf, generated_root(), generated_root())
    assert len(reports) == 1
    assert reports[0].trusted is False


@pytest.mark.parametrize("which", ["CA root", "TSA root"])
@pytest.mark.parametrize("case", range(6))
def test_damaged_root_raises_module_error(signed_pdf, which, case):
    label, damaged, reason = damaged_roots()[case]
    roots = {"CA root": generated_root(), "TSA root": generated_root()}
    roots[which] = damaged
    with pytest.raises(PdfSignatureError, match=reason) as raised:
        validate_signatures(signed_pdf, roots["CA root"], roots["TSA root"])
    assert f"the {which}" in str(raised.value), label


def test_blank_root_gives_no_certificate():
    assert load_certificates(b"", "the CA root") == []
    assert load_certificates(b" \n", "the CA root") == []


def test_signer_chains_must_be_certificates():
    check_certificate_chains({"party-a": generated_root() + generated_root()})
    with pytest.raises(PdfSignatureError, match=r"certs/party-b\.pem is not a PEM"):
        check_certificate_chains({"party-a": generated_root(), "party-b": b"chain b"})
    with pytest.raises(PdfSignatureError, match=r"certs/party-c\.pem contains no"):
        check_certificate_chains({"party-c": b"\n"})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def evidence(tmp_path_factory) -> bytes:
    node = Gateway(
        GatewayOptions(tmp_path_factory.mktemp("gateway"), PASSPHRASE, publish_interval=0.1)
    )
    await node.start()
    try:
        async with aiohttp.ClientSession() as session:
            outcome = await run_workflow(
                GatewayClient(node.url, session),
                node.operator_token,
                node.outbox.latest_code,
                build_contract_pdf(),
            )
    finally:
        await node.close()
    return outcome.evidence


def replace_members(data: bytes, change: dict[str, bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info, change.get(info.filename, source.read(info)))
    return out.getvalue()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("member", ["tsa/root.pem", "certs/root.pem"])
async def test_garbage_bundle_root_fails_check_9(evidence, member):
    changed = replace_members(evidence, {member: b"garbage"})
    result = await asyncio.to_thread(verify_bundle, changed, source="test")
    check = result.checks[8]
    assert check.status == "failed"
    assert "is not a PEM certificate file" in check.reason
    assert len(result.checks) == 10


@pytest.mark.asyncio(loop_scope="module")
async def test_workflow_signer_chains_parse(evidence):
    chains = read_bundle(evidence).certificate_chains
    assert chains
    check_certificate_chains(chains)
