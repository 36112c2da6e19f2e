"""The personal fields of an enrolment, normalised and checked for form.

These values live only in the private store; the log contains only their salted
commitments (`ledger.commitment`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from identity.errors import InvalidInputError

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
# E.164: a plus sign, a country code not starting with 0, at most 15 digits.
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")
_DOCUMENT_NUMBER = re.compile(r"[A-Z0-9]{2,20}")
_PARTY_ID = re.compile(r"[0-9a-f]{32}")
# A name becomes the commonName or organizationName of the party's
# certificate. RFC 5280 bounds both at 64 characters, and cryptography
# (50.0) checks the commonName bound in bytes of UTF-8, so the limit is in
# UTF-8 bytes.
MAX_NAME_BYTES = 64
# Bidirectional embeddings, overrides (U+202A-U+202E) and isolates
# (U+2066-U+2069) make text display in another order than it is stored.
_BIDI_CONTROLS = frozenset(
    chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
)


def unsafe_text_reason(value: str) -> str | None:
    """Return why `value` is unsafe to store and display, or None if it is safe.

    Rejects lone surrogates, which no UTF-8 encoder accepts. Rejects control
    characters (C0, DEL and C1, tab and line breaks included), the line and
    paragraph separators U+2028 and U+2029, and bidirectional controls.
    Rejects empty text and text made only of white space and invisible
    format characters such as U+200B. Letters, marks, digits, spaces,
    punctuation and symbols of every script pass.
    """
    if not value:
        return "is empty"
    visible = False
    for position, character in enumerate(value):
        category = unicodedata.category(character)
        code_point = f"U+{ord(character):04X}"
        if category == "Cs":
            return f"contains the lone surrogate {code_point} at position {position}"
        if category in ("Cc", "Zl", "Zp"):
            return (
                f"contains the control character or line separator {code_point} "
                f"at position {position}"
            )
        if character in _BIDI_CONTROLS:
            return (
                f"contains the bidirectional control {code_point} at position "
                f"{position}"
            )
        if category not in ("Cf", "Zs"):
            visible = True
    if not visible:
        return "contains only white space or invisible characters"
    return None


def _check_text(value: str, field: str) -> None:
    reason = unsafe_text_reason(value)
    if reason is not None:
        raise InvalidInputError(f"{field} {reason}; send printable text only")


def _clean_name(value: str, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be text, got {type(value).__name__}")
    _check_text(value, field)
    text = unicodedata.normalize("NFC", " ".join(value.split()))
    size = len(text.encode())
    if size > MAX_NAME_BYTES:
        raise InvalidInputError(
            f"{field} is {size} bytes long in UTF-8 ({len(text)} characters); a "
            f"certificate name attribute holds at most {MAX_NAME_BYTES} bytes, "
            f"so shorten the {field}"
        )
    return text


def normalise_document_number(value: str, field: str = "national_id") -> str:
    """Return a document number in upper case without spaces or hyphens."""
    text = re.sub(r"[\s-]", "", value).upper()
    if not _DOCUMENT_NUMBER.fullmatch(text):
        raise InvalidInputError(
            f"invalid {field} {value!r}: expected 2 to 20 letters A-Z or digits"
        )
    return text


def normalise_email(value: str) -> str:
    """Return an e-mail address with its domain in lower case."""
    if not isinstance(value, str):
        raise InvalidInputError(f"email must be text, got {type(value).__name__}")
    _check_text(value, "email")
    text = value.strip()
    for position, character in enumerate(text):
        # Zero-width and other format characters make two addresses that
        # display alike compare different.
        if unicodedata.category(character) == "Cf":
            raise InvalidInputError(
                f"email contains the invisible character U+{ord(character):04X} "
                f"at position {position}; send the address without it"
            )
    if not _EMAIL.fullmatch(text):
        raise InvalidInputError(f"invalid email {value!r}: expected local@domain.tld")
    local, domain = text.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def normalise_phone(value: str) -> str:
    """Return a phone number in E.164 form (`+` and digits only)."""
    text = re.sub(r"[\s().-]", "", value)
    if not _PHONE.fullmatch(text):
        raise InvalidInputError(
            f"invalid phone {value!r}: expected E.164 form such as +4915112345678"
        )
    return text


def check_party_id(value: str) -> str:
    """Return `value` if it has the form of a party_id (32 lower-case hex digits)."""
    if not isinstance(value, str) or not _PARTY_ID.fullmatch(value):
        raise InvalidInputError(
            f"invalid party_id {value!r}: expected 32 lower-case hex digits"
        )
    return value


@dataclass(frozen=True)
class PersonDetails:
    """A natural person as enrolled: the four personal fields."""

    name: str
    national_id: str
    email: str
    phone: str

    def normalised(self) -> PersonDetails:
        """Return a copy with every field normalised; raises InvalidInputError."""
        return PersonDetails(
            name=_clean_name(self.name, "name"),
            national_id=normalise_document_number(self.national_id),
            email=normalise_email(self.email),
            phone=normalise_phone(self.phone),
        )

    def fields(self) -> dict[str, str]:
        """Return the fields keyed by their `ledger.commitment` labels."""
        return {
            "name": self.name,
            "national_id": self.national_id,
            "email": self.email,
            "phone": self.phone,
        }


@dataclass(frozen=True)
class EnterpriseDetails:
    """An enterprise: its legal name, registration number and signatory.

    `signatory` is the party_id of an enrolled person authorised to sign
    for the enterprise. That person receives the proofing code by e-mail or
    phone, and the certificate's commonName is that person's name.
    """

    legal_name: str
    registration_number: str
    signatory: str

    def normalised(self) -> EnterpriseDetails:
        """Return a copy with every field normalised; raises InvalidInputError."""
        return EnterpriseDetails(
            legal_name=_clean_name(self.legal_name, "legal_name"),
            registration_number=normalise_document_number(
                self.registration_number, "registration_number"
            ),
            signatory=check_party_id(self.signatory),
        )

    def fields(self) -> dict[str, str]:
        """Return the personal fields keyed by their `ledger.commitment` labels."""
        return {
            "legal_name": self.legal_name,
            "registration_number": self.registration_number,
        }
