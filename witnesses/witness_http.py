"""The witness's HTTP interface on aiohttp.

- `POST /add-checkpoint`: C2SP tlog-witness; 200 with cosignature lines, or
  the status the spec gives with a one-line reason (409 carries the witness's
  tree_size as `text/x.tlog.size`).
- `GET /<origin hash>/checkpoint`: the latest checkpoint this witness cosigned
  for the log whose origin has that lowercase hex SHA-256, with the log's
  signature and the cosignature. The spec leaves this monitoring interface
  open; the path follows the per-origin prefix of C2SP tlog-mirror.
- `GET /<origin hash>/evidence`: JSON list of rejected log-signed checkpoints.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from witnesses.witness import ConflictError, Witness, WitnessError, origin_hash

logger = logging.getLogger("witnesses.witness")

# A checkpoint note with a few signatures and 63 proof lines fits in 8 KiB;
# 64 KiB leaves room for extension lines and many cosignatures.
MAX_REQUEST_BYTES = 64 * 1024
WITNESS_KEY = web.AppKey("witness", Witness)


@web.middleware
async def _error_middleware(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """Map each `WitnessError` to its HTTP status, in one place."""
    try:
        return await handler(request)
    except ConflictError as error:
        logger.info("add-checkpoint conflict: %s", error)
        return web.Response(
            status=409,
            body=b"%d\n" % error.tree_size,
            content_type="text/x.tlog.size",
        )
    except WitnessError as error:
        logger.info("add-checkpoint rejected with %d: %s", error.status, error)
        return web.Response(status=error.status, text=f"{error}\n")


async def _add_checkpoint(request: web.Request) -> web.Response:
    witness = request.app[WITNESS_KEY]
    body = await request.read()
    # The check and the update commit with fsync, so they run off the loop.
    signatures = await asyncio.to_thread(witness.add_checkpoint, body)
    return web.Response(body=signatures, content_type="text/plain", charset="utf-8")


def _origin_for(request: web.Request) -> str:
    witness = request.app[WITNESS_KEY]
    requested = request.match_info["origin_hash"]
    for origin in witness.logs:
        if origin_hash(origin) == requested:
            return origin
    raise web.HTTPNotFound(text=f"no configured log has origin hash {requested}\n")


async def _latest_checkpoint(request: web.Request) -> web.Response:
    witness = request.app[WITNESS_KEY]
    origin = _origin_for(request)
    stored = await asyncio.to_thread(witness.state.latest, origin)
    if stored is None:
        raise web.HTTPNotFound(text=f"no checkpoint of {origin} cosigned yet\n")
    return web.Response(
        body=stored.note,
        content_type="text/plain",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


async def _evidence(request: web.Request) -> web.Response:
    witness = request.app[WITNESS_KEY]
    origin = _origin_for(request)
    records = await asyncio.to_thread(witness.state.evidence, origin)
    return web.json_response(
        [
            {
                "origin": record.origin,
                "time_ns": record.time_ns,
                "reason": record.reason,
                "note": record.note.decode(),
                "conflicting_note": None
                if record.conflicting_note is None
                else record.conflicting_note.decode(),
            }
            for record in records
        ]
    )


def build_app(witness: Witness) -> web.Application:
    """Build the aiohttp application that serves one witness."""
    app = web.Application(
        middlewares=[_error_middleware], client_max_size=MAX_REQUEST_BYTES
    )
    app[WITNESS_KEY] = witness
    app.router.add_post("/add-checkpoint", _add_checkpoint)
    app.router.add_get("/{origin_hash:[0-9a-f]{64}}/checkpoint", _latest_checkpoint)
    app.router.add_get("/{origin_hash:[0-9a-f]{64}}/evidence", _evidence)
    return app
