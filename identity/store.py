"""The identity service's private database of personal data (LMDB).

Nothing here is public. One file contains four named databases:

    parties   party_id -> CBOR record: personal fields, their salts, the
              certificate, the encrypted signing key, the TOTP state
    index     "national_id:<value>" or "registration_number:<value>" ->
              party_id, so that a second enrolment is found in the same
              write transaction that would create it
    consents  party_id + leaf_hash of a consent entry -> the salt of its
              signer commitment, kept apart so records stay small
    meta      the scrypt salt and N of the key that encrypts TOTP secrets

Every write is one transaction committed with sync (LMDB's default), so a
crash leaves each record either before or after a change, never half of it.
Erasure deletes the personal fields, salts, key and TOTP secret of a party,
its index rows and its consent salts. The record keeps only its kind and
status, so the party_id is known to be erased.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import lmdb
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from identity.errors import DuplicateEnrolmentError, UnknownPartyError

Record = dict[str, Any]
# The scrypt cost of the secret-encryption key: N = 2**14 with r = 8 and
# p = 1 takes 16 MiB and runs once per open.
DEFAULT_SCRYPT_N = 2**14


class IdentityStore:
    """The LMDB database at `path` (a folder), opened with the service passphrase."""

    def __init__(
        self,
        path: Path,
        passphrase: bytes,
        map_size: int = 1 << 30,
        scrypt_n: int = DEFAULT_SCRYPT_N,
    ) -> None:
        """Open or create the store; `scrypt_n` (a power of 2) applies on creation.

        An existing store keeps the scrypt salt and N it was created with.
        """
        path.mkdir(parents=True, exist_ok=True)
        self._env = lmdb.open(str(path), max_dbs=4, map_size=map_size)
        self._parties = self._env.open_db(b"parties")
        self._index = self._env.open_db(b"index")
        self._consents = self._env.open_db(b"consents")
        self._meta = self._env.open_db(b"meta")
        with self._env.begin(write=True, db=self._meta) as txn:
            stored = txn.get(b"kdf")
            if stored is None:
                stored = cbor2.dumps({"salt": os.urandom(16), "n": scrypt_n})
                txn.put(b"kdf", stored)
            parameters = cbor2.loads(stored)
        kdf = Scrypt(salt=parameters["salt"], length=32, n=parameters["n"], r=8, p=1)
        self._secret_key = kdf.derive(passphrase)

    def close(self) -> None:
        """Close the database."""
        self._env.close()

    # Secrets at rest.

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt a secret with AES-256-GCM, bound to `context` (the party_id)."""
        nonce = secrets.token_bytes(12)
        return nonce + AESGCM(self._secret_key).encrypt(nonce, plaintext, context)

    def unseal(self, sealed: bytes, context: bytes) -> bytes:
        """Decrypt what `seal` returned for the same context."""
        return AESGCM(self._secret_key).decrypt(sealed[:12], sealed[12:], context)

    def custody_passphrase(self, party_id: str) -> bytes:
        """Return the passphrase that encrypts the custody key of `party_id`.

        Derived from the service passphrase, so the service can always
        decrypt every custody key: see identity.custody.
        """
        message = b"custody/" + party_id.encode()
        return hmac.new(self._secret_key, message, hashlib.sha256).hexdigest().encode()

    # Records.

    def get(self, party_id: str) -> Record | None:
        """Return the record of `party_id`, or None if there is none."""
        with self._env.begin(db=self._parties) as txn:
            raw = txn.get(party_id.encode())
        return None if raw is None else cbor2.loads(raw)

    def find(self, label: str, value: str) -> str | None:
        """Return the party_id enrolled with this national_id or registration_number."""
        with self._env.begin(db=self._index) as txn:
            raw = txn.get(f"{label}:{value}".encode())
        return None if raw is None else bytes(raw).decode()

    def insert(self, party_id: str, record: Record, index: dict[str, str]) -> None:
        """Store a new party and its index rows in one transaction.

        Raises DuplicateEnrolmentError if an index row already exists, which
        closes the race between two enrolments of the same person.
        """
        with self._env.begin(write=True) as txn:
            for label, value in index.items():
                existing = txn.get(f"{label}:{value}".encode(), db=self._index)
                if existing is not None:
                    raise DuplicateEnrolmentError(
                        record["kind"], bytes(existing).decode()
                    )
            for label, value in index.items():
                txn.put(f"{label}:{value}".encode(), party_id.encode(), db=self._index)
            txn.put(party_id.encode(), cbor2.dumps(record), db=self._parties)

    def update(self, party_id: str, change: Callable[[Record], None]) -> Record:
        """Apply `change` to the record of `party_id` in one write transaction."""
        with self._env.begin(write=True, db=self._parties) as txn:
            raw = txn.get(party_id.encode())
            if raw is None:
                raise UnknownPartyError(party_id)
            record = cbor2.loads(raw)
            change(record)
            txn.put(party_id.encode(), cbor2.dumps(record))
        return record

    def update_with_consent(
        self,
        party_id: str,
        change: Callable[[Record], None],
        leaf_hash: bytes,
        salt: bytes,
    ) -> None:
        """Apply `change` and store a consent's salt in one write transaction."""
        with self._env.begin(write=True) as txn:
            raw = txn.get(party_id.encode(), db=self._parties)
            if raw is None:
                raise UnknownPartyError(party_id)
            record = cbor2.loads(raw)
            change(record)
            txn.put(party_id.encode(), cbor2.dumps(record), db=self._parties)
            txn.put(party_id.encode() + leaf_hash, salt, db=self._consents)

    def consent_salt(self, party_id: str, leaf_hash: bytes) -> bytes | None:
        """Return the salt stored for a consent entry, or None if there is none."""
        with self._env.begin(db=self._consents) as txn:
            raw = txn.get(party_id.encode() + leaf_hash)
        return None if raw is None else bytes(raw)

    def erase(self, party_id: str, index: dict[str, str]) -> None:
        """Delete the personal data, salts and secrets of `party_id`.

        NOTE: LMDB does not overwrite freed pages, so the old bytes stay in
        the file until later writes reuse those pages. A compacting copy
        (`lmdb.Environment.copy(path, compact=True)`) drops them at once.
        """
        with self._env.begin(write=True) as txn:
            raw = txn.get(party_id.encode(), db=self._parties)
            if raw is None:
                raise UnknownPartyError(party_id)
            record = cbor2.loads(raw)
            for label, value in index.items():
                txn.delete(f"{label}:{value}".encode(), db=self._index)
            prefix = party_id.encode()
            cursor = txn.cursor(db=self._consents)
            if cursor.set_range(prefix):
                while bytes(cursor.key()).startswith(prefix):
                    if not cursor.delete():
                        break
            kept = {"kind": record["kind"], "status": "erased"}
            txn.put(party_id.encode(), cbor2.dumps(kept), db=self._parties)
