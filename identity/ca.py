"""The service's certificate authority: a root, an issuing CA, revocation.

A CA lives in one folder:

    root.pem, issuing.pem   the CA certificates
    root.key, issuing.key   their private keys, PKCS#8 PEM encrypted under
                            the passphrase of the owning process
    ca.lmdb/                the serial numbers issued and revoked

Each issuance and revocation is one LMDB write transaction, committed with
sync before the method returns; a crash leaves either the whole record or
none. OCSP responses are built from that database on request. A CRL is
signed again as soon as the number of revocations changes. So a revocation
shows in both as soon as `revoke` returns, even one made by another process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import lmdb
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from identity import certificates, crl, ocsp
from identity.crl import Revocation
from identity.errors import CertificateStatusError, InvalidInputError
from identity.keys import (
    SigningKey,
    decrypt_private_key,
    encrypt_private_key,
    generate_key,
    sync_folder,
    write_new_file,
)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Return the current time in UTC; the default clock."""
    return datetime.now(UTC)


def _serial_key(serial_number: int) -> bytes:
    # RFC 5280 section 4.1.2.2: serial numbers have at most 20 octets.
    return serial_number.to_bytes(20, "big")


def _to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, UTC)


@dataclass(frozen=True)
class CaSettings:
    """Operator settings of the CA: its public URL and revocation data lifetimes.

    `base_url` is the public URL prefix under which identity.http serves
    /ca/, without its trailing slash. It goes into every certificate's CRL
    distribution point and OCSP URL.
    """

    base_url: str
    crl_lifetime: timedelta = timedelta(days=1)
    ocsp_lifetime: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise InvalidInputError(
                f"invalid CA base_url {self.base_url!r}: expected an http:// or "
                "https:// URL, because validators fetch CRLs and OCSP over HTTP"
            )
        # A trailing slash would double the one that starts each /ca/ path.
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))


