"""Read and validate request bodies: JSON or CBOR maps under a size limit.

Every write call takes a map, sent either as `application/json` or as
`application/cbor`. Binary fields (a PDF) are base64 strings in JSON and byte
strings in CBOR; `binary_field` accepts both. A body over its route's limit
is rejected with 413 before it is parsed.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from typing import Any

import cbor2
from aiohttp import web

from gateway.errors import MalformedRequest, PayloadTooLarge, UnsupportedMediaType
from identity.details import unsafe_text_reason

# Limits in bytes. A contract PDF may be large; every other body is a few
# fields. A PDF in JSON grows by a third through base64.
JSON_LIMIT = 64 * 1024
PDF_LIMIT = 20 * 1024 * 1024
UPLOAD_LIMIT = PDF_LIMIT * 4 // 3 + JSON_LIMIT


async def read_map(request: web.Request, limit: int = JSON_LIMIT) -> dict[str, Any]:
    """Read the body as a JSON or CBOR map of at most `limit` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(
            f"request body of {declared} bytes exceeds the limit of {limit} bytes"
        )
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    content_type = request.content_type
    if content_type == "application/json":
        try:
            value = json.loads(raw)
        except RecursionError as error:
            raise MalformedRequest(
                "body is nested too deeply to parse; send a flat map of fields"
            ) from error
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise MalformedRequest(f"body is not valid JSON: {error}") from error
        except ValueError as error:
            # Python raises ValueError for an integer literal longer than
            # sys.get_int_max_str_digits(), 4300 digits by default.
            raise MalformedRequest(
                "body contains an integer of more than "
                f"{sys.get_int_max_str_digits()} digits; send shorter numbers"
            ) from error
    elif content_type == "application/cbor":
        try:
            value = cbor2.loads(raw)
        except RecursionError as error:
            raise MalformedRequest(
                "body is nested too deeply to parse; send a flat map of fields"
            ) from error
        except (cbor2.CBORDecodeError, ValueError, TypeError) as error:
            raise MalformedRequest(f"body is not valid CBOR: {error}") from error
    else:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not accepted; "
            "send application/json or application/cbor"
        )
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise MalformedRequest("body must be a map with text keys")
    return value


def text_field(
    body: dict[str, Any], name: str, *, required: bool = True, max_length: int = 256
) -> str | None:
    """Return the text field `name`, checking its type and 1 <= length <= max_length.

    Rejects text that `identity.details.unsafe_text_reason` rejects: lone
    surrogates, control characters, bidirectional controls and text made
    only of white space or invisible characters.
    """
    value = body.get(name)
    if value is None:
        if required:
            raise MalformedRequest(f"missing field {name!r}")
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise MalformedRequest(
            f"field {name!r} must be text of 1 to {max_length} characters"
        )
    reason = unsafe_text_reason(value)
    if reason is not None:
        raise MalformedRequest(f"field {name!r} {reason}; send printable text only")
    return value


def binary_field(body: dict[str, Any], name: str, *, max_size: int) -> bytes:
    """Return the bytes of field `name`: a CBOR byte string or base64 text in JSON."""
    value = body.get(name)
    if value is None:
        raise MalformedRequest(f"missing field {name!r}")
    if isinstance(value, str):
        try:
            value = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as error:
            raise MalformedRequest(f"field {name!r} is not valid base64") from error
    if not isinstance(value, bytes):
        raise MalformedRequest(f"field {name!r} must be bytes or base64 text")
    if len(value) > max_size:
        raise PayloadTooLarge(
            f"field {name!r} of {len(value)} bytes exceeds {max_size} bytes"
        )
    return value
