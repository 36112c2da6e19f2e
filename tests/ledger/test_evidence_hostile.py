"""Evidence bundle reading against hostile archives: bombs, names and JSON."""

from __future__ import annotations

import errno
import io
import json
import struct
import tracemalloc
import zipfile
import zlib
from dataclasses import dataclass

import pytest

from ledger import evidence
from ledger.evidence import EvidenceBundle, EvidenceError, LoggedEntry, Salt, read_bundle

MIB = 1024 * 1024


def valid_bundle() -> bytes:
    bundle = EvidenceBundle(
        contract="c-1",
        origin="example.com/log",
        document=b"%PDF-1.7\n...%%EOF\n",
        entries=[
            LoggedEntry(3, b"\xa1av\x01", b"c2sp.org/tlog-proof@v1\nindex 3\n"),
            LoggedEntry(84, b"\xa1av\x02", b"c2sp.org/tlog-proof@v1\nindex 84\n"),
        ],
        checkpoint_stamped=b"example.com/log\n85\nAAAA\n\n",
        time_stamp_token=b"\x30\x03\x02\x01\x01",
        tsa_chain_pem=b"chain",
        tsa_root_pem=b"root",
        policy=b"log example.com/log+01020304+AQ==\nquorum none\n",
        certificate_chains={"party-a": b"chain a"},
        ca_root_pem=b"root",
        salts=[Salt(3, "name", "Ada Lovelace", bytes(range(32)))],
    )
    data = bundle.to_bytes("00", {3: "upload", 84: "sign"}, "2026-01-01T00:00:00Z")
    read_bundle(data)
    return data


@dataclass
class RawMember:
    """A member written byte for byte, so its header can state anything."""

    name: str
    payload: bytes  # the stored or compressed bytes
    method: int
    crc: int
    file_size: int


def deflated(content: bytes) -> RawMember:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = compressor.compress(content) + compressor.flush()
    return RawMember("", payload, zipfile.ZIP_DEFLATED, zlib.crc32(content), len(content))


def zero_stream(size: int) -> bytes:
    """Return a raw deflate stream of `size` zero bytes, built in 1 MiB steps."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(MIB)
    parts = [compressor.compress(block) for _ in range(size // MIB)]
    parts.append(compressor.compress(bytes(size % MIB)))
    parts.append(compressor.flush())
    return b"".join(parts)


def write_zip(members: list[RawMember]) -> bytes:
    """Write a ZIP file whose local and central headers carry each member's fields."""
    out = io.BytesIO()
    central = []
    for member in members:
        name = member.name.encode()
        offset = out.tell()
        fields = (
            20, 0, member.method, 0, 0x21,
            member.crc, len(member.payload), member.file_size, len(name), 0,
        )
        out.write(b"PK\x03\x04" + struct.pack("<5H3L2H", *fields) + name)
        out.write(member.payload)
        central.append(
            b"PK\x01\x02"
            + struct.pack("<6H3L5H2L", 20, *fields, 0, 0, 0, 0, offset)
            + name
        )
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    # The end record's 16-bit member count saturates, as without ZIP64.
    count = min(len(central), 0xFFFF)
    out.write(
        b"PK\x05\x06"
        + struct.pack("<4H2LH", 0, 0, count, count, len(directory), start, 0)
    )
    return out.getvalue()


def rebuild(data: bytes, change: dict[str, RawMember | bytes | None]) -> bytes:
    """Copy a bundle through write_zip, replacing, adding or (None) dropping members."""
    source = zipfile.ZipFile(io.BytesIO(data))
    members = []
    for info in source.infolist():
        if info.filename not in change:
            raw = deflated(source.read(info))
            raw.name = info.filename
            members.append(raw)
    for name, content in change.items():
        if content is None:
            continue
        raw = content if isinstance(content, RawMember) else deflated(content)
        raw.name = name
        members.append(raw)
    return write_zip(members)


def test_raw_writer_round_trips_a_bundle():
    data = valid_bundle()
    assert read_bundle(rebuild(data, {})).entries == read_bundle(data).entries


