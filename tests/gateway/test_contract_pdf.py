"""The generated sample contract: a real multi-page PDF that other tools read."""

from __future__ import annotations

import datetime as dt
import subprocess

from gateway.contract_pdf import build_contract_pdf, write_contract_pdf


def test_contract_passes_qpdf_check(tmp_path):
    path = write_contract_pdf(tmp_path / "contract.pdf", dt.date(2026, 3, 1))
    checked = subprocess.run(
        ["qpdf", "--check", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_contract_has_three_pages_and_its_text(tmp_path):
    path = write_contract_pdf(tmp_path / "contract.pdf", dt.date(2026, 3, 1))
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True)
    assert "Pages:           3" in info.stdout
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True
    ).stdout
    assert "SERVICES AGREEMENT" in text
    assert "2026-03-01" in text
    assert "Electronic signature" in text


def test_same_date_gives_same_bytes():
    first = build_contract_pdf(dt.date(2026, 3, 1))
    second = build_contract_pdf(dt.date(2026, 3, 1))
    assert first == second
    assert build_contract_pdf(dt.date(2026, 3, 2)) != first
