"""The witness's LMDB state: atomic check-and-update, persisted across reopen."""

from __future__ import annotations

import threading

import pytest

from witnesses.state import CosignedState, WitnessState

ORIGIN = "example.com/log"


class Rejected(Exception):
    pass


def advance_to(state, tree_size, root_hash, expected_stored_size):
    def check(stored: CosignedState | None) -> None:
        size = 0 if stored is None else stored.tree_size
        if size != expected_stored_size:
            raise Rejected(size)

    return state.advance(
        ORIGIN, check, tree_size, root_hash, lambda: b"note %d\n" % tree_size
    )


def test_new_origin_starts_empty(tmp_path):
    state = WitnessState(tmp_path / "w")
    assert state.latest(ORIGIN) is None
    assert state.cosigned(ORIGIN, 0) is None
    assert state.evidence(ORIGIN) == []


def test_advance_persists_across_reopen(tmp_path):
    state = WitnessState(tmp_path / "w")
    assert advance_to(state, 5, b"a" * 32, 0) == b"note 5\n"
    assert advance_to(state, 9, b"b" * 32, 5) == b"note 9\n"
    state.close()

    reopened = WitnessState(tmp_path / "w")
    latest = reopened.latest(ORIGIN)
    assert latest == CosignedState(ORIGIN, 9, b"b" * 32, b"note 9\n")
    assert reopened.cosigned(ORIGIN, 5).root_hash == b"a" * 32
    assert reopened.cosigned(ORIGIN, 5).note == b"note 5\n"
    assert reopened.all_latest() == [latest]


def test_failed_check_changes_nothing(tmp_path):
    state = WitnessState(tmp_path / "w")
    advance_to(state, 5, b"a" * 32, 0)
    with pytest.raises(Rejected):
        advance_to(state, 7, b"c" * 32, 3)
    assert state.latest(ORIGIN).tree_size == 5
    assert state.cosigned(ORIGIN, 7) is None


def test_concurrent_advances_from_one_size(tmp_path):
    """Of many writers that all expect size 5, exactly one gets through."""
    state = WitnessState(tmp_path / "w")
    advance_to(state, 5, b"a" * 32, 0)
    winners = []
    barrier = threading.Barrier(8)

    def attempt(size: int) -> None:
        barrier.wait()
        try:
            advance_to(state, size, bytes([size]) * 32, 5)
            winners.append(size)
        except Rejected:
            pass

    threads = [threading.Thread(target=attempt, args=(10 + i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert state.latest(ORIGIN).tree_size == winners[0]


def test_evidence_kept_in_order(tmp_path):
    state = WitnessState(tmp_path / "w")
    state.record_evidence(ORIGIN, "first", b"n1\n", None)
    state.record_evidence(ORIGIN, "second", b"n2\n", b"n0\n")
    state.record_evidence("other.example/log", "elsewhere", b"x\n", None)
    records = state.evidence(ORIGIN)
    assert [record.reason for record in records] == ["first", "second"]
    assert records[1].note == b"n2\n"
    assert records[1].conflicting_note == b"n0\n"
