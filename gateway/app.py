"""Build the gateway: one aiohttp application serving every HTTP API.

Routes (see docs/architecture.md): the C2SP tlog-tiles read API and JSON
proofs under /log/, the RFC 3161 authority at /tsa, the CA's certificates and
revocation data under /ca/, and the write and query API under /api/v1 with
its OpenAPI document at /api/openapi.json. Every part is optional, so that a
mirror-like deployment can serve only /log/.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api import Workflow, add_api_routes
from gateway.auth import TOKENS_KEY, TokenStore
from gateway.bodies import UPLOAD_LIMIT
from gateway.errors import domain_error_statuses, make_error_middleware


def build_app(
    *,
    tokens: TokenStore | None = None,
    workflow: Workflow | None = None,
    log_source: Any = None,
    tsa: Any = None,
    ca: Any = None,
) -> web.Application:
    """Return the gateway application with the parts that are given.

    `log_source` is a `ledger.store.LogStore` (or a mirror's copy) for the
    read API, `tsa` a `ledger.tsa.TimeStampAuthority`, `ca` the identity
    package's certificate authority, and `workflow` the service behind
    /api/v1, which also needs `tokens`.
    """
    app = web.Application(
        client_max_size=UPLOAD_LIMIT,
        middlewares=[make_error_middleware(domain_error_statuses())],  # type: ignore[list-item]
    )
    app[TOKENS_KEY] = tokens or TokenStore()
    if log_source is not None:
        from ledger.http import add_read_routes

        add_read_routes(app, log_source)
    if tsa is not None:
        from ledger.tsa.server import add_tsa_routes

        add_tsa_routes(app, tsa)
    if ca is not None:
        from identity.http import add_ca_routes

        add_ca_routes(app, ca)
    if workflow is not None:
        add_api_routes(app, workflow)
    return app
