"""Encode and read RFC 3161 TimeStampResp messages."""

from __future__ import annotations

from asn1crypto import cms, core, tsp

from ledger.tsa import der
from ledger.tsa.errors import TimeStampError


class TimeStampResp(core.Sequence):
    """TimeStampResp with timeStampToken OPTIONAL, as RFC 3161 section 2.4.2 has it.

    asn1crypto 1.5 declares the token mandatory, so it cannot read
    rejections.
    """

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


# PKIStatusInfo { status granted(0) }, encoded once.
GRANTED_STATUS = der.tlv(der.SEQUENCE, der.integer(0))


def granted_response(token: bytes) -> bytes:
    """Wrap a TimeStampToken in a TimeStampResp with status granted."""
    return der.tlv(der.SEQUENCE, GRANTED_STATUS + token)


# PKIFailureInfo bit numbers (RFC 3161 section 2.4.2). asn1crypto names
# bit 16 "unaccepted_extensions", so the bits are set by number.
FAILURE_BITS = {
    "bad_alg": 0,
    "bad_request": 2,
    "bad_data_format": 5,
    "time_not_available": 14,
    "unaccepted_policy": 15,
    "unaccepted_extension": 16,
    "add_info_not_available": 17,
    "system_failure": 25,
}


def rejection_response(failure_info: str, text: str) -> bytes:
    """Encode a TimeStampResp with status rejection, one failure bit and a text.

    `failure_info` is a key of FAILURE_BITS, such as "bad_alg".
    """
    bit = FAILURE_BITS[failure_info]
    bits = tuple(1 if index == bit else 0 for index in range(bit + 1))
    status = tsp.PKIStatusInfo(
        {
            "status": "rejection",
            "status_string": [text],
            "fail_info": tsp.PKIFailureInfo(bits),
        }
    )
    return TimeStampResp({"status": status}).dump()


def token_from_response(response_der: bytes) -> bytes:
    """Return the TimeStampToken DER of a granted TimeStampResp, as received.

    Raises TimeStampError naming the status, failure bits and text of a
    response that is not granted, or when the DER is malformed.
    """
    try:
        tag, position, end = der.read_element(response_der, 0, len(response_der))
        if tag != der.SEQUENCE or end != len(response_der):
            raise der.DerError("not a single SEQUENCE")
        _, _, status_end = der.read_element(response_der, position, end)
        status_info = tsp.PKIStatusInfo.load(
            response_der[position:status_end], strict=True
        )
        status = status_info["status"].native
        fail_info = status_info["fail_info"].native
        texts = status_info["status_string"].native
        token = response_der[status_end:end]
        if token:
            _, _, token_end = der.read_element(response_der, status_end, end)
            if token_end != end:
                raise der.DerError("data after the timeStampToken")
    except (ValueError, TypeError, KeyError) as error:
        raise TimeStampError(f"malformed TimeStampResp: {error}") from error
    if status not in ("granted", "granted_with_mods"):
        bits = ", ".join(sorted(fail_info or ())) or "none"
        text = "; ".join(texts or ()) or "no text"
        raise TimeStampError(
            f"time stamp request rejected with status {status}, failure info "
            f"{bits}: {text}"
        )
    if not token:
        raise TimeStampError(f"TimeStampResp with status {status} carries no token")
    return token
