"""Report renderings: the same facts in text, HTML and PDF."""

from __future__ import annotations

import html.parser
import subprocess

from gateway.report import render_html, render_text, write_report
from gateway.results import Check, KeyFingerprint, TimelineStep, VerificationResult


def sample_result(failed: bool) -> VerificationResult:
    result = VerificationResult(
        source="contract.evidence",
        contract="c-42",
        origin="ledger.localhost/log",
        document_sha256="ab" * 32,
        tree_size=17,
        root_hash="cm9vdA==",
        checkpoint_time="2026-03-01T10:00:00+00:00",
        policy_source="policy.txt",
    )
    result.checks = [
        Check(1, "Bundle layout", "passed", "5 entries"),
        Check(
            2, "Trust policy", "failed" if failed else "passed", "bad key", ["line 3"]
        ),
    ]
    result.timeline = [TimelineStep(4, "sign", "2026-03-01T09:59:00+00:00", "p-1", "x")]
    result.keys = [
        KeyFingerprint("log key", "ledger.localhost/log+0a0b0c0d+AQ", "SHA-256:ff")
    ]
    result.warnings = ["self-asserted policy"]
    return result


def test_ok_needs_every_check_passed():
    assert sample_result(failed=False).ok
    assert not sample_result(failed=True).ok
    assert not VerificationResult(source="x").ok


def test_text_shows_each_check_and_verdict():
    text = render_text(sample_result(failed=True))
    assert " 1. [PASS] Bundle layout" in text
    assert " 2. [FAIL] Trust policy" in text
    assert "bad key" in text
    assert "verification FAILED" in text
    assert "WARNING: self-asserted policy" in text


def test_html_is_well_formed_and_escaped():
    result = sample_result(failed=False)
    result.contract = "<script>"
    page = render_html(result)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    parser = html.parser.HTMLParser()
    parser.feed(page)
    parser.close()
    assert "VALID" in page


def test_pdf_report_text_is_extractable(tmp_path):
    path = tmp_path / "report.pdf"
    write_report(sample_result(failed=True), path)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True
    ).stdout
    assert "Evidence verification report" in text
    assert "NOT VALID" in text
    assert "Timeline of steps" in text
    assert "SHA-256:ff" in text


def unchecked_result() -> VerificationResult:
    """Return a result whose PDF check could not be made, with bundle roots."""
    result = sample_result(failed=False)
    result.checks.append(
        Check(
            9,
            "PDF signatures and signer certificates",
            "not checked",
            "the PDF is encrypted; pass it with --password",
        )
    )
    result.tsa_root_source = "the bundle's own tsa/root.pem (self-asserted)"
    result.ca_root_source = "ca-root.pem"
    return result


def test_verdict_of_each_outcome():
    assert sample_result(failed=False).verdict == "VALID"
    assert sample_result(failed=True).verdict == "NOT VALID"
    assert unchecked_result().verdict == "NOT CHECKED"
    failed_and_unchecked = unchecked_result()
    failed_and_unchecked.checks[1].status = "failed"
    assert failed_and_unchecked.verdict == "NOT VALID"


def test_text_shows_not_checked_and_anchors():
    text = render_text(unchecked_result())
    assert " 9. [NOT CHECKED] PDF signatures and signer certificates" in text
    assert "pass it with --password" in text
    assert "Verdict:                NOT CHECKED" in text
    assert "TSA root:               the bundle's own tsa/root.pem" in text
    assert "CA root:                ca-root.pem" in text
    assert "verification FAILED" not in text


def test_html_and_pdf_show_not_checked_and_anchors(tmp_path):
    page = render_html(unchecked_result())
    assert "NOT CHECKED" in page
    assert "tsa/root.pem (self-asserted)" in page
    assert "NOT VALID" not in page
    path = tmp_path / "report.pdf"
    write_report(unchecked_result(), path)
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "NOT CHECKED" in text
    assert "self-asserted" in text
    assert "NOT VALID" not in text
