"""Entries built from arbitrary personal fields carry none of them."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from identity import entries
from identity.proofing import ProofingResult
from ledger.commitment import verify_commitment
from ledger.entry import decode_entry

# Values of at least 6 characters, so that a chance match inside a 32-byte
# hash (about 2**-48 per position) cannot make the test fail.
field_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=6, max_size=80
)


def _person_entry(fields: dict[str, str]) -> tuple[bytes, dict[str, bytes]]:
    salts = entries.new_salts(list(fields))
    entry = entries.enrolment_entry(
        "person",
        "ab" * 16,
        entries.commitments(fields, salts),
        ProofingResult("verifier", "method", "verified"),
        b"certificate",
        "service",
        datetime(2026, 3, 2, tzinfo=UTC),
    )
    return entries.encode(entry), salts


@settings(max_examples=100)
@given(
    name=field_text,
    national_id=st.text(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=6, max_size=20
    ),
    email=field_text,
    phone=st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
)
def test_enrolment_entry_has_no_field_values(name, national_id, email, phone):
    fields = {"name": name, "national_id": national_id, "email": email, "phone": phone}
    # A value that also occurs in the entry's fixed text (a key such as
    # "method") would be found without having leaked, so such values are
    # skipped: the baseline entry commits to other values.
    baseline, _ = _person_entry({label: "placeholder" for label in fields})
    for value in fields.values():
        assume(value.encode("utf-8") not in baseline)
    data, salts = _person_entry(fields)
    for value in fields.values():
        assert value.encode("utf-8") not in data

    decoded = decode_entry(data)
    for label, value in fields.items():
        verify_commitment(
            label, value.encode(), salts[label], decoded["commitments"][label]
        )
