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
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib

logger = logging.getLogger(__name__)


class NotificationError(Exception):
    """A message could not be delivered."""


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
    """Return an e-mail from sender to recipient with document as a PDF attachment."""
    for role, address in (("sender", sender), ("recipient", recipient)):
        if "@" not in parseaddr(address)[1]:
            raise NotificationError(f"invalid {role} e-mail address {address!r}")
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
