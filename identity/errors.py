"""Exceptions raised by the identity service.

Every error that bad input causes derives from `IdentityError`, so that the
gateway maps the whole family to HTTP 4xx in one place. An error raised
before an entry is appended means that nothing was appended and nothing was
stored.
"""

from __future__ import annotations


class IdentityError(Exception):
    """Base class: a request to the identity service was rejected."""


class InvalidInputError(IdentityError, ValueError):
    """A personal field, document number or parameter is malformed."""


class ProofingError(IdentityError):
    """Identity proofing failed: wrong or expired code, or unknown challenge."""


class DuplicateEnrolmentError(IdentityError):
    """The person or enterprise is already enrolled under another party_id."""

    def __init__(self, kind: str, party_id: str) -> None:
        super().__init__(
            f"this {kind} is already enrolled as party {party_id}; "
            "use that party_id, or erase it before enrolling again"
        )
        self.party_id = party_id


class UnknownPartyError(IdentityError, LookupError):
    """No enrolled party has this party_id (or it was erased)."""

    def __init__(self, party_id: str) -> None:
        super().__init__(
            f"party {party_id!r} not found; enrol the signer first "
            "or check the party_id"
        )
        self.party_id = party_id


class ConsentError(IdentityError):
    """A one-time password was rejected: wrong, replayed or outside the window."""


class RateLimitedError(ConsentError):
    """Too many one-time password attempts; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CertificateStatusError(IdentityError):
    """A certificate is expired, not yet valid, revoked or unfit for signing."""


class CustodyError(IdentityError):
    """The service has no signing key for this party, which signs client-side."""