class CertificateAuthority:
    """A two-level CA that issues and revokes end-entity signing certificates."""

    def __init__(
        self,
        folder: Path,
        root: x509.Certificate,
        issuing: x509.Certificate,
        issuing_key: SigningKey,
        root_key: SigningKey,
        settings: CaSettings,
        clock: Clock,
    ) -> None:
        self.folder = folder
        self.root_certificate = root
        self.issuing_certificate = issuing
        self._issuing_key = issuing_key
        self._root_key = root_key
        self.settings = settings
        self._clock = clock
        self._env = lmdb.open(str(folder / "ca.lmdb"), max_dbs=4, map_size=1 << 30)
        self._issued = self._env.open_db(b"issued")
        self._revoked = self._env.open_db(b"revoked")
        self._last_crl_number = 0
        # Per CRL name: (revocation count, thisUpdate, DER).
        self._crl_cache: dict[str, tuple[int, datetime, bytes]] = {}

    @classmethod
    def create(
        cls,
        folder: Path,
        passphrase: bytes,
        settings: CaSettings,
        organisation: str = "Contract Ledger",
        key_type: str = "ec-p256",
        root_validity: timedelta = timedelta(days=20 * 365),
        issuing_validity: timedelta = timedelta(days=10 * 365),
        clock: Clock = utc_now,
    ) -> CertificateAuthority:
        """Create a new CA in `folder`, which must not contain one yet."""
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / "root.pem").exists():
            raise InvalidInputError(f"a CA already exists in {folder}; open it instead")

        now = clock().replace(microsecond=0)
        root_key = generate_key(key_type)
        root = certificates.build_root(
            root_key,
            certificates.ca_name(organisation, f"{organisation} Root CA"),
            now,
            now + root_validity,
        )

        issuing_key = generate_key(key_type)
        issuing = certificates.build_issuing(
            issuing_key,
            certificates.ca_name(organisation, f"{organisation} Issuing CA"),
            root,
            root_key,
            now,
            min(now + issuing_validity, root.not_valid_after_utc),
            settings.base_url,
        )

        # Keys first, certificates last: root.pem marks a complete CA.
        pem = serialization.Encoding.PEM
        try:
            write_new_file(
                folder / "root.key", encrypt_private_key(root_key, passphrase)
            )
            write_new_file(
                folder / "issuing.key", encrypt_private_key(issuing_key, passphrase)
            )
            write_new_file(folder / "issuing.pem", issuing.public_bytes(pem), 0o644)
            write_new_file(folder / "root.pem", root.public_bytes(pem), 0o644)
        except FileExistsError as error:
            raise InvalidInputError(
                f"{error.filename} is left from an interrupted CA creation; "
                f"remove the key and certificate files in {folder} and retry"
            ) from error
        sync_folder(folder)
        return cls(folder, root, issuing, issuing_key, root_key, settings, clock)

    @classmethod
    def open(
        cls,
        folder: Path,
        passphrase: bytes,
        settings: CaSettings,
        clock: Clock = utc_now,
    ) -> CertificateAuthority:
        """Open the CA that `create` made in `folder`."""
        try:
            root = x509.load_pem_x509_certificate((folder / "root.pem").read_bytes())
            issuing = x509.load_pem_x509_certificate(
                (folder / "issuing.pem").read_bytes()
            )
            root_key = decrypt_private_key(
                (folder / "root.key").read_bytes(), passphrase
            )
            issuing_key = decrypt_private_key(
                (folder / "issuing.key").read_bytes(), passphrase
            )
        except FileNotFoundError as error:
            raise InvalidInputError(
                f"no CA in {folder}: {error.filename} is missing; create one first"
            ) from error
        except ValueError as error:
            raise InvalidInputError(
                f"cannot decrypt the CA keys in {folder}; check LEDGER_PASSPHRASE"
            ) from error
        return cls(folder, root, issuing, issuing_key, root_key, settings, clock)

    def close(self) -> None:
        """Close the CA database."""
        self._env.close()

    @property
    def chain(self) -> list[x509.Certificate]:
        """The CA certificates above a signer, issuing CA first, then the root."""
        return [self.issuing_certificate, self.root_certificate]

    def issue(
        self,
        subject: x509.Name,
        public_key: certificates.PublicKey,
        validity: timedelta,
    ) -> x509.Certificate:
        """Issue a signing certificate valid from now for `validity` (> 0).

        The validity is cut at the issuing CA's own expiry, because a
        certificate cannot outlive its issuer's.
        """
        if validity <= timedelta(0):
            raise InvalidInputError(
                f"certificate validity must be positive, not {validity}"
            )
        not_before = self._clock().replace(microsecond=0)
        not_after = min(
            not_before + validity, self.issuing_certificate.not_valid_after_utc
        )
        if not_after <= not_before:
            raise CertificateStatusError(
                "the issuing CA has expired; create a new CA before enrolling"
            )
        serial_number = x509.random_serial_number()
        certificate = certificates.build_end_entity(
            public_key,
            subject,
            self.issuing_certificate,
            self._issuing_key,
            serial_number,
            not_before,
            not_after,
            self.settings.base_url,
        )
        with self._env.begin(write=True, db=self._issued) as txn:
            txn.put(
                _serial_key(serial_number),
                cbor2.dumps({"not_after": _to_ms(not_after)}),
            )
        return certificate

    def is_issued(self, serial_number: int) -> bool:
        """Return True if this CA issued a certificate with `serial_number`."""
        with self._env.begin(db=self._issued) as txn:
            return txn.get(_serial_key(serial_number)) is not None

    def revoke(
        self,
        serial_number: int,
        reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
    ) -> Revocation:
        """Revoke the certificate with `serial_number`; revoking twice keeps the first."""
        existing = self.revocation(serial_number)
        if existing is not None:
            return existing
        if not self.is_issued(serial_number):
            raise InvalidInputError(
                f"serial number {serial_number:x} was not issued by this CA"
            )
        revocation = Revocation(
            serial_number, self._clock().replace(microsecond=0), reason
        )
        with self._env.begin(write=True, db=self._revoked) as txn:
            txn.put(
                _serial_key(serial_number),
                cbor2.dumps(
                    {"time": _to_ms(revocation.revocation_time), "reason": reason.value}
                ),
            )
        return revocation

    def revocation(self, serial_number: int) -> Revocation | None:
        """Return the revocation of `serial_number`, or None if it is not revoked."""
        with self._env.begin(db=self._revoked) as txn:
            raw = txn.get(_serial_key(serial_number))
        if raw is None:
            return None
        record = cbor2.loads(raw)
        return Revocation(
            serial_number, _from_ms(record["time"]), x509.ReasonFlags(record["reason"])
        )

    def _revocations(self) -> list[Revocation]:
        with self._env.begin(db=self._revoked) as txn:
            rows = [(bytes(key), cbor2.loads(value)) for key, value in txn.cursor()]
        return [
            Revocation(
                int.from_bytes(key, "big"),
                _from_ms(record["time"]),
                x509.ReasonFlags(record["reason"]),
            )
            for key, record in rows
        ]

    def _next_crl_number(self, now: datetime) -> int:
        # The CRL number is the issue time in seconds, bumped by one when two
        # CRLs fall in the same second, so it always increases while the
        # clock does (RFC 5280 section 5.2.3).
        number = max(int(now.timestamp()), self._last_crl_number + 1)
        self._last_crl_number = number
        return number

    def issuing_crl(self) -> bytes:
        """Return the DER CRL of the certificates the issuing CA revoked.

        The CRL is signed again whenever the number of revocations changed
        (also by another process) or half its lifetime has passed, and
        returned from a cache otherwise, so serving it costs no signature
        per request.
        """
        with self._env.begin(db=self._revoked) as txn:
            count = txn.stat(self._revoked)["entries"]
        return self._cached_crl(
            "issuing", count, self.issuing_certificate, self._issuing_key
        )

    def root_crl(self) -> bytes:
        """Return the DER CRL of the root, which covers the issuing CA.

        NOTE: this code never revokes the issuing CA, so the list is empty;
        replacing a compromised issuing CA means creating a new CA.
        """
        return self._cached_crl("root", 0, self.root_certificate, self._root_key)

    def _cached_crl(
        self, name: str, count: int, issuer: x509.Certificate, key: SigningKey
    ) -> bytes:
        now = self._clock().replace(microsecond=0)
        cached = self._crl_cache.get(name)
        if cached is not None:
            cached_count, this_update, der = cached
            fresh = now < this_update + self.settings.crl_lifetime / 2
            if cached_count == count and this_update <= now and fresh:
                return der
        revocations = self._revocations() if name == "issuing" else []
        der = crl.build_crl(
            issuer,
            key,
            revocations,
            self._next_crl_number(now),
            now,
            now + self.settings.crl_lifetime,
        )
        self._crl_cache[name] = (count, now, der)
        return der

    def ocsp_response(self, request_der: bytes) -> bytes:
        """Build the DER OCSP response to a request about an issuing CA certificate."""

        def lookup(serial_number: int) -> tuple[str, Revocation | None]:
            revocation = self.revocation(serial_number)
            if revocation is not None:
                return "revoked", revocation
            if self.is_issued(serial_number):
                return "good", None
            return "unknown", None

        return ocsp.respond(
            request_der,
            self.issuing_certificate,
            self._issuing_key,
            lookup,
            self._clock(),
            self.settings.ocsp_lifetime,
        )
