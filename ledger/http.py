"""The read API under /log/: C2SP tlog-tiles resources and JSON proofs.

- GET /log/checkpoint: the latest published (cosigned) checkpoint note.
- GET /log/checkpoint.tsr: the RFC 3161 time-stamp token over that checkpoint
  as the log signed it, before the witnesses added their cosignatures.
- GET /log/tile/<L>/<N>[.p/<W>] and /log/tile/entries/<N>[.p/<W>].
- GET /log/proof/inclusion?leaf_index=&tree_size= or ?leaf_hash=[&tree_size=]
- GET /log/proof/consistency?size1=&size2=

Hashes in JSON are standard base64, as in checkpoints. When tree_size (or
size2) is omitted, the proof is for the latest published checkpoint, whose
note is then included as `checkpoint`. Errors are JSON objects
{"error": reason} with status 400 for malformed input and 404 for
resources the log does not hold.
"""

from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from ledger.merkle import (
    HASH_SIZE,
    EdgeCache,
    TileError,
    TreeRangeError,
    consistency_proof,
    inclusion_proof,
    parse_tile_path,
    root_hash,
)
from ledger.store import LogSource, NotFoundError, PublishedCheckpoint

SOURCE_KEY: web.AppKey[LogSource] = web.AppKey("ledger_log_source", LogSource)
# Hashes of the tree's right edge, shared by the proofs of one tree_size.
EDGE_CACHE_KEY: web.AppKey[EdgeCache] = web.AppKey("ledger_edge_cache", EdgeCache)

# C2SP tlog-tiles: the checkpoint is mutable and must not be cached beyond a
# few seconds; tiles and entry bundles never change once served.
CHECKPOINT_CACHE = "no-cache, max-age=0"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
SHORT_CACHE = "public, max-age=1"
ERROR_CACHE = "no-store"


class RequestError(Exception):
    """A request the log cannot serve; status is 400 or 404."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _error_response(status: int, reason: str) -> web.Response:
    body = json.dumps({"error": reason}) + "\n"
    return web.Response(
        status=status,
        text=body,
        content_type="application/json",
        headers={"Cache-Control": ERROR_CACHE},
    )


def _json_response(payload: dict, cache: str) -> web.Response:
    return web.Response(
        text=json.dumps(payload) + "\n",
        content_type="application/json",
        headers={"Cache-Control": cache},
    )


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _parse_int(request: web.Request, name: str, required: bool = True) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        if required:
            raise RequestError(400, f"query parameter {name} is missing")
        return None
    values = request.query.getall(name)
    if len(values) > 1:
        raise RequestError(400, f"query parameter {name} is given {len(values)} times")
    # ASCII digits only: str.isdigit also accepts superscripts and other
    # scripts' digits, which int() then rejects or silently converts.
    ascii_digits = text.isascii() and text.isdigit()
    if not ascii_digits or (len(text) > 1 and text[0] == "0") or len(text) > 20:
        raise RequestError(
            400, f"{name} {text!r} is not a decimal integer without leading zeros"
        )
    return int(text)


def _parse_hash(text: str) -> bytes:
    try:
        if len(text) == 2 * HASH_SIZE:
            value = bytes.fromhex(text)
        else:
            value = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (ValueError, binascii.Error) as error:
        raise RequestError(
            400,
            f"leaf_hash {text!r} is neither hex nor base64; give 64 hex digits,"
            " or URL-encode base64 (a '+' in a query string reads as a space)",
        ) from error
    if len(value) != HASH_SIZE:
        raise RequestError(
            400, f"leaf_hash is {len(value)} bytes; a SHA-256 hash is 32 bytes"
        )
    return value


def _latest(source: LogSource) -> PublishedCheckpoint:
    latest = source.latest_checkpoint()
    if latest is None:
        raise RequestError(404, "the log has not published a checkpoint yet")
    return latest


def _resolve_tree_size(
    source: LogSource, requested: int | None, name: str
) -> tuple[int, PublishedCheckpoint | None]:
    """Return the tree size to prove against and the checkpoint if defaulted."""
    if requested is None:
        latest = _latest(source)
        return latest.tree_size, latest
    committed = source.tree_size()
    if requested > committed:
        raise RequestError(
            404, f"{name} {requested} is beyond the log's tree_size {committed}"
        )
    return requested, None


def _handler(function):
    """Wrap a handler so that its request and store errors become JSON responses."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await function(request)
        except RequestError as error:
            return _error_response(error.status, error.reason)
        except (TileError, TreeRangeError) as error:
            return _error_response(400, str(error))
        except NotFoundError as error:
            return _error_response(404, str(error))

    handle.__name__ = function.__name__
    handle.__doc__ = function.__doc__
    return handle


@_handler
async def _checkpoint(request: web.Request) -> web.Response:
    latest = _latest(request.app[SOURCE_KEY])
    return web.Response(
        body=latest.note,
        content_type="text/plain",
        charset="utf-8",
        headers={"Cache-Control": CHECKPOINT_CACHE},
    )


