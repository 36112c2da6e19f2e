"""Verify an evidence bundle offline, as a numbered list of checks.

The verifier needs no network and no secret: only the bundle and, ideally,
trust anchors obtained independently of the service: the trust policy (C2SP
tlog-policy), the TSA root and the signing CA root. Each anchor not given is
taken from the bundle, with a warning that it is self-asserted. Each check
records passed or failed with its reason, "not checked" when it could not
look at its evidence (an encrypted PDF without its password), or "not run"
when an earlier check it depends on failed. The bundle is valid only when
every check passed.

Checks, in order (docs/evidence.md explains each):

    1. bundle layout
    2. trust policy
    3. checkpoint signed by the log
    4. witness cosignatures meet the quorum
    5. checkpoint time-stamp token
    6. inclusion of every entry in the checkpoint's tree
    7. contract hash chain and step order
    8. document digest matches the log
    9. PDF signatures and signer certificates
   10. disclosed salts open their commitments
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.results import Check, KeyFingerprint, TimelineStep, VerificationResult

STEP_ORDER = ("upload", "sign", "send", "countersign", "store")

TITLES = (
    "Bundle layout",
    "Trust policy",
    "Checkpoint signed by the log key",
    "Witness cosignatures meet the quorum",
    "Checkpoint time-stamp token",
    "Inclusion of every entry in the checkpoint",
    "Contract hash chain and step order",
    "Document digest matches the log",
    "PDF signatures and signer certificates",
    "Disclosed salts open their commitments",
)


class CheckFailed(Exception):
    """A check did not hold; the message is the reason shown in the report."""


class CheckNotMade(Exception):
    """A check could not look at its evidence; the message names what to pass."""


@dataclass(frozen=True)
class TrustAnchor:
    """A root certificate (PEM) the verifier trusts, and where it came from."""

    pem: bytes
    source: str


@dataclass
class _State:
    """Facts that earlier checks established for the later ones."""

    bundle: Any = None
    policy: Any = None
    checkpoint: Any = None
    checkpoint_note: bytes = b""
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    leaf_hashes: dict[int, bytes] = field(default_factory=dict)
    contract_chain: list[int] = field(default_factory=list)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _iso_millis(value: Any) -> str:
    if not isinstance(value, int):
        return "unknown"
    moment = dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    return moment.isoformat(timespec="seconds")


def _fingerprint(data: bytes) -> str:
    return "SHA-256:" + hashlib.sha256(data).hexdigest()


def _key_fingerprint(public_key: Any) -> str:
    """Return the SHA-256 of an Ed25519 public key's 32 raw bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return _fingerprint(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))


