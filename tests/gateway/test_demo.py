"""`ledger demo` as a user runs it: a local cluster, the workflow, the outputs.

Each test runs the real command in a subprocess, which starts three witness
processes and a mirror on 127.0.0.1 and stops them before it exits.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

LEDGER = [sys.executable, "-m", "gateway.cli"]


def run_ledger(
    *arguments: str,
    passphrase: str | None = "demo test passphrase",
    timeout: float = 240,
):
    environment = dict(os.environ)
    environment.pop("LEDGER_PASSPHRASE", None)
    if passphrase is not None:
        environment["LEDGER_PASSPHRASE"] = passphrase
    return subprocess.run(
        [*LEDGER, *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_demo_on_generated_contract(tmp_path: Path):
    out = tmp_path / "out"
    demo = run_ledger("demo", "--out", str(out))
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "[7/7] cluster stopped" in demo.stdout
    assert "VALID" in demo.stdout
    for name in (
        "contract.pdf",
        "contract.signed.pdf",
        "contract.evidence",
        "log.vkey",
        "witness.vkeys",
        "policy.txt",
        "report.html",
    ):
        assert (out / name).is_file(), name
    witness_vkeys = (out / "witness.vkeys").read_text().splitlines()
    assert len(witness_vkeys) == 3
    policy = (out / "policy.txt").read_text()
    assert (out / "log.vkey").read_text().strip() in policy
    assert "quorum witnesses" in policy
    again = next(line for line in demo.stdout.splitlines() if "verify again" in line)
    assert "--tsa-root" in again
    assert "--ca-root" in again
    assert "--password" not in again
    # The demo verified against the anchors it wrote, not the bundle's own.
    assert "self-asserted" not in (out / "report.html").read_text()

    # The evidence verifies again, offline, in a new process.
    verify = run_ledger(
        "verify",
        str(out / "contract.evidence"),
        "--policy",
        str(out / "policy.txt"),
        passphrase=None,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "all checks passed" in verify.stdout

    # Two signatures by our CA plus the document time stamp, per pdfsig.
    pdfsig = subprocess.run(
        ["pdfsig", str(out / "contract.signed.pdf")], capture_output=True, text=True
    )
    assert pdfsig.stdout.count("Signature is Valid.") == 2, pdfsig.stdout

    # The log folder is served again after the demo stopped.
    port = free_port()
    server = subprocess.Popen(
        [*LEDGER, "serve", "--data", str(out / "log"), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "LEDGER_PASSPHRASE"},
    )
    try:
        checkpoint = b""
        for _ in range(100):
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/log/checkpoint"
                ) as response:
                    checkpoint = response.read()
                break
            except OSError:
                time.sleep(0.1)
        assert checkpoint.startswith(b"ledger.localhost/demo\n"), checkpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_demo_rejects_unsignable_pdf(tmp_path: Path, corpus_dir: Path):
    demo = run_ledger(
        "demo",
        str(corpus_dir / "05-certified-docmdp-p1.pdf"),
        "--out",
        str(tmp_path / "out"),
    )
    assert demo.returncode == 1
    assert "the PDF cannot be signed" in demo.stderr
    assert "forbids" in demo.stderr
    # The PDF is checked before the cluster starts and the folder is made.
    assert "cluster up" not in demo.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "cannot read"),
        ("not a PDF", "not a PDF"),
        ("no password", "pass its user or owner password with --password"),
        ("wrong password", "the password given with --password does not open"),
    ],
)
def test_demo_checks_the_pdf_before_it_starts(
    tmp_path: Path, corpus_dir: Path, case: str, expected: str
):
    encrypted = corpus_dir / "10-encrypted-rc4-128-user-pw-openpassword.pdf"
    text = tmp_path / "notes.pdf"
    text.write_text("meeting notes, not a PDF\n" * 10)
    arguments = {
        "missing": [str(tmp_path / "absent.pdf")],
        "not a PDF": [str(text)],
        "no password": [str(encrypted)],
        "wrong password": [str(encrypted), "--password", "not the password"],
    }[case]
    out = tmp_path / "out"
    demo = run_ledger("demo", *arguments, "--out", str(out), timeout=60)
    assert demo.returncode == 1, demo.stdout + demo.stderr
    assert expected in demo.stderr
    assert "cluster up" not in demo.stdout
    assert not out.exists()


def test_demo_rejects_non_empty_folder(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "report.pdf"
    stale.write_bytes(b"%PDF-1.7 report of an earlier run")
    demo = run_ledger("demo", "--out", str(out), timeout=60)
    assert demo.returncode == 2, demo.stdout + demo.stderr
    assert "is not empty (it contains report.pdf)" in demo.stderr
    assert "--out" in demo.stderr
    assert "--force" in demo.stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.pdf"]
    assert stale.read_bytes() == b"%PDF-1.7 report of an earlier run"


def test_demo_force_keeps_other_files(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.pdf").write_bytes(b"%PDF-1.7 report of an earlier run")
    (out / "thesis.odt").write_bytes(b"not the demo's")
    demo = run_ledger("demo", "--out", str(out), "--force", timeout=60)
    assert demo.returncode == 2, demo.stdout + demo.stderr
    assert "also contains thesis.odt" in demo.stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.pdf", "thesis.odt"]


def test_demo_force_replaces_earlier_run(tmp_path: Path):
    out = tmp_path / "out"
    (out / "log").mkdir(parents=True)
    (out / "log" / "left-over").write_bytes(b"from an earlier run")
    (out / "report.pdf").write_bytes(b"%PDF-1.7 report of an earlier run")
    demo = run_ledger("demo", "--out", str(out), "--force")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert not (out / "report.pdf").exists()
    assert not (out / "log" / "left-over").exists()
    assert (out / "log" / "log.vkey").is_file()
    assert (out / "contract.evidence").is_file()


def test_demo_signs_encrypted_pdf_with_password(tmp_path: Path, corpus_dir: Path):
    pdf = corpus_dir / "10-encrypted-rc4-128-user-pw-openpassword.pdf"
    demo = run_ledger(
        "demo", str(pdf), "--out", str(tmp_path / "out"), "--password", "openpassword"
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "10 of 10 checks passed" in demo.stdout

    # The printed command verifies again without changes, because it names
    # the password and the trust anchors written next to the bundle.
    line = next(line for line in demo.stdout.splitlines() if "verify again" in line)
    command = shlex.split(line.split("verify again", 1)[1])
    assert command[:2] == ["ledger", "verify"]
    for option in ("--policy", "--tsa-root", "--ca-root", "--password"):
        assert option in command, line
    again = run_ledger(*command[1:], passphrase=None)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "WARNING" not in again.stdout

    # Without the password the signatures cannot be checked: NOT CHECKED,
    # exit status 3, and the reason names the option.
    at = command.index("--password")
    unchecked = run_ledger(*command[1:at], *command[at + 2 :], passphrase=None)
    assert unchecked.returncode == 3, unchecked.stdout + unchecked.stderr
    assert "NOT CHECKED" in unchecked.stdout
    assert "[NOT CHECKED] PDF signatures and signer certificates" in unchecked.stdout
    assert "pass it with --password" in unchecked.stdout
    assert "NOT VALID" not in unchecked.stdout


def test_demo_needs_passphrase(tmp_path: Path):
    demo = run_ledger("demo", "--out", str(tmp_path / "out"), passphrase=None)
    assert demo.returncode == 2
    assert "LEDGER_PASSPHRASE" in demo.stderr


@pytest.mark.parametrize("missing", ["bundle", "policy"])
def test_verify_reports_unreadable_file(tmp_path: Path, missing: str):
    bundle = tmp_path / "contract.evidence"
    if missing == "policy":
        bundle.write_bytes(b"PK\x05\x06" + bytes(18))
    verify = run_ledger(
        "verify", str(bundle), "--policy", str(tmp_path / "policy.txt"), passphrase=None
    )
    assert verify.returncode == 2
    assert "cannot read" in verify.stderr


def test_gateway_command_serves_and_stops(tmp_path: Path):
    environment = dict(os.environ, LEDGER_PASSPHRASE="gateway command passphrase")
    server = subprocess.Popen(
        [*LEDGER, "gateway", "--data", str(tmp_path / "gw"), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )
    try:
        first_line = server.stdout.readline()
        assert first_line.startswith("gateway serving http://127.0.0.1:"), first_line
        url = first_line.split()[-1]
        token = server.stdout.readline().split()[-1]
        assert token.startswith("operator.")
        with urllib.request.urlopen(url + "/api/openapi.json") as response:
            assert response.status == 200
        request = urllib.request.Request(
            url + "/api/v1/parties",
            data=b"{}",
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request)
        assert raised.value.code == 401
    finally:
        server.terminate()
        assert server.wait(timeout=20) == 0
    assert (tmp_path / "gw" / "log" / "log.vkey").is_file()
