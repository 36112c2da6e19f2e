"""Proof building and verification at 1M leaves, beside pymerkle's in-memory tree.

Both trees hold the same 1,000,000 entries. Our proofs read stored hashes
from an in-memory HashReader that keeps one bytearray per level, so each
read copies 32 bytes, as a read from LMDB does. pymerkle 7's InmemoryTree
builds its proofs from its own node objects.

A run takes about one minute of CPU time, two thirds of it in pymerkle's
1M appends; on a 2-core machine shared with other work (load average 7)
it took 3 minutes of wall time.
"""

from __future__ import annotations

import random
import statistics
import time
import warnings
from collections.abc import Callable, Sequence

from ledger.merkle import (
    EdgeCache,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    stored_hashes_for_leaf,
    verify_consistency,
    verify_inclusion,
)

TREE_SIZE = 1_000_000
SAMPLES = 2000
PEER_SAMPLES = 300
PEER = "pymerkle 7 InmemoryTree"


class LevelReader:
    """Stored hashes in one bytearray per level, appended leaf by leaf."""

    def __init__(self) -> None:
        self.levels: list[bytearray] = []

    def read_hashes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        levels = self.levels
        return [levels[level][index * 32 : index * 32 + 32] for level, index in ids]

    def append(self, data: bytes, leaf_index: int) -> None:
        for level, _, value in stored_hashes_for_leaf(
            leaf_index, leaf_hash(data), self
        ):
            if level == len(self.levels):
                self.levels.append(bytearray())
            self.levels[level] += value


def _entry(index: int) -> bytes:
    return b"entry %d" % index


def _timings(call: Callable[[int], object], count: int) -> list[float]:
    samples = []
    for sample in range(count):
        start = time.perf_counter_ns()
        call(sample)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def _p99(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.99) - 1]


def run(report) -> None:
    rng = random.Random(7)
    indexes = [rng.randrange(TREE_SIZE) for _ in range(SAMPLES)]
    sizes1 = [rng.randrange(1, TREE_SIZE) for _ in range(SAMPLES)]

    # 1. Build both trees from the same entries.
    reader = LevelReader()
    start = time.perf_counter()
    for index in range(TREE_SIZE):
        reader.append(_entry(index), index)
    ours_append = TREE_SIZE / (time.perf_counter() - start)

    from pymerkle import InmemoryTree
    from pymerkle import verify_consistency as peer_verify_consistency
    from pymerkle import verify_inclusion as peer_verify_inclusion

    warnings.simplefilter("ignore", DeprecationWarning)
    tree = InmemoryTree(algorithm="sha256")
    start = time.perf_counter()
    for index in range(TREE_SIZE):
        tree.append_entry(_entry(index))
    peer_append = TREE_SIZE / (time.perf_counter() - start)
    report.add(
        "merkle in-memory append, 1M leaves", ours_append, "leaves/s", PEER, peer_append
    )
    root = root_hash(TREE_SIZE, reader)
    assert root == tree.get_root(TREE_SIZE)

    # 2. Inclusion proofs.
    proofs = [inclusion_proof(i, TREE_SIZE, reader) for i in indexes]
    build = _timings(lambda s: inclusion_proof(indexes[s], TREE_SIZE, reader), SAMPLES)
    peer_build = _timings(
        lambda s: tree.prove_inclusion(indexes[s] + 1, TREE_SIZE), PEER_SAMPLES
    )
    report.add(
        "inclusion_proof build at 1M, median",
        statistics.median(build),
        "us",
        PEER,
        statistics.median(peer_build),
    )
    report.add(
        "inclusion_proof build at 1M, p99", _p99(build), "us", PEER, _p99(peer_build)
    )
    cache = EdgeCache()
    cached = _timings(
        lambda s: inclusion_proof(indexes[s], TREE_SIZE, reader, cache), SAMPLES
    )
    report.add(
        "inclusion_proof build at 1M with EdgeCache, median",
        statistics.median(cached),
        "us",
        PEER,
        statistics.median(peer_build),
    )

    leaves = [leaf_hash(_entry(i)) for i in indexes]
    check = _timings(
        lambda s: verify_inclusion(leaves[s], indexes[s], TREE_SIZE, proofs[s], root),
        SAMPLES,
    )
    peer_proofs = [
        tree.prove_inclusion(indexes[s] + 1, TREE_SIZE) for s in range(PEER_SAMPLES)
    ]
    peer_check = _timings(
        lambda s: peer_verify_inclusion(leaves[s], root, peer_proofs[s]), PEER_SAMPLES
    )
    report.add(
        "inclusion_proof verify at 1M, median",
        statistics.median(check),
        "us",
        PEER,
        statistics.median(peer_check),
    )

    # 3. Consistency proofs.
    roots1 = [root_hash(size1, reader) for size1 in sizes1]
    cproofs = [consistency_proof(size1, TREE_SIZE, reader) for size1 in sizes1]
    build = _timings(lambda s: consistency_proof(sizes1[s], TREE_SIZE, reader), SAMPLES)
    peer_build = _timings(
        lambda s: tree.prove_consistency(sizes1[s], TREE_SIZE), PEER_SAMPLES
    )
    report.add(
        "consistency_proof build at 1M, median",
        statistics.median(build),
        "us",
        PEER,
        statistics.median(peer_build),
    )
    report.add(
        "consistency_proof build at 1M, p99", _p99(build), "us", PEER, _p99(peer_build)
    )
    cached = _timings(
        lambda s: consistency_proof(sizes1[s], TREE_SIZE, reader, cache), SAMPLES
    )
    report.add(
        "consistency_proof build at 1M with EdgeCache, median",
        statistics.median(cached),
        "us",
        PEER,
        statistics.median(peer_build),
    )
    check = _timings(
        lambda s: verify_consistency(sizes1[s], TREE_SIZE, cproofs[s], roots1[s], root),
        SAMPLES,
    )
    peer_proofs = [
        tree.prove_consistency(sizes1[s], TREE_SIZE) for s in range(PEER_SAMPLES)
    ]
    peer_check = _timings(
        lambda s: peer_verify_consistency(roots1[s], root, peer_proofs[s]), PEER_SAMPLES
    )
    report.add(
        "consistency_proof verify at 1M, median",
        statistics.median(check),
        "us",
        PEER,
        statistics.median(peer_check),
    )
