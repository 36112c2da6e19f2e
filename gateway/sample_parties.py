"""Fictitious parties for the demo, the tests and the benchmark.

The identity service checks document numbers: a person's national ID must
end in its ICAO 9303 check digit, and an enterprise's registration number
must be a Legal Entity Identifier with ISO 7064 MOD 97-10 check digits. These
helpers build valid numbers from a serial, so that each run can enrol new
parties without colliding with earlier ones.
"""

from __future__ import annotations

import string

_ALPHABET = string.digits + string.ascii_uppercase


def icao_document_number(serial: int) -> str:
    """Return a 9-character document number plus its ICAO 9303 check digit."""
    body = f"D{serial % 10**8:08d}"
    total = 0
    for position, char in enumerate(body):
        value = int(char) if char.isdigit() else ord(char) - ord("A") + 10
        total += value * (7, 3, 1)[position % 3]
    return body + str(total % 10)


def lei(serial: int) -> str:
    """Return a 20-character LEI whose two check digits satisfy ISO 7064 MOD 97-10."""
    body = f"5299{serial % 10**14:014d}"
    as_digits = int("".join(str(_ALPHABET.index(char)) for char in body) + "00")
    check = 98 - as_digits % 97
    return f"{body}{check:02d}"


def person(serial: int, name: str) -> dict[str, str]:
    """Return enrolment details of a fictitious person."""
    handle = name.lower().replace(" ", ".")
    return {
        "name": name,
        "national_id": icao_document_number(serial),
        "email": f"{handle}.{serial}@example.org",
        "phone": f"+4420{serial % 10**7:07d}",
    }


def enterprise(serial: int, legal_name: str, signatory: str) -> dict[str, str]:
    """Return enrolment details of a fictitious enterprise signed for by `signatory`."""
    return {
        "legal_name": legal_name,
        "registration_number": lei(serial),
        "signatory": signatory,
    }
