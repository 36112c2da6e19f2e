"""C2SP tlog-policy parsing, formatting and quorum checks."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import (
    CosignatureSigner,
    Ed25519Signer,
    NoteError,
    Signature,
    parse_note,
)
from ledger.policy import PolicyError, QuorumError, parse_policy

ORIGIN = "example.org/log"


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


LOG = Ed25519Signer(ORIGIN, _key(1))
WITNESSES = {
    name: CosignatureSigner(
        f"witness.example/{name}", _key(10 + i), clock=lambda: 1700000000
    )
    for i, name in enumerate(["X1", "X2", "X3", "Y1", "Y2", "Y3"])
}


def _spec_example() -> str:
    # The two-level example of the tlog-policy spec, with real keys.
    lines = [f"log {LOG.vkey} https://log.example.org/"]
    lines += [f"witness {n} {WITNESSES[n].vkey}" for n in ("X1", "X2", "X3")]
    lines += ["group X-witnesses 2 X1 X2 X3", ""]
    lines += [f"witness {n} {WITNESSES[n].vkey}" for n in ("Y1", "Y2", "Y3")]
    lines += ["group Y-witnesses any Y1 Y2 Y3", ""]
    lines += [
        "  # the quorum needs both organizations",
        "group X-and-Y all X-witnesses Y-witnesses",
    ]
    lines += ["quorum X-and-Y"]
    return "\n".join(lines) + "\n"


def _cosigned(names: list[str]) -> bytes:
    note = sign_checkpoint(Checkpoint(ORIGIN, 10, bytes(32)), [LOG])
    text = parse_note(note).text
    return note + b"".join(WITNESSES[name].cosign(text) for name in names)


def test_spec_example_parses() -> None:
    policy = parse_policy(_spec_example().encode())
    assert [log.url for log in policy.logs] == ["https://log.example.org/"]
    assert [w.name for w in policy.witnesses] == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert [(g.name, g.threshold) for g in policy.groups] == [
        ("X-witnesses", 2),
        ("Y-witnesses", 1),
        ("X-and-Y", 2),
    ]
    assert policy.quorum_name == "X-and-Y"
    assert parse_policy(policy.to_text()).to_text() == policy.to_text()


@pytest.mark.parametrize(
    "names, satisfied",
    [
        (["X1", "X2", "Y1"], True),
        (["X1", "X3", "Y3"], True),
        (["X1", "X2", "X3", "Y1", "Y2", "Y3"], True),
        (["X1", "Y1", "Y2"], False),
        (["X1", "X2"], False),
        (["Y1", "Y2", "Y3"], False),
        ([], False),
    ],
)
def test_quorum(names: list[str], satisfied: bool) -> None:
    policy = parse_policy(_spec_example())
    data = _cosigned(names)
    if satisfied:
        checkpoint = policy.verify_checkpoint(data)
        assert checkpoint.tree_size == 10
        cosigners = policy.verify_quorum(parse_note(data))
        assert [name for name, _ in cosigners] == sorted(names)
        assert all(timestamp == 1700000000 for _, timestamp in cosigners)
    else:
        with pytest.raises(QuorumError, match="X-and-Y"):
            policy.verify_checkpoint(data)


def test_forged_cosignature_rejected() -> None:
    policy = parse_policy(_spec_example())
    note = parse_note(_cosigned(["X1", "X2", "Y1"]))
    forger = WITNESSES["Y2"]
    forged = Signature(forger.name, forger.key_id, bytes(72))
    with pytest.raises(NoteError, match="invalid signature"):
        policy.verify_quorum(note.with_signatures([forged]))


def test_log_signature_required() -> None:
    policy = parse_policy(_spec_example())
    impostor = Ed25519Signer(ORIGIN, _key(2))
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, bytes(32)), [impostor])
    with pytest.raises(NoteError, match="no signature from a known key"):
        policy.verify_checkpoint(note)
    foreign = sign_checkpoint(Checkpoint("example.org/other", 1, bytes(32)), [LOG])
    with pytest.raises(NoteError, match="no log key for origin"):
        policy.verify_checkpoint(foreign)


def test_quorum_none() -> None:
    policy = parse_policy(f"log {LOG.vkey}\nquorum none\n")
    assert policy.witnesses == []
    policy.verify_checkpoint(sign_checkpoint(Checkpoint(ORIGIN, 1, bytes(32)), [LOG]))


def test_single_witness_quorum() -> None:
    policy = parse_policy(
        f"log {LOG.vkey}\nwitness W {WITNESSES['X1'].vkey}\nquorum W\n"
    )
    policy.verify_checkpoint(_cosigned(["X1"]))
    with pytest.raises(QuorumError):
        policy.verify_checkpoint(_cosigned(["X2"]))


W1 = WITNESSES["X1"].vkey
W2 = WITNESSES["X2"].vkey


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "no quorum"),
        ("quorum none\nquorum none\n", "exactly one quorum"),
        ("quorum W\n", "earlier line"),
        (f"quorum W\nwitness W {W1}\n", "earlier line"),
        (f"log {LOG.vkey}\nlog {LOG.vkey}\nquorum none\n", "already used"),
        (f"witness A {W1}\nwitness B {W1}\nquorum none\n", "already used"),
        (f"witness A {W1}\nwitness A {W2}\nquorum none\n", "already defined"),
        (f"witness none {W1}\nquorum none\n", "reserved"),
        (f"log {W1}\nquorum none\n", "signature type"),
        (f"witness A {LOG.vkey}\nquorum none\n", "signature type"),
        ("log not-a-vkey\nquorum none\n", "invalid vkey"),
        (f"witness A {W1}\ngroup G 2 A\nquorum G\n", "1 <= k <= 1"),
        (f"witness A {W1}\ngroup G 0 A\nquorum G\n", "1 <= k"),
        (f"witness A {W1}\ngroup G some A\nquorum G\n", "threshold"),
        (f"witness A {W1}\ngroup G any\nquorum G\n", "at least one member"),
        (f"witness A {W1}\ngroup G any B\nquorum G\n", "not defined"),
        (f"witness A {W1}\ngroup G any none\nquorum G\n", "'none'"),
        (
            f"witness A {W1}\ngroup G any A\ngroup H any A\nquorum H\n",
            "already a member",
        ),
        (f"witness A {W1}\ngroup G any A A\nquorum G\n", "already a member"),
        ("quorum\n", "quorum <name>"),
        ("frobnicate x\nquorum none\n", "unknown keyword"),
        ("witness A\nquorum none\n", "witness <name>"),
        ("log\nquorum none\n", "log <vkey>"),
        ("quorum none\x00\n", "control character"),
    ],
)
def test_malformed_rejected(text: str, reason: str) -> None:
    with pytest.raises(PolicyError, match=reason):
        parse_policy(text)


def test_whitespace_and_comments() -> None:
    text = f"\t# comment\n  log\t{LOG.vkey}  \n\n   \nquorum\tnone\t\n"
    policy = parse_policy(text)
    assert len(policy.logs) == 1
    with pytest.raises(PolicyError, match="UTF-8"):
        parse_policy(b"\xff\nquorum none\n")
