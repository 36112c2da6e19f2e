"""C2SP tlog-policy: which log keys and witness cosignatures a checkpoint needs.

A policy file has `log <vkey> [<url>]`, `witness <name> <vkey> [<url>]`,
`group <name> <k|all|any> <member>...` and exactly one `quorum <name>`
line, where `quorum none` requires no cosignature. Groups and the quorum
may refer only to names defined on earlier lines, and each name is a group
member at most once. Blank lines and `#` comments are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from ledger.checkpoint import Checkpoint, CheckpointError
from ledger.note import (
    CosignatureVerifier,
    Ed25519Verifier,
    Note,
    NoteError,
    cosignature_timestamp,
    parse_note,
    parse_vkey,
    verified_signatures,
    verify_note,
)

NONE = "none"
_V = TypeVar("_V", bound=Ed25519Verifier)
_WHITESPACE = " \t"


class PolicyError(ValueError):
    """A policy file is malformed."""


class QuorumError(ValueError):
    """A checkpoint's valid cosignatures do not satisfy the policy's quorum."""


@dataclass(frozen=True)
class PolicyLog:
    """A log the policy trusts, by its Ed25519 checkpoint key."""

    vkey: str
    url: str | None
    verifier: Ed25519Verifier


@dataclass(frozen=True)
class PolicyWitness:
    """A witness, by its policy-local name and cosignature/v1 key."""

    name: str
    vkey: str
    url: str | None
    verifier: CosignatureVerifier


@dataclass(frozen=True)
class PolicyGroup:
    """A group that witnesses a checkpoint when threshold members do."""

    name: str
    threshold: int
    members: tuple[str, ...]
    # The keyword the file used ("all", "any") or None for a number.
    keyword: str | None = None


@dataclass
class Policy:
    """A parsed tlog-policy."""

    logs: list[PolicyLog] = field(default_factory=list)
    witnesses: list[PolicyWitness] = field(default_factory=list)
    groups: list[PolicyGroup] = field(default_factory=list)
    quorum_name: str = NONE

    def to_text(self) -> str:
        """Format the policy as a policy file."""
        lines = []
        for log in self.logs:
            lines.append(" ".join(filter(None, ["log", log.vkey, log.url])))
        for witness in self.witnesses:
            parts = ["witness", witness.name, witness.vkey, witness.url]
            lines.append(" ".join(filter(None, parts)))
        for group in self.groups:
            threshold = group.keyword or str(group.threshold)
            lines.append(" ".join(["group", group.name, threshold, *group.members]))
        lines.append(f"quorum {self.quorum_name}")
        return "\n".join(lines) + "\n"

    def verify_log_signature(self, note: Note, origin: str) -> str:
        """Verify the note's signature by the policy's log for origin.

        The log's key name must equal the checkpoint origin. Returns that
        key name; raises NoteError when no such log exists or its
        signature is missing or invalid.
        """
        verifiers = [log.verifier for log in self.logs if log.verifier.name == origin]
        if not verifiers:
            raise NoteError(f"the policy has no log key for origin {origin!r}")
        verify_note(note, verifiers)
        return origin

    def verify_quorum(self, note: Note) -> list[tuple[str, int]]:
        """Check the note's cosignatures against the quorum.

        Returns (witness name, cosignature timestamp) for each valid
        cosignature of a policy witness. Raises NoteError when a cosignature
        of a policy witness is invalid and QuorumError when the valid ones do
        not satisfy the quorum.
        """
        by_verifier = {id(w.verifier): w for w in self.witnesses}
        pairs = verified_signatures(note, [w.verifier for w in self.witnesses])
        cosigned: dict[str, int] = {}
        for verifier, signature in pairs:
            witness = by_verifier[id(verifier)]
            cosigned[witness.name] = cosignature_timestamp(signature.signature)
        if not self._witnessed(self.quorum_name, set(cosigned)):
            names = ", ".join(sorted(cosigned)) or "none"
            raise QuorumError(
                f"quorum {self.quorum_name!r} is not met; valid cosignatures"
                f" from: {names}"
            )
        return sorted(cosigned.items())

    def verify_checkpoint(self, data: bytes) -> Checkpoint:
        """Verify a cosigned checkpoint note against the whole policy.

        1. The note parses and its text is a checkpoint.
        2. A policy log whose key name is the origin signed it.
        3. Valid witness cosignatures satisfy the quorum.

        Returns the checkpoint; raises NoteError, CheckpointError or
        QuorumError.
        """
        note = parse_note(data)
        checkpoint = Checkpoint.parse(note.text)
        self.verify_log_signature(note, checkpoint.origin)
        self.verify_quorum(note)
        return checkpoint

    def _witnessed(self, name: str, cosigned: set[str]) -> bool:
        if name == NONE:
            return True
        for group in self.groups:
            if group.name == name:
                count = sum(self._witnessed(m, cosigned) for m in group.members)
                return count >= group.threshold
        return name in cosigned


def _split(line: str) -> list[str]:
    for character in _WHITESPACE[1:]:
        line = line.replace(character, " ")
    return [part for part in line.split(" ") if part]


def _check_characters(text: str) -> None:
    for number, line in enumerate(text.split("\n"), 1):
        for character in line:
            code = ord(character)
            if code < 0x20 and character != "\t" or code == 0x7F:
                raise PolicyError(
                    f"line {number}: control character {character!r} is not"
                    " allowed in a policy"
                )


def parse_policy(data: bytes | str) -> Policy:
    """Parse a tlog-policy file; raises PolicyError naming the bad line."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise PolicyError(f"policy is not UTF-8: {error}") from error
    _check_characters(data)

    policy = Policy()
    names: set[str] = set()
    members_used: set[str] = set()
    public_keys: dict[bytes, str] = {}
    quorum_seen = False
    for number, raw in enumerate(data.split("\n"), 1):
        fields = _split(raw)
        if not fields or fields[0].startswith("#"):
            continue
        keyword, arguments = fields[0], fields[1:]
        where = f"line {number}"

        if keyword == "log":
            if not 1 <= len(arguments) <= 2:
                raise PolicyError(f"{where}: expected 'log <vkey> [<url>]'")
            log_verifier = _verifier(arguments[0], Ed25519Verifier, where, public_keys)
            url = arguments[1] if len(arguments) == 2 else None
            policy.logs.append(PolicyLog(arguments[0], url, log_verifier))

        elif keyword == "witness":
            if not 2 <= len(arguments) <= 3:
                raise PolicyError(f"{where}: expected 'witness <name> <vkey> [<url>]'")
            name = arguments[0]
            _define(name, names, where)
            witness_verifier = _verifier(
                arguments[1], CosignatureVerifier, where, public_keys
            )
            url = arguments[2] if len(arguments) == 3 else None
            policy.witnesses.append(
                PolicyWitness(name, arguments[1], url, witness_verifier)
            )

        elif keyword == "group":
            policy.groups.append(_parse_group(arguments, names, members_used, where))

        elif keyword == "quorum":
            if len(arguments) != 1:
                raise PolicyError(f"{where}: expected 'quorum <name>'")
            if quorum_seen:
                raise PolicyError(f"{where}: a policy has exactly one quorum line")
            if arguments[0] != NONE and arguments[0] not in names:
                raise PolicyError(
                    f"{where}: quorum {arguments[0]!r} is not a witness or group"
                    " defined on an earlier line"
                )
            policy.quorum_name = arguments[0]
            quorum_seen = True

        else:
            raise PolicyError(f"{where}: unknown keyword {keyword!r}")

    if not quorum_seen:
        raise PolicyError("policy has no quorum line; use 'quorum none' for none")
    return policy


