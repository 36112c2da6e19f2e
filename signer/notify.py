"""Delivery of signed contracts to the other party, by SMTP or to an outbox folder.

A `Notifier` sends one e-mail message and returns the exact bytes it
delivered, so that the caller can hash and time-stamp what was sent. The
default, `OutboxNotifier`, writes each message as an `.eml` file to a local
folder; `SmtpNotifier` sends through a configured SMTP server with aiosmtplib.
Messages are serialized once, with CRLF line endings (the SMTP policy of
`email.policy`), and those bytes are what both notifiers deliver.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib

from identity.details import unsafe_text_reason

logger = logging.getLogger(__name__)


# local@domain.tld, the form that identity.details accepts for enrolled
# addresses.
_ADDR_SPEC = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


class NotificationError(Exception):
    """A message could not be delivered."""


class InvalidAddressError(NotificationError, ValueError):
    """A recipient address given by the caller is not one e-mail address."""


def check_address(address: str, role: str = "recipient") -> None:
    """Raise InvalidAddressError unless `address` is exactly one e-mail address.

    Accepts `local@domain.tld` or `Display Name <local@domain.tld>`. Rejects
    control characters (so CR LF cannot start another header such as Bcc),
    lone surrogates, bidirectional controls and lists of addresses.
    """
    if not isinstance(address, str):
        raise InvalidAddressError(
            f"the {role} e-mail address must be text, got {type(address).__name__}"
        )
    reason = unsafe_text_reason(address)
    if reason is not None:
        raise InvalidAddressError(
            f"invalid {role} e-mail address {address!r}: it {reason}"
        )
    parsed = getaddresses([address])
    if len(parsed) != 1 or not _ADDR_SPEC.fullmatch(parsed[0][1]):
        raise InvalidAddressError(
            f"invalid {role} e-mail address {address!r}: expected one address "
            "such as ada@example.org or Ada Lovelace <ada@example.org>"
        )
    if not parsed[0][1].isascii():
        # email.policy.SMTP would write a non-ASCII address as RFC 2047
        # encoded words, which RFC 2047 section 5 forbids in an addr-spec,
        # and the notifiers do not use SMTPUTF8.
        raise InvalidAddressError(
            f"invalid {role} e-mail address {address!r}: the address itself "
            "must be ASCII; give its ASCII form (the display name may be any text)"
        )


class Notifier(Protocol):
    """Delivers e-mail messages."""

    async def deliver(self, message: EmailMessage) -> bytes:
        """Deliver message and return the exact bytes delivered."""
        ...


def build_contract_message(
    *,
    sender: str,
    recipient: str,
    subject: str,
    body: str,
    document: bytes,
    filename: str,
    domain: str = "ledger.invalid",
) -> EmailMessage:
    """Return an e-mail from sender to recipient with document as a PDF attachment.

    Raises InvalidAddressError for a malformed recipient, and
    NotificationError for a malformed sender, which is configuration.
    """
    check_address(recipient)
    try:
        check_address(sender, "sender")
    except InvalidAddressError as error:
        raise NotificationError(
            f"{error}; fix the sender address in the configuration"
        ) from error
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(body)
    message.add_attachment(
        document, maintype="application", subtype="pdf", filename=filename
    )
    return message


def message_bytes(message: EmailMessage) -> bytes:
    """Return message serialized with CRLF line endings, as sent over SMTP."""
    return message.as_bytes(policy=SMTP)


class OutboxNotifier:
    """Writes each message as an `.eml` file to a local folder."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    async def deliver(self, message: EmailMessage) -> bytes:
        data = message_bytes(message)
        name = hashlib.sha256(data).hexdigest()[:32] + ".eml"
        try:
            await asyncio.to_thread(self._write, self.folder / name, data)
        except OSError as error:
            raise NotificationError(
                f"could not write {name} to outbox {self.folder}: {error}"
            ) from error
        logger.info("message written to outbox path=%s", self.folder / name)
        return data

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        descriptor, temp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class SmtpSettings:
    """SMTP server address, credentials and TLS mode; timeout is in seconds."""

    hostname: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    # None lets aiosmtplib upgrade with STARTTLS when the server offers it.
    start_tls: bool | None = None
    use_tls: bool = False
    timeout: float = 30.0


class SmtpNotifier:
    """Sends each message through an SMTP server with aiosmtplib."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def deliver(self, message: EmailMessage) -> bytes:
        data = message_bytes(message)
        sender = parseaddr(message["From"])[1]
        recipients = [parseaddr(message["To"])[1]]
        settings = self.settings
        try:
            await aiosmtplib.send(
                data,
                sender=sender,
                recipients=recipients,
                hostname=settings.hostname,
                port=settings.port,
                username=settings.username,
                password=settings.password,
                start_tls=settings.start_tls,
                use_tls=settings.use_tls,
                timeout=settings.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            raise NotificationError(
                f"could not send message {message['Message-ID']} through "
                f"{settings.hostname}:{settings.port}: {error}"
            ) from error
        logger.info(
            "message sent server=%s:%s message_id=%s",
            settings.hostname,
            settings.port,
            message["Message-ID"],
        )
        return data
