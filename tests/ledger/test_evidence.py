"""Evidence bundle layout: round trip, determinism and rejected archives."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.evidence import (
    FORMAT,
    EvidenceBundle,
    EvidenceError,
    LoggedEntry,
    Salt,
    read_bundle,
)


def sample_bundle(entries: list[LoggedEntry] | None = None) -> EvidenceBundle:
    return EvidenceBundle(
        contract="c-1",
        origin="example.com/log",
        document=b"%PDF-1.7\n...%%EOF\n",
        entries=entries
        if entries is not None
        else [
            LoggedEntry(3, b"\xa1av\x01", b"c2sp.org/tlog-proof@v1\nindex 3\n"),
            LoggedEntry(10, b"\xa1av\x02", b"c2sp.org/tlog-proof@v1\nindex 10\n"),
        ],
        checkpoint_stamped=b"example.com/log\n11\nAAAA\n\n",
        time_stamp_token=b"\x30\x03\x02\x01\x01",
        tsa_chain_pem=b"-----BEGIN CERTIFICATE-----\n",
        tsa_root_pem=b"-----BEGIN CERTIFICATE-----\n",
        policy=b"log example.com/log+01020304+AQ==\nquorum none\n",
        certificate_chains={"party-a": b"chain a", "party-b": b"chain b"},
        ca_root_pem=b"root",
        salts=[Salt(3, "name", "Ada Lovelace", bytes(range(32)))],
    )


def rezip(data: bytes, change: dict[str, bytes | None]) -> bytes:
    """Copy a ZIP, replacing or (with None) dropping the named members."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename in change:
                continue
            target.writestr(info, source.read(info))
        for name, content in change.items():
            if content is not None:
                target.writestr(name, content)
    return out.getvalue()


def test_round_trip_keeps_every_member():
    bundle = sample_bundle()
    data = bundle.to_bytes("ab" * 32, {3: "upload", 10: "sign"}, "2026-01-01T00:00:00Z")
    parsed = read_bundle(data)
    assert parsed.contract == bundle.contract
    assert parsed.origin == bundle.origin
    assert parsed.document == bundle.document
    assert parsed.entries == bundle.entries
    assert parsed.checkpoint_stamped == bundle.checkpoint_stamped
    assert parsed.time_stamp_token == bundle.time_stamp_token
    assert parsed.tsa_chain_pem == bundle.tsa_chain_pem
    assert parsed.tsa_root_pem == bundle.tsa_root_pem
    assert parsed.policy == bundle.policy
    assert parsed.certificate_chains == bundle.certificate_chains
    assert parsed.ca_root_pem == bundle.ca_root_pem
    assert parsed.salts == bundle.salts
    assert parsed.manifest["format"] == FORMAT
    assert parsed.manifest["entries"] == [
        {"leaf_index": 3, "type": "upload"},
        {"leaf_index": 10, "type": "sign"},
    ]


def test_equal_content_gives_equal_bytes():
    first = sample_bundle().to_bytes("00", {}, "t")
    second = sample_bundle().to_bytes("00", {}, "t")
    assert first == second


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(
        st.integers(min_value=0, max_value=2**63),
        st.tuples(st.binary(max_size=64), st.binary(max_size=64)),
        max_size=8,
    )
)
def test_entries_round_trip_in_leaf_order(raw):
    entries = [LoggedEntry(i, e, p) for i, (e, p) in raw.items()]
    data = sample_bundle(entries).to_bytes("00", {}, "t")
    parsed = read_bundle(data)
    assert parsed.entries == sorted(entries, key=lambda e: e.leaf_index)


def test_not_a_zip_is_rejected():
    with pytest.raises(EvidenceError, match="not a ZIP"):
        read_bundle(b"%PDF-1.7 not a bundle")


@pytest.mark.parametrize(
    "member", ["manifest.json", "document.pdf", "checkpoint.tsr", "policy.txt"]
)
def test_missing_member_is_named(member):
    data = rezip(sample_bundle().to_bytes("00", {}, "t"), {member: None})
    with pytest.raises(EvidenceError, match=member):
        read_bundle(data)


def test_entry_without_proof_is_rejected():
    data = rezip(
        sample_bundle().to_bytes("00", {}, "t"), {"proofs/10.tlog-proof": None}
    )
    with pytest.raises(EvidenceError, match=r"leaf_index \[10\]"):
        read_bundle(data)


def test_wrong_format_is_rejected():
    manifest = {"format": "other/v9", "contract": "c", "origin": "o"}
    data = rezip(
        sample_bundle().to_bytes("00", {}, "t"),
        {"manifest.json": json.dumps(manifest).encode()},
    )
    with pytest.raises(EvidenceError, match="ledger-evidence/v1"):
        read_bundle(data)


def test_malformed_salts_are_rejected():
    data = rezip(
        sample_bundle().to_bytes("00", {}, "t"),
        {"salts.json": b'[{"leaf_index": 1, "label": "name"}]'},
    )
    with pytest.raises(EvidenceError, match="salts.json"):
        read_bundle(data)


def test_party_id_that_escapes_certs_folder_is_rejected():
    bundle = sample_bundle()
    bundle.certificate_chains = {"../evil": b"x"}
    with pytest.raises(EvidenceError, match="cannot name a member"):
        bundle.to_bytes("00", {}, "t")
