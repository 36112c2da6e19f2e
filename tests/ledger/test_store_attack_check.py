"""`ledger log check` on a damaged published checkpoint: one line, no traceback.

Byte flips land in the `published` database (a CBOR map of the note and
its time-stamp token) and in the `published` pointer of `meta`. The check
must fail with status 1 and one line on stderr that mentions the
checkpoint, as it does for a damaged entry or stored hash.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
from pathlib import Path

import cbor2
import pytest

from ledger.log import init_log, open_log
from ledger.publisher import Publisher

from .damage import assert_one_line_failure, check, flip_everywhere

TREE_SIZE = 300


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pristine") / "log"
    init_log(folder, "example.com/check-attack", b"pw")
    log = open_log(folder, passphrase=b"pw")
    try:
        log.store.append_batch([b"check attack entry %d" % i for i in range(TREE_SIZE)])
        asyncio.run(Publisher(log.store, log.checkpoint_signer()).publish())
    finally:
        log.close()
    return folder


@pytest.fixture
def copy(pristine, tmp_path) -> Path:
    folder = tmp_path / "log"
    shutil.copytree(pristine, folder)
    return folder


def published_record(folder: Path) -> bytes:
    log = open_log(folder)
    try:
        latest = log.store.latest_checkpoint()
    finally:
        log.close()
    return cbor2.dumps({"note": latest.note})


def test_untouched_copy_passes(copy):
    result = check(copy)
    assert result.returncode == 0, result.stderr
    assert f"ok: {TREE_SIZE} entries".encode() in result.stdout


# The record is the CBOR map {"note": bytes}: 0xa1, the text string
# 0x64 "note", then 0x59 and a 2-byte length before the note's bytes.
# Each case flips one bit of that header.
@pytest.mark.parametrize(
    ("offset", "mask"),
    [
        (0, 0x01),  # an empty map, so the key "note" is missing
        (0, 0x80),  # the integer -2 in place of the map
        (2, 0x01),  # the key "oote" in place of "note"
        (6, 0x80),  # a tag in place of the note's byte string
    ],
)
def test_damaged_published_record_one_line(copy, offset, mask):
    assert flip_everywhere(copy, published_record(copy), offset, mask) >= 1
    assert_one_line_failure(check(copy), "checkpoint")


def test_damaged_published_pointer_one_line(copy):
    # meta stores the key b"published" followed by the 8-byte big-endian
    # tree_size of the latest published checkpoint. Flip a bit of its top
    # byte, so that it names a tree_size that was never published.
    pointer = b"published" + struct.pack(">Q", TREE_SIZE)
    assert flip_everywhere(copy, pointer, len(b"published"), 0x01) >= 1
    assert_one_line_failure(check(copy), "checkpoint")
