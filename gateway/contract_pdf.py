"""Generate the bundled sample contract: a real multi-page PDF made with fpdf2.

The demo signs this file when no PDF is given, so that `make run` needs no
input. The text is a plain services agreement between two fictitious parties;
the output is deterministic for a given creation date, so two runs on the same
day produce identical bytes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fpdf import FPDF

CLAUSES = (
    (
        "Services",
        (
            "The Supplier shall provide the Customer with the hosting, monitoring "
            "and support services described in Schedule 1 (the Services), with the "
            "skill and care expected of a competent provider of such services."
        ),
    ),
    (
        "Term",
        (
            "This Agreement starts on the Effective Date and runs for twelve (12) "
            "months. It renews for further periods of twelve months unless either "
            "party gives written notice at least sixty (60) days before the end of "
            "the current period."
        ),
    ),
    (
        "Fees and payment",
        (
            "The Customer shall pay the fees set out in Schedule 2 within thirty "
            "(30) days of the date of each invoice. Late payments bear interest at "
            "the statutory rate from the due date until payment in full."
        ),
    ),
    (
        "Service levels",
        (
            "The Supplier shall make the Services available 99.9 percent of each "
            "calendar month, excluding announced maintenance. For each full tenth "
            "of a percent below that level the Customer receives a credit of two "
            "percent of the monthly fee, up to fifty percent of that fee."
        ),
    ),
    (
        "Confidentiality",
        (
            "Each party shall keep the other party's confidential information "
            "secret, use it only to perform this Agreement and disclose it only to "
            "employees and advisers who need to know it and are bound by duties of "
            "confidence at least as strict as this clause."
        ),
    ),
    (
        "Data protection",
        (
            "Where the Supplier processes personal data on behalf of the Customer, "
            "it does so only on documented instructions, under the data processing "
            "terms of Schedule 3, and with appropriate technical and organisational "
            "measures to protect that data."
        ),
    ),
    (
        "Liability",
        (
            "Neither party excludes liability for death or personal injury caused "
            "by negligence, or for fraud. Otherwise each party's total liability "
            "under this Agreement in any contract year is limited to the fees paid "
            "or payable in that year."
        ),
    ),
    (
        "Termination",
        (
            "Either party may terminate this Agreement with immediate effect by "
            "written notice if the other party commits a material breach that it "
            "does not remedy within thirty (30) days of being asked to do so."
        ),
    ),
    (
        "Electronic signature",
        (
            "The parties agree to sign this Agreement with advanced electronic "
            "signatures. Each signing step is recorded in a public transparency "
            "log, and the evidence bundle issued for this Agreement is accepted by "
            "both parties as proof of who signed it and when."
        ),
    ),
    (
        "Governing law",
        (
            "This Agreement and any dispute arising from it are governed by the "
            "laws of the place of the Supplier's registered office, whose courts "
            "have exclusive jurisdiction."
        ),
    ),
)

SCHEDULE_ROWS = (
    ("Managed hosting, 4 virtual machines", "1,200.00"),
    ("Monitoring, 24 hours a day", "300.00"),
    ("Support, business hours, 8 tickets", "450.00"),
    ("Off-site backup, 2 TB", "90.00"),
)


def _page_header(pdf: FPDF, title: str) -> None:
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT", align="C")
    pdf.ln(4)


def build_contract_pdf(created: dt.date | None = None) -> bytes:
    """Return the bytes of the sample services agreement (three pages).

    `created` is printed as the Effective Date and stored as the creation date;
    it defaults to today in UTC.
    """
    created = created or dt.datetime.now(dt.UTC).date()
    pdf = FPDF(format="A4")
    pdf.set_title("Services Agreement")
    pdf.set_author("Contract Ledger demo")
    pdf.set_creator("contract-ledger")
    pdf.set_creation_date(dt.datetime.combine(created, dt.time(0, 0), tzinfo=dt.UTC))
    pdf.set_auto_page_break(auto=True, margin=20)

    # Page 1: parties and the first clauses.
    pdf.add_page()
    _page_header(pdf, "SERVICES AGREEMENT")
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(
        0,
        6,
        f"This Agreement is made on {created.isoformat()} (the Effective Date) "
        "between:\n\n"
        "(1) Northwind Hosting Ltd, registered under number 09876543, whose "
        "registered office is at 1 Harbour Street (the Supplier); and\n\n"
        "(2) Ada Lovelace, of 12 St James's Square (the Customer).\n\n"
        "The parties agree as follows.",
    )
    pdf.ln(4)
    for number, (heading, text) in enumerate(CLAUSES, start=1):
        if number == 6:
            pdf.add_page()
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, f"{number}. {heading}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(0, 6, text)
        pdf.ln(3)

    # Page 3: the fee schedule and the signature blocks.
    pdf.add_page()
    _page_header(pdf, "SCHEDULE 2: FEES")
    pdf.set_font("Helvetica", "", 11)
    with pdf.table(col_widths=(130, 40), text_align=("LEFT", "RIGHT")) as table:
        table.row(("Service", "Monthly fee (EUR)"))
        for service, fee in SCHEDULE_ROWS:
            table.row((service, fee))
    pdf.ln(12)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, "Signatures", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(
        0,
        6,
        "Signed with advanced electronic signatures by the Customer and, for "
        "the Supplier, by its authorised signatory. The signatures and their "
        "time stamps are embedded in this file.",
    )
    return bytes(pdf.output())


def write_contract_pdf(path: Path, created: dt.date | None = None) -> Path:
    """Write the sample contract to `path` and return the path."""
    path.write_bytes(build_contract_pdf(created))
    return path
