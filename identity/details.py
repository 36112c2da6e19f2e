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
MAX_NAME_LENGTH = 200


def _clean_name(value: str, field: str) -> str:
    text = unicodedata.normalize("NFC", " ".join(value.split()))
    if not text:
        raise InvalidInputError(f"{field} is missing; give a non-empty {field}")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"{field} has {len(text)} characters; the maximum is {MAX_NAME_LENGTH}"
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
    text = value.strip()
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
