"""HTTP routes of the certificate authority under /ca/.

GET  /ca/root.cer, /ca/issuing.cer   CA certificates (DER)
GET  /ca/root.crl, /ca/issuing.crl   CRLs (DER), fresh on each request
POST /ca/ocsp                        OCSP (RFC 6960 appendix A.1)
GET  /ca/ocsp/<base64 request>       OCSP by GET
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from identity import certificates
from identity.ca import CertificateAuthority

# An OCSP request for one certificate is a few hundred bytes; bodies larger
# than this are rejected before parsing.
MAX_OCSP_REQUEST_BYTES = 16 * 1024


def add_ca_routes(app: web.Application, ca: CertificateAuthority) -> None:
    """Add the /ca/ routes that serve `ca` to `app`."""
    der = serialization.Encoding.DER
    root_der = ca.root_certificate.public_bytes(der)
    issuing_der = ca.issuing_certificate.public_bytes(der)

    async def root_certificate(request: web.Request) -> web.Response:
        return web.Response(body=root_der, content_type="application/pkix-cert")

    async def issuing_certificate(request: web.Request) -> web.Response:
        return web.Response(body=issuing_der, content_type="application/pkix-cert")

    async def root_crl(request: web.Request) -> web.Response:
        return web.Response(body=ca.root_crl(), content_type="application/pkix-crl")

    async def issuing_crl(request: web.Request) -> web.Response:
        return web.Response(body=ca.issuing_crl(), content_type="application/pkix-crl")

    def ocsp_reply(request_der: bytes) -> web.Response:
        return web.Response(
            body=ca.ocsp_response(request_der),
            content_type="application/ocsp-response",
        )

    async def ocsp_post(request: web.Request) -> web.Response:
        body = await request.content.read(MAX_OCSP_REQUEST_BYTES + 1)
        if len(body) > MAX_OCSP_REQUEST_BYTES:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_OCSP_REQUEST_BYTES, actual_size=len(body)
            )
        return ocsp_reply(body)

    async def ocsp_get(request: web.Request) -> web.Response:
        encoded = unquote(request.match_info["request"])
        try:
            request_der = base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise web.HTTPBadRequest(
                text=f"invalid OCSP request: not base64 ({error})"
            ) from error
        return ocsp_reply(request_der)

    app.router.add_get(certificates.ROOT_CERT_PATH, root_certificate)
    app.router.add_get(certificates.ISSUING_CERT_PATH, issuing_certificate)
    app.router.add_get(certificates.ROOT_CRL_PATH, root_crl)
    app.router.add_get(certificates.ISSUING_CRL_PATH, issuing_crl)
    app.router.add_post(certificates.OCSP_PATH, ocsp_post)
    app.router.add_get(certificates.OCSP_PATH + "/{request:.+}", ocsp_get)
