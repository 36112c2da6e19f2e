"""Map every error a request can raise to one JSON response with a reason.

One middleware decides the status code of every failure, so that handlers
raise domain errors and never build error responses themselves. The body is
always `{"error": <short code>, "reason": <sentence>}`; a 503 also carries a
`Retry-After` header.

Domain errors of the other packages are looked up by name when the
application is built (`domain_error_statuses`), so that the gateway runs with
whatever packages are installed and a missing one costs only its mapping.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

logger = logging.getLogger("gateway.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A request failure with its HTTP status, short code and reason."""

    status = 400
    code = "bad_request"

    def __init__(self, reason: str, *, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class MalformedRequest(ApiError):
    """The body or a parameter cannot be parsed or fails validation (400)."""

    status = 400
    code = "malformed"


class Unauthenticated(ApiError):
    """The request carries no valid API token (401)."""

    status = 401
    code = "unauthenticated"


class Forbidden(ApiError):
    """The caller is known but may not perform this call (403)."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """The contract, party or path does not exist (404)."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """The step conflicts with the contract's state, such as a step out of order (409)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    """The body is larger than the limit of its route (413)."""

    status = 413
    code = "too_large"


class UnsupportedMediaType(ApiError):
    """The body's Content-Type is not one the route accepts (415)."""

    status = 415
    code = "unsupported_media_type"


class Unprocessable(ApiError):
    """The request is well formed but its content cannot be accepted (422)."""

    status = 422
    code = "unprocessable"


class TooManyRequests(ApiError):
    """Too many attempts, such as one-time password guesses; retry later (429)."""

    status = 429
    code = "too_many_requests"


class Unavailable(ApiError):
    """A dependency is down or overloaded; retry after `retry_after` seconds (503)."""

    status = 503
    code = "unavailable"

    def __init__(self, reason: str, *, retry_after: int = 1) -> None:
        super().__init__(reason, retry_after=retry_after)


# Exceptions of other packages by "module:ClassName", with the ApiError class
# whose status and code they map to. Names that do not import are skipped.
DOMAIN_ERRORS: tuple[tuple[str, type[ApiError]], ...] = (
    ("ledger.entry:EntryError", MalformedRequest),
    ("ledger.store:EntryTooLargeError", PayloadTooLarge),
    ("ledger.sequencer:SequencerClosedError", Unavailable),
    ("ledger.publisher:PublishError", Unavailable),
    ("identity.errors:InvalidInputError", MalformedRequest),
    ("identity.errors:ProofingError", Forbidden),
    ("identity.errors:DuplicateEnrolmentError", Conflict),
    ("identity.errors:UnknownPartyError", NotFound),
    ("identity.errors:RateLimitedError", TooManyRequests),
    ("identity.errors:ConsentError", Forbidden),
    ("identity.errors:CertificateStatusError", Forbidden),
    ("identity.errors:CustodyError", Unprocessable),
    ("identity.errors:IdentityError", Unprocessable),
    ("signer.contracts:ContractNotFoundError", NotFound),
    ("signer.contracts:InvalidSearchError", MalformedRequest),
    ("signer.notify:InvalidAddressError", MalformedRequest),
    ("signer.workflow:StepOrderError", Conflict),
    ("signer.workflow:NotAPartyError", Forbidden),
    ("signer.workflow:WorkflowError", Conflict),
    ("signer.storage:StorageError", Unavailable),
    ("signer.errors:PasswordError", Unprocessable),
    ("signer.errors:InvalidPdfError", Unprocessable),
    ("signer.errors:ChangesForbiddenError", Unprocessable),
    ("signer.errors:SignerError", Unprocessable),
)


def domain_error_statuses() -> list[tuple[type[BaseException], type[ApiError]]]:
    """Resolve DOMAIN_ERRORS to classes, most specific first, skipping missing ones."""
    resolved: list[tuple[type[BaseException], type[ApiError]]] = []
    for dotted, api_error in DOMAIN_ERRORS:
        module_name, _, class_name = dotted.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, class_name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            resolved.append((cls, api_error))
    # A subclass must be matched before its base class.
    resolved.sort(key=lambda pair: -len(pair[0].__mro__))
    return resolved


def error_response(
    status: int, code: str, reason: str, retry_after: int | None = None
) -> web.Response:
    """Build the JSON error response every failure uses."""
    body = json.dumps({"error": code, "reason": reason})
    response = web.Response(status=status, text=body, content_type="application/json")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _rejected(
    request: web.Request,
    status: int,
    code: str,
    reason: str,
    retry_after: int | None = None,
) -> web.Response:
    # Rejections are routine for a public API, so they are logged at info.
    # The reason may quote submitted personal data, so it goes to debug only.
    logger.info("rejected %s %s with %d %s", request.method, request.path, status, code)
    logger.debug("rejection reason for %s %s: %s", request.method, request.path, reason)
    return error_response(status, code, reason, retry_after)


def make_error_middleware(
    domain_errors: list[tuple[type[BaseException], type[ApiError]]],
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Return the middleware that turns every raised error into a JSON response."""

    @web.middleware
    async def error_middleware(
        request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return _rejected(
                request, error.status, error.code, error.reason, error.retry_after
            )
        except web.HTTPRequestEntityTooLarge as error:
            # aiohttp states the limit only in the text: "Maximum request
            # body size N exceeded."
            reason = error.text or "request body exceeds the size limit"
            return _rejected(request, 413, PayloadTooLarge.code, reason)
        except web.HTTPException as error:
            if error.status < 400 or error.content_type == "application/json":
                raise
            code = error.reason.lower().replace(" ", "_")
            response = _rejected(
                request, error.status, code, error.text or error.reason
            )
            for name in ("Retry-After", "Allow", "Location"):
                if name in error.headers:
                    response.headers[name] = error.headers[name]
            return response
        except Exception as error:
            for cls, api_error in domain_errors:
                if isinstance(error, cls):
                    retry_after = getattr(error, "retry_after", None)
                    if retry_after is None and api_error.status == 503:
                        retry_after = 1
                    return _rejected(
                        request,
                        api_error.status,
                        api_error.code,
                        str(error),
                        retry_after,
                    )
            logger.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(
                500, "internal", "internal error; see the gateway log"
            )

    return error_middleware
