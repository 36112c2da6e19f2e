"""Minimal DER encoders for the fields that change in every token.

asn1crypto builds the constant parts of a token once. The per-token
fields (TSTInfo, the messageDigest attribute and the SignedData around
them) are encoded here, because building them through asn1crypto costs
more than the signature itself. The tests check these encoders against
asn1crypto for random inputs.
"""

from __future__ import annotations

from datetime import datetime, timezone

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
OCTET_STRING = 0x04
GENERALIZED_TIME = 0x18


def encode_length(length: int) -> bytes:
    """Encode a DER length; requires 0 <= length."""
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    """Encode one element from its single-octet tag and its content octets."""
    return bytes((tag,)) + encode_length(len(content)) + content


def integer(value: int) -> bytes:
    """Encode an INTEGER in the fewest two's-complement octets."""
    magnitude = value if value >= 0 else ~value
    size = (magnitude.bit_length() + 8) // 8
    return tlv(INTEGER, value.to_bytes(size, "big", signed=True))


def generalized_time(moment: datetime) -> bytes:
    """Encode a GeneralizedTime in UTC with at most millisecond precision.

    DER (X.690 section 11.7) drops trailing zeros of the fraction and the
    decimal point when the fraction is zero. `moment` must be aware.
    """
    moment = moment.astimezone(timezone.utc)
    text = moment.strftime("%Y%m%d%H%M%S")
    millis = moment.microsecond // 1000
    if millis:
        text += "." + f"{millis:03d}".rstrip("0")
    return tlv(GENERALIZED_TIME, (text + "Z").encode("ascii"))
