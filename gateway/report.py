"""Render a verification result as terminal text, HTML, or PDF for a court.

The three renderings show the same facts in the same order: the summary
(document digest, log, checkpoint and its trusted time), the timeline of
logged steps, each check with its reason, and the fingerprints of every key
the verification relied on.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from fpdf import FPDF

from gateway.results import VerificationResult

_MARK = {
    "passed": "PASS",
    "failed": "FAIL",
    "not checked": "NOT CHECKED",
    "not run": "SKIP",
}

_RESULT_LINE = {
    "VALID": "all checks passed",
    "NOT VALID": "verification FAILED",
    "NOT CHECKED": (
        "NOT CHECKED: no check failed, but one could not be made; its reason "
        "names the option to pass"
    ),
}


def _summary_rows(result: VerificationResult) -> list[tuple[str, str]]:
    rows = [
        ("Evidence", result.source),
        ("Contract", result.contract or "unknown"),
        ("Document SHA-256", result.document_sha256 or "unknown"),
        ("Log origin", result.origin or "unknown"),
    ]
    if result.tree_size is not None:
        rows.append(
            (
                "Checkpoint",
                f"tree_size {result.tree_size}, root_hash {result.root_hash}",
            )
        )
    rows.append(("Checkpoint time-stamp", result.checkpoint_time or "not established"))
    rows.append(("Trust policy", result.policy_source or "unknown"))
    rows.append(("TSA root", result.tsa_root_source or "unknown"))
    rows.append(("CA root", result.ca_root_source or "unknown"))
    rows.append(("Verdict", result.verdict))
    return rows


def render_text(result: VerificationResult) -> str:
    """Return the report as plain text lines for a terminal."""
    lines = ["Evidence verification report", ""]
    for label, value in _summary_rows(result):
        lines.append(f"  {label + ':':<24}{value}")
    for warning in result.warnings:
        lines.append(f"  WARNING: {warning}")
    if result.timeline:
        lines += ["", "Timeline (claimed times; the checkpoint time-stamp bounds them)"]
        for step in result.timeline:
            line = f"  #{step.leaf_index:<6} {step.claimed_time:<25} {step.step:<12} {step.actor}"
            if step.detail:
                line += f"  {step.detail}"
            lines.append(line)
    lines += ["", "Checks"]
    for check in result.checks:
        lines.append(f"  {check.number:>2}. [{_MARK[check.status]}] {check.title}")
        if check.reason:
            lines.append(f"        {check.reason}")
        for detail in check.details:
            lines.append(f"        - {detail}")
    if result.keys:
        lines += ["", "Keys relied on"]
        for key in result.keys:
            lines.append(f"  {key.role:<22} {key.name}")
            lines.append(f"  {'':<22} {key.fingerprint}")
    lines += [
        "",
        "Result: " + _RESULT_LINE[result.verdict],
    ]
    return "\n".join(lines) + "\n"


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #111; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #999; padding: 4px 8px; text-align: left;
         vertical-align: top; font-size: 0.9em; }
td.mono, span.mono { font-family: monospace; word-break: break-all; }
.passed { color: #064; font-weight: bold; }
.failed { color: #a00; font-weight: bold; }
.notrun { color: #666; }
.notchecked { color: #a60; font-weight: bold; }
.warning { background: #fff3cd; padding: 6px; border: 1px solid #d4b000; }
"""


