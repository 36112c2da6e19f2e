"""Notifiers: the outbox folder and SMTP against a real aiosmtpd server."""

from __future__ import annotations

import email
import socket
from email.policy import default

import pytest
from aiosmtpd.controller import Controller

from signer.notify import (
    NotificationError,
    OutboxNotifier,
    SmtpNotifier,
    SmtpSettings,
    build_contract_message,
    message_bytes,
)

DOCUMENT = b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def contract_message(recipient="bob@example.org"):
    return build_contract_message(
        sender="ledger@example.org",
        recipient=recipient,
        subject="Contract c-1 to countersign",
        body="The signed contract is attached.",
        document=DOCUMENT,
        filename="c-1.pdf",
        domain="example.org",
    )


def attachment_of(data: bytes) -> bytes:
    parsed = email.message_from_bytes(data, policy=default)
    attachments = list(parsed.iter_attachments())
    assert len(attachments) == 1
    assert attachments[0].get_content_type() == "application/pdf"
    assert attachments[0].get_filename() == "c-1.pdf"
    return attachments[0].get_content()


class Recorder:
    """aiosmtpd handler that keeps each envelope, or rejects a recipient."""

    def __init__(self, reject: str | None = None) -> None:
        self.envelopes = []
        self.reject = reject

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address == self.reject:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    recorder = Recorder(reject="nobody@example.org")
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, recorder
    controller.stop()


async def test_outbox_writes_eml(tmp_path):
    notifier = OutboxNotifier(tmp_path / "outbox")
    data = await notifier.deliver(contract_message())
    files = list((tmp_path / "outbox").iterdir())
    assert len(files) == 1
    assert files[0].suffix == ".eml"
    assert files[0].read_bytes() == data
    assert attachment_of(data) == DOCUMENT
    assert b"\r\n" in data


async def test_outbox_unwritable_raises(tmp_path):
    notifier = OutboxNotifier(tmp_path / "outbox")
    (tmp_path / "outbox").rmdir()
    (tmp_path / "outbox").write_bytes(b"not a folder")
    with pytest.raises(NotificationError, match="outbox"):
        await notifier.deliver(contract_message())


async def test_smtp_delivers_exact_bytes(smtp_server):
    controller, recorder = smtp_server
    notifier = SmtpNotifier(SmtpSettings("127.0.0.1", controller.port, timeout=5))
    message = contract_message()
    data = await notifier.deliver(message)
    assert data == message_bytes(message)
    assert len(recorder.envelopes) == 1
    envelope = recorder.envelopes[0]
    assert envelope.mail_from == "ledger@example.org"
    assert envelope.rcpt_tos == ["bob@example.org"]
    assert envelope.original_content.rstrip(b"\r\n") == data.rstrip(b"\r\n")
    assert attachment_of(envelope.original_content) == DOCUMENT


async def test_smtp_rejected_recipient_raises(smtp_server):
    controller, recorder = smtp_server
    notifier = SmtpNotifier(SmtpSettings("127.0.0.1", controller.port, timeout=5))
    with pytest.raises(NotificationError, match="mailbox unavailable"):
        await notifier.deliver(contract_message("nobody@example.org"))
    assert recorder.envelopes == []


async def test_smtp_no_server_raises():
    port = free_port()
    notifier = SmtpNotifier(SmtpSettings("127.0.0.1", port, timeout=5))
    with pytest.raises(NotificationError, match=f"127.0.0.1:{port}"):
        await notifier.deliver(contract_message())


@pytest.mark.parametrize("address", ["", "bob", "Bob <bob>"])
def test_invalid_address_rejected(address):
    with pytest.raises(NotificationError, match="invalid recipient"):
        contract_message(address)
