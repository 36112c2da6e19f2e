"""Crash test: `ledger log append` killed with SIGKILL under load, several rounds.

After each kill the log is reopened: every acknowledged entry is at its
printed leaf_index, `ledger log check` passes, and every checkpoint signed
so far is consistent with every later one.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import decode_entry
from ledger.log import init_log, open_log
from ledger.merkle import consistency_proof, root_hash, verify_consistency
from ledger.note import parse_note

LEDGER = [sys.executable, "-m", "gateway.cli"]
ROUNDS = 5


def append_until_killed(folder, round_number: int, delay: float) -> list[tuple[int, bytes]]:
    """Run one append process under load and SIGKILL it.

    The kill comes `delay` seconds after the first acknowledgment, so that
    it always hits a process that is appending.

    Returns the (leaf_index, line) pairs the process acknowledged.
    """
    env = dict(os.environ, LEDGER_PASSPHRASE="pw")
    process = subprocess.Popen(
        LEDGER
        + ["log", "append", "--data", str(folder), "--checkpoint-interval", "0.02"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    lines: list[bytes] = []

    def feed() -> None:
        try:
            for i in range(10_000_000):
                line = f"round {round_number} line {i} ".encode() + b"p" * (i % 200)
                lines.append(line)
                process.stdin.write(line + b"\n")
                if i % 64 == 0:
                    process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return

    printed: list[bytes] = []
    started = threading.Event()

    def read() -> None:
        for output_line in process.stdout:
            printed.append(output_line)
            started.set()

    feeder = threading.Thread(target=feed, daemon=True)
    reader = threading.Thread(target=read, daemon=True)
    feeder.start()
    reader.start()
    assert started.wait(timeout=120), "ledger log append acknowledged nothing"
    time.sleep(delay)
    process.kill()
    process.wait(timeout=30)
    reader.join(timeout=30)
    feeder.join(timeout=30)
    acknowledged = []
    for position, output_line in enumerate(printed):
        # A line cut by the kill has no newline and was never a complete
        # acknowledgment.
        if not output_line.endswith(b"\n"):
            break
        acknowledged.append((int(output_line), lines[position]))
    return acknowledged


def test_sigkill_loses_no_acknowledged_entry(tmp_path):
    folder = tmp_path / "log"
    init_log(folder, "example.com/crash-test", b"pw")
    chooser = random.Random(20261204)
    acknowledged: dict[int, bytes] = {}
    checkpoints: dict[int, bytes] = {}
    for round_number in range(ROUNDS):
        delay = chooser.uniform(0.05, 1.0)
        for leaf_index, line in append_until_killed(folder, round_number, delay):
            assert leaf_index not in acknowledged, f"leaf_index {leaf_index} reused"
            acknowledged[leaf_index] = line

        # 1. `ledger log check` re-derives the stored tree from the entries.
        result = subprocess.run(
            LEDGER + ["log", "check", "--data", str(folder)],
            capture_output=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr

        log = open_log(folder)
        try:
            tree_size = log.store.tree_size()
            # 2. Every acknowledged entry is present at its printed index.
            with log.store.view() as view:
                for leaf_index, line in acknowledged.items():
                    assert leaf_index < tree_size
                    entry = decode_entry(view.read_entry(leaf_index))
                    assert entry["data"] == line, f"leaf_index {leaf_index}"

                # 3. Checkpoints: a size is never signed with two roots, and
                #    every checkpoint is consistent with every later one.
                for size, note in view.signed_checkpoints():
                    open_checkpoint(note, log.verifier)
                    if size in checkpoints:
                        assert parse_note(checkpoints[size]).text == parse_note(note).text
                    checkpoints[size] = note
                roots = {
                    size: Checkpoint.parse(parse_note(note).text).root_hash
                    for size, note in checkpoints.items()
                }
                sizes = sorted(roots)
                for later in sizes:
                    assert later <= tree_size
                    assert roots[later] == root_hash(later, view)
                    for earlier in sizes:
                        if 0 < earlier < later:
                            proof = consistency_proof(earlier, later, view)
                            verify_consistency(
                                earlier, later, proof, roots[earlier], roots[later]
                            )
        finally:
            log.close()
    assert len(acknowledged) > 0
    assert len(checkpoints) > ROUNDS
