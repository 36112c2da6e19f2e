"""Identity proofing: a pluggable verifier and a built-in one.

In production an external provider proves who a person is. Here a verifier
is anything with a `name` that can begin a challenge and complete it into a
`ProofingResult`. The service logs the verifier's name, its method and the
result, never the evidence. The built-in `DocumentCodeVerifier` checks the
check digit of the document number and sends a one-time code to the e-mail
address or phone number being enrolled.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from identity.errors import InvalidInputError, ProofingError


@dataclass(frozen=True)
class ProofingResult:
    """The proofing record the log stores: verifier name, method and result."""

    verifier: str
    method: str
    result: str


@dataclass(frozen=True)
class ProofingClaims:
    """The facts a verifier checks for one enrolment.

    `kind` is "person" or "enterprise". `document_number` is the national ID
    number of a person or the registration number of an enterprise.
    `channel` is "email" or "phone", and `address` is the e-mail address or
    phone number that receives the code.
    """

    kind: str
    document_number: str
    channel: str
    address: str


class ProofingVerifier(Protocol):
    """An identity proofing provider."""

    name: str

    async def begin(self, claims: ProofingClaims) -> str:
        """Check the claims and start a challenge; return its challenge_id."""
        ...

    def complete(self, challenge_id: str, response: str) -> ProofingResult:
        """Check the response to a challenge; raise ProofingError if wrong."""
        ...


# A code sender delivers (channel, address, code) by e-mail or text message.
CodeSender = Callable[[str, str, str], Awaitable[None]]


def icao_check_digit(text: str) -> int:
    """Compute the ICAO 9303 part 3 check digit of `text` (digits, A-Z, '<').

    Digits count as themselves, letters A to Z as 10 to 35 and the filler
    '<' as 0; the weights 7, 3, 1 repeat, and the digit is the sum modulo 10.
    """
    total = 0
    for position, char in enumerate(text):
        if char.isdigit():
            value = int(char)
        elif "A" <= char <= "Z":
            value = ord(char) - ord("A") + 10
        elif char == "<":
            value = 0
        else:
            raise InvalidInputError(f"character {char!r} is not allowed in {text!r}")
        total += value * (7, 3, 1)[position % 3]
    return total % 10


def check_icao_document_number(number: str) -> None:
    """Check a document number of at most 9 characters followed by its check digit.

    This is the document number field of a machine-readable travel document
    or identity card (ICAO 9303). Raises InvalidInputError if malformed.
    """
    if not 2 <= len(number) <= 10 or not number[-1].isdigit():
        raise InvalidInputError(
            f"invalid national_id {number!r}: expected 1 to 9 characters "
            "then an ICAO 9303 check digit"
        )
    body, digit = number[:-1], int(number[-1])
    if icao_check_digit(body) != digit:
        raise InvalidInputError(
            f"invalid national_id {number!r}: check digit {digit} does not "
            f"match {icao_check_digit(body)}; check the number for typing errors"
        )


def check_lei(number: str) -> None:
    """Check a Legal Entity Identifier (ISO 17442): 20 characters, ISO 7064 MOD 97-10.

    Raises InvalidInputError if malformed.
    """
    if len(number) != 20 or not number.isalnum() or not number[-2:].isdigit():
        raise InvalidInputError(
            f"invalid registration_number {number!r}: expected a 20-character "
            "Legal Entity Identifier"
        )
    as_digits = "".join(str(int(char, 36)) for char in number)
    if int(as_digits) % 97 != 1:
        raise InvalidInputError(
            f"invalid registration_number {number!r}: the ISO 7064 check digits "
            "do not match; check the number for typing errors"
        )


@dataclass
class _Challenge:
    code_hash: bytes
    method: str
    expires: datetime
    attempts: int = 0


class DocumentCodeVerifier:
    """Built-in verifier: document number format plus a one-time code.

    A person's document number must carry a valid ICAO 9303 check digit and
    an enterprise's registration number must be a valid LEI. The code has
    `code_digits` digits, expires after `code_lifetime`, and a challenge
    fails for good after `max_attempts` wrong codes. Pending challenges
    live in memory, so a restart abandons them.
    """

    name = "builtin-document-code"

    def __init__(
        self,
        send_code: CodeSender,
        clock: Callable[[], datetime],
        code_lifetime: timedelta = timedelta(minutes=10),
        max_attempts: int = 3,
        code_digits: int = 6,
    ) -> None:
        self._send_code = send_code
        self._clock = clock
        self._code_lifetime = code_lifetime
        self._max_attempts = max_attempts
        self._code_digits = code_digits
        self._challenges: dict[str, _Challenge] = {}

    async def begin(self, claims: ProofingClaims) -> str:
        """Check the document number, send a code, and return the challenge_id."""
        if claims.kind == "person":
            check_icao_document_number(claims.document_number)
            document_method = "icao9303-check-digit"
        elif claims.kind == "enterprise":
            check_lei(claims.document_number)
            document_method = "lei-check-digits"
        else:
            raise InvalidInputError(f"unknown party kind {claims.kind!r}")
        if claims.channel not in ("email", "phone"):
            raise InvalidInputError(
                f"invalid proofing channel {claims.channel!r}: use email or phone"
            )

        self._drop_expired()
        code = str(secrets.randbelow(10**self._code_digits)).zfill(self._code_digits)
        challenge_id = secrets.token_hex(16)
        self._challenges[challenge_id] = _Challenge(
            code_hash=hashlib.sha256(code.encode()).digest(),
            method=f"{document_method}+{claims.channel}-otp",
            expires=self._clock() + self._code_lifetime,
        )
        await self._send_code(claims.channel, claims.address, code)
        return challenge_id

    def complete(self, challenge_id: str, response: str) -> ProofingResult:
        """Check the code sent for `challenge_id`; a right code works once."""
        challenge = self._challenges.get(challenge_id)
        if challenge is None or challenge.expires <= self._clock():
            self._challenges.pop(challenge_id, None)
            raise ProofingError(
                f"proofing challenge {challenge_id!r} not found or expired; "
                "begin the enrolment again"
            )
        candidate = hashlib.sha256(response.strip().encode()).digest()
        if not hmac.compare_digest(candidate, challenge.code_hash):
            challenge.attempts += 1
            if challenge.attempts >= self._max_attempts:
                del self._challenges[challenge_id]
                raise ProofingError(
                    f"wrong proofing code, {self._max_attempts} attempts used; "
                    "begin the enrolment again"
                )
            raise ProofingError("wrong proofing code; check the code and retry")
        del self._challenges[challenge_id]
        return ProofingResult(self.name, challenge.method, "verified")

    def _drop_expired(self) -> None:
        now = self._clock()
        for challenge_id in [
            c for c, v in self._challenges.items() if v.expires <= now
        ]:
            del self._challenges[challenge_id]
