"""The add-checkpoint request body parser against the tlog-witness format."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.witnessing import format_add_checkpoint
from witnesses.protocol import MAX_PROOF_LINES, RequestFormatError, parse_add_checkpoint

NOTE = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— x y\n".encode()


def test_spec_example_parses():
    proof_lines = [
        "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
        "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
        "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=",
        "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
    ]
    body = ("old 20852014\n" + "\n".join(proof_lines) + "\n\n").encode() + NOTE
    request = parse_add_checkpoint(body)
    assert request.old_size == 20852014
    assert request.consistency_proof == [base64.b64decode(line) for line in proof_lines]
    assert request.note == NOTE


def test_old_size_zero_with_empty_proof():
    request = parse_add_checkpoint(b"old 0\n\n" + NOTE)
    assert request.old_size == 0
    assert request.consistency_proof == []


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"old 01\n\n",
        b"old -1\n\n",
        b"old  1\n\n",
        b"old 1 \n\n",
        b"Old 1\n\n",
        b"old 1\nnot-base64!\n\n",
        b"old 1\n" + base64.b64encode(bytes(31)) + b"\n\n",
        b"old 1\n" + base64.b64encode(bytes(33)) + b"\n\n",
        b"old 99999999999999999999\n\n",
        b"old 1\n",
    ],
)
def test_malformed_bodies_rejected(head):
    with pytest.raises(RequestFormatError):
        parse_add_checkpoint(head + (NOTE if head.endswith(b"\n\n") else b""))


def test_missing_checkpoint_rejected():
    with pytest.raises(RequestFormatError):
        parse_add_checkpoint(b"old 0\n\n")


def test_proof_line_limit():
    line = base64.b64encode(bytes(32)) + b"\n"
    parse_add_checkpoint(b"old 5\n" + line * MAX_PROOF_LINES + b"\n" + NOTE)
    with pytest.raises(RequestFormatError):
        parse_add_checkpoint(b"old 5\n" + line * (MAX_PROOF_LINES + 1) + b"\n" + NOTE)


@given(
    st.integers(min_value=0, max_value=(1 << 63) - 1),
    st.lists(st.binary(min_size=32, max_size=32), max_size=MAX_PROOF_LINES),
)
def test_format_then_parse_round_trips(old_size, proof):
    request = parse_add_checkpoint(format_add_checkpoint(old_size, proof, NOTE))
    assert request.old_size == old_size
    assert request.consistency_proof == proof
    assert request.note == NOTE
