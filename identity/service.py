"""IdentityService: enrolment, TOTP consent, key custody, revocation, erasure.

Every step that changes a party appends one entry to the log through an
`Appender` and chains it to the party's previous entry by `prev`. Bad input
raises an `IdentityError` before anything is appended or stored. Each step
checks everything, appends the entry, then stores the private record. A
crash between the last two leaves an entry without a private record. That
entry contains no personal data, and its party_id stays unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from identity import certificates, consent, custody, entries, totp
from identity.ca import CertificateAuthority, Clock, utc_now
from identity.details import EnterpriseDetails, PersonDetails, check_party_id
from identity.errors import (
    CertificateStatusError,
    CustodyError,
    DuplicateEnrolmentError,
    InvalidInputError,
    ProofingError,
    UnknownPartyError,
)
from identity.keys import decrypt_private_key, encrypt_private_key, generate_key
from identity.proofing import ProofingClaims, ProofingResult, ProofingVerifier
from identity.store import IdentityStore, Record
from ledger.appender import Appender, AppendResult

logger = logging.getLogger("identity")

_DER = serialization.Encoding.DER
# The index label of each kind: national_id or registration_number.
_INDEX_LABEL = {"person": "national_id", "enterprise": "registration_number"}


@dataclass(frozen=True)
class ServiceSettings:
    """Operator settings: certificate lifetime, key type, TOTP policy."""

    certificate_validity: timedelta = timedelta(days=365)
    key_type: str = "ec-p256"
    totp_issuer: str = "Contract Ledger"
    totp_policy: consent.TotpPolicy = field(default_factory=consent.TotpPolicy)


@dataclass(frozen=True)
class Party:
    """An enrolled person or enterprise as the other packages see it."""

    party_id: str
    kind: str
    certificate: x509.Certificate
    chain: list[x509.Certificate]
    custody: str
    # The leaf hash of the party's latest entry in the log.
    leaf_hash: bytes


@dataclass(frozen=True)
class TotpProvisioning:
    """The otpauth:// URI and its QR code, for a signer's authenticator app."""

    uri: str
    qr_png: bytes = field(repr=False)


@dataclass
class _PendingEnrolment:
    kind: str
    details: PersonDetails | EnterpriseDetails
    certificate: x509.Certificate | None
    validity: timedelta
    expires: datetime


@dataclass
class _HeldLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The tasks that hold or await the lock. At 0 the lock is dropped.
    users: int = 0


