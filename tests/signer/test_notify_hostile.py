"""Recipient addresses that must not reach the e-mail library."""

from __future__ import annotations

import email
import re
from email.policy import default

import pytest

from signer.notify import (
    InvalidAddressError,
    NotificationError,
    build_contract_message,
    check_address,
    message_bytes,
)

DOCUMENT = b"%PDF-1.7\n" + bytes(range(256)) + b"\n%%EOF\n"


def message_to(recipient: str, sender: str = "ledger@example.org"):
    return build_contract_message(
        sender=sender,
        recipient=recipient,
        subject="Contract c-1 to countersign",
        body="The signed contract is attached.",
        document=DOCUMENT,
        filename="c-1.pdf",
        domain="example.org",
    )


@pytest.mark.parametrize(
    ("recipient", "words"),
    [
        ("not an email", "expected one address"),
        ("a@b.com\r\nBcc: x@y.z", "U+000D"),
        ("a@b.com\nBcc: x@y.z", "U+000A"),
        ("a@b.com\x00", "U+0000"),
        ("a@b.com, c@d.com", "expected one address"),
        ("a@b.com; c@d.com", "expected one address"),
        ("\ud800@example.org", "surrogate"),
        ("user@\u202eexample.org", "bidirectional"),
        ("nobody@localhost", "expected one address"),
        ("zoë@example.org", "ASCII"),
        ("", "empty"),
    ],
)
def test_bad_recipient_is_rejected(recipient, words):
    with pytest.raises(InvalidAddressError, match=re.escape(words)):
        message_to(recipient)


def test_bad_recipient_is_bad_input():
    with pytest.raises(ValueError):
        check_address("not an email")
    with pytest.raises(NotificationError):
        check_address("not an email")


def test_bad_sender_is_configuration_error():
    with pytest.raises(NotificationError, match="configuration") as raised:
        message_to("bob@example.org", sender="no sender")
    assert not isinstance(raised.value, InvalidAddressError)


@pytest.mark.parametrize(
    ("recipient", "address"),
    [
        ("bob@example.org", "bob@example.org"),
        ("Bob Builder <bob@example.org>", "bob@example.org"),
        ("Zoë Ångström <zoe@example.org>", "zoe@example.org"),
    ],
)
def test_good_recipient_has_one_to_header(recipient, address):
    data = message_bytes(message_to(recipient))
    parsed = email.message_from_bytes(data, policy=default)
    assert [a.addr_spec for a in parsed["To"].addresses] == [address]
    assert parsed["Bcc"] is None
    assert parsed["Cc"] is None
