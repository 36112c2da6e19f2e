"""Deterministic CBOR entries: schema checks and encoding agreement."""

from __future__ import annotations

import struct

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.entry import (
    CONTRACT_TYPES,
    REQUIRED_FIELDS,
    EntryError,
    decode_entry,
    encode_entry,
)


def _entry(kind: str = "import", **fields) -> dict:
    entry = {"v": 1, "type": kind, "time": 1_700_000_000_000}
    for name in REQUIRED_FIELDS[kind]:
        entry[name] = "x" if name != "data" else b"line"
    entry.update(fields)
    return entry


def _head(major: int, length: int) -> bytes:
    # RFC 8949 section 4.2.1: the shortest form of each argument.
    if length < 24:
        return bytes([major << 5 | length])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if length < 1 << (8 * size):
            return bytes([major << 5 | info]) + length.to_bytes(size, "big")
    raise AssertionError(length)


def _reference_encode(value) -> bytes:
    """A deterministic CBOR encoder written from RFC 8949 section 4.2.1."""
    if value is False:
        return b"\xf4"
    if value is True:
        return b"\xf5"
    if value is None:
        return b"\xf6"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode()
        return _head(3, len(raw)) + raw
    if isinstance(value, list):
        return _head(4, len(value)) + b"".join(_reference_encode(v) for v in value)
    if isinstance(value, dict):
        pairs = sorted(
            (_reference_encode(k), _reference_encode(v)) for k, v in value.items()
        )
        return _head(5, len(pairs)) + b"".join(k + v for k, v in pairs)
    raise AssertionError(type(value))


def test_every_type_round_trips() -> None:
    for kind in REQUIRED_FIELDS:
        entry = _entry(kind, prev=b"\x01" * 32)
        data = encode_entry(entry)
        assert decode_entry(data) == entry
        assert data == _reference_encode(entry)


def test_contract_entries_need_contract() -> None:
    for kind in CONTRACT_TYPES:
        entry = _entry(kind)
        del entry["contract"]
        with pytest.raises(
            EntryError, match="missing required fields \\['contract'\\]"
        ):
            encode_entry(entry)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"v": 2}, "schema version"),
        ({"v": True}, "schema version"),
        ({"type": "unknown"}, "unknown"),
        ({"time": -1}, "time"),
        ({"time": True}, "time"),
        ({"time": 1.5}, "float"),
        ({"contract": ""}, "contract"),
        ({"contract": 5}, "contract"),
        ({"prev": b"short"}, "prev"),
        ({"prev": "a" * 32}, "prev"),
        ({"extra": {"nested": [1, 2.0]}}, "float at entry.extra.nested\\[1\\]"),
        ({"extra": {1: "x"}}, "not a text string"),
        ({"extra": {1, 2}}, "set"),
        ({"extra": 1 << 64}, "64-bit"),
        ({"extra": -(1 << 64) - 1}, "64-bit"),
        ({"extra": b"x" * 65536}, "65,535"),
    ],
)
def test_encode_rejects(change: dict, reason: str) -> None:
    with pytest.raises(EntryError, match=reason):
        encode_entry(_entry(**change))


def test_encode_rejects_missing_common_keys() -> None:
    for key in ("v", "type", "time"):
        entry = _entry()
        del entry[key]
        with pytest.raises(EntryError, match=f"missing the common key '{key}'"):
            encode_entry(entry)
    with pytest.raises(EntryError, match="missing required fields"):
        encode_entry({"v": 1, "type": "import", "time": 0})
    with pytest.raises(EntryError, match="a map"):
        encode_entry([1, 2])  # type: ignore[arg-type]


def test_encode_size_limit() -> None:
    base = len(encode_entry(_entry(data=b"")))
    # The byte string's head grows from 1 to 3 bytes past 255 bytes.
    fits = _entry(data=b"x" * (65535 - base - 2))
    assert len(encode_entry(fits)) == 65535
    with pytest.raises(EntryError, match="65,535"):
        encode_entry(_entry(data=b"x" * (65536 - base - 2)))


def test_decode_rejects_non_deterministic() -> None:
    good = encode_entry(_entry())
    entry = _entry()
    # Keys in insertion order instead of sorted order.
    unsorted = b"\xa4" + b"".join(
        cbor2.dumps(k) + cbor2.dumps(v) for k, v in reversed(list(entry.items()))
    )
    assert cbor2.loads(unsorted) == entry
    cases = {
        "unsorted keys": unsorted,
        "trailing byte": good + b"\x00",
        "long-form map length": b"\xb8\x04" + good[1:],
        "indefinite map": b"\xbf" + good[1:] + b"\xff",
        "duplicate key": b"\xa5" + good[1:] + cbor2.dumps("v") + cbor2.dumps(1),
        "float time": cbor2.dumps({**entry, "time": 1.0}, canonical=True),
        "tagged time": cbor2.dumps(
            {**entry, "time": cbor2.CBORTag(1, 5)}, canonical=True
        ),
        "bignum": good.replace(b"\x64time\x1b", b"\x64time\xc2\x48"),
        "not a map": cbor2.dumps([1, 2]),
        "truncated": good[:-1],
        "empty": b"",
        "bad utf-8": b"\xa1\x61\xff\x01",
        "deep nesting": b"\x81" * 65000 + b"\x00",
    }
    for name, data in cases.items():
        with pytest.raises(EntryError):
            decode_entry(data)
            pytest.fail(name)


def test_decode_rejects_schema_breaks() -> None:
    with pytest.raises(EntryError, match="unknown"):
        decode_entry(cbor2.dumps({**_entry(), "type": "nope"}, canonical=True))
    with pytest.raises(EntryError, match="65,535"):
        decode_entry(b"\x00" * 65536)


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 64), (1 << 64) - 1)
    | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


_extra_keys = st.text(min_size=1, max_size=10).filter(
    lambda key: key not in {"v", "type", "time", "contract", "prev", "data"}
)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(_extra_keys, _values, max_size=5))
def test_matches_reference_encoder(extra: dict) -> None:
    entry = {**extra, **_entry()}
    data = encode_entry(entry)
    assert data == _reference_encode(entry)
    assert decode_entry(data) == entry


def test_known_encoding() -> None:
    data = encode_entry({"v": 1, "type": "import", "time": 0, "data": b"hi"})
    # Keys sort by their encoded bytes: "v" < "data" < "time" < "type".
    assert data == (
        b"\xa4"
        + b"\x61v\x01"
        + b"\x64data\x42hi"
        + b"\x64time\x00"
        + b"\x64type\x66import"
    )
    assert struct.unpack(">B", data[:1])[0] == 0xA4