class _KeyedLocks:
    """One asyncio.Lock per key, created on first use and dropped when unused."""

    def __init__(self) -> None:
        self._locks: dict[str, _HeldLock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of `key` for the body of an `async with` block."""
        keyed_lock = self._locks.setdefault(key, _HeldLock())
        keyed_lock.users += 1
        try:
            async with keyed_lock.lock:
                yield
        finally:
            keyed_lock.users -= 1
            if keyed_lock.users == 0:
                del self._locks[key]

    def __len__(self) -> int:
        """Return how many keys have a task holding or awaiting their lock."""
        return len(self._locks)


class IdentityService:
    """The identity service over its private store, its CA and the log."""

    def __init__(
        self,
        store: IdentityStore,
        ca: CertificateAuthority,
        appender: Appender,
        verifier: ProofingVerifier,
        settings: ServiceSettings | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._ca = ca
        self._appender = appender
        self._verifier = verifier
        self._settings = settings or ServiceSettings()
        self._clock = clock
        # NOTE: pending enrolments live in memory, so a restart between
        # begin and complete loses them and the party must begin again.
        self._pending: dict[str, _PendingEnrolment] = {}
        # One writer at a time per party, so that each entry's `prev` is the
        # party's latest leaf hash, a TOTP step is never accepted twice and
        # failure counts add up. Different parties proceed concurrently.
        self._party_locks = _KeyedLocks()
        # One enrolment at a time per national_id or registration_number.
        self._enrolment_locks = _KeyedLocks()

    # Enrolment.

    async def begin_person_enrolment(
        self,
        details: PersonDetails,
        channel: str = "email",
        certificate: x509.Certificate | None = None,
        validity: timedelta | None = None,
    ) -> str:
        """Check a person's details and start proofing; return the challenge_id.

        The verifier sends a code to the person's e-mail address or phone
        (`channel`). Pass `certificate` to register a certificate the person
        keeps elsewhere instead of having the service generate a key.
        """
        details = details.normalised()
        self._check_not_enrolled("person", details.national_id)
        address = details.email if channel == "email" else details.phone
        claims = ProofingClaims("person", details.national_id, channel, address)
        return await self._begin("person", details, claims, certificate, validity)

    async def begin_enterprise_enrolment(
        self,
        details: EnterpriseDetails,
        channel: str = "email",
        certificate: x509.Certificate | None = None,
        validity: timedelta | None = None,
    ) -> str:
        """Check an enterprise's details and start proofing; return the challenge_id.

        The code goes to the signatory, an enrolled person.
        """
        details = details.normalised()
        self._check_not_enrolled("enterprise", details.registration_number)
        signatory = self._active_record(details.signatory)
        if signatory["kind"] != "person":
            raise InvalidInputError(
                f"signatory {details.signatory} is an enterprise; name an enrolled person"
            )
        if signatory["status"] != "active":
            raise CertificateStatusError(
                f"signatory {details.signatory} is {signatory['status']}; "
                "name a person whose certificate is valid"
            )
        fields = signatory["fields"]
        address = fields["email"] if channel == "email" else fields["phone"]
        claims = ProofingClaims(
            "enterprise", details.registration_number, channel, address
        )
        return await self._begin("enterprise", details, claims, certificate, validity)

    async def _begin(
        self,
        kind: str,
        details: PersonDetails | EnterpriseDetails,
        claims: ProofingClaims,
        certificate: x509.Certificate | None,
        validity: timedelta | None,
    ) -> str:
        if claims.channel not in ("email", "phone"):
            raise InvalidInputError(
                f"invalid proofing channel {claims.channel!r}: use email or phone"
            )
        if validity is None:
            validity = self._settings.certificate_validity
        if validity <= timedelta(0):
            raise InvalidInputError(
                f"certificate validity must be positive, not {validity}"
            )
        if certificate is not None:
            if not isinstance(certificate, x509.Certificate):
                raise InvalidInputError(
                    "certificate must be a cryptography x509.Certificate; "
                    "load PEM or DER with x509.load_pem_x509_certificate"
                )
            # NOTE: a brought certificate is checked for its validity period
            # and key usage only. Its chain and revocation status are left to
            # the validator of the signatures it makes.
            _check_signing_certificate(certificate, self._clock())
        challenge_id = await self._verifier.begin(claims)
        now = self._clock()
        self._pending = {k: v for k, v in self._pending.items() if v.expires > now}
        self._pending[challenge_id] = _PendingEnrolment(
            kind, details, certificate, validity, now + timedelta(hours=1)
        )
        return challenge_id

    async def complete_enrolment(self, challenge_id: str, code: str) -> Party:
        """Finish proofing with the code the party received, and enrol the party.

        Issues the certificate (or registers the one brought), appends the
        `enrol.person` or `enrol.enterprise` entry and stores the personal
        fields with their salts.
        """
        pending = self._pending.get(challenge_id)
        if pending is None or pending.expires <= self._clock():
            raise ProofingError(
                f"enrolment {challenge_id!r} not found or expired; begin it again"
            )
        result = self._verifier.complete(challenge_id, code)
        del self._pending[challenge_id]

        details = pending.details
        if isinstance(details, PersonDetails):
            index_key = f"national_id:{details.national_id}"
            async with self._enrolment_locks.hold(index_key):
                return await self._enrol(pending, result)
        index_key = f"registration_number:{details.registration_number}"
        # The signatory's lock keeps it from being revoked or erased while
        # the enterprise it signs for is enrolled. This service takes locks in
        # this order only (enrolment, then party), so no deadlock can form.
        async with (
            self._enrolment_locks.hold(index_key),
            self._party_locks.hold(details.signatory),
        ):
            return await self._enrol(pending, result)

    async def _enrol(self, pending: _PendingEnrolment, result: ProofingResult) -> Party:
        # 1. Check again under the enrolment lock: the same person may have
        #    completed another enrolment since this one began.
        details = pending.details
        index_value = (
            details.national_id
            if isinstance(details, PersonDetails)
            else details.registration_number
        )
        self._check_not_enrolled(pending.kind, index_value)
        party_id = secrets.token_hex(16)

        # 2. The certificate: issued here with a new custody key, or brought.
        encrypted_key = None
        if pending.certificate is None:
            # Key generation (RSA-3072 above all) and encryption run in a
            # worker thread so that the event loop keeps serving other parties.
            signing_key = await asyncio.to_thread(generate_key, self._settings.key_type)
            encrypted_key = await asyncio.to_thread(
                encrypt_private_key,
                signing_key,
                self._store.custody_passphrase(party_id),
            )
            certificate = self._ca.issue(
                self._subject(details, party_id),
                signing_key.public_key(),
                pending.validity,
            )
            custody_kind = custody.SERVICE
            chain = self._ca.chain
        else:
            certificate = pending.certificate
            custody_kind = custody.EXTERNAL
            chain = []
        certificate_der = certificate.public_bytes(_DER)

        # 3. The entry: commitments, proofing result, fingerprint.
        fields = details.fields()
        salts = entries.new_salts(list(fields))
        signatory = (
            details.signatory if isinstance(details, EnterpriseDetails) else None
        )
        entry = entries.enrolment_entry(
            pending.kind,
            party_id,
            entries.commitments(fields, salts),
            result,
            certificate_der,
            custody_kind,
            self._clock(),
            signatory=signatory,
        )
        appended = await self._appender.append(entries.encode(entry))

        # 4. The private record.
        record: Record = {
            "kind": pending.kind,
            "status": "active",
            "fields": fields,
            "salts": salts,
            "certificate": certificate_der,
            "chain": [c.public_bytes(_DER) for c in chain],
            "custody": custody_kind,
            "key": None,
            "totp": None,
            "last_leaf_hash": appended.leaf_hash,
        }
        if signatory is not None:
            record["signatory"] = signatory
        if encrypted_key is not None:
            record["key"] = encrypted_key
        self._store.insert(party_id, record, {_INDEX_LABEL[pending.kind]: index_value})
        logger.info(
            "enrolled %s party_id=%s leaf_index=%d custody=%s",
            pending.kind,
            party_id,
            appended.leaf_index,
            custody_kind,
        )
        return Party(
            party_id, pending.kind, certificate, chain, custody_kind, appended.leaf_hash
        )

    def _subject(
        self, details: PersonDetails | EnterpriseDetails, party_id: str
    ) -> x509.Name:
        if isinstance(details, PersonDetails):
            return certificates.person_subject(details.name, party_id)
        signatory = self._active_record(details.signatory)
        return certificates.enterprise_subject(
            signatory["fields"]["name"],
            details.legal_name,
            details.registration_number,
            party_id,
        )

    def _check_not_enrolled(self, kind: str, value: str) -> None:
        existing = self._store.find(_INDEX_LABEL[kind], value)
        if existing is not None:
            raise DuplicateEnrolmentError(kind, existing)

    # Reading parties.

    def _active_record(self, party_id: str) -> Record:
        record = self._store.get(check_party_id(party_id))
        if record is None or record["status"] == "erased":
            raise UnknownPartyError(party_id)
        return record

    def party(self, party_id: str) -> Party:
        """Return the enrolled party `party_id`; raises UnknownPartyError."""
        record = self._active_record(party_id)
        return Party(
            party_id,
            record["kind"],
            x509.load_der_x509_certificate(record["certificate"]),
            [x509.load_der_x509_certificate(der) for der in record["chain"]],
            record["custody"],
            record["last_leaf_hash"],
        )

    def commitment_openings(self, party_id: str) -> dict[str, tuple[str, bytes]]:
        """Return each committed field as (value, salt), for an evidence bundle."""
        record = self._active_record(party_id)
        return {
            label: (value, record["salts"][label])
            for label, value in record["fields"].items()
        }

    def consent_opening(
        self, party_id: str, leaf_hash: bytes
    ) -> tuple[str, str, bytes]:
        """Return (label, value, salt) that open the `signer` commitment of a consent.

        `leaf_hash` names the consent entry. The label is `name` for a person
        and `legal_name` for an enterprise. Raises InvalidInputError if the
        party has no consent entry with that leaf hash.
        """
        record = self._active_record(party_id)
        label, value = _signer_field(record)
        salt = self._store.consent_salt(party_id, leaf_hash)
        if salt is not None:
            return label, value, salt
        raise InvalidInputError(
            f"party {party_id} has no consent entry with leaf_hash {leaf_hash.hex()}"
        )

    # TOTP consent.

    def provision_totp(
        self, party_id: str, account: str | None = None
    ) -> TotpProvisioning:
        """Create the party's TOTP secret and return its otpauth:// URI and QR code.

        Replaces any earlier secret, which stops working at once. `account`
        is the label shown in the authenticator app; the party_id by default.
        """
        record = self._active_record(party_id)
        if record["status"] != "active":
            raise CertificateStatusError(f"party {party_id} is {record['status']}")
        secret = totp.generate_secret()
        sealed = self._store.seal(secret, party_id.encode())
        self._store.update(party_id, lambda r: r.update(totp=consent.new_state(sealed)))
        policy = self._settings.totp_policy
        uri = totp.provisioning_uri(
            secret,
            account or party_id,
            self._settings.totp_issuer,
            policy.period,
            policy.digits,
        )
        return TotpProvisioning(uri, totp.qr_code_png(uri))

    async def confirm_consent(
        self, party_id: str, code: str, document_digest: bytes
    ) -> AppendResult:
        """Check a TOTP code and log the party's consent to sign `document_digest`.

        `document_digest` is the 32-byte SHA-256 of the document. This is the
        whole consent step for a party that signs client-side; custody
        signers call `unlock_signing_key` instead.
        """
        async with self._party_locks.hold(party_id):
            record, certificate = self._signable(party_id, document_digest)
            return await self._consent(
                party_id, record, certificate, code, document_digest
            )

    async def unlock_signing_key(
        self, party_id: str, code: str, document_digest: bytes
    ) -> custody.UnlockedKey:
        """Check a TOTP code, log consent, and return the decrypted key for one signature.

        Raises UnknownPartyError, CustodyError (the party signs
        client-side), CertificateStatusError (expired or revoked),
        InvalidInputError (digest not 32 bytes) or ConsentError; in each
        case nothing is appended. See identity.custody for what does and
        does not protect the key.
        """
        async with self._party_locks.hold(party_id):
            record, certificate = self._signable(party_id, document_digest)
            if record["custody"] != custody.SERVICE:
                raise CustodyError(
                    f"party {party_id} keeps its own key; sign client-side and "
                    "call confirm_consent"
                )
            appended = await self._consent(
                party_id, record, certificate, code, document_digest
            )
            # Decrypting the PKCS#8 key derives its key from the passphrase,
            # CPU work that runs in a worker thread so that the event loop
            # keeps serving other parties meanwhile. It stays under the
            # party's lock, so that no revocation slips in between the
            # consent and the handing out of the key.
            private_key = await asyncio.to_thread(
                decrypt_private_key,
                record["key"],
                self._store.custody_passphrase(party_id),
            )
        chain = [x509.load_der_x509_certificate(der) for der in record["chain"]]
        return custody.UnlockedKey(private_key, certificate, chain, appended)

    def _signable(
        self, party_id: str, document_digest: bytes
    ) -> tuple[Record, x509.Certificate]:
        if not isinstance(document_digest, bytes) or len(document_digest) != 32:
            raise InvalidInputError(
                "document_digest must be the 32-byte SHA-256 of the document"
            )
        record = self._active_record(party_id)
        if record["status"] == "revoked":
            raise CertificateStatusError(
                f"the certificate of party {party_id} is revoked; enrol again"
            )
        certificate = x509.load_der_x509_certificate(record["certificate"])
        _check_signing_certificate(certificate, self._clock())
        if record["totp"] is None:
            raise InvalidInputError(
                f"party {party_id} has no TOTP secret; call provision_totp first"
            )
        return record, certificate

    async def _consent(
        self,
        party_id: str,
        record: Record,
        certificate: x509.Certificate,
        code: str,
        document_digest: bytes,
    ) -> AppendResult:
        # 1. Check the code and store the new TOTP state before acting on it,
        #    so failures count and a used code stays used.
        now = self._clock()
        secret = self._store.unseal(record["totp"]["secret"], party_id.encode())
        outcome = consent.check_code(
            record["totp"], secret, code, now.timestamp(), self._settings.totp_policy
        )
        self._store.update(party_id, lambda r: r.update(totp=outcome.state))
        if outcome.error is not None:
            logger.warning(
                "rejected one-time password party_id=%s: %s", party_id, outcome.error
            )
            raise outcome.error

        # 2. Append the consent entry, with a commitment to the signer's name
        #    under a salt of its own.
        label, value = _signer_field(record)
        salt = entries.new_salts([label])[label]
        entry = entries.consent_entry(
            party_id,
            record["certificate"],
            document_digest,
            entries.commit(label, value, salt),
            now,
            record["last_leaf_hash"],
        )
        appended = await self._appender.append(entries.encode(entry))

        def remember(r: Record) -> None:
            r["last_leaf_hash"] = appended.leaf_hash

        self._store.update_with_consent(party_id, remember, appended.leaf_hash, salt)
        logger.info("consent party_id=%s leaf_index=%d", party_id, appended.leaf_index)
        return appended

    # Revocation and erasure.

    async def revoke(
        self, party_id: str, reason: x509.ReasonFlags = x509.ReasonFlags.unspecified
    ) -> AppendResult | None:
        """Revoke the party's certificate and log a `revoke` entry.

        Returns None if it was already revoked. A certificate the party
        brought was not issued here, so only the log and the store record
        its revocation.
        """
        async with self._party_locks.hold(party_id):
            return await self._revoke(party_id, reason)

    async def _revoke(
        self, party_id: str, reason: x509.ReasonFlags
    ) -> AppendResult | None:
        record = self._active_record(party_id)
        if record["status"] == "revoked":
            return None
        certificate = x509.load_der_x509_certificate(record["certificate"])
        entry = entries.revoke_entry(
            party_id,
            record["certificate"],
            reason.name,
            self._clock(),
            record["last_leaf_hash"],
        )
        if record["custody"] == custody.SERVICE:
            self._ca.revoke(certificate.serial_number, reason)
        appended = await self._appender.append(entries.encode(entry))

        def mark(r: Record) -> None:
            r["status"] = "revoked"
            r["key"] = None
            r["last_leaf_hash"] = appended.leaf_hash

        self._store.update(party_id, mark)
        logger.info("revoked party_id=%s leaf_index=%d", party_id, appended.leaf_index)
        return appended

    async def erase(self, party_id: str) -> None:
        """Erase a party on request: revoke, then delete its personal data and salts.

        The log keeps its entries and stays valid; without the salts no one
        can link their commitments to the person.
        """
        async with self._party_locks.hold(party_id):
            record = self._active_record(party_id)
            await self._revoke(party_id, x509.ReasonFlags.cessation_of_operation)
            label = _INDEX_LABEL[record["kind"]]
            self._store.erase(party_id, {label: record["fields"][label]})
        logger.info("erased party_id=%s", party_id)


def _signer_field(record: Record) -> tuple[str, str]:
    """Return the label and value that a consent's signer commitment covers."""
    if record["kind"] == "person":
        return "name", record["fields"]["name"]
    return "legal_name", record["fields"]["legal_name"]


def _check_signing_certificate(certificate: x509.Certificate, now: datetime) -> None:
    """Raise CertificateStatusError unless `certificate` can sign at `now`."""
    if now < certificate.not_valid_before_utc:
        raise CertificateStatusError(
            f"certificate {certificate.serial_number:x} is not valid before "
            f"{certificate.not_valid_before_utc.isoformat()}"
        )
    if now >= certificate.not_valid_after_utc:
        raise CertificateStatusError(
            f"certificate {certificate.serial_number:x} expired at "
            f"{certificate.not_valid_after_utc.isoformat()}; enrol again for a new one"
        )
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise CertificateStatusError(
            f"certificate {certificate.serial_number:x} allows neither "
            "digitalSignature nor nonRepudiation"
        )
