"""Exceptions raised by the PDF half of the signer package.

Every class derives from `SignerError`, so that a caller such as the contract
workflow can map all of them to one HTTP status. Each message names the value
that failed and what the caller can do about it.
"""

from __future__ import annotations


class SignerError(Exception):
    """Base class of the errors that the signer package raises on bad input."""


class InvalidPdfError(SignerError, ValueError):
    """The uploaded bytes are not a PDF that any reader could open."""


class NotPdfError(InvalidPdfError):
    """The bytes do not start with a `%PDF-` header."""


class TruncatedPdfError(InvalidPdfError):
    """The file ends before its `startxref` and `%%EOF` trailer."""


class PasswordError(SignerError):
    """The PDF is encrypted and no password, or a wrong one, was given."""


class ChangesForbiddenError(SignerError):
    """A certification signature (DocMDP with /P 1) forbids any further change."""


class SigningError(SignerError):
    """pyHanko could not add a signature or a document time stamp."""


class SignatureInvalidError(SignerError):
    """A signature failed validation; the message names the field and the cause."""
