"""Serial numbers that stay unique across restarts and worker processes.

Each process that issues tokens first reserves an epoch: it increments a
counter in `DIR/tsa-serial` under an exclusive file lock and makes the new
value durable (write to a temporary file, fsync, rename, fsync the folder)
before it issues anything. Its serial numbers are then `epoch << 64 | n`
for n = 1, 2, ... counted in memory, so issuing a token costs no disk I/O,
and two processes (several workers sharing a port, or a restart after a
crash) never share an epoch. This was chosen over 128-bit random serials
because uniqueness then follows from the file and not from probability,
and the serials stay short (under 100 bits for the first 2**32 starts,
well inside the 160 bits that RFC 3161 section 2.4.2 asks clients to
accept).

Durability: a crash before the rename leaves the old epoch, which no
process has used yet since nothing was issued; a crash after it leaves
the new epoch, which the next start skips past.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import threading
from pathlib import Path

COUNTER_BITS = 64
SERIAL_FILE = "tsa-serial"


def reserve_epoch(data_dir: Path) -> int:
    """Increment the persisted epoch in `data_dir` durably and return it (>= 1)."""
    path = data_dir / SERIAL_FILE
    lock_path = data_dir / (SERIAL_FILE + ".lock")
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            previous = int(path.read_text("ascii").strip() or "0")
        except FileNotFoundError:
            previous = 0
        except ValueError as error:
            raise ValueError(
                f"serial epoch file {path} is not a decimal integer; restore "
                "it from a backup or set it above every epoch used before"
            ) from error
        epoch = previous + 1
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w", encoding="ascii") as handle:
            handle.write(f"{epoch}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        folder = os.open(data_dir, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return epoch


class SerialNumbers:
    """Hands out serial numbers `epoch << 64 | n` from one reserved epoch.

    `next()` is safe to call from several threads. When the 2**64 numbers
    of an epoch run out it reserves another one.
    """

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = Path(data_dir)
        self._lock = threading.Lock()
        self._epoch = reserve_epoch(self._data_dir)
        self._counter = itertools.count(1)

    @property
    def epoch(self) -> int:
        """The epoch this process reserved."""
        return self._epoch

    def next(self) -> int:
        """Return a serial number that no earlier call or process returned."""
        with self._lock:
            value = next(self._counter)
            if value >= 1 << COUNTER_BITS:
                self._epoch = reserve_epoch(self._data_dir)
                self._counter = itertools.count(2)
                value = 1
            return self._epoch << COUNTER_BITS | value
