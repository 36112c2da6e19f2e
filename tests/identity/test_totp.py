"""RFC 6238 TOTP: known-answer vectors, pyotp agreement, the otpauth URI, QR code."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity import totp

RFC4226_SECRET = b"12345678901234567890"

# RFC 4226 appendix D: HOTP values for counters 0 to 9.
RFC4226_HOTP = [
    "755224", "287082", "359152", "969429", "338314",
    "254676", "287922", "162583", "399871", "520489",
]  # fmt: skip

# RFC 6238 appendix B: time, algorithm, secret, 8-digit TOTP.
RFC6238_VECTORS = [
    (59, "SHA1", "94287082"),
    (59, "SHA256", "46119246"),
    (59, "SHA512", "90693936"),
    (1111111109, "SHA1", "07081804"),
    (1111111109, "SHA256", "68084774"),
    (1111111109, "SHA512", "25091201"),
    (1111111111, "SHA1", "14050471"),
    (1234567890, "SHA1", "89005924"),
    (2000000000, "SHA1", "69279037"),
    (20000000000, "SHA1", "65353130"),
    (20000000000, "SHA256", "77737706"),
    (20000000000, "SHA512", "47863826"),
]
RFC6238_SECRETS = {
    "SHA1": RFC4226_SECRET,
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}


@pytest.mark.parametrize("counter", range(10))
def test_hotp_rfc4226_vectors(counter):
    assert totp.hotp(RFC4226_SECRET, counter) == RFC4226_HOTP[counter]


@pytest.mark.parametrize(("unix_time", "algorithm", "expected"), RFC6238_VECTORS)
def test_totp_rfc6238_vectors(unix_time, algorithm, expected):
    secret = RFC6238_SECRETS[algorithm]
    assert totp.totp(secret, unix_time, digits=8, algorithm=algorithm) == expected


@given(
    secret=st.binary(min_size=16, max_size=64),
    unix_time=st.integers(min_value=0, max_value=2**34),
)
def test_totp_agrees_with_pyotp(secret, unix_time):
    reference = pyotp.TOTP(base64.b32encode(secret).decode())
    assert totp.totp(secret, unix_time) == reference.at(unix_time)


def test_match_time_step_window():
    secret = totp.generate_secret()
    now = 1_700_000_015
    step = totp.time_step(now)
    for offset in (-1, 0, 1):
        code = totp.hotp(secret, step + offset)
        assert totp.match_time_step(secret, code, now, window=1) == step + offset
    for offset in (-3, -2, 2, 3):
        code = totp.hotp(secret, step + offset)
        assert totp.match_time_step(secret, code, now, window=1) is None


def test_provisioning_uri_parsed_by_pyotp():
    secret = totp.generate_secret()
    uri = totp.provisioning_uri(secret, "party 1", "Contract Ledger")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth"
    assert parsed.netloc == "totp"
    query = parse_qs(parsed.query)
    assert query["issuer"] == ["Contract Ledger"]
    reference = pyotp.parse_uri(uri)
    assert reference.issuer == "Contract Ledger"
    assert reference.name == "party 1"
    assert reference.at(1_700_000_000) == totp.totp(secret, 1_700_000_000)


def test_qr_code_is_png():
    png = totp.qr_code_png("otpauth://totp/x?secret=AAAA")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 100