class BundleVerifier:
    """Runs the numbered checks over one evidence bundle."""

    def __init__(
        self,
        data: bytes,
        *,
        source: str,
        policy_text: bytes | None = None,
        policy_source: str | None = None,
        tsa_root: TrustAnchor | None = None,
        ca_root: TrustAnchor | None = None,
        password: str | None = None,
    ) -> None:
        self.data = data
        self.password = password
        self.policy_text = policy_text
        self.tsa_root = tsa_root
        self.ca_root = ca_root
        self.state = _State()
        self.result = VerificationResult(source=source)
        if policy_text is not None:
            self.result.policy_source = policy_source or "given by the verifier"
        if tsa_root is not None:
            self.result.tsa_root_source = tsa_root.source
        if ca_root is not None:
            self.result.ca_root_source = ca_root.source

    def run(self) -> VerificationResult:
        """Run every check and return the result.

        A check that fails records its reason in the result instead of raising.
        """
        steps: list[Callable[[Check], None]] = [
            self.check_layout,
            self.check_policy,
            self.check_checkpoint_signature,
            self.check_cosignatures,
            self.check_time_stamp,
            self.check_inclusion,
            self.check_chain,
            self.check_document,
            self.check_pdf_signatures,
            self.check_salts,
        ]
        # Each check lists the earlier checks whose facts it uses.
        needs = {
            1: [],
            2: [1],
            3: [2],
            4: [3],
            5: [3],
            6: [3],
            7: [6],
            8: [7],
            9: [7],
            10: [6],
        }
        checks = self.result.checks
        for number, (title, step) in enumerate(zip(TITLES, steps), start=1):
            check = Check(number, title)
            checks.append(check)
            blocked = [n for n in needs[number] if not checks[n - 1].passed]
            if blocked:
                check.reason = f"not run because check {blocked[0]} did not pass"
                continue
            try:
                step(check)
            except CheckFailed as error:
                check.status = "failed"
                check.reason = str(error)
            except CheckNotMade as error:
                check.status = "not checked"
                check.reason = str(error)
            else:
                check.status = "passed"
        return self.result

    # 1. The bundle's layout.
    def check_layout(self, check: Check) -> None:
        from ledger.evidence import EvidenceError, read_bundle

        try:
            bundle = read_bundle(self.data)
        except EvidenceError as error:
            raise CheckFailed(f"not a valid evidence bundle: {error}") from error
        self.state.bundle = bundle
        self.result.contract = bundle.contract
        self.result.origin = bundle.origin
        self.result.document_sha256 = hashlib.sha256(bundle.document).hexdigest()
        self._bundle_anchors(bundle)
        if not bundle.entries:
            raise CheckFailed("the bundle contains no log entry")
        check.reason = (
            f"{len(bundle.entries)} entries, document of {len(bundle.document)} bytes"
        )

    def _bundle_anchors(self, bundle: Any) -> None:
        """Fall back to the bundle's own roots for those the verifier did not give.

        A root from the bundle is self-asserted: the service that built the
        bundle chose it, so it could have issued its own TSA root and dated
        the checkpoint as it liked.
        """
        if self.tsa_root is None:
            self.tsa_root = TrustAnchor(
                bundle.tsa_root_pem, "the bundle's own tsa/root.pem (self-asserted)"
            )
            self.result.tsa_root_source = self.tsa_root.source
            self.result.warnings.append(
                "The TSA root comes from the bundle itself, so it is "
                "self-asserted by the service that built it, which could date "
                "the checkpoint as it likes. Pass --tsa-root with the TSA root "
                "obtained independently to rely on the checkpoint time."
            )
        if self.ca_root is None:
            self.ca_root = TrustAnchor(
                bundle.ca_root_pem, "the bundle's own certs/root.pem (self-asserted)"
            )
            self.result.ca_root_source = self.ca_root.source
            self.result.warnings.append(
                "The signing CA root comes from the bundle itself, so it is "
                "self-asserted by the service that built it, which could issue "
                "signer certificates as it likes. Pass --ca-root with the CA "
                "root obtained independently to rely on who signed."
            )

    # 2. The trust policy: given by the verifier, or the bundle's own.
    def check_policy(self, check: Check) -> None:
        from ledger.policy import PolicyError, parse_policy

        bundle = self.state.bundle
        text = self.policy_text
        if text is None:
            text = bundle.policy
            self.result.policy_source = "the bundle's own policy.txt (self-asserted)"
            self.result.warnings.append(
                "The trust policy comes from the bundle itself, so it is "
                "self-asserted by the service that built it. Pass --policy with "
                "a policy obtained independently to rely on the result."
            )
        try:
            policy = parse_policy(text)
        except PolicyError as error:
            raise CheckFailed(f"trust policy is invalid: {error}") from error
        self.state.policy = policy
        for log in policy.logs:
            self.result.keys.append(
                KeyFingerprint(
                    "log key", log.vkey, _key_fingerprint(log.verifier.public_key)
                )
            )
        for witness in policy.witnesses:
            self.result.keys.append(
                KeyFingerprint(
                    f"witness {witness.name}",
                    witness.vkey,
                    _key_fingerprint(witness.verifier.public_key),
                )
            )
        check.reason = (
            f"{len(policy.logs)} log key(s), {len(policy.witnesses)} witness "
            f"key(s), quorum {policy.quorum_name!r}"
        )

    # 3. One checkpoint for every proof, signed by a log key of the policy.
    def check_checkpoint_signature(self, check: Check) -> None:
        from ledger.checkpoint import Checkpoint, CheckpointError
        from ledger.note import NoteError, parse_note
        from ledger.tlog_proof import TlogProofError, parse_tlog_proof

        notes = set()
        for logged in self.state.bundle.entries:
            try:
                proof = parse_tlog_proof(logged.tlog_proof)
            except TlogProofError as error:
                raise CheckFailed(
                    f"tlog-proof of leaf_index {logged.leaf_index} is malformed: {error}"
                ) from error
            if proof.index != logged.leaf_index:
                raise CheckFailed(
                    f"tlog-proof stored for leaf_index {logged.leaf_index} names "
                    f"index {proof.index}"
                )
            notes.add(proof.checkpoint)
        if len(notes) != 1:
            raise CheckFailed(
                f"the proofs use {len(notes)} different checkpoints; expected one"
            )
        note_bytes = notes.pop()
        try:
            note = parse_note(note_bytes)
            checkpoint = Checkpoint.parse(note.text)
        except (NoteError, CheckpointError) as error:
            raise CheckFailed(f"checkpoint note is malformed: {error}") from error
        if checkpoint.origin != self.state.bundle.origin:
            raise CheckFailed(
                f"checkpoint origin {checkpoint.origin!r} differs from the bundle's "
                f"origin {self.state.bundle.origin!r}"
            )

        # The policy's log key is named after the origin (C2SP tlog-policy).
        try:
            self.state.policy.verify_log_signature(note, checkpoint.origin)
        except NoteError as error:
            raise CheckFailed(
                f"the checkpoint is not signed by the policy's log key: {error}"
            ) from error
        self.state.checkpoint = checkpoint
        self.state.checkpoint_note = note_bytes
        self.result.tree_size = checkpoint.tree_size
        self.result.root_hash = _b64(checkpoint.root_hash)
        check.reason = (
            f"signed by the log key {checkpoint.origin}; origin "
            f"{checkpoint.origin}, tree_size {checkpoint.tree_size}"
        )

    # 4. Cosignatures of the policy's witnesses, up to its quorum.
    def check_cosignatures(self, check: Check) -> None:
        from ledger.note import NoteError, parse_note
        from ledger.policy import QuorumError

        note = parse_note(self.state.checkpoint_note)
        try:
            cosigners = self.state.policy.verify_quorum(note)
        except NoteError as error:
            raise CheckFailed(
                "a witness cosignature is invalid (forged, or made for another "
                f"checkpoint): {error}"
            ) from error
        except QuorumError as error:
            raise CheckFailed(str(error)) from error
        for name, timestamp in cosigners:
            moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
            check.details.append(f"cosigned by {name} at {moment.isoformat()}")
        check.reason = (
            f"{len(cosigners)} valid cosignature(s); quorum "
            f"{self.state.policy.quorum_name!r} met"
        )

    # 5. The checkpoint's time-stamp token from the TSA.
    def check_time_stamp(self, check: Check) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        from ledger.note import NoteError, parse_note
        from ledger.tsa.errors import TimeStampError
        from ledger.tsa.verify import verify_token

        bundle = self.state.bundle
        try:
            stamped = parse_note(bundle.checkpoint_stamped)
        except NoteError as error:
            raise CheckFailed(
                f"checkpoint.stamped is not a signed note: {error}"
            ) from error
        if stamped.text != parse_note(self.state.checkpoint_note).text:
            raise CheckFailed(
                "the time-stamped note is not the checkpoint of the proofs"
            )
        assert self.tsa_root is not None
        try:
            roots = x509.load_pem_x509_certificates(self.tsa_root.pem)
        except ValueError as error:
            raise CheckFailed(
                f"the TSA root from {self.tsa_root.source} is malformed: {error}"
            ) from error
        # The bundle's chain supplies intermediates only; trust comes from
        # the root above, so a chain that does not lead to it fails.
        try:
            chain = (
                x509.load_pem_x509_certificates(bundle.tsa_chain_pem)
                if bundle.tsa_chain_pem.strip()
                else []
            )
        except ValueError as error:
            raise CheckFailed(
                f"the bundle's TSA chain (tsa/chain.pem) is malformed: {error}"
            ) from error
        digest = hashlib.sha256(bundle.checkpoint_stamped).digest()
        try:
            info = verify_token(
                bundle.time_stamp_token,
                digest,
                roots,
                hash_algorithm="sha256",
                certificates=chain,
            )
        except TimeStampError as error:
            raise CheckFailed(
                "time-stamp token does not verify over the checkpoint with the "
                f"TSA root from {self.tsa_root.source}: {error}"
            ) from error
        moment = info.gen_time.astimezone(dt.UTC).isoformat()
        self.result.checkpoint_time = moment
        for root in roots:
            self.result.keys.append(
                KeyFingerprint(
                    "TSA root",
                    root.subject.rfc4514_string(),
                    _fingerprint(root.public_bytes(Encoding.DER)),
                )
            )
        check.reason = (
            f"checkpoint time-stamped at {moment}; TSA root from {self.tsa_root.source}"
        )

    # 6. Each entry is in the checkpoint's tree at its leaf index.
    def check_inclusion(self, check: Check) -> None:
        from ledger.merkle import MerkleError, leaf_hash, verify_inclusion
        from ledger.tlog_proof import parse_tlog_proof

        checkpoint = self.state.checkpoint
        for logged in self.state.bundle.entries:
            proof = parse_tlog_proof(logged.tlog_proof)
            hashed = leaf_hash(logged.entry)
            try:
                verify_inclusion(
                    hashed,
                    logged.leaf_index,
                    checkpoint.tree_size,
                    proof.hashes,
                    checkpoint.root_hash,
                )
            except MerkleError as error:
                raise CheckFailed(
                    f"inclusion proof of leaf_index {logged.leaf_index} fails for "
                    f"tree_size {checkpoint.tree_size}: {error}"
                ) from error
            self.state.leaf_hashes[logged.leaf_index] = hashed
            check.details.append(
                f"leaf_index {logged.leaf_index}: leaf_hash {hashed.hex()[:16]}..., "
                f"{len(proof.hashes)} proof hashes"
            )
        check.reason = (
            f"{len(self.state.bundle.entries)} entries included in tree_size "
            f"{checkpoint.tree_size}"
        )

    # 7. The contract's entries form one hash chain, in the workflow's order.
    def check_chain(self, check: Check) -> None:
        from ledger.entry import EntryError, decode_entry

        bundle = self.state.bundle
        for logged in bundle.entries:
            try:
                self.state.entries[logged.leaf_index] = decode_entry(logged.entry)
            except EntryError as error:
                raise CheckFailed(
                    f"entry at leaf_index {logged.leaf_index} is not a valid "
                    f"entry: {error}"
                ) from error
        # Enrolment and consent entries name no contract; an entry that names
        # another contract has no place in this contract's evidence.
        for index, entry in sorted(self.state.entries.items()):
            named = entry.get("contract")
            if named is not None and named != bundle.contract:
                raise CheckFailed(
                    f"entry at leaf_index {index} belongs to contract {named!r}, "
                    f"not to {bundle.contract!r}"
                )
        chain = [
            index
            for index, entry in sorted(self.state.entries.items())
            if entry.get("contract") == bundle.contract
        ]
        if not chain:
            raise CheckFailed(f"no entry names contract {bundle.contract!r}")
        previous_hash: bytes | None = None
        previous_step = -1
        parties: list[str] = []
        for index in chain:
            entry = self.state.entries[index]
            prev = entry.get("prev")
            if previous_hash is None:
                if prev is not None:
                    raise CheckFailed(
                        f"the first entry of the contract (leaf_index {index}) "
                        "has a prev hash, so an earlier entry is missing"
                    )
            elif not isinstance(prev, bytes) or not hmac.compare_digest(
                prev, previous_hash
            ):
                raise CheckFailed(
                    f"entry at leaf_index {index} does not chain to the previous "
                    "entry of the contract: an entry is missing or reordered"
                )
            step = entry.get("type")
            if step not in STEP_ORDER:
                raise CheckFailed(
                    f"entry at leaf_index {index} has unknown type {step!r}"
                )
            position = STEP_ORDER.index(step)
            if position < previous_step:
                raise CheckFailed(
                    f"step {step} at leaf_index {index} comes after "
                    f"{STEP_ORDER[previous_step]}"
                )
            previous_step = position
            previous_hash = self.state.leaf_hashes[index]
            if step == "upload" and isinstance(entry.get("parties"), list):
                parties = [str(p) for p in entry["parties"]]
            self.result.timeline.append(
                TimelineStep(
                    index,
                    step,
                    _iso_millis(entry.get("time")),
                    _actor(step, parties),
                    _step_detail(entry),
                )
            )
        self.state.contract_chain = chain
        self._check_consents(chain, check)
        check.reason = f"{len(chain)} steps chained: " + ", ".join(
            self.state.entries[i]["type"] for i in chain
        )

    def _check_consents(self, chain: list[int], check: Check) -> None:
        """Check that each signature step names a logged consent to that document.

        The identity service logs a `consent` entry when a party's TOTP code
        unlocks its key for one document digest; the signature step carries
        that entry's leaf hash.
        """
        by_hash = {h: i for i, h in self.state.leaf_hashes.items()}
        for index in chain:
            entry = self.state.entries[index]
            if entry.get("type") not in ("sign", "countersign"):
                continue
            consent_hash = entry.get("consent")
            if not isinstance(consent_hash, bytes) or consent_hash not in by_hash:
                raise CheckFailed(
                    f"the {entry['type']} entry at leaf_index {index} names no "
                    "consent entry that is in the bundle"
                )
            consent_index = by_hash[consent_hash]
            consent = self.state.entries[consent_index]
            if consent.get("type") != "consent":
                raise CheckFailed(
                    f"leaf_index {consent_index}, named as the consent of the "
                    f"{entry['type']} step, is a {consent.get('type')} entry"
                )
            for field_name, signed_name in (
                ("document", "document_before"),
                ("certificate", "certificate"),
            ):
                if consent.get(field_name) != entry.get(signed_name):
                    raise CheckFailed(
                        f"the consent at leaf_index {consent_index} is for another "
                        f"{field_name} than the {entry['type']} step signed"
                    )
            check.details.append(
                f"{entry['type']} at leaf_index {index} follows the TOTP consent "
                f"at leaf_index {consent_index}"
            )

    # 8. The document is the one the last step logged.
    def check_document(self, check: Check) -> None:
        bundle = self.state.bundle
        last = self.state.entries[self.state.contract_chain[-1]]
        logged = _document_digest(last)
        if logged is None:
            raise CheckFailed(
                f"the last step ({last.get('type')}) logs no document digest"
            )
        computed = hashlib.sha256(bundle.document).digest()
        if not hmac.compare_digest(computed, logged):
            raise CheckFailed(
                f"document SHA-256 {computed.hex()} differs from the digest "
                f"{logged.hex()} logged by the {last.get('type')} step: the PDF "
                "was changed"
            )
        check.reason = f"SHA-256 {computed.hex()} logged by the {last.get('type')} step"

    # 9. Every PDF signature is valid, by the certificates the log names.
    def check_pdf_signatures(self, check: Check) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding

        from gateway.pdf_signatures import (
            PdfSignatureError,
            check_certificate_chains,
            validate_signatures,
        )

        bundle = self.state.bundle
        assert self.ca_root is not None and self.tsa_root is not None
        self._check_password(bundle.document)
        try:
            check_certificate_chains(bundle.certificate_chains)
            signatures = validate_signatures(
                bundle.document, self.ca_root.pem, self.tsa_root.pem, self.password
            )
        except PdfSignatureError as error:
            raise CheckFailed(str(error)) from error
        # Only signatures chaining to the service CA count for a logged step;
        # signatures already in an uploaded PDF need only be intact and valid.
        fingerprints = {s.certificate_sha256 for s in signatures if s.trusted}
        for index in self.state.contract_chain:
            entry = self.state.entries[index]
            if entry.get("type") not in ("sign", "countersign"):
                continue
            certificate = entry.get("certificate")
            if not isinstance(certificate, bytes) or certificate not in fingerprints:
                raise CheckFailed(
                    "no valid PDF signature chaining to the CA root from "
                    f"{self.ca_root.source} is by the certificate that the "
                    f"{entry.get('type')} entry at leaf_index {index} names"
                )
        for root in _pem_certificates(self.ca_root.pem):
            self.result.keys.append(
                KeyFingerprint(
                    "CA root",
                    root.subject.rfc4514_string(),
                    _fingerprint(root.public_bytes(Encoding.DER)),
                )
            )
        for signature in signatures:
            check.details.append(signature.summary())
            self.result.keys.append(
                KeyFingerprint(
                    "signer certificate",
                    signature.subject,
                    "SHA-256:" + signature.certificate_sha256.hex(),
                )
            )
        check.reason = (
            f"{len(signatures)} valid signature(s), document unmodified since the "
            f"last; CA root from {self.ca_root.source}"
        )

    def _check_password(self, document: bytes) -> None:
        """Raise CheckNotMade when the PDF is encrypted and no password opens it."""
        from pyhanko.pdf_utils.crypt import AuthStatus
        from pyhanko.pdf_utils.misc import PdfReadError
        from pyhanko.pdf_utils.reader import PdfFileReader

        try:
            reader = PdfFileReader(io.BytesIO(document), strict=False)
            if not reader.encrypted:
                return
            # An empty user password opens many encrypted PDFs for reading.
            status = reader.decrypt(self.password or "").status
        except (PdfReadError, ValueError, KeyError):
            # validate_signatures reports an unreadable PDF as a failure.
            return
        if status != AuthStatus.FAILED:
            return
        if self.password is None:
            raise CheckNotMade(
                "the PDF is encrypted and its signatures could not be checked "
                "without its password; pass it with --password"
            )
        raise CheckNotMade(
            "the PDF is encrypted and the password given with --password does "
            "not open it, so its signatures could not be checked; pass the "
            "right one"
        )

    # 10. Disclosed salts reproduce the logged commitments.
    def check_salts(self, check: Check) -> None:
        from ledger.commitment import commit
        from ledger.entry import EntryError, decode_entry

        bundle = self.state.bundle
        raw = {logged.leaf_index: logged.entry for logged in bundle.entries}
        for salt in bundle.salts:
            if salt.leaf_index not in raw:
                raise CheckFailed(
                    f"salt for {salt.label} names leaf_index {salt.leaf_index}, "
                    "which is not in the bundle"
                )
            try:
                entry = decode_entry(raw[salt.leaf_index])
            except EntryError as error:
                raise CheckFailed(
                    f"entry {salt.leaf_index} is invalid: {error}"
                ) from error
            logged = _commitment(entry, salt.label)
            if logged is None:
                raise CheckFailed(
                    f"entry at leaf_index {salt.leaf_index} has no commitment "
                    f"labelled {salt.label!r}"
                )
            computed = commit(salt.label, salt.value.encode(), salt.salt)
            if not hmac.compare_digest(computed, logged):
                raise CheckFailed(
                    f"the disclosed {salt.label} does not open the commitment at "
                    f"leaf_index {salt.leaf_index}"
                )
            check.details.append(
                f"leaf_index {salt.leaf_index}: {salt.label} = {salt.value}"
            )
        check.reason = f"{len(bundle.salts)} disclosed value(s) match their commitments"


