"""Encode and read RFC 3161 TimeStampResp messages."""

from __future__ import annotations

from asn1crypto import tsp

from ledger.tsa import der
from ledger.tsa.errors import TimeStampError

# PKIStatusInfo { status granted(0) }, encoded once.
GRANTED_STATUS = der.tlv(der.SEQUENCE, der.integer(0))


def granted_response(token: bytes) -> bytes:
    """Wrap a TimeStampToken in a TimeStampResp with status granted."""
    return der.tlv(der.SEQUENCE, GRANTED_STATUS + token)


def rejection_response(failure_info: str, text: str) -> bytes:
    """Encode a TimeStampResp with status rejection, one failure bit and a text.

    `failure_info` is an asn1crypto PKIFailureInfo name such as "bad_alg".
    """
    return tsp.TimeStampResp(
        {
            "status": {
                "status": "rejection",
                "status_string": [text],
                "fail_info": tsp.PKIFailureInfo({failure_info}),
            }
        }
    ).dump()


def system_failure_response(text: str) -> bytes:
    """Encode a TimeStampResp with status rejection and the systemFailure bit."""
    return rejection_response("system_failure", text)


def token_from_response(response_der: bytes) -> bytes:
    """Return the TimeStampToken DER of a granted TimeStampResp.

    Raises TimeStampError naming the status, failure bits and text of a
    response that is not granted, or when the DER is malformed.
    """
    try:
        response = tsp.TimeStampResp.load(response_der, strict=True)
        status_info = response["status"]
        status = status_info["status"].native
        token = response["time_stamp_token"]
        fail_info = status_info["fail_info"].native
        texts = status_info["status_string"].native
    except (ValueError, TypeError, KeyError) as error:
        raise TimeStampError(f"malformed TimeStampResp: {error}") from error
    if status not in ("granted", "granted_with_mods"):
        bits = ", ".join(sorted(fail_info or ())) or "none"
        text = "; ".join(texts or ()) or "no text"
        raise TimeStampError(
            f"time stamp request rejected with status {status}, failure info "
            f"{bits}: {text}"
        )
    if token.native is None:
        raise TimeStampError(f"TimeStampResp with status {status} carries no token")
    return token.dump()
