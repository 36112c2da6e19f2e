"""The evidence bundle: one self-contained ZIP file per contract.

A court, an auditor or a party holding this one file can check offline that
the document was not altered, who signed it and when each step happened,
without network access and without any secret of the service. This module
only writes and reads the layout; `gateway.verify` checks the content.

Layout (`ledger-evidence/v1`; every member is stored at the fixed time
1980-01-01 00:00 and in sorted order, so equal content gives equal bytes):

    manifest.json              format, contract id, origin, document digest,
                               and one record per entry (see below)
    document.pdf               the signed PDF as stored
    entries/<leaf_index>.cbor  the leaf data of each log entry, exactly the
                               bytes the leaf hash covers (deterministic CBOR)
    proofs/<leaf_index>.tlog-proof
                               the entry's inclusion proof in C2SP tlog-proof
                               form (`c2sp.org/tlog-proof@v1`); its checkpoint
                               carries the log signature and the witnesses'
                               cosignatures
    checkpoint.stamped         the exact note bytes the time-stamp token covers
    checkpoint.tsr             the RFC 3161 TimeStampToken (DER) over the SHA-256
                               of checkpoint.stamped
    tsa/chain.pem              the TSA certificate and its issuers, leaf first
    tsa/root.pem               the TSA trust anchor
    certs/<party_id>.pem       each signer's certificate chain, leaf first
    certs/root.pem             the service CA's root certificate
    policy.txt                 the trust policy in C2SP tlog-policy form (log
                               key, witness keys, quorum); self-asserted by the
                               service that built the bundle
    salts.json                 the salts the parties consented to disclose:
                               a list of {"leaf_index", "label", "value",
                               "salt" (hex)} opening the commitments of that
                               entry

`manifest.json` is a JSON object:

    {"format": "ledger-evidence/v1", "contract": "<contract id>",
     "origin": "<log origin>", "document_sha256": "<hex>",
     "created": "<ISO 8601 UTC>",
     "entries": [{"leaf_index": 12, "type": "upload"}, ...]}

The manifest's digest and entry types are hints for readers: a verifier
recomputes every one of them from the members and trusts none.

A reader rejects a bundle with a member outside this layout, with a name
that appears twice, or with a leaf_index written with leading zeros
(`entries/084.cbor`). Folder entries such as `entries/` are the one
exception. So each member has one name and nothing in the file goes
unchecked.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

FORMAT = "ledger-evidence/v1"

# A bundle contains one PDF of at most a few tens of MiB plus small members.
# These limits stop a crafted ZIP from exhausting memory when read.
MAX_MEMBER_SIZE = 64 * 1024 * 1024
MAX_TOTAL_SIZE = 128 * 1024 * 1024
MAX_MEMBERS = 4096
# zipfile parses the whole central directory into ZipInfo objects (several
# hundred bytes each) before MAX_MEMBERS can be checked, so its size is
# bounded first: 1 KiB per member leaves room for long names and extra fields.
MAX_CENTRAL_DIRECTORY_SIZE = MAX_MEMBERS * 1024
# Files a verifier reads before parsing: a bundle (its members plus room for
# ZIP headers), and a trust policy or root certificate, which are a few KiB.
MAX_BUNDLE_SIZE = MAX_TOTAL_SIZE + 8 * 1024 * 1024
MAX_ANCHOR_SIZE = 1024 * 1024

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# A leaf_index is written in decimal without leading zeros, so that each
# leaf_index has exactly one member name.
_ENTRY_NAME = re.compile(r"entries/(0|[1-9][0-9]{0,19})\.cbor")
_PROOF_NAME = re.compile(r"proofs/(0|[1-9][0-9]{0,19})\.tlog-proof")
_MAX_LEAF_INDEX = 2**64 - 1
_FIXED_NAMES = frozenset(
    {
        "manifest.json",
        "document.pdf",
        "checkpoint.stamped",
        "checkpoint.tsr",
        "tsa/chain.pem",
        "tsa/root.pem",
        "certs/root.pem",
        "policy.txt",
        "salts.json",
    }
)
# Folder entries that ZIP tools such as `zip -r` add; they carry no content.
_FOLDER_NAMES = frozenset({"entries/", "proofs/", "tsa/", "certs/"})
_CERT_NAME = re.compile(r"certs/([A-Za-z0-9_\-]{1,128})\.pem")


class EvidenceError(ValueError):
    """The bytes are not an evidence bundle of this format; the message gives the reason."""


class FileTooLargeError(OSError):
    """A file is larger than the limit its reader sets; `strerror` names the limit."""


def read_bounded(path: str | os.PathLike[str], limit: int) -> bytes:
    """Read the file at `path`, raising FileTooLargeError when it has more than `limit` bytes.

    Requires 0 <= limit. It reads at most limit + 1 bytes, so a device such as
    /dev/zero or a FIFO that never ends costs no more memory than that. The
    error is an OSError with `filename` and `strerror` set, like the one a
    missing file raises.
    """
    with open(path, "rb") as file:
        content = file.read(limit + 1)
    if len(content) > limit:
        raise FileTooLargeError(
            errno.EFBIG, f"larger than the limit of {limit} bytes", os.fspath(path)
        )
    return content


@dataclass(frozen=True)
class LoggedEntry:
    """One log entry of the bundle with its inclusion proof."""

    leaf_index: int
    entry: bytes
    tlog_proof: bytes


@dataclass(frozen=True)
class Salt:
    """A disclosed salt that opens the commitment of `label` in one entry."""

    leaf_index: int
    label: str
    value: str
    salt: bytes


@dataclass
class EvidenceBundle:
    """Everything a verifier needs about one contract, in memory."""

    contract: str
    origin: str
    document: bytes
    entries: list[LoggedEntry]
    checkpoint_stamped: bytes
    time_stamp_token: bytes
    tsa_chain_pem: bytes
    tsa_root_pem: bytes
    policy: bytes
    certificate_chains: dict[str, bytes] = field(default_factory=dict)
    ca_root_pem: bytes = b""
    salts: list[Salt] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    def to_bytes(
        self, document_sha256: str, entry_types: dict[int, str], created: str
    ) -> bytes:
        """Serialise the bundle as a ZIP file.

        `document_sha256`, `entry_types` and `created` fill the manifest, which
        readers may show but never trust.
        """
        manifest = {
            "format": FORMAT,
            "contract": self.contract,
            "origin": self.origin,
            "document_sha256": document_sha256,
            "created": created,
            "entries": [
                {"leaf_index": e.leaf_index, "type": entry_types.get(e.leaf_index)}
                for e in self.entries
            ],
        }
        members: dict[str, bytes] = {
            "manifest.json": json.dumps(manifest, indent=1, sort_keys=True).encode(),
            "document.pdf": self.document,
            "checkpoint.stamped": self.checkpoint_stamped,
            "checkpoint.tsr": self.time_stamp_token,
            "tsa/chain.pem": self.tsa_chain_pem,
            "tsa/root.pem": self.tsa_root_pem,
            "policy.txt": self.policy,
            "salts.json": json.dumps(
                [
                    {
                        "leaf_index": s.leaf_index,
                        "label": s.label,
                        "value": s.value,
                        "salt": s.salt.hex(),
                    }
                    for s in self.salts
                ],
                indent=1,
            ).encode(),
        }
        if self.ca_root_pem:
            members["certs/root.pem"] = self.ca_root_pem
        for party_id, chain in self.certificate_chains.items():
            if not _CERT_NAME.fullmatch(f"certs/{party_id}.pem") or party_id == "root":
                raise EvidenceError(f"party id {party_id!r} cannot name a member")
            members[f"certs/{party_id}.pem"] = chain
        for logged in self.entries:
            members[f"entries/{logged.leaf_index}.cbor"] = logged.entry
            members[f"proofs/{logged.leaf_index}.tlog-proof"] = logged.tlog_proof
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(members):
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, members[name])
        return buffer.getvalue()


_CHUNK_SIZE = 64 * 1024


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """Read one member in chunks, rejecting it once it inflates past a limit.

    Python 3.11's ZipExtFile.read() with no size inflates up to 2 GiB in one
    call whatever the header declares, so only bounded reads keep a zip bomb
    from exhausting memory. `budget` is what the total limit still allows.
    """
    limit = min(MAX_MEMBER_SIZE, budget, info.file_size)
    chunks = []
    size = 0
    with archive.open(info) as stream:
        while chunk := stream.read(_CHUNK_SIZE):
            size += len(chunk)
            if size > limit:
                raise EvidenceError(
                    f"member {info.filename} inflates past {limit} bytes (declared "
                    f"{info.file_size}, at most {MAX_MEMBER_SIZE} per member and "
                    f"{MAX_TOTAL_SIZE} in total)"
                )
            chunks.append(chunk)
    return b"".join(chunks)


def _check_declared_size(info: zipfile.ZipInfo) -> None:
    """Reject a member whose compressed data cannot be an encoding of its declared size.

    ZipExtFile stops at the declared size, so a header that declares 1,000
    bytes over a stream that inflates to 1 GiB would otherwise pass as a short
    member with a matching CRC.
    """
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise EvidenceError(
            f"member {info.filename} uses compression method {info.compress_type}; "
            "a bundle uses deflate (8) or none (0)"
        )
    if info.file_size > MAX_MEMBER_SIZE:
        raise EvidenceError(
            f"member {info.filename} of {info.file_size} bytes exceeds "
            f"{MAX_MEMBER_SIZE} bytes"
        )
    # A deflate stored block (RFC 1951) adds at most 5 bytes to up to 65,535
    # bytes, and encoders such as zlib fall back to stored blocks for data
    # they cannot shrink. So compressed data beyond this bound means the
    # declared size is false.
    # NOTE: a valid but wasteful deflate stream (for example fixed Huffman
    # codes over random bytes) could exceed the bound and be rejected.
    bound = info.file_size + info.file_size // 1024 + 1024
    if info.compress_size > bound:
        raise EvidenceError(
            f"member {info.filename} declares {info.file_size} bytes but has "
            f"{info.compress_size} compressed bytes, more than deflate produces "
            "for that size, so its header is false"
        )


def _check_name(info: zipfile.ZipInfo) -> None:
    """Reject a member name that is not in the layout, or not in its one spelling."""
    name = info.filename
    if info.orig_filename != name:
        raise EvidenceError(
            f"member name {info.orig_filename!r} contains a NUL byte"
        )
    if name in _FIXED_NAMES or _CERT_NAME.fullmatch(name):
        return
    if name in _FOLDER_NAMES and info.file_size == 0:
        return
    match = _ENTRY_NAME.fullmatch(name) or _PROOF_NAME.fullmatch(name)
    if match and int(match.group(1)) <= _MAX_LEAF_INDEX:
        return
    if re.fullmatch(r"(entries|proofs)/0[0-9]+\.(cbor|tlog-proof)", name):
        raise EvidenceError(
            f"member {name!r} writes its leaf_index with leading zeros; "
            "a bundle names each leaf_index in plain decimal"
        )
    raise EvidenceError(
        f"member {name!r} is not part of the {FORMAT} layout; remove it or "
        "check that the file is an evidence bundle"
    )


def _check_central_directory(data: bytes) -> None:
    """Reject a ZIP file whose central directory is too large to parse safely.

    It finds the end of central directory record the way zipfile does (the
    last signature in the final 64 KiB and 22 bytes) and leaves any other
    damage for zipfile to report.
    """
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if end < 0 or end + 22 > len(data):
        return
    if end >= 20 and data[end - 20 : end - 16] == b"PK\x06\x07":
        raise EvidenceError(
            "the ZIP file uses ZIP64, which no bundle needs; a bundle has at "
            f"most {MAX_MEMBERS} members and {MAX_TOTAL_SIZE} bytes"
        )
    (members,) = struct.unpack_from("<H", data, end + 10)
    (size,) = struct.unpack_from("<L", data, end + 12)
    if members > MAX_MEMBERS:
        raise EvidenceError(f"{members} members exceed the limit of {MAX_MEMBERS}")
    if size > MAX_CENTRAL_DIRECTORY_SIZE:
        raise EvidenceError(
            f"the ZIP central directory of {size} bytes exceeds "
            f"{MAX_CENTRAL_DIRECTORY_SIZE} bytes"
        )


def _read_members(data: bytes) -> dict[str, bytes]:
    _check_central_directory(data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise EvidenceError(f"not a ZIP file: {error}") from error
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise EvidenceError(f"{len(infos)} members exceed the limit of {MAX_MEMBERS}")
    total = 0
    members: dict[str, bytes] = {}
    for info in infos:
        _check_name(info)
        if info.filename in members:
            raise EvidenceError(f"member {info.filename} appears twice")
        _check_declared_size(info)
        if total + info.file_size > MAX_TOTAL_SIZE:
            raise EvidenceError(f"members exceed {MAX_TOTAL_SIZE} bytes in total")
        try:
            content = _read_member(archive, info, MAX_TOTAL_SIZE - total)
        except EvidenceError:
            raise
        except (
            zipfile.BadZipFile,
            zlib.error,
            OSError,
            ValueError,
            EOFError,
            RuntimeError,
        ) as error:
            # RuntimeError is zipfile's error for an encrypted member.
            raise EvidenceError(
                f"member {info.filename} is damaged: {error}"
            ) from error
        total += len(content)
        members[info.filename] = content
    return members


def _required(members: dict[str, bytes], name: str) -> bytes:
    if name not in members:
        raise EvidenceError(f"member {name} is missing")
    return members[name]


def _load_json(members: dict[str, bytes], name: str, default: bytes | None = None) -> Any:
    """Parse the JSON member `name`; raise EvidenceError naming it when it is invalid."""
    content = members.get(name, default)
    if content is None:
        raise EvidenceError(f"member {name} is missing")
    try:
        return json.loads(content)
    except RecursionError as error:
        raise EvidenceError(f"{name} nests its JSON values too deeply") from error
    except ValueError as error:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and the
        # integer of more than sys.get_int_max_str_digits() digits.
        raise EvidenceError(f"{name} is not valid JSON: {error}") from error


def _is_text(value: Any) -> bool:
    """Return whether `value` is a str that encodes as UTF-8 (no lone surrogate)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _parse_salts(records: Any) -> list[Salt]:
    """Build the salts from the records of salts.json; raise EvidenceError on a bad one."""
    if not isinstance(records, list):
        raise EvidenceError("salts.json is malformed: expected a JSON list of records")
    salts = []
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise EvidenceError(f"salts.json record {position} is not a JSON object")
        leaf_index = record.get("leaf_index")
        if (
            not isinstance(leaf_index, int)
            or isinstance(leaf_index, bool)
            or not 0 <= leaf_index <= _MAX_LEAF_INDEX
        ):
            raise EvidenceError(
                f"salts.json record {position} has leaf_index {leaf_index!r}; "
                f"expected an integer from 0 to {_MAX_LEAF_INDEX}"
            )
        for key in ("label", "value", "salt"):
            if not _is_text(record.get(key)):
                raise EvidenceError(
                    f"salts.json record {position} lacks the text field {key!r}"
                )
        try:
            salt = bytes.fromhex(record["salt"])
        except ValueError as error:
            raise EvidenceError(
                f"salts.json record {position} has a salt that is not hex: {error}"
            ) from error
        salts.append(Salt(leaf_index, record["label"], record["value"], salt))
    return salts


