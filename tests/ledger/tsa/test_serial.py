"""Serial numbers: unique across restarts and concurrent processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from ledger.tsa.serial import COUNTER_BITS, SERIAL_FILE, SerialNumbers, reserve_epoch


def test_serials_unique_across_reopen(tmp_path):
    seen = set()
    for _ in range(5):
        serials = SerialNumbers(tmp_path)
        batch = {serials.next() for _ in range(100)}
        assert len(batch) == 100
        assert not batch & seen
        seen |= batch


def test_epoch_persisted_before_use(tmp_path):
    first = SerialNumbers(tmp_path)
    assert (tmp_path / SERIAL_FILE).read_text().strip() == str(first.epoch)
    second = SerialNumbers(tmp_path)
    assert second.epoch == first.epoch + 1
    assert first.next() >> COUNTER_BITS == first.epoch


def test_corrupt_epoch_file_raises(tmp_path):
    (tmp_path / SERIAL_FILE).write_text("not a number\n")
    with pytest.raises(ValueError, match="not a decimal integer"):
        SerialNumbers(tmp_path)


def reserve_many(folder: str, count: int, queue: multiprocessing.Queue) -> None:
    queue.put([reserve_epoch(Path(folder)) for _ in range(count)])


def test_concurrent_processes_get_distinct_epochs(tmp_path):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [
        context.Process(target=reserve_many, args=(str(tmp_path), 20, queue))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    epochs = [epoch for _ in workers for epoch in queue.get(timeout=30)]
    for worker in workers:
        worker.join(timeout=30)

    assert sorted(epochs) == list(range(1, 81))
