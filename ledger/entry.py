"""Log entries: deterministic CBOR maps (RFC 8949 section 4.2.1) with a schema.

Every entry is a map with text keys. Common keys: `v` (schema version, 1),
`type` (one of ENTRY_TYPES), `time` (claimed time, integer milliseconds
since the epoch), `contract` (contract id, required on contract entries)
and `prev` (the 32-byte leaf hash of the previous entry of the same contract
or party, absent on the first). Each type adds the fields REQUIRED_FIELDS
lists, and may carry more. Values are integers, text, byte strings,
booleans, null, arrays and maps with text keys; floats and CBOR tags are
rejected because they have more than one encoding of one value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cbor2

SCHEMA_VERSION = 1
MAX_ENTRY_SIZE = 0xFFFF
PREV_SIZE = 32
MAX_DEPTH = 16
_MIN_INT = -(1 << 64)
_MAX_INT = (1 << 64) - 1

CONTRACT_TYPES = ("upload", "sign", "send", "countersign", "store")

# Fields each entry type must carry besides the common keys. Add a type's
# fields here when the type gains one; extra fields are always allowed.
REQUIRED_FIELDS: dict[str, frozenset[str]] = {
    "import": frozenset({"data"}),
    "enrol.person": frozenset({"party", "commitments", "certificate"}),
    "enrol.enterprise": frozenset({"party", "commitments", "certificate"}),
    "consent": frozenset({"party", "certificate", "document"}),
    "revoke": frozenset({"party", "certificate"}),
    **{kind: frozenset({"contract"}) for kind in CONTRACT_TYPES},
}

ENTRY_TYPES = frozenset(REQUIRED_FIELDS)
COMMON_KEYS = frozenset({"v", "type", "time", "contract", "prev"})


class EntryError(ValueError):
    """An entry is not a valid, deterministically encoded log entry."""


def _check_value(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise EntryError(f"entry nests deeper than {MAX_DEPTH} levels at {path}")
    if value is None or isinstance(value, (bool, str, bytes)):
        return
    if isinstance(value, int):
        if not _MIN_INT <= value <= _MAX_INT:
            raise EntryError(
                f"integer at {path} is outside the 64-bit range of CBOR major types 0 and 1"
            )
        return
    if isinstance(value, float):
        raise EntryError(
            f"float at {path} is not allowed; use an integer (for example milliseconds)"
        )
    if isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            _check_value(item, f"{path}[{position}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EntryError(f"map key {key!r} at {path} is not a text string")
            _check_value(item, f"{path}.{key}", depth + 1)
        return
    raise EntryError(
        f"value of type {type(value).__name__} at {path} is not allowed in an entry"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_entry(entry: Mapping[str, Any]) -> None:
    """Check an entry against the schema; raises EntryError naming the problem."""
    if not isinstance(entry, Mapping):
        raise EntryError(f"an entry is a map, not {type(entry).__name__}")
    _check_value(entry, "entry", 0)

    # 1. Common keys.
    for key in ("v", "type", "time"):
        if key not in entry:
            raise EntryError(f"entry is missing the common key {key!r}")
    if not _is_int(entry["v"]) or entry["v"] != SCHEMA_VERSION:
        raise EntryError(
            f"entry schema version v={entry['v']!r} is not supported; expected 1"
        )
    kind = entry["type"]
    if kind not in ENTRY_TYPES:
        raise EntryError(
            f"entry type {kind!r} is unknown; expected one of {sorted(ENTRY_TYPES)}"
        )
    if not _is_int(entry["time"]) or entry["time"] < 0:
        raise EntryError(
            f"entry time {entry['time']!r} must be a non-negative integer of"
            " milliseconds since the epoch"
        )
    if "contract" in entry and (
        not isinstance(entry["contract"], str) or not entry["contract"]
    ):
        raise EntryError(f"entry contract {entry['contract']!r} must be non-empty text")
    if "prev" in entry and (
        not isinstance(entry["prev"], bytes) or len(entry["prev"]) != PREV_SIZE
    ):
        raise EntryError(
            f"entry prev must be a 32-byte leaf hash, not {entry['prev']!r}"
        )

    # 2. Fields of the entry's type.
    missing = REQUIRED_FIELDS[kind] - entry.keys()
    if missing:
        raise EntryError(f"{kind} entry is missing required fields {sorted(missing)}")


def encode_entry(entry: Mapping[str, Any]) -> bytes:
    """Encode an entry as deterministic CBOR; raises EntryError if invalid.

    Rejects entries that break the schema, hold floats, tags or other values
    without a single encoding, or encode to more than 65,535 bytes.
    """
    validate_entry(entry)
    try:
        data = cbor2.dumps(dict(entry), canonical=True)
    except cbor2.CBOREncodeError as error:
        raise EntryError(f"entry cannot be encoded as CBOR: {error}") from error
    if len(data) > MAX_ENTRY_SIZE:
        raise EntryError(
            f"entry encodes to {len(data)} bytes, over the limit of 65,535"
        )
    return data


def decode_entry(data: bytes) -> dict[str, Any]:
    """Decode an entry; raises EntryError unless data is its deterministic encoding."""
    if len(data) > MAX_ENTRY_SIZE:
        raise EntryError(f"entry is {len(data)} bytes, over the limit of 65,535")
    try:
        entry = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, RecursionError) as error:
        raise EntryError(f"entry is not valid CBOR: {error}") from error
    if not isinstance(entry, dict):
        raise EntryError(f"entry is a CBOR {type(entry).__name__}, not a map")
    # Re-encoding catches duplicate keys, unsorted keys, long-form lengths,
    # indefinite lengths and trailing bytes, which cbor2 decodes silently.
    if encode_entry(entry) != data:
        raise EntryError(
            "entry is not in deterministic CBOR encoding (RFC 8949 section 4.2.1)"
        )
    return entry
