"""The /ca/ routes on a real aiohttp server, checked with openssl ocsp."""

from __future__ import annotations

import asyncio
import base64
import socket
from pathlib import Path

import pytest
from aiohttp import web
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import RevokedError

from identity.ca import CaSettings, CertificateAuthority
from identity.http import add_ca_routes

from .conftest import PASSPHRASE
from .test_ca import issue_leaf

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


async def openssl_ocsp(folder: Path, ca, leaf, url: str) -> str:
    (folder / "root.pem").write_bytes(ca.root_certificate.public_bytes(PEM))
    (folder / "issuing.pem").write_bytes(ca.issuing_certificate.public_bytes(PEM))
    (folder / "leaf.pem").write_bytes(leaf.public_bytes(PEM))
    process = await asyncio.create_subprocess_exec(
        "openssl", "ocsp",
        "-issuer", str(folder / "issuing.pem"),
        "-cert", str(folder / "leaf.pem"),
        "-CAfile", str(folder / "root.pem"),
        "-url", url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_ca_routes_with_openssl_ocsp(aiohttp_server, aiohttp_client, tmp_path):
    # The real clock, because openssl ocsp checks the response times
    # against the time it runs.
    ca = CertificateAuthority.create(
        tmp_path / "ca", PASSPHRASE, CaSettings("http://127.0.0.1")
    )
    _, leaf = issue_leaf(ca)
    app = web.Application()
    add_ca_routes(app, ca)
    server = await aiohttp_server(app, host="127.0.0.1")
    url = f"http://127.0.0.1:{server.port}/ca/ocsp"

    output = await openssl_ocsp(tmp_path, ca, leaf, url)
    assert "Response verify OK" in output
    assert "leaf.pem: good" in output

    ca.revoke(leaf.serial_number, x509.ReasonFlags.key_compromise)
    output = await openssl_ocsp(tmp_path, ca, leaf, url)
    assert "leaf.pem: revoked" in output
    assert "keyCompromise" in output

    client = await aiohttp_client(server)
    response = await client.get("/ca/issuing.crl")
    assert response.status == 200
    assert response.content_type == "application/pkix-crl"
    crl = x509.load_der_x509_crl(await response.read())
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None

    response = await client.get("/ca/root.cer")
    assert x509.load_der_x509_certificate(await response.read()) == ca.root_certificate

    # OCSP by GET, the base64 request in the path (RFC 6960 appendix A.1).
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, ca.issuing_certificate, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    response = await client.get("/ca/ocsp/" + base64.b64encode(request).decode())
    answer = ocsp.load_der_ocsp_response(await response.read())
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED

    response = await client.get("/ca/ocsp/not*base64")
    assert response.status == 400
    response = await client.post("/ca/ocsp", data=b"x" * 20000)
    assert response.status == 413
    ca.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_pyhanko_fetches_revocation_data(aiohttp_server, tmp_path):
    # The certificates must name the server's URL, so the port is chosen
    # before the CA exists.
    port = free_port()
    ca = CertificateAuthority.create(
        tmp_path / "ca", PASSPHRASE, CaSettings(f"http://127.0.0.1:{port}")
    )
    _, leaf = issue_leaf(ca)
    app = web.Application()
    add_ca_routes(app, ca)
    await aiohttp_server(app, host="127.0.0.1", port=port)

    def fetching_context() -> ValidationContext:
        return ValidationContext(
            trust_roots=[
                asn1_x509.Certificate.load(ca.root_certificate.public_bytes(DER))
            ],
            allow_fetching=True,
            revocation_mode="hard-fail",
        )

    validator = CertificateValidator(
        asn1_x509.Certificate.load(leaf.public_bytes(DER)),
        validation_context=fetching_context(),
    )
    path = await validator.async_validate_usage({"non_repudiation"})
    assert len(path) == 3

    ca.revoke(leaf.serial_number, x509.ReasonFlags.key_compromise)
    validator = CertificateValidator(
        asn1_x509.Certificate.load(leaf.public_bytes(DER)),
        validation_context=fetching_context(),
    )
    with pytest.raises(RevokedError):
        await validator.async_validate_usage({"non_repudiation"})
    ca.close()
