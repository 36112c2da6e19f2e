"""Offline verification of a real evidence bundle, and of tampered copies.

One module fixture runs a gateway with three witness processes (quorum 2)
and a mirror process on 127.0.0.1, takes the generated contract through the
whole workflow over the API and keeps the evidence bundle. Each tampering
test changes one thing in a copy and checks that exactly the check that
covers it fails, with its own reason.
"""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.client import GatewayClient
from gateway.contract_pdf import build_contract_pdf
from gateway.demo import run_workflow
from gateway.fetch import EvidenceFetchError, _fetch
from gateway.nodes import NodeGroup
from gateway.report import render_html
from gateway.service import Gateway, GatewayOptions
from gateway.verify import TrustAnchor, verify_bundle
from ledger import merkle
from ledger.evidence import read_bundle
from ledger.note import Ed25519Signer, parse_note
from ledger.tlog_proof import TlogProof, parse_tlog_proof

PASSPHRASE = b"verify test passphrase"


@dataclass
class Cluster:
    bundle: bytes
    policy: bytes
    other_token: bytes  # a token of the same TSA over other bytes
    shorter_proofs: dict[int, list[bytes]]  # inclusion proofs at tree_size - 1
    log_responses: dict[str, bytes]
    mirror_responses: dict[str, bytes]
    fetched: bytes  # a bundle assembled from the mirror's read API
    fetch_error: str  # the error for a PDF that is not in the log
    anchors: tuple[bytes, bytes]  # TSA root and CA root (PEM)
    # Two contracts' bundles cut from one checkpoint, so that the entries and
    # proofs of one are valid next to the other's.
    same_checkpoint_bundles: tuple[bytes, bytes]


async def _collect(
    session: aiohttp.ClientSession, base: str, paths: list[str]
) -> dict[str, bytes]:
    responses = {}
    for path in paths:
        async with session.get(base + path) as response:
            assert response.status == 200, (base + path, await response.text())
            responses[path] = await response.read()
    return responses


def _bundle_tree_size(data: bytes) -> int:
    bundle = read_bundle(data)
    return parse_tlog_proof(bundle.entries[0].tlog_proof).parsed_checkpoint().tree_size


async def _two_bundles_one_checkpoint(client, gateway, first) -> tuple[bytes, bytes]:
    second = await run_workflow(
        client,
        gateway.operator_token,
        gateway.outbox.latest_code,
        build_contract_pdf(),
    )
    for _ in range(50):
        await asyncio.sleep(0.3)
        one = await client.evidence(first.first_signer, first.contract_id)
        two = await client.evidence(second.first_signer, second.contract_id)
        if _bundle_tree_size(one) == _bundle_tree_size(two):
            return one, two
    raise AssertionError("the two bundles never shared a checkpoint")


