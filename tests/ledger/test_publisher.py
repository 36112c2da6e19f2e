"""Publisher: signed, time-stamped and cosigned checkpoints of committed trees."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.log import init_log, open_log
from ledger.merkle import root_hash
from ledger.note import CosignatureSigner, parse_note, verify_note
from ledger.publisher import Publisher, PublishError, count_signatures
from ledger.sequencer import Sequencer
from ledger.store import LogConfig
from ledger.tsa.authority import TimeStampAuthority
from ledger.tsa.keys import create_credentials
from ledger.tsa.verify import verify_token

ORIGIN = "example.com/publisher-test"


@pytest.fixture
def log(tmp_path):
    init_log(tmp_path / "data", ORIGIN, b"log passphrase")
    opened = open_log(tmp_path / "data", passphrase=b"log passphrase")
    yield opened
    opened.close()


def witness_hook(signers, delay: float = 0.0):
    """Return a cosign hook that appends one cosignature per witness signer."""

    async def cosign(note: bytes) -> bytes:
        await asyncio.sleep(delay)
        text = parse_note(note).text
        return note + b"".join(signer.cosign(text) for signer in signers)

    return cosign


def make_witnesses(count: int) -> list[CosignatureSigner]:
    return [
        CosignatureSigner(f"witness{i}.example", Ed25519PrivateKey.generate())
        for i in range(count)
    ]


async def test_publishes_signed_root_of_committed_tree(log):
    log.store.append_batch([b"a", b"b", b"c"])
    publisher = Publisher(log.store, log.checkpoint_signer())
    published = await publisher.publish()
    checkpoint, _ = open_checkpoint(published.note, log.verifier)
    assert checkpoint.tree_size == 3
    with log.store.view() as view:
        assert checkpoint.root_hash == root_hash(3, view)
    assert log.store.latest_checkpoint() == published
    with log.store.view() as view:
        assert view.signed_checkpoints() == [(3, published.note)]


async def test_empty_log_publishes_size_zero(log):
    publisher = Publisher(log.store, log.checkpoint_signer())
    published = await publisher.publish()
    checkpoint, _ = open_checkpoint(published.note, log.verifier)
    assert checkpoint.tree_size == 0
    assert checkpoint.root_hash == hashlib.sha256(b"").digest()


async def test_time_stamp_token_stored_and_valid(log, tmp_path):
    credentials = create_credentials(tmp_path / "tsa", b"tsa passphrase")
    authority = TimeStampAuthority.open(tmp_path / "tsa", credentials)

    async def time_stamp(note: bytes) -> bytes:
        return authority.stamp(note)

    log.store.append_batch([b"entry"])
    publisher = Publisher(log.store, log.checkpoint_signer(), time_stamp=time_stamp)
    published = await publisher.publish()
    assert published.time_stamp_token is not None
    stored = log.store.latest_checkpoint()
    assert stored.time_stamp_token == published.time_stamp_token
    info = verify_token(
        stored.time_stamp_token,
        hashlib.sha256(stored.note).digest(),
        credentials.chain,
    )
    assert info is not None


async def test_failed_time_stamp_still_publishes(log):
    async def broken(note: bytes) -> bytes:
        raise ConnectionError("time-stamp authority unreachable")

    publisher = Publisher(log.store, log.checkpoint_signer(), time_stamp=broken)
    published = await publisher.publish()
    assert published.time_stamp_token is None
    assert log.store.latest_checkpoint() == published


async def test_cosigned_note_published_at_quorum(log):
    witnesses = make_witnesses(2)
    publisher = Publisher(
        log.store, log.checkpoint_signer(), cosign=witness_hook(witnesses), quorum=2
    )
    log.store.append_batch([b"x"])
    published = await publisher.publish()
    assert count_signatures(published.note) == 3
    note = parse_note(published.note)
    verify_note(note, [log.verifier])
    verify_note(note, [w.verifier() for w in witnesses])


async def test_below_quorum_keeps_last_cosigned(log):
    witnesses = make_witnesses(2)
    signer = log.checkpoint_signer()
    good = Publisher(log.store, signer, cosign=witness_hook(witnesses), quorum=2)
    log.store.append_batch([b"first"])
    first = await good.publish()

    log.store.append_batch([b"second"])
    short = Publisher(log.store, signer, cosign=witness_hook(witnesses[:1]), quorum=2)
    with pytest.raises(PublishError, match="below the quorum of 2"):
        await short.publish()
    assert log.store.latest_checkpoint() == first

    async def down(note: bytes) -> bytes:
        raise ConnectionError("no witness reachable")

    failing = Publisher(log.store, signer, cosign=down, quorum=2)
    with pytest.raises(PublishError, match="no witness reachable"):
        await failing.publish()
    assert log.store.latest_checkpoint() == first
    # The signed checkpoint of size 2 is recorded even though unpublished.
    with log.store.view() as view:
        assert [size for size, _ in view.signed_checkpoints()] == [1, 2]


async def test_cosign_for_other_checkpoint_rejected(log):
    witnesses = make_witnesses(1)

    async def wrong(note: bytes) -> bytes:
        other = Checkpoint(ORIGIN, 99, bytes(32)).to_text()
        return note.replace(b"\n1\n", b"\n99\n") + witnesses[0].cosign(other)

    log.store.append_batch([b"only"])
    publisher = Publisher(log.store, log.checkpoint_signer(), cosign=wrong, quorum=1)
    with pytest.raises(PublishError, match="another checkpoint"):
        await publisher.publish()
    assert log.store.latest_checkpoint() is None


async def test_quorum_requires_cosign_hook(log):
    with pytest.raises(ValueError, match="cosign hook"):
        Publisher(log.store, log.checkpoint_signer(), quorum=1)


async def test_stored_quorum_enforced_without_options(log):
    witnesses = make_witnesses(2)
    vkeys = tuple((f"http://127.0.0.1:{9000 + i}", w.vkey) for i, w in enumerate(witnesses))
    log.store.write_config(LogConfig(ORIGIN, vkeys, 2))
    # A restart that forgets the witness options must not publish uncosigned.
    with pytest.raises(ValueError, match="requires 2 cosignatures"):
        Publisher(log.store, log.checkpoint_signer())
    publisher = Publisher(
        log.store, log.checkpoint_signer(), cosign=witness_hook(witnesses[:1])
    )
    log.store.append_batch([b"entry"])
    with pytest.raises(PublishError, match="below the quorum of 2"):
        await publisher.publish()
    assert log.store.latest_checkpoint() is None


async def test_slow_witness_never_blocks_appends(log):
    witnesses = make_witnesses(1)
    release = asyncio.Event()

    async def slow(note: bytes) -> bytes:
        await release.wait()
        return await witness_hook(witnesses)(note)

    publisher = Publisher(
        log.store, log.checkpoint_signer(), interval=0.01, cosign=slow, quorum=1
    )
    async with Sequencer(log.store, publisher=publisher) as sequencer:
        await publisher.start()
        waiting = asyncio.create_task(sequencer.wait_for_checkpoint(49))
        results = await asyncio.wait_for(
            asyncio.gather(*(sequencer.append(f"e{i}".encode()) for i in range(50))),
            timeout=30,
        )
        assert len(results) == 50
        assert not waiting.done()
        assert log.store.latest_checkpoint() is None
        release.set()
        note = await asyncio.wait_for(waiting, timeout=30)
        await publisher.close()
    checkpoint = Checkpoint.parse(parse_note(note).text)
    assert checkpoint.tree_size >= 50
    assert count_signatures(note) == 2


async def test_wait_for_checkpoint_and_idle_resign(log):
    stamps: list[bytes] = []

    async def time_stamp(note: bytes) -> bytes:
        stamps.append(note)
        return hashlib.sha256(note).digest()

    publisher = Publisher(
        log.store,
        log.checkpoint_signer(),
        interval=0.01,
        idle_interval=0.05,
        time_stamp=time_stamp,
    )
    async with Sequencer(log.store, publisher=publisher) as sequencer:
        await publisher.start()
        result = await sequencer.append(b"waited for")
        note = await asyncio.wait_for(sequencer.wait_for_checkpoint(result.leaf_index), 10)
        checkpoint, _ = open_checkpoint(note, log.verifier)
        assert checkpoint.tree_size >= 1
        # Idle: no growth, yet the checkpoint is re-signed and re-stamped.
        count = len(stamps)
        await asyncio.sleep(0.3)
        assert len(stamps) > count
        assert all(Checkpoint.parse(parse_note(s).text).tree_size == 1 for s in stamps[count:])
        await publisher.close()


async def test_restart_serves_last_cosigned(tmp_path):
    init_log(tmp_path / "data", ORIGIN, b"pw")
    witnesses = make_witnesses(1)
    log = open_log(tmp_path / "data", passphrase=b"pw")
    log.store.append_batch([b"one"])
    first = await Publisher(
        log.store, log.checkpoint_signer(), cosign=witness_hook(witnesses), quorum=1
    ).publish()
    log.store.append_batch([b"two"])
    log.close()

    log = open_log(tmp_path / "data", passphrase=b"pw")

    async def down(note: bytes) -> bytes:
        raise ConnectionError("witness down")

    publisher = Publisher(log.store, log.checkpoint_signer(), cosign=down, quorum=1)
    assert publisher.latest == first
    with pytest.raises(PublishError):
        await publisher.publish()
    assert log.store.latest_checkpoint() == first
    log.close()