def test_lying_size_bomb_is_rejected_by_name():
    stream = zero_stream(64 * MIB)
    bomb = RawMember("", stream, zipfile.ZIP_DEFLATED, zlib.crc32(bytes(1000)), 1000)
    data = rebuild(valid_bundle(), {"document.pdf": bomb})
    tracemalloc.start()
    try:
        with pytest.raises(EvidenceError, match="document.pdf") as raised:
            read_bundle(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "header is false" in str(raised.value)
    assert peak < 8 * MIB


def test_overlong_stream_read_in_bounded_steps():
    # The header declares 2 MiB (a plausible ratio for zeros) over a stream
    # of 64 MiB: only the declared bytes may be inflated.
    declared = 2 * MIB
    stream = zero_stream(64 * MIB)
    member = RawMember("", stream, zipfile.ZIP_DEFLATED, zlib.crc32(bytes(declared)), declared)
    data = rebuild(valid_bundle(), {"document.pdf": member})
    tracemalloc.start()
    try:
        parsed = read_bundle(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(parsed.document) == declared
    assert peak < 16 * MIB


def test_member_over_limit_is_rejected_by_name(monkeypatch):
    monkeypatch.setattr(evidence, "MAX_MEMBER_SIZE", MIB)
    content = bytes(2 * MIB)
    data = rebuild(valid_bundle(), {"document.pdf": content})
    with pytest.raises(EvidenceError, match=r"document\.pdf of 2097152 bytes"):
        read_bundle(data)


def test_members_over_total_limit_are_rejected(monkeypatch):
    monkeypatch.setattr(evidence, "MAX_TOTAL_SIZE", MIB)
    data = rebuild(
        valid_bundle(), {"document.pdf": bytes(MIB // 2), "tsa/chain.pem": bytes(MIB // 2)}
    )
    with pytest.raises(EvidenceError, match="in total"):
        read_bundle(data)


def test_wrong_crc_is_reported_as_damaged():
    member = deflated(bytes(1000))
    member.crc ^= 1
    data = rebuild(valid_bundle(), {"document.pdf": member})
    with pytest.raises(EvidenceError, match="document.pdf is damaged"):
        read_bundle(data)


def test_other_compression_method_is_rejected():
    member = deflated(b"%PDF-1.7")
    member.method = zipfile.ZIP_BZIP2
    data = rebuild(valid_bundle(), {"document.pdf": member})
    with pytest.raises(EvidenceError, match="document.pdf uses compression method 12"):
        read_bundle(data)


@pytest.mark.parametrize(
    "name", ["entries/0084.cbor", "entries/084.cbor", "proofs/084.tlog-proof", "entries/00.cbor"]
)
def test_leaf_index_with_leading_zeros_is_rejected(name):
    data = rebuild(valid_bundle(), {name: b"\xa1av\x03"})
    with pytest.raises(EvidenceError, match="leading zeros") as raised:
        read_bundle(data)
    assert name in str(raised.value)


def test_duplicate_member_is_rejected_by_name():
    source = zipfile.ZipFile(io.BytesIO(valid_bundle()))
    twice = []
    for content in (b"\xa1av\x02", b"\xa1av\x09"):
        raw = deflated(content)
        raw.name = "entries/84.cbor"
        twice.append(raw)
    others = []
    for info in source.infolist():
        if info.filename != "entries/84.cbor":
            raw = deflated(source.read(info))
            raw.name = info.filename
            others.append(raw)
    duplicated = write_zip(others + twice)
    with pytest.raises(EvidenceError, match="entries/84.cbor appears twice"):
        read_bundle(duplicated)


def test_name_cut_at_nul_byte_is_rejected():
    data = rebuild(valid_bundle(), {"entries/84.cbor\x00.txt": b"\xa1av\x09"})
    with pytest.raises(EvidenceError, match="NUL byte"):
        read_bundle(data)


@pytest.mark.parametrize(
    "name",
    [
        "../../x",
        "/etc/passwd",
        "entries/../document.pdf",
        "README.txt",
        "entries/84.cbor.bak",
        "entries/-1.cbor",
        "entries/18446744073709551616.cbor",
        "tsa/other.pem",
        "certs/sub/a.pem",
    ],
)
def test_unknown_member_is_rejected_by_name(name):
    data = rebuild(valid_bundle(), {name: b"x"})
    with pytest.raises(EvidenceError, match="not part of the ledger-evidence/v1") as raised:
        read_bundle(data)
    assert repr(name) in str(raised.value)


def test_folder_entries_are_accepted():
    data = rebuild(valid_bundle(), {"entries/": b"", "certs/": b""})
    assert [e.leaf_index for e in read_bundle(data).entries] == [3, 84]


def test_largest_leaf_index_is_accepted():
    index = 2**64 - 1
    data = rebuild(
        valid_bundle(),
        {f"entries/{index}.cbor": b"\xa1av\x03", f"proofs/{index}.tlog-proof": b"p"},
    )
    assert read_bundle(data).entries[-1].leaf_index == index


def manifest(**fields) -> bytes:
    base = {"format": "ledger-evidence/v1", "contract": "c-1", "origin": "example.com/log"}
    base.update(fields)
    return json.dumps(base).encode()


@pytest.mark.parametrize(
    ("member", "content", "reason"),
    [
        ("manifest.json", b"[" * 100_000 + b"]" * 100_000, "too deeply"),
        ("salts.json", b"[" * 100_000 + b"]" * 100_000, "too deeply"),
        ("manifest.json", b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON"),
        ("salts.json", b"[" + b"9" * 5000 + b"]", "not valid JSON"),
        ("manifest.json", b"\xff\xfe{", "not valid JSON"),
        ("manifest.json", manifest(contract='\ud800'), "text field 'contract'"),
        ("salts.json", b"{}", "JSON list"),
        ("salts.json", b"[7]", "record 0 is not a JSON object"),
        ("salts.json", b'[{"leaf_index": 1e400, "label": "a", "value": "b", "salt": ""}]',
         "leaf_index inf"),
        ("salts.json", b'[{"leaf_index": true, "label": "a", "value": "b", "salt": ""}]',
         "leaf_index True"),
        ("salts.json", b'[{"leaf_index": -1, "label": "a", "value": "b", "salt": ""}]',
         "leaf_index -1"),
        ("salts.json", b'[{"leaf_index": 3, "label": "a", "value": [[1]], "salt": ""}]',
         "text field 'value'"),
        ("salts.json", b'[{"leaf_index": 3, "label": "a", "value": "\\ud800", "salt": ""}]',
         "text field 'value'"),
        ("salts.json", b'[{"leaf_index": 3, "label": "a", "value": "b", "salt": "zz"}]',
         "not hex"),
    ],
)
def test_hostile_json_is_rejected_by_member(member, content, reason):
    data = rebuild(valid_bundle(), {member: content})
    with pytest.raises(EvidenceError, match=reason) as raised:
        read_bundle(data)
    assert member in str(raised.value)


def test_read_bounded_stops_at_limit_of_endless_file():
    from ledger.evidence import read_bounded

    with pytest.raises(OSError, match="larger than the limit of 1048576 bytes") as raised:
        read_bounded("/dev/zero", MIB)
    assert raised.value.filename == "/dev/zero"
    assert raised.value.errno == errno.EFBIG


def test_read_bounded_reads_file_up_to_limit(tmp_path):
    from ledger.evidence import read_bounded

    path = tmp_path / "policy.txt"
    path.write_bytes(b"p" * 100)
    assert read_bounded(path, 100) == b"p" * 100
    with pytest.raises(OSError, match="limit of 99 bytes"):
        read_bounded(path, 99)
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "missing.txt", 100)


def test_huge_central_directory_is_rejected_before_parsing():
    # 100,000 empty members whose end record claims one member: zipfile
    # would build every ZipInfo before the member count could be checked.
    members = [RawMember(f"{i}", b"", zipfile.ZIP_STORED, 0, 0) for i in range(100_000)]
    data = bytearray(write_zip(members))
    struct.pack_into("<2H", data, len(data) - 22 + 8, 1, 1)
    data = bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(EvidenceError, match="central directory of") as raised:
            read_bundle(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "exceeds 4194304 bytes" in str(raised.value)
    assert peak < 4 * MIB


def test_member_count_is_checked_from_end_record():
    members = [RawMember(f"{i}", b"", zipfile.ZIP_STORED, 0, 0) for i in range(5000)]
    with pytest.raises(EvidenceError, match="5000 members exceed the limit of 4096"):
        read_bundle(write_zip(members))


def test_zip64_is_rejected():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in ("document.pdf", "manifest.json"):
            archive.writestr(name, b"x")
        archive.comment = b""
    data = bytearray(out.getvalue())
    # Insert a ZIP64 end locator in front of the end record, as zipfile
    # writes one for more than 65,535 members.
    end = len(data) - 22
    locator = b"PK\x06\x07" + struct.pack("<LQL", 0, 0, 1)
    data[end:end] = locator
    with pytest.raises(EvidenceError, match="ZIP64"):
        read_bundle(bytes(data))
