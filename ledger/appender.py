"""The interface through which the other packages append entries to the log.

`identity` and `signer` depend on this protocol, not on the sequencer, so
that they run against a log in the same process or behind the gateway.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class AppendResult(NamedTuple):
    """The position of an entry in the log once its batch is committed durably.

    A NamedTuple, because the store builds one per entry: it is immutable
    like a frozen dataclass and costs a fraction of one to build.
    """

    leaf_index: int
    leaf_hash: bytes
    # True when identical entry bytes were already in the log, so that
    # leaf_index is the index of that first copy.
    duplicate: bool = False


class Appender(Protocol):
    """Appends entries; returns only after the entry is committed durably."""

    async def append(self, entry: bytes) -> AppendResult:
        """Append one entry (at most 65,535 bytes) and return its position."""
        ...
