"""Encrypted documents written to several blob stores, checked and repaired on read.

`put` seals a document with `signer.envelope` and writes the same ciphertext
to every store at once; it succeeds only when every write succeeded. `get`
reads every replica, keeps those whose SHA-256 equals the ciphertext hash
recorded at `put`, rewrites the missing or corrupted ones from a good copy,
and decrypts. A store that fails to answer is reported, not repaired by
force. When no replica matches the hash, `get` raises ReplicaError and
returns nothing, so wrong bytes are never handed out.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from signer.envelope import MasterKey, open_sealed, seal
from signer.storage import BlobNotFoundError, BlobStore, StorageError, check_key

logger = logging.getLogger(__name__)

MIN_REPLICAS = 3


class ReplicaError(StorageError):
    """Too few replicas could be written, or no replica read back intact."""


@dataclass(frozen=True)
class StoredDocument:
    """The locations of a sealed document and the SHA-256 of its ciphertext."""

    key: str
    ciphertext_hash: bytes
    size: int
    locations: tuple[str, ...]


@dataclass(frozen=True)
class ReadReport:
    """The intact ciphertext read, and what happened to each other replica."""

    ciphertext: bytes
    intact: tuple[str, ...]
    repaired: tuple[str, ...]
    unavailable: tuple[str, ...]


def document_key(contract_id: str) -> str:
    """Return the object key of a contract's stored document."""
    return check_key(f"documents/{contract_id}.pdf.sealed")


class ReplicatedDocumentStore:
    """Writes each sealed document to every store and repairs replicas on read.

    Precondition: len(stores) >= min_replicas >= 1. master_keys[0] seals new
    documents; the other keys are kept to open documents sealed earlier.
    """

    def __init__(
        self,
        stores: Sequence[BlobStore],
        master_keys: Sequence[MasterKey],
        min_replicas: int = MIN_REPLICAS,
    ) -> None:
        if min_replicas < 1 or len(stores) < min_replicas:
            raise ValueError(
                f"need at least {min_replicas} stores for {min_replicas} replicas, "
                f"got {len(stores)}"
            )
        if not master_keys:
            raise ValueError("need at least one master key")
        locations = [store.location for store in stores]
        if len(set(locations)) != len(locations):
            raise ValueError(f"stores must be distinct locations, got {locations}")
        self.stores = list(stores)
        self.master_keys = list(master_keys)

    @property
    def locations(self) -> tuple[str, ...]:
        return tuple(store.location for store in self.stores)

    async def put(self, contract_id: str, plaintext: bytes) -> StoredDocument:
        """Seal plaintext for contract_id and write it to every store.

        Raise ReplicaError naming the failed locations if any write failed.
        """
        key = document_key(contract_id)
        sealed = seal(plaintext, contract_id, self.master_keys[0])
        results = await asyncio.gather(
            *(store.put(key, sealed) for store in self.stores), return_exceptions=True
        )
        failed = [
            f"{store.location}: {result}"
            for store, result in zip(self.stores, results)
            if isinstance(result, BaseException)
        ]
        if failed:
            raise ReplicaError(
                f"could not write {key!r} to {len(failed)} of {len(self.stores)} "
                f"locations: {'; '.join(failed)}"
            )
        return StoredDocument(
            key, hashlib.sha256(sealed).digest(), len(sealed), self.locations
        )

    async def read(self, key: str, ciphertext_hash: bytes) -> ReadReport:
        """Return an intact ciphertext of key after repairing the other replicas.

        A replica is intact when its SHA-256 equals ciphertext_hash. Missing
        and corrupted replicas are rewritten from an intact one. Raise
        ReplicaError when no replica is intact.
        """
        results = await asyncio.gather(
            *(store.get(key) for store in self.stores), return_exceptions=True
        )

        # 1. Sort the replicas by what each store returned.
        good: bytes | None = None
        intact: list[str] = []
        damaged: list[BlobStore] = []
        unavailable: list[str] = []
        problems: list[str] = []
        for store, result in zip(self.stores, results):
            if isinstance(result, BlobNotFoundError):
                damaged.append(store)
                problems.append(f"{store.location}: missing")
            elif isinstance(result, BaseException):
                unavailable.append(store.location)
                problems.append(f"{store.location}: {result}")
            elif hmac.compare_digest(hashlib.sha256(result).digest(), ciphertext_hash):
                good = result
                intact.append(store.location)
            else:
                damaged.append(store)
                problems.append(f"{store.location}: hash mismatch")
        if good is None:
            raise ReplicaError(
                f"no intact replica of {key!r} (expected SHA-256 "
                f"{ciphertext_hash.hex()}): {'; '.join(problems)}"
            )

        # 2. Rewrite the missing and corrupted replicas from the intact copy.
        repaired: list[str] = []
        writes = await asyncio.gather(
            *(store.put(key, good) for store in damaged), return_exceptions=True
        )
        for store, result in zip(damaged, writes):
            if isinstance(result, BaseException):
                logger.error(
                    "could not repair replica key=%s location=%s: %s",
                    key,
                    store.location,
                    result,
                )
                unavailable.append(store.location)
            else:
                logger.warning(
                    "repaired replica key=%s location=%s", key, store.location
                )
                repaired.append(store.location)
        for location in unavailable:
            logger.warning("replica unavailable key=%s location=%s", key, location)
        return ReadReport(good, tuple(intact), tuple(repaired), tuple(unavailable))

    async def get(self, contract_id: str, ciphertext_hash: bytes) -> bytes:
        """Return the decrypted document of contract_id, repairing replicas first.

        Raise ReplicaError when no replica is intact, and EnvelopeError when
        the intact ciphertext does not decrypt under the loaded master keys.
        """
        report = await self.read(document_key(contract_id), ciphertext_hash)
        return open_sealed(report.ciphertext, contract_id, self.master_keys)
