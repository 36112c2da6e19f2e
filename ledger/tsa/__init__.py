"""RFC 3161 time-stamping authority: issue, serve, request and verify tokens.

`TimeStampAuthority` turns a DER TimeStampReq into a DER TimeStampResp
and stamps data for in-process callers. `add_tsa_routes` serves it at
`POST /tsa`, and `request_token` requests a token from any RFC 3161
server. `verify_token` checks a token against a digest and trust anchors.
`stamper_for` returns the log's async stamping callable for a local
authority or a TSA URL.
"""

from ledger.tsa.authority import DEFAULT_POLICY, TimeStampAuthority
from ledger.tsa.client import request_token, stamper_for
from ledger.tsa.errors import TimeStampError, TsaKeyError
from ledger.tsa.keys import (
    TsaCredentials,
    load_operator_credentials,
    load_or_create_credentials,
)
from ledger.tsa.serial import SerialNumbers
from ledger.tsa.server import add_tsa_routes
from ledger.tsa.token import Accuracy
from ledger.tsa.verify import TimeStampInfo, verify_token

__all__ = [
    "DEFAULT_POLICY",
    "Accuracy",
    "SerialNumbers",
    "TimeStampAuthority",
    "TimeStampError",
    "TimeStampInfo",
    "TsaCredentials",
    "TsaKeyError",
    "add_tsa_routes",
    "load_operator_credentials",
    "load_or_create_credentials",
    "request_token",
    "stamper_for",
    "verify_token",
]
