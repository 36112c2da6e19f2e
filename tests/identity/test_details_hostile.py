"""Name and e-mail normalisation against hostile text.

Names and addresses that pass must be storable as UTF-8 and fit a
certificate: cryptography's x509 name builder is the independent check.
"""

from __future__ import annotations

import unicodedata

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from identity import certificates
from identity.details import (
    MAX_NAME_BYTES,
    EnterpriseDetails,
    PersonDetails,
    normalise_email,
    unsafe_text_reason,
)
from identity.errors import InvalidInputError

PARTY_ID = "0123456789abcdef0123456789abcdef"
SIGNATORY = "fedcba9876543210fedcba9876543210"


def person(**change: str) -> PersonDetails:
    fields = {
        "name": "Erika Mustermann",
        "national_id": "D044000221",
        "email": "erika@example.org",
        "phone": "+4915112345678",
    }
    fields.update(change)
    return PersonDetails(**fields)


def enterprise(legal_name: str) -> EnterpriseDetails:
    return EnterpriseDetails(legal_name, "529900T8BM49AURSDO55", SIGNATORY)


HOSTILE = [
    ("\ud800", "surrogate"),
    ("Erika\udfffMustermann", "surrogate"),
    ("Erika\x00Mustermann", "control"),
    ("Erika \x1b[2JMustermann", "control"),
    ("Erika\x9bMustermann", "control"),
    ("Erika\x7fMustermann", "control"),
    ("Erika\tMustermann", "control"),
    ("Erika\u2028Mustermann", "line separator"),
    ("Erika \u202eMustermann", "bidirectional"),
    ("Erika \u202aMustermann\u202c", "bidirectional"),
    ("Erika \u2067Mustermann\u2069", "bidirectional"),
    ("\u200b", "invisible"),
    ("\u200b\u200c\u200d\u2060\ufeff", "invisible"),
    ("   \u3000\u00a0", "invisible"),
    ("", "empty"),
]


@pytest.mark.parametrize(("name", "words"), HOSTILE)
def test_hostile_name_is_rejected(name, words):
    with pytest.raises(InvalidInputError, match=words):
        person(name=name).normalised()


@pytest.mark.parametrize(("name", "words"), HOSTILE)
def test_hostile_legal_name_is_rejected(name, words):
    with pytest.raises(InvalidInputError, match=words):
        enterprise(name).normalised()


@pytest.mark.parametrize(("text", "words"), HOSTILE[:-1])
def test_hostile_email_is_rejected(text, words):
    with pytest.raises(InvalidInputError):
        normalise_email(f"erika{text}@example.org")


@pytest.mark.parametrize(
    "address",
    ["erika\u200b@example.org", "erika@exam\u00adple.org", "\ufefferika@example.org"],
)
def test_email_with_invisible_character_is_rejected(address):
    with pytest.raises(InvalidInputError, match="invisible"):
        normalise_email(address)


@pytest.mark.parametrize(
    "name",
    [
        "Zoë Ångström-Nakamura",
        "山田 太郎",
        "Ñuño Díaz d'Álava",
        "O'Brien, Seán (Jr.)",
        "Nguyễn Thị Minh Khai",
        "محمد بن سلمان",
        "אברהם לינקולן",
        "Ζωή Παπαδοπούλου",
    ],
)
def test_unicode_name_is_accepted(name):
    normalised = person(name=name).normalised()
    assert normalised.name == unicodedata.normalize("NFC", name)
    certificates.person_subject(normalised.name, PARTY_ID)


@pytest.mark.parametrize("length", [65, 100, 200])
def test_name_over_64_bytes_is_rejected(length):
    with pytest.raises(InvalidInputError, match=f"at most {MAX_NAME_BYTES} bytes"):
        person(name="A" * length).normalised()
    with pytest.raises(InvalidInputError, match=f"at most {MAX_NAME_BYTES} bytes"):
        enterprise("N" * length).normalised()


def test_name_limit_counts_utf8_bytes():
    # 22 characters of 3 bytes each: 66 bytes, which cryptography rejects
    # as a commonName although it is only 22 characters.
    with pytest.raises(InvalidInputError, match="66 bytes"):
        person(name="山" * 22).normalised()
    with pytest.raises(ValueError):
        certificates.person_subject("山" * 22, PARTY_ID)
    accepted = person(name="山" * 21 + "A").normalised()
    certificates.person_subject(accepted.name, PARTY_ID)


def test_inner_spaces_are_collapsed():
    assert person(name="  Erika   Mustermann ").normalised().name == (
        "Erika Mustermann"
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_accepted_name_fits_a_certificate(name):
    """Any name that normalises encodes to UTF-8 and builds both subjects."""
    try:
        normalised = person(name=name).normalised()
    except InvalidInputError:
        return
    normalised.name.encode("utf-8")
    subject = certificates.person_subject(normalised.name, PARTY_ID)
    assert isinstance(subject, x509.Name)
    certificates.enterprise_subject(
        normalised.name, normalised.name, "529900T8BM49AURSDO55", PARTY_ID
    )


# Letters, marks, digits, punctuation, symbols and spaces, without the
# surrogate, control and format categories.
_SAFE = st.characters(
    categories=["L", "M", "N", "P", "S", "Zs"],
)


@settings(max_examples=300, deadline=None)
@given(
    st.text(_SAFE, min_size=1, max_size=40),
    st.characters(categories=["Cc", "Cs"]),
)
def test_control_or_surrogate_anywhere_is_rejected(text, bad):
    for position in (0, len(text) // 2, len(text)):
        spoiled = text[:position] + bad + text[position:]
        assert unsafe_text_reason(spoiled) is not None


@settings(max_examples=300, deadline=None)
@given(st.text(_SAFE, min_size=1, max_size=40))
def test_visible_safe_text_passes(text):
    has_visible = any(unicodedata.category(char) != "Zs" for char in text)
    reason = unsafe_text_reason(text)
    if has_visible:
        assert reason is None
    else:
        assert reason is not None
