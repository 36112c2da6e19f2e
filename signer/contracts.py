"""The private contract index: one LMDB database of contract records.

A record is a CBOR map with the contract's parties (party_ids), status,
dates, the hash of its current document, the steps logged so far and the
private openings the evidence needs (recipient salt, time-stamp tokens).
Personal data stays here and never goes to the log.

Secondary indexes, each a key with an empty value in its own database:

    by_party   party_id 0x00 created 0x00 contract_id
    by_status  status 0x00 created 0x00 contract_id
    by_created created 0x00 contract_id

where `created` is 8 bytes of big-endian milliseconds since the epoch, so
a cursor walks each index in creation order. Every change of a record and
its index keys happens in one write transaction, which LMDB commits with
fsync, so after a crash the index matches the records.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import cbor2
import lmdb

Record = dict[str, Any]

STATUSES = ("uploaded", "signed", "sent", "countersigned", "stored")
_SEPARATOR = b"\x00"
DEFAULT_LIMIT = 100
# Creation times a search accepts, in milliseconds since the epoch: from the
# epoch (the index stores unsigned 8-byte times) to the start of year 10000,
# past which Python's datetime cannot go.
MIN_CREATED = 0
MAX_CREATED = 253_402_300_800_000


class ContractIndexError(Exception):
    """A contract record or a search request is invalid, or the id already exists."""


class InvalidSearchError(ContractIndexError, ValueError):
    """A search filter is invalid, such as an unknown status or a time before 1970."""


class ContractNotFoundError(ContractIndexError, LookupError):
    """No contract has the requested contract id."""

    def __init__(self, contract_id: str) -> None:
        super().__init__(
            f"contract {contract_id!r} not found; list contracts to find its id"
        )
        self.contract_id = contract_id

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ContractSummary:
    """One row of a contract listing."""

    contract_id: str
    title: str
    parties: tuple[str, ...]
    status: str
    created: int
    updated: int


def _created_bytes(created: int) -> bytes:
    return created.to_bytes(8, "big")


def _index_keys(record: Record) -> list[tuple[str, bytes]]:
    contract = record["contract"].encode()
    created = _created_bytes(record["created"])
    keys = [("by_created", created + _SEPARATOR + contract)]
    keys.append(
        (
            "by_status",
            record["status"].encode() + _SEPARATOR + created + _SEPARATOR + contract,
        )
    )
    for party in sorted(set(record["parties"])):
        keys.append(
            ("by_party", party.encode() + _SEPARATOR + created + _SEPARATOR + contract)
        )
    return keys


def _summary(record: Record) -> ContractSummary:
    return ContractSummary(
        record["contract"],
        record.get("title", ""),
        tuple(record["parties"]),
        record["status"],
        record["created"],
        record["updated"],
    )


class ContractIndex:
    """The LMDB database of contract records at `path` (a folder)."""

    def __init__(self, path: str | os.PathLike[str], map_size: int = 1 << 30) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(str(path), max_dbs=4, map_size=map_size)
        self._records = self._env.open_db(b"contracts")
        self._dbs = {
            name: self._env.open_db(name.encode())
            for name in ("by_party", "by_status", "by_created")
        }

    def close(self) -> None:
        """Close the database."""
        self._env.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Writes.

    def insert(self, record: Record) -> None:
        """Store a new record; raise ContractIndexError if its id exists."""
        _check_record(record)
        key = record["contract"].encode()
        with self._env.begin(write=True) as txn:
            if not txn.put(key, cbor2.dumps(record), db=self._records, overwrite=False):
                raise ContractIndexError(
                    f"contract {record['contract']!r} already exists; use a new contract id"
                )
            for name, index_key in _index_keys(record):
                txn.put(index_key, b"", db=self._dbs[name])

    def update(self, contract_id: str, change: Callable[[Record], None]) -> Record:
        """Apply change to the record of contract_id in one transaction; return it.

        The index keys follow the new status and parties. Raise
        ContractNotFoundError for an unknown id.
        """
        key = contract_id.encode()
        with self._env.begin(write=True) as txn:
            raw = txn.get(key, db=self._records)
            if raw is None:
                raise ContractNotFoundError(contract_id)
            record = cbor2.loads(raw)
            old_keys = _index_keys(record)
            created = record["created"]
            change(record)
            _check_record(record)
            if record["contract"] != contract_id or record["created"] != created:
                raise ContractIndexError(
                    f"a change to contract {contract_id!r} must keep its id and creation time"
                )
            txn.put(key, cbor2.dumps(record), db=self._records)
            new_keys = _index_keys(record)
            for name, index_key in set(old_keys) - set(new_keys):
                txn.delete(index_key, db=self._dbs[name])
            for name, index_key in set(new_keys) - set(old_keys):
                txn.put(index_key, b"", db=self._dbs[name])
        return record

    # Reads.

    def get(self, contract_id: str) -> Record:
        """Return the record of contract_id; raise ContractNotFoundError if absent."""
        with self._env.begin() as txn:
            raw = txn.get(contract_id.encode(), db=self._records)
        if raw is None:
            raise ContractNotFoundError(contract_id)
        return cbor2.loads(raw)

    def search(
        self,
        *,
        party: str | None = None,
        status: str | None = None,
        created_from: int | None = None,
        created_until: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[ContractSummary]:
        """Return contracts matching every given filter, oldest first.

        created_from <= created < created_until, in milliseconds since the
        epoch. Requires limit >= 1. The scan walks the party index when a
        party is given, else the status index, else the date index.
        """
        if limit < 1:
            raise InvalidSearchError(f"limit must be at least 1, got {limit}")
        if status is not None and status not in STATUSES:
            raise InvalidSearchError(
                f"unknown status {status!r}; use one of {', '.join(STATUSES)}"
            )
        for bound_name, bound in (
            ("created_from", created_from),
            ("created_until", created_until),
        ):
            if bound is not None and not MIN_CREATED <= bound <= MAX_CREATED:
                raise InvalidSearchError(
                    f"{bound_name} {bound} ms since the epoch is out of range; "
                    "give a time from 1970-01-01T00:00:00Z up to the end of "
                    "year 9999"
                )
        if party is not None:
            name, prefix = "by_party", party.encode() + _SEPARATOR
        elif status is not None:
            name, prefix = "by_status", status.encode() + _SEPARATOR
        else:
            name, prefix = "by_created", b""
        low = _created_bytes(created_from or 0)

        results: list[ContractSummary] = []
        with self._env.begin() as txn:
            for index_key in self._scan(txn, self._dbs[name], prefix + low, prefix):
                rest = index_key[len(prefix) :]
                created = int.from_bytes(rest[:8], "big")
                if created_until is not None and created >= created_until:
                    break
                contract_id = rest[9:]
                record = cbor2.loads(txn.get(contract_id, db=self._records))
                if status is not None and record["status"] != status:
                    continue
                if party is not None and party not in record["parties"]:
                    continue
                results.append(_summary(record))
                if len(results) >= limit:
                    break
        return results

    @staticmethod
    def _scan(
        txn: lmdb.Transaction, db: Any, start: bytes, prefix: bytes
    ) -> Iterator[bytes]:
        cursor = txn.cursor(db=db)
        if not cursor.set_range(start):
            return
        for key in cursor.iternext(keys=True, values=False):
            if not key.startswith(prefix):
                return
            yield bytes(key)


def _check_record(record: Record) -> None:
    if record.get("status") not in STATUSES:
        raise ContractIndexError(
            f"invalid status {record.get('status')!r}; use one of {', '.join(STATUSES)}"
        )
    for field_name in ("contract", "parties", "created", "updated"):
        if field_name not in record:
            raise ContractIndexError(f"contract record is missing {field_name!r}")
