"""Helpers for tests that damage a log's LMDB file and run `ledger log check`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LEDGER = [sys.executable, "-m", "gateway.cli"]


def flip_everywhere(folder: Path, pattern: bytes, offset: int, mask: int = 0x01) -> int:
    """XOR mask into the byte at `offset` of every copy of `pattern` in data.mdb.

    LMDB writes pages copy-on-write, so stale copies of a record may sit in
    free pages. Changing each copy makes sure that the live one is changed.
    Returns the number of copies changed.
    """
    path = folder / "log.lmdb" / "data.mdb"
    data = bytearray(path.read_bytes())
    count = 0
    position = data.find(pattern)
    while position >= 0:
        data[position + offset] ^= mask
        count += 1
        position = data.find(pattern, position + 1)
    path.write_bytes(bytes(data))
    return count


def check(folder: Path) -> subprocess.CompletedProcess:
    """Run `ledger log check` on the log in folder."""
    return subprocess.run(
        LEDGER + ["log", "check", "--data", str(folder)],
        capture_output=True,
        timeout=120,
        check=False,
    )


def assert_one_line_failure(result: subprocess.CompletedProcess, fragment: str) -> None:
    """Assert exit status 1 and one line on stderr, without a traceback, naming fragment."""
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert fragment in stderr, stderr