def _pem_certificates(pem: bytes) -> list[Any]:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []


def _commitment(entry: dict[str, Any], label: str) -> bytes | None:
    commitments = entry.get("commitments")
    if isinstance(commitments, dict) and isinstance(commitments.get(label), bytes):
        return commitments[label]
    value = entry.get(label)
    return value if isinstance(value, bytes) else None


def _document_digest(entry: dict[str, Any]) -> bytes | None:
    # signer.workflow logs the digest after a step as document_after (sign,
    # countersign, store), document (send) or prepared (upload).
    for key in ("document_after", "document", "prepared"):
        value = entry.get(key)
        if isinstance(value, bytes) and len(value) == 32:
            return value
    return None


def _actor(step: str, parties: list[str]) -> str:
    # The upload entry names the parties, first signer first; the first
    # signer signs and sends, the second countersigns.
    position = {"upload": 0, "sign": 0, "send": 0, "countersign": 1}.get(step)
    if position is None or len(parties) <= position:
        return "the service"
    role = "first signer" if position == 0 else "countersigner"
    return f"party {parties[position]} ({role})"


def _step_detail(entry: dict[str, Any]) -> str:
    digest = _document_digest(entry)
    return f"document SHA-256 {digest.hex()[:16]}..." if digest else ""


def verify_bundle(
    data: bytes,
    *,
    source: str,
    policy_text: bytes | None = None,
    policy_source: str | None = None,
    tsa_root: TrustAnchor | None = None,
    ca_root: TrustAnchor | None = None,
    password: str | None = None,
) -> VerificationResult:
    """Verify the evidence bundle `data` offline and return every check's outcome.

    `policy_text`, `tsa_root` and `ca_root` are the trust anchors the
    verifier obtained independently. Each one that is None is taken from
    the bundle, and the result warns that it is self-asserted. `password`
    opens an encrypted PDF for the signature check; an empty user password
    is tried when it is None, and the check is "not checked" when neither
    opens it.
    """
    verifier = BundleVerifier(
        data,
        source=source,
        policy_text=policy_text,
        policy_source=policy_source,
        tsa_root=tsa_root,
        ca_root=ca_root,
        password=password,
    )
    return verifier.run()