def read_bundle(data: bytes) -> EvidenceBundle:
    """Parse the bytes of an evidence bundle.

    Checks the layout only (members present, names well formed, JSON valid);
    it verifies no signature, proof or digest.
    """
    members = _read_members(data)
    manifest = _load_json(members, "manifest.json")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise EvidenceError(f"manifest.json does not declare format {FORMAT!r}")
    for key in ("contract", "origin"):
        if not _is_text(manifest.get(key)):
            raise EvidenceError(f"manifest.json lacks the text field {key!r}")

    entries: dict[int, bytes] = {}
    proofs: dict[int, bytes] = {}
    chains: dict[str, bytes] = {}
    for name, content in members.items():
        if name in _FOLDER_NAMES:
            continue
        if match := _ENTRY_NAME.fullmatch(name):
            entries[int(match.group(1))] = content
        elif match := _PROOF_NAME.fullmatch(name):
            proofs[int(match.group(1))] = content
        elif (match := _CERT_NAME.fullmatch(name)) and match.group(1) != "root":
            chains[match.group(1)] = content
    if set(entries) != set(proofs):
        unmatched = sorted(set(entries) ^ set(proofs))
        raise EvidenceError(
            f"entries and proofs do not pair up at leaf_index {unmatched}"
        )
    logged = [LoggedEntry(i, entries[i], proofs[i]) for i in sorted(entries)]

    salts = _parse_salts(_load_json(members, "salts.json", b"[]"))

    return EvidenceBundle(
        contract=manifest["contract"],
        origin=manifest["origin"],
        document=_required(members, "document.pdf"),
        entries=logged,
        checkpoint_stamped=_required(members, "checkpoint.stamped"),
        time_stamp_token=_required(members, "checkpoint.tsr"),
        tsa_chain_pem=_required(members, "tsa/chain.pem"),
        tsa_root_pem=_required(members, "tsa/root.pem"),
        policy=_required(members, "policy.txt"),
        certificate_chains=chains,
        ca_root_pem=members.get("certs/root.pem", b""),
        salts=salts,
        manifest=manifest,
    )