def _define(name: str, names: set[str], where: str) -> None:
    if name == NONE:
        raise PolicyError(f"{where}: the name 'none' is reserved")
    if name in names:
        raise PolicyError(f"{where}: name {name!r} is already defined")
    names.add(name)


def _verifier(
    vkey: str, kind: type[_V], where: str, public_keys: dict[bytes, str]
) -> _V:
    try:
        verifier = kind.from_vkey(vkey)
    except NoteError as error:
        raise PolicyError(f"{where}: invalid vkey: {error}") from error
    # Two vkeys that wrap the same public key are duplicates, whatever
    # their names.
    public_key = parse_vkey(vkey)[3]
    if public_key in public_keys:
        raise PolicyError(
            f"{where}: public key already used by {public_keys[public_key]}"
        )
    public_keys[public_key] = where
    return verifier


def _parse_group(
    arguments: Sequence[str], names: set[str], members_used: set[str], where: str
) -> PolicyGroup:
    if len(arguments) < 3:
        raise PolicyError(
            f"{where}: expected 'group <name> <k|all|any> <member>...'"
            " with at least one member"
        )
    name, threshold_text, members = arguments[0], arguments[1], tuple(arguments[2:])
    seen: set[str] = set()
    for member in members:
        if member == NONE:
            raise PolicyError(f"{where}: 'none' cannot be a group member")
        if member not in names:
            raise PolicyError(
                f"{where}: group member {member!r} is not defined on an earlier line"
            )
        if member in members_used or member in seen:
            raise PolicyError(
                f"{where}: {member!r} is already a member of a group; each name"
                " may be a member once"
            )
        seen.add(member)
    keyword = None
    if threshold_text == "all":
        threshold, keyword = len(members), "all"
    elif threshold_text == "any":
        threshold, keyword = 1, "any"
    elif threshold_text.isascii() and threshold_text.isdigit():
        threshold = int(threshold_text)
        if not 1 <= threshold <= len(members):
            raise PolicyError(
                f"{where}: threshold {threshold} must satisfy 1 <= k <= {len(members)}"
            )
    else:
        raise PolicyError(
            f"{where}: threshold {threshold_text!r} is not a number, 'all' or 'any'"
        )
    _define(name, names, where)
    members_used.update(members)
    return PolicyGroup(name, threshold, members, keyword)


__all__ = [
    "CheckpointError",
    "Policy",
    "PolicyError",
    "PolicyGroup",
    "PolicyLog",
    "PolicyWitness",
    "QuorumError",
    "parse_policy",
]