@_handler
async def _checkpoint_token(request: web.Request) -> web.Response:
    latest = _latest(request.app[SOURCE_KEY])
    if latest.time_stamp_token is None:
        raise RequestError(
            404, f"the checkpoint of tree_size {latest.tree_size} has no time-stamp token"
        )
    # The body is the TimeStampToken (a CMS SignedData ContentInfo), which
    # `openssl ts -verify -token_in` reads.
    return web.Response(
        body=latest.time_stamp_token,
        content_type="application/pkcs7-mime",
        headers={
            "Cache-Control": CHECKPOINT_CACHE,
            "Ledger-Tree-Size": str(latest.tree_size),
        },
    )


@_handler
async def _tile(request: web.Request) -> web.Response:
    source = request.app[SOURCE_KEY]
    coord = parse_tile_path("tile/" + request.match_info["path"])
    if coord.entries:
        body = source.read_entry_bundle(coord.index, coord.width)
    else:
        body = source.read_tile(coord.level, coord.index, coord.width)
    response = web.Response(
        body=body,
        content_type="application/octet-stream",
        headers={"Cache-Control": IMMUTABLE_CACHE},
    )
    if coord.entries:
        response.enable_compression()
    return response


@_handler
async def _inclusion(request: web.Request) -> web.Response:
    source = request.app[SOURCE_KEY]
    requested_size = _parse_int(request, "tree_size", required=False)
    hash_text = request.query.get("leaf_hash")
    if hash_text is not None:
        if "leaf_index" in request.query:
            raise RequestError(400, "give either leaf_index or leaf_hash, not both")
        leaf_hash = _parse_hash(hash_text)
        leaf_index = source.find_leaf(leaf_hash)
        if leaf_index is None:
            raise RequestError(404, f"no entry with leaf_hash {leaf_hash.hex()} is in the log")
    else:
        leaf_index = _parse_int(request, "leaf_index")
        leaf_hash = None
    tree_size, checkpoint = _resolve_tree_size(source, requested_size, "tree_size")
    if leaf_index >= tree_size:
        raise RequestError(
            404 if leaf_hash is not None else 400,
            f"leaf_index {leaf_index} is not in the tree of tree_size {tree_size}",
        )
    build = getattr(source, "inclusion_proof", None)
    if build is not None:
        # An LMDB store builds proofs natively from its in-memory levels.
        proof = build(leaf_index, tree_size)
    else:
        proof = inclusion_proof(leaf_index, tree_size, source, cache=request.app[EDGE_CACHE_KEY])
    if leaf_hash is None:
        leaf_hash = source.read_hashes([(0, leaf_index)])[0]
    payload = {
        "leaf_index": leaf_index,
        "tree_size": tree_size,
        "leaf_hash": _b64(leaf_hash),
        "root_hash": _b64(root_hash(tree_size, source)),
        "inclusion_proof": [_b64(h) for h in proof],
    }
    if checkpoint is not None:
        payload["checkpoint"] = checkpoint.note.decode()
    return _json_response(payload, SHORT_CACHE if checkpoint else IMMUTABLE_CACHE)


@_handler
async def _consistency(request: web.Request) -> web.Response:
    source = request.app[SOURCE_KEY]
    size1 = _parse_int(request, "size1")
    requested = _parse_int(request, "size2", required=False)
    size2, checkpoint = _resolve_tree_size(source, requested, "size2")
    if size1 == 0 or size1 > size2:
        raise RequestError(
            400,
            f"size1 {size1} and size2 {size2} must satisfy 0 < size1 <= size2;"
            " every tree extends the empty tree, so size1 = 0 needs no proof",
        )
    build = getattr(source, "consistency_proof", None)
    if build is not None:
        proof = build(size1, size2)
    else:
        proof = consistency_proof(size1, size2, source, cache=request.app[EDGE_CACHE_KEY])
    payload = {
        "size1": size1,
        "size2": size2,
        "root_hash1": _b64(root_hash(size1, source)),
        "root_hash2": _b64(root_hash(size2, source)),
        "consistency_proof": [_b64(h) for h in proof],
    }
    if checkpoint is not None:
        payload["checkpoint"] = checkpoint.note.decode()
    return _json_response(payload, SHORT_CACHE if checkpoint else IMMUTABLE_CACHE)


def add_read_routes(app: web.Application, source: LogSource) -> None:
    """Add the /log/ read API, served from source, to an aiohttp application."""
    app[SOURCE_KEY] = source
    app[EDGE_CACHE_KEY] = EdgeCache()
    app.router.add_get("/log/checkpoint", _checkpoint)
    app.router.add_get("/log/checkpoint.tsr", _checkpoint_token)
    app.router.add_get("/log/tile/{path:.+}", _tile)
    app.router.add_get("/log/proof/inclusion", _inclusion)
    app.router.add_get("/log/proof/consistency", _consistency)
