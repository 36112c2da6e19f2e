"""Document number checks: ICAO 9303 check digits and LEI check digits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity.errors import InvalidInputError
from identity.proofing import check_icao_document_number, check_lei, icao_check_digit

ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.mark.parametrize(
    ("body", "digit"),
    [
        # ICAO 9303 part 4 specimen passport and part 5 specimen card numbers.
        ("L898902C3", 6),
        ("D23145890", 7),
        # Dates as they appear in the same specimen machine-readable zones.
        ("740812", 2),
        ("120415", 9),
    ],
)
def test_icao_check_digit_specimens(body, digit):
    assert icao_check_digit(body) == digit


@given(
    body=st.text(ALPHANUMERIC, min_size=1, max_size=9),
    data=st.data(),
)
def test_icao_detects_single_digit_change(body, data):
    """Weights 7, 3 and 1 are prime to 10, so any one changed digit shows."""
    number = body + str(icao_check_digit(body))
    check_icao_document_number(number)
    digits = [i for i, char in enumerate(number) if char.isdigit()]
    position = data.draw(st.sampled_from(digits))
    replacement = data.draw(
        st.sampled_from([d for d in "0123456789" if d != number[position]])
    )
    changed = number[:position] + replacement + number[position + 1 :]
    with pytest.raises(InvalidInputError, match="check digit"):
        check_icao_document_number(changed)


def lei_with_check_digits(prefix: str) -> str:
    """Complete 18 characters into an LEI by ISO 7064 MOD 97-10."""
    value = int("".join(str(int(char, 36)) for char in prefix + "00"))
    return prefix + str(98 - value % 97).zfill(2)


@pytest.mark.parametrize(
    "lei",
    [
        "5493001KJTIIGC8Y1R12",
        # The LEI of the Global Legal Entity Identifier Foundation itself.
        "506700GE1G29325QX363",
    ],
)
def test_lei_published_values(lei):
    check_lei(lei)


@given(prefix=st.text(ALPHANUMERIC, min_size=18, max_size=18), data=st.data())
def test_lei_detects_single_substitution(prefix, data):
    """A digit for a digit or a letter for a letter changes the value by
    d * 10**k with 0 < |d| < 97, which 97 (a prime) never divides. A letter
    for a digit shifts the digits before it and is missed about once in 97.
    """
    lei = lei_with_check_digits(prefix)
    check_lei(lei)
    position = data.draw(st.integers(0, 19))
    choices = "0123456789" if lei[position].isdigit() else ALPHANUMERIC[10:]
    replacement = data.draw(st.sampled_from([c for c in choices if c != lei[position]]))
    changed = lei[:position] + replacement + lei[position + 1 :]
    with pytest.raises(InvalidInputError, match="registration_number"):
        check_lei(changed)


@pytest.mark.parametrize(
    "lei", ["5493001KJTIIGC8Y1R1", "5493001KJTIIGC8Y1RAB", "5493001KJ-IIGC8Y1R12"]
)
def test_lei_malformed(lei):
    with pytest.raises(InvalidInputError, match="registration_number"):
        check_lei(lei)