def render_html(result: VerificationResult) -> str:
    """Return the report as a standalone HTML page."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Evidence report {e(result.contract)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Evidence verification report</h1>",
        "<table>",
    ]
    for label, value in _summary_rows(result):
        parts.append(f'<tr><th>{e(label)}</th><td class="mono">{e(value)}</td></tr>')
    parts.append("</table>")
    for warning in result.warnings:
        parts.append(f'<p class="warning">{e(warning)}</p>')

    parts.append("<h2>Timeline of steps</h2>")
    parts.append(
        "<p>Times are those each entry claims; the time-stamp token of the "
        "checkpoint proves that every step happened before the checkpoint time.</p>"
    )
    parts.append(
        "<table><tr><th>Leaf index</th><th>Claimed time</th><th>Step</th>"
        "<th>By</th><th>Detail</th></tr>"
    )
    for step in result.timeline:
        parts.append(
            f"<tr><td>{step.leaf_index}</td><td>{e(step.claimed_time)}</td>"
            f"<td>{e(step.step)}</td><td>{e(step.actor)}</td>"
            f'<td class="mono">{e(step.detail)}</td></tr>'
        )
    parts.append("</table>")

    parts.append("<h2>Checks</h2>")
    parts.append(
        "<table><tr><th>#</th><th>Check</th><th>Result</th><th>Reason</th></tr>"
    )
    for check in result.checks:
        css = check.status.replace(" ", "")
        reason = e(check.reason)
        if check.details:
            reason += (
                "<ul>" + "".join(f"<li>{e(d)}</li>" for d in check.details) + "</ul>"
            )
        parts.append(
            f"<tr><td>{check.number}</td><td>{e(check.title)}</td>"
            f'<td class="{css}">{_MARK[check.status]}</td><td>{reason}</td></tr>'
        )
    parts.append("</table>")

    parts.append("<h2>Keys and certificates relied on</h2>")
    parts.append("<table><tr><th>Role</th><th>Name</th><th>Fingerprint</th></tr>")
    for key in result.keys:
        parts.append(
            f"<tr><td>{e(key.role)}</td><td>{e(key.name)}</td>"
            f'<td class="mono">{e(key.fingerprint)}</td></tr>'
        )
    parts.append("</table>")
    generated = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    parts.append(f"<p>Report generated {e(generated)} by ledger verify.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _latin1(text: str) -> str:
    # The core PDF fonts cover Latin-1 only; other characters print as '?'.
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(result: VerificationResult) -> bytes:
    """Return the report as PDF bytes (A4, core fonts)."""
    pdf = FPDF(format="A4")
    pdf.set_title("Evidence verification report")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Evidence verification report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    with pdf.table(col_widths=(45, 145), first_row_as_headings=False) as table:
        for label, value in _summary_rows(result):
            table.row((_latin1(label), _latin1(value)))
    for warning in result.warnings:
        pdf.ln(2)
        pdf.set_font("Helvetica", "B", 9)
        pdf.multi_cell(0, 5, _latin1("Warning: " + warning))
    pdf.set_font("Helvetica", "B", 12)
    pdf.ln(4)
    pdf.cell(0, 8, "Timeline of steps", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    with pdf.table(col_widths=(18, 42, 24, 50, 56)) as table:
        table.row(("Leaf", "Claimed time", "Step", "By", "Detail"))
        for step in result.timeline:
            table.row(
                tuple(
                    _latin1(v)
                    for v in (
                        str(step.leaf_index),
                        step.claimed_time,
                        step.step,
                        step.actor,
                        step.detail,
                    )
                )
            )
    pdf.set_font("Helvetica", "B", 12)
    pdf.ln(4)
    pdf.cell(0, 8, "Checks", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    with pdf.table(col_widths=(8, 62, 14, 106)) as table:
        table.row(("#", "Check", "Result", "Reason"))
        for check in result.checks:
            reason = "; ".join([check.reason, *check.details]).strip("; ")
            table.row(
                (
                    str(check.number),
                    _latin1(check.title),
                    _MARK[check.status],
                    _latin1(reason),
                )
            )
    pdf.set_font("Helvetica", "B", 12)
    pdf.ln(4)
    pdf.cell(0, 8, "Keys and certificates relied on", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    with pdf.table(col_widths=(35, 55, 100)) as table:
        table.row(("Role", "Name", "Fingerprint"))
        for key in result.keys:
            table.row((_latin1(key.role), _latin1(key.name), _latin1(key.fingerprint)))
    return bytes(pdf.output())


def write_report(result: VerificationResult, path: Path) -> None:
    """Write the HTML or PDF report to `path`, chosen by its suffix (.html or .pdf)."""
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        path.write_text(render_html(result), encoding="utf-8")
    elif suffix == ".pdf":
        path.write_bytes(render_pdf(result))
    else:
        raise ValueError(f"report file {path} must end in .html or .pdf")
