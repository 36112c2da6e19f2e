"""Exceptions of the time-stamping authority, its client and its verifier."""

from __future__ import annotations


class TimeStampError(Exception):
    """A time-stamp token or response failed to parse or verify.

    The message names the field that failed and the value found.
    """


class TsaKeyError(Exception):
    """The TSA key or certificate could not be created or loaded."""


class RequestRejected(Exception):
    """A TimeStampReq that the authority rejects with a PKIFailureInfo bit.

    `failure_info` is the asn1crypto name of the bit (for example
    "bad_alg" or "unaccepted_policy") and `text` goes into the
    response's statusString.
    """

    def __init__(self, failure_info: str, text: str) -> None:
        super().__init__(f"{failure_info}: {text}")
        self.failure_info = failure_info
        self.text = text
