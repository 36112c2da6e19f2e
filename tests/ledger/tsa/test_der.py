"""The hand-written DER encoders and reader, checked against asn1crypto."""

from __future__ import annotations

import datetime

import pytest
from asn1crypto import core, tsp
from hypothesis import given
from hypothesis import strategies as st

from ledger.tsa import der

LENGTHS = [0, 1, 127, 128, 255, 256, 65535, 65536, 70000]


@pytest.mark.parametrize("length", LENGTHS)
def test_tlv_matches_asn1crypto(length):
    content = bytes(length)

    assert der.tlv(der.OCTET_STRING, content) == core.OctetString(content).dump()


@given(st.integers(min_value=-(2**300), max_value=2**300))
def test_integer_matches_asn1crypto(value):
    assert der.integer(value) == core.Integer(value).dump()


@given(
    st.datetimes(
        min_value=datetime.datetime(1970, 1, 1),
        max_value=datetime.datetime(9999, 12, 31),
        timezones=st.just(datetime.UTC),
    )
)
def test_generalized_time_round_trips(moment):
    encoded = der.generalized_time(moment)
    parsed = core.GeneralizedTime.load(encoded)
    expected = moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    assert parsed.native == expected
    text = encoded[2:].decode("ascii")
    assert text.endswith("Z")
    assert not text.endswith("0Z") or "." not in text
    assert not text.endswith(".Z")


@given(st.integers(min_value=-(2**100), max_value=2**100))
def test_read_integer_round_trips(value):
    encoded = der.integer(value)
    tag, start, end = der.read_element(encoded, 0, len(encoded))

    assert tag == der.INTEGER
    assert der.read_integer(encoded, start, end) == value


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        (b"\x02\x02\x00\x01", "not minimally encoded"),
        (b"\x02\x02\xff\x80", "not minimally encoded"),
        (b"\x02\x00", "empty INTEGER"),
    ],
)
def test_read_integer_rejects_non_der(encoded, message):
    tag, start, end = der.read_element(encoded, 0, len(encoded))
    with pytest.raises(der.DerError, match=message):
        der.read_integer(encoded, start, end)


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        (b"\x30", "truncated"),
        (b"\x30\x80\x00\x00", "indefinite"),
        (b"\x30\x81\x05" + bytes(5), "not minimally encoded"),
        (b"\x30\x82\x00\x90" + bytes(0x90), "not minimally encoded"),
        (b"\x30\x05\x00", "runs past"),
        (b"\x1f\x01\x01\x00", "multi-octet tag"),
    ],
)
def test_read_element_rejects_non_der(encoded, message):
    with pytest.raises(der.DerError, match=message):
        der.read_element(encoded, 0, len(encoded))


@given(
    serial=st.integers(min_value=1, max_value=2**100),
    nonce=st.none() | st.integers(min_value=0, max_value=2**64),
    moment=st.datetimes(
        min_value=datetime.datetime(2000, 1, 1),
        max_value=datetime.datetime(2100, 1, 1),
        timezones=st.just(datetime.UTC),
    ),
    digest=st.binary(min_size=32, max_size=32),
)
def test_tst_info_matches_asn1crypto(
    ecdsa_authority_module, serial, nonce, moment, digest
):
    from ledger.tsa.token import encode_message_imprint

    signer = ecdsa_authority_module._signer
    encoded = signer.encode_tst_info(
        encode_message_imprint("sha256", digest), serial, moment, nonce
    )
    parsed = tsp.TSTInfo.load(encoded, strict=True)

    assert parsed.dump(force=True) == encoded
    assert parsed["serial_number"].native == serial
    assert parsed["nonce"].native == nonce
    assert parsed["message_imprint"]["hashed_message"].native == digest
