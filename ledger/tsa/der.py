"""Minimal DER encoders for the fields that change in every token.

asn1crypto builds the constant parts of a token once. The per-token
fields (TSTInfo, the messageDigest attribute and the SignedData around
them) are encoded here, because building them through asn1crypto costs
more than the signature itself. The tests check these encoders against
asn1crypto for random inputs.
"""

from __future__ import annotations

from datetime import UTC, datetime

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
    # The common short lengths are spelled out, because this runs about
    # twenty times per token.
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    if length < 0x100:
        return bytes((tag, 0x81, length)) + content
    if length < 0x10000:
        return bytes((tag, 0x82, length >> 8, length & 0xFF)) + content
    return bytes((tag,)) + encode_length(length) + content


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
    moment = moment.astimezone(UTC)
    text = (
        f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"
        f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    )
    millis = moment.microsecond // 1000
    if millis:
        text += "." + f"{millis:03d}".rstrip("0")
    return tlv(GENERALIZED_TIME, (text + "Z").encode("ascii"))


class DerError(ValueError):
    """Input that is not strict DER, or not the structure expected."""


def read_element(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """Read one element of data[offset:end] and return (tag, content start, content end).

    Accepts only single-octet tags and minimal definite lengths, as DER
    requires (X.690 sections 8.1.3 and 10.1). Requires 0 <= offset <= end.
    """
    if end - offset < 2:
        raise DerError(f"truncated element at offset {offset}")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError(f"multi-octet tag at offset {offset} is not expected here")
    first = data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError(f"indefinite length at offset {offset} is not DER")
    else:
        count = first & 0x7F
        if count > 4 or position + count > end:
            raise DerError(f"length of element at offset {offset} is out of range")
        length = int.from_bytes(data[position : position + count], "big")
        if length < 0x80 or data[position] == 0:
            raise DerError(f"length at offset {offset} is not minimally encoded")
        position += count
    if position + length > end:
        raise DerError(f"element at offset {offset} runs past its container")
    return tag, position, position + length


def read_integer(data: bytes, start: int, end: int) -> int:
    """Decode the content octets data[start:end] of an INTEGER, strictly."""
    if start == end:
        raise DerError("empty INTEGER")
    if end - start > 1 and (
        (data[start] == 0 and data[start + 1] < 0x80)
        or (data[start] == 0xFF and data[start + 1] >= 0x80)
    ):
        raise DerError("INTEGER is not minimally encoded")
    return int.from_bytes(data[start:end], "big", signed=True)
