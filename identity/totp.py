"""Time-based one-time passwords (RFC 6238) over HOTP (RFC 4226).

Pure functions: the caller supplies the time and keeps the state (the last
accepted time step, failure counts) that replay protection and lockout need.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
import struct
from urllib.parse import quote, urlencode

# RFC 6238 section 4: T0 = 0 and a time step X of 30 seconds by default.
DEFAULT_PERIOD = 30
DEFAULT_DIGITS = 6
# 160 bits, the length RFC 4226 section 4 recommends for HMAC-SHA-1 secrets.
SECRET_BYTES = 20

_ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def generate_secret() -> bytes:
    """Return a new random TOTP secret of SECRET_BYTES bytes."""
    return secrets.token_bytes(SECRET_BYTES)


def hotp(
    secret: bytes, counter: int, digits: int = DEFAULT_DIGITS, algorithm: str = "SHA1"
) -> str:
    """Compute the HOTP value (RFC 4226 section 5.3) for 0 <= counter < 2**64."""
    if not 6 <= digits <= 10:
        raise ValueError(f"digits must be between 6 and 10, not {digits}")
    mac = hmac.new(secret, struct.pack(">Q", counter), _ALGORITHMS[algorithm]).digest()

    # Dynamic truncation: the low 4 bits of the last byte select 4 bytes.
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def time_step(unix_time: float, period: int = DEFAULT_PERIOD) -> int:
    """Return the RFC 6238 time step T = floor(unix_time / period) for unix_time >= 0."""
    return int(unix_time // period)


def totp(
    secret: bytes,
    unix_time: float,
    period: int = DEFAULT_PERIOD,
    digits: int = DEFAULT_DIGITS,
    algorithm: str = "SHA1",
) -> str:
    """Compute the TOTP value of `secret` at `unix_time` (seconds since the epoch)."""
    return hotp(secret, time_step(unix_time, period), digits, algorithm)


def match_time_step(
    secret: bytes,
    code: str,
    unix_time: float,
    window: int = 1,
    period: int = DEFAULT_PERIOD,
    digits: int = DEFAULT_DIGITS,
) -> int | None:
    """Return the time step within +-window steps of unix_time whose code is `code`.

    Returns None when no step in the window matches. The steps are compared
    in constant time each and all of them are tried, so that the position of
    a match does not show in the timing. Requires window >= 0.
    """
    if window < 0:
        raise ValueError(f"window must be >= 0, not {window}")
    current = time_step(unix_time, period)
    matched = None
    candidate = code.encode("ascii", "replace")
    for step in range(current - window, current + window + 1):
        if step < 0:
            continue
        expected = hotp(secret, step, digits).encode("ascii")
        if hmac.compare_digest(expected, candidate):
            matched = step
    return matched


def provisioning_uri(
    secret: bytes,
    account: str,
    issuer: str,
    period: int = DEFAULT_PERIOD,
    digits: int = DEFAULT_DIGITS,
) -> str:
    """Build the `otpauth://totp/` URI that authenticator apps scan.

    The format is the Key Uri Format of Google Authenticator: the label is
    `issuer:account`, and the secret is base32 without padding.
    """
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode(
        {
            "secret": base64.b32encode(secret).decode("ascii").rstrip("="),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": digits,
            "period": period,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def qr_code_png(uri: str) -> bytes:
    """Render `uri` as a QR code and return the PNG image bytes."""
    import qrcode

    image = qrcode.make(uri)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