async def _run_cluster(folder: Path) -> Cluster:
    from ledger.log import init_log

    log_dir = folder / "log"
    log_vkey = init_log(log_dir, "ledger.localhost/verify-test", PASSPHRASE)
    nodes = NodeGroup(PASSPHRASE)
    try:
        witnesses = await asyncio.to_thread(
            nodes.start_witnesses,
            [folder / f"witness-{n}" for n in (1, 2, 3)],
            log_vkey,
        )
        gateway = Gateway(
            GatewayOptions(
                folder / "gateway",
                PASSPHRASE,
                log_dir=log_dir,
                witnesses=[(w.url, w.vkey) for w in witnesses],
                quorum=2,
                publish_interval=0.1,
            )
        )
        await gateway.start()
        try:
            mirror = await asyncio.to_thread(
                nodes.start_mirror, folder / "mirror", gateway.url, log_vkey
            )
            async with aiohttp.ClientSession() as session:
                client = GatewayClient(gateway.url, session)
                outcome = await run_workflow(
                    client,
                    gateway.operator_token,
                    gateway.outbox.latest_code,
                    build_contract_pdf(),
                )
                bundle = read_bundle(outcome.evidence)
                tree_size = (
                    parse_tlog_proof(bundle.entries[0].tlog_proof)
                    .parsed_checkpoint()
                    .tree_size
                )
                shorter = {
                    e.leaf_index: merkle.inclusion_proof(
                        e.leaf_index, tree_size - 1, gateway.store
                    )
                    for e in bundle.entries
                    if e.leaf_index < tree_size - 1
                }
                # The mirror serves the same read API; wait until it contains
                # the bundle's tree, then fetch the same proofs from both.
                paths = (
                    [
                        f"/log/proof/inclusion?leaf_index={i}&tree_size={tree_size}"
                        for i in range(tree_size)
                    ]
                    + [
                        f"/log/proof/consistency?size1={size1}&size2={tree_size}"
                        for size1 in range(1, tree_size)
                    ]
                    + [
                        f"/log/tile/0/000.p/{tree_size}",
                        f"/log/tile/entries/000.p/{tree_size}",
                    ]
                )
                for _ in range(150):
                    async with session.get(mirror.url + paths[-1]) as response:
                        if response.status == 200:
                            break
                    await asyncio.sleep(0.2)
                log_responses = await _collect(session, gateway.url, paths)
                mirror_responses = await _collect(session, mirror.url, paths)
                same_checkpoint_bundles = await _two_bundles_one_checkpoint(
                    client, gateway, outcome
                )
            anchors = (gateway.tsa_root_pem, gateway.ca_root_pem())
            fetched = await _fetch(
                outcome.signed_pdf, mirror.url, *anchors, gateway.policy_text()
            )
            try:
                await _fetch(
                    b"%PDF-1.7 unknown", mirror.url, *anchors, gateway.policy_text()
                )
                fetch_error = ""
            except EvidenceFetchError as error:
                fetch_error = str(error)
            other_token = gateway.tsa.stamp(b"some other bytes than the checkpoint")
            policy = gateway.policy_text()
        finally:
            await gateway.close()
    finally:
        await asyncio.to_thread(nodes.stop)
    return Cluster(
        outcome.evidence,
        policy,
        other_token,
        shorter,
        log_responses,
        mirror_responses,
        fetched,
        fetch_error,
        anchors,
        same_checkpoint_bundles,
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    return asyncio.run(_run_cluster(tmp_path_factory.mktemp("cluster")))


def replace_members(data: bytes, change: dict[str, bytes | None]) -> bytes:
    """Copy a bundle, replacing members or (with None) dropping them."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename not in change:
                target.writestr(info, source.read(info))
        for name, content in change.items():
            if content is not None:
                target.writestr(name, content)
    return out.getvalue()


def with_checkpoint(data: bytes, note: bytes) -> bytes:
    """Copy a bundle with every tlog-proof carrying `note` as its checkpoint."""
    bundle = read_bundle(data)
    change = {}
    for logged in bundle.entries:
        proof = parse_tlog_proof(logged.tlog_proof)
        change[f"proofs/{logged.leaf_index}.tlog-proof"] = TlogProof(
            proof.index, proof.hashes, note
        ).encode()
    return replace_members(data, change)


def checkpoint_note(data: bytes) -> bytes:
    return parse_tlog_proof(read_bundle(data).entries[0].tlog_proof).checkpoint


def outcome(data: bytes, policy: bytes | None, anchors: tuple[bytes, bytes] | None):
    """Verify `data` against `policy` and the (TSA root, CA root) `anchors`.

    None for either takes the bundle's own, as `ledger verify` does without
    --policy, or without --tsa-root and --ca-root.
    """
    tsa_root = ca_root = None
    if anchors is not None:
        tsa_root = TrustAnchor(anchors[0], "tsa-root.pem")
        ca_root = TrustAnchor(anchors[1], "ca-root.pem")
    return verify_bundle(
        data, source="test", policy_text=policy, tsa_root=tsa_root, ca_root=ca_root
    )


def foreign_tsa(folder: Path):
    """Return a TSA with a root of its own, as an operator could set one up."""
    from ledger.tsa.authority import TimeStampAuthority
    from ledger.tsa.keys import load_or_create_credentials

    credentials = load_or_create_credentials(folder, PASSPHRASE)
    return TimeStampAuthority.open(folder, credentials), credentials


def pem(certificates) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def with_foreign_time_stamp(data: bytes, folder: Path) -> tuple[bytes, bytes]:
    """Re-stamp the checkpoint with a foreign TSA and ship that TSA's root.

    Returns the changed bundle and the foreign root (PEM).
    """
    authority, credentials = foreign_tsa(folder)
    bundle = read_bundle(data)
    root = pem(credentials.chain[-1:])
    changed = replace_members(
        data,
        {
            "checkpoint.tsr": authority.stamp(bundle.checkpoint_stamped),
            "tsa/chain.pem": pem([credentials.certificate, *credentials.chain]),
            "tsa/root.pem": root,
        },
    )
    return changed, root


def status_of(result) -> dict[int, str]:
    return {check.number: check.status for check in result.checks}


def only_failure(result) -> tuple[int, str]:
    failed = [c for c in result.checks if c.status == "failed"]
    assert len(failed) == 1, [(c.number, c.reason) for c in failed]
    return failed[0].number, failed[0].reason


def test_untouched_bundle_passes_every_check(cluster):
    result = outcome(cluster.bundle, cluster.policy, cluster.anchors)
    assert result.ok, [(c.number, c.reason) for c in result.checks]
    assert len(result.checks) == 10
    assert not result.warnings
    steps = [step.step for step in result.timeline]
    assert steps == ["upload", "sign", "send", "countersign", "store"]
    assert result.checkpoint_time


def test_bundle_policy_is_used_with_warning(cluster):
    result = outcome(cluster.bundle, None, cluster.anchors)
    assert result.ok
    assert len(result.warnings) == 1
    assert "trust policy" in result.warnings[0]
    assert "self-asserted" in result.warnings[0]


def test_bundle_roots_are_used_with_warning(cluster):
    result = outcome(cluster.bundle, cluster.policy, None)
    assert result.ok, [(c.number, c.reason) for c in result.checks]
    tsa, ca = result.warnings
    for warning, name, option in (
        (tsa, "TSA root", "--tsa-root"),
        (ca, "CA root", "--ca-root"),
    ):
        assert name in warning
        assert "self-asserted" in warning
        assert option in warning
    assert "self-asserted" in result.tsa_root_source
    assert "self-asserted" in result.ca_root_source
    page = render_html(result)
    assert "tsa/root.pem (self-asserted)" in page
    assert "certs/root.pem (self-asserted)" in page


def test_given_anchors_are_named_in_the_report(cluster):
    result = outcome(cluster.bundle, cluster.policy, cluster.anchors)
    assert (result.tsa_root_source, result.ca_root_source) == (
        "tsa-root.pem",
        "ca-root.pem",
    )
    roles = [key.role for key in result.keys]
    assert "TSA root" in roles
    assert "CA root" in roles


def test_foreign_tsa_root_fails_given_root(cluster, tmp_path):
    # The service re-dates the checkpoint with a TSA of its own and ships
    # that TSA's root in the bundle: the verifier's own root rejects it.
    changed, foreign_root = with_foreign_time_stamp(cluster.bundle, tmp_path)
    number, reason = only_failure(outcome(changed, cluster.policy, cluster.anchors))
    assert number == 5
    assert "TSA root from tsa-root.pem" in reason

    # Trusting the bundle's root instead accepts it, but only with a warning.
    trusting = outcome(changed, cluster.policy, None)
    assert trusting.ok
    assert any("TSA root" in w and "self-asserted" in w for w in trusting.warnings)
    assert foreign_root != cluster.anchors[0]


def test_given_ca_root_that_issued_no_signer_fails(cluster, tmp_path):
    _, credentials = foreign_tsa(tmp_path)
    other_root = pem(credentials.chain[-1:])
    number, reason = only_failure(
        outcome(cluster.bundle, cluster.policy, (cluster.anchors[0], other_root))
    )
    assert number == 9
    assert "CA root from ca-root.pem" in reason


def test_cli_uses_given_tsa_root_for_a_bundle(cluster, tmp_path):
    changed, _ = with_foreign_time_stamp(cluster.bundle, tmp_path / "tsa")
    bundle = tmp_path / "contract.evidence"
    bundle.write_bytes(changed)
    files = {}
    for name, content in (
        ("policy.txt", cluster.policy),
        ("tsa-root.pem", cluster.anchors[0]),
        ("ca-root.pem", cluster.anchors[1]),
    ):
        files[name] = tmp_path / name
        files[name].write_bytes(content)
    ledger = [sys.executable, "-m", "gateway.cli", "verify", str(bundle)]
    anchored = subprocess.run(
        [
            *ledger,
            "--policy",
            str(files["policy.txt"]),
            "--tsa-root",
            str(files["tsa-root.pem"]),
            "--ca-root",
            str(files["ca-root.pem"]),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert anchored.returncode == 1, anchored.stdout + anchored.stderr
    assert "[FAIL] Checkpoint time-stamp token" in anchored.stdout
    assert "WARNING" not in anchored.stdout

    unanchored = subprocess.run(
        [*ledger, "--policy", str(files["policy.txt"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert unanchored.returncode == 0, unanchored.stdout + unanchored.stderr
    assert "WARNING: The TSA root comes from the bundle itself" in unanchored.stdout
    assert "WARNING: The signing CA root comes from the bundle itself" in (
        unanchored.stdout
    )


def test_changed_pdf_byte_fails_document_check(cluster):
    document = bytearray(read_bundle(cluster.bundle).document)
    position = len(document) // 2
    document[position] ^= 0x01
    result = outcome(
        replace_members(cluster.bundle, {"document.pdf": bytes(document)}),
        cluster.policy,
        cluster.anchors,
    )
    checks = {c.number: c for c in result.checks}
    assert checks[8].status == "failed"
    assert "differs from the digest" in checks[8].reason
    assert not result.ok


def test_dropped_entry_breaks_the_chain(cluster):
    manifest = read_bundle(cluster.bundle).manifest
    dropped = next(
        e["leaf_index"] for e in manifest["entries"] if e["type"] == "countersign"
    )
    data = replace_members(
        cluster.bundle,
        {f"entries/{dropped}.cbor": None, f"proofs/{dropped}.tlog-proof": None},
    )
    number, reason = only_failure(outcome(data, cluster.policy, cluster.anchors))
    assert number == 7
    assert "does not chain" in reason


def test_entry_of_other_contract_fails(cluster):
    own, other = cluster.same_checkpoint_bundles
    foreign = read_bundle(other)
    upload = next(e for e in foreign.manifest["entries"] if e["type"] == "upload")
    logged = next(e for e in foreign.entries if e.leaf_index == upload["leaf_index"])
    data = replace_members(
        own,
        {
            f"entries/{logged.leaf_index}.cbor": logged.entry,
            f"proofs/{logged.leaf_index}.tlog-proof": logged.tlog_proof,
        },
    )
    result = outcome(data, cluster.policy, cluster.anchors)
    assert status_of(outcome(own, cluster.policy, cluster.anchors))[7] == "passed"
    number, reason = only_failure(result)
    assert number == 7
    assert "belongs to contract" in reason


def test_dropped_consent_entry_fails(cluster):
    manifest = read_bundle(cluster.bundle).manifest
    consent = next(
        e["leaf_index"] for e in manifest["entries"] if e["type"] == "consent"
    )
    data = replace_members(
        cluster.bundle,
        {f"entries/{consent}.cbor": None, f"proofs/{consent}.tlog-proof": None},
    )
    number, reason = only_failure(outcome(data, cluster.policy, cluster.anchors))
    assert number == 7
    assert "consent" in reason


def test_checkpoint_signed_by_other_key_fails(cluster):
    note = parse_note(checkpoint_note(cluster.bundle))
    origin = note.text.split("\n")[0]
    impostor = Ed25519Signer(origin, Ed25519PrivateKey.generate())
    from ledger.note import sign_note

    forged = sign_note(note.text, [impostor])
    result = outcome(
        with_checkpoint(cluster.bundle, forged), cluster.policy, cluster.anchors
    )
    checks = {c.number: c for c in result.checks}
    assert checks[3].status == "failed"
    assert "not signed by the policy's log key" in checks[3].reason
    assert all(c.status == "not run" for n, c in checks.items() if n > 3 and n != 10)


def cosignature_lines(note: bytes) -> tuple[bytes, list[bytes]]:
    text, _, signatures = note.partition(b"\n\n")
    lines = signatures.splitlines(keepends=True)
    return text + b"\n\n", lines


def test_forged_cosignature_fails(cluster):
    head, lines = cosignature_lines(checkpoint_note(cluster.bundle))
    assert len(lines) >= 3  # the log's signature and at least two cosignatures
    name, blob = lines[1].rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 0x01
    lines[1] = name + b" " + base64.b64encode(bytes(raw)) + b"\n"
    number, reason = only_failure(
        outcome(
            with_checkpoint(cluster.bundle, head + b"".join(lines)),
            cluster.policy,
            cluster.anchors,
        )
    )
    assert number == 4
    assert "cosignature is invalid" in reason


def test_quorum_not_met_fails(cluster):
    head, lines = cosignature_lines(checkpoint_note(cluster.bundle))
    note = head + lines[0] + lines[1]  # the log's signature and one cosignature
    number, reason = only_failure(
        outcome(with_checkpoint(cluster.bundle, note), cluster.policy, cluster.anchors)
    )
    assert number == 4
    assert "quorum" in reason
    assert "not met" in reason


def test_token_for_other_bytes_fails(cluster):
    data = replace_members(cluster.bundle, {"checkpoint.tsr": cluster.other_token})
    number, reason = only_failure(outcome(data, cluster.policy, cluster.anchors))
    assert number == 5
    assert "time-stamp token does not verify" in reason


def test_proof_for_other_tree_size_fails(cluster):
    leaf_index, hashes = next(iter(cluster.shorter_proofs.items()))
    original = parse_tlog_proof(read_bundle(cluster.bundle).entries[0].tlog_proof)
    proof = TlogProof(leaf_index, hashes, original.checkpoint).encode()
    data = replace_members(cluster.bundle, {f"proofs/{leaf_index}.tlog-proof": proof})
    number, reason = only_failure(outcome(data, cluster.policy, cluster.anchors))
    assert number == 6
    assert f"leaf_index {leaf_index}" in reason


def test_policy_of_other_log_fails(cluster):
    other = Ed25519Signer("ledger.localhost/verify-test", Ed25519PrivateKey.generate())
    policy = f"log {other.vkey}\nquorum none\n".encode()
    number, reason = only_failure(outcome(cluster.bundle, policy, cluster.anchors))
    assert number == 3
    assert "not signed by the policy's log key" in reason


def test_wrong_disclosed_salt_fails(cluster):
    import json

    salts = json.loads(zipfile.ZipFile(io.BytesIO(cluster.bundle)).read("salts.json"))
    assert salts
    salts[0]["value"] = salts[0]["value"] + "x"
    data = replace_members(cluster.bundle, {"salts.json": json.dumps(salts).encode()})
    number, reason = only_failure(outcome(data, cluster.policy, cluster.anchors))
    assert number == 10
    assert salts[0]["label"] in reason


def test_mirror_serves_the_same_proofs(cluster):
    assert cluster.mirror_responses.keys() == cluster.log_responses.keys()
    for path, body in cluster.log_responses.items():
        assert cluster.mirror_responses[path] == body, path


def test_cli_exit_status_and_reports(cluster, tmp_path):
    bundle = tmp_path / "contract.evidence"
    bundle.write_bytes(cluster.bundle)
    policy = tmp_path / "policy.txt"
    policy.write_bytes(cluster.policy)
    report = tmp_path / "report.pdf"
    ledger = [sys.executable, "-m", "gateway.cli", "verify"]
    passed = subprocess.run(
        [*ledger, str(bundle), "--policy", str(policy), "--report", str(report)],
        capture_output=True,
        text=True,
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "all checks passed" in passed.stdout
    text = subprocess.run(
        ["pdftotext", str(report), "-"], capture_output=True, text=True
    ).stdout
    assert "Timeline of steps" in text
    assert "countersign" in text

    tampered = tmp_path / "tampered.evidence"
    tampered.write_bytes(
        replace_members(cluster.bundle, {"checkpoint.tsr": cluster.other_token})
    )
    html_report = tmp_path / "report.html"
    failed = subprocess.run(
        [*ledger, str(tampered), "--policy", str(policy), "--report", str(html_report)],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert "[FAIL] Checkpoint time-stamp token" in failed.stdout
    assert "NOT VALID" in html_report.read_text()


def test_pdf_verifies_with_evidence_from_mirror(cluster):
    result = outcome(cluster.fetched, cluster.policy, cluster.anchors)
    failed = [(c.number, c.reason) for c in result.checks if not c.passed]
    assert not failed
    assert [step.step for step in result.timeline] == [
        "upload",
        "sign",
        "send",
        "countersign",
        "store",
    ]


def test_pdf_not_in_log_is_reported(cluster):
    assert "no stored contract" in cluster.fetch_error


def test_pdf_mode_needs_own_trust_anchors(cluster, tmp_path):
    pdf = tmp_path / "contract.pdf"
    pdf.write_bytes(read_bundle(cluster.bundle).document)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "verify",
            str(pdf),
            "--log",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "--policy FILE" in result.stderr
    assert "--tsa-root FILE" in result.stderr


def test_report_suffix_checked_before_verifying(tmp_path):
    # The file need not even be a bundle: the suffix is rejected first.
    bundle = tmp_path / "contract.evidence"
    bundle.write_bytes(b"not read")
    ledger = [sys.executable, "-m", "gateway.cli", "verify", str(bundle)]
    result = subprocess.run(
        [*ledger, "--report", str(tmp_path / "r.txt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "must end in .html or .pdf" in result.stderr
    assert result.stdout == ""
