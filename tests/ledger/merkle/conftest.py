from __future__ import annotations

from collections.abc import Sequence

from ledger.merkle import leaf_hash, stored_hashes_for_leaf


class DictReader:
    """A HashReader over a dict, counting batches and reads."""

    def __init__(self) -> None:
        self.hashes: dict[tuple[int, int], bytes] = {}
        self.batches = 0
        self.reads = 0

    def read_hashes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        self.batches += 1
        self.reads += len(ids)
        return [self.hashes[node] for node in ids]

    def append(self, data: bytes) -> None:
        leaf_index = sum(1 for level, _ in self.hashes if level == 0)
        for level, index, value in stored_hashes_for_leaf(
            leaf_index, leaf_hash(data), self
        ):
            self.hashes[level, index] = value


def build_reader(leaves: list[bytes]) -> DictReader:
    reader = DictReader()
    for data in leaves:
        reader.append(data)
    return reader


def leaf_data(count: int) -> list[bytes]:
    return [b"leaf %d" % i for i in range(count)]
