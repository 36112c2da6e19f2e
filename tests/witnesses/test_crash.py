"""SIGKILL a witness process while the log collects cosignatures, then restart it."""

from __future__ import annotations

import asyncio
import random

from ledger.witnessing import WitnessEndpoint, Witnessing, WitnessingError


def roots_cosigned_by(c2sp, notes_by_size, vkey):
    """Map tree_size to the root_hash of every note that vkey cosigned."""
    roots = {}
    for tree_size, note in notes_by_size:
        try:
            c2sp.verify_cosignature(note, vkey)
        except c2sp.Invalid:
            continue
        text, _ = c2sp.split_note(note)
        roots.setdefault(tree_size, set()).add(c2sp.parse_checkpoint(text)[2])
    return roots


async def test_sigkill_during_cosigning(witness_processes, reference_log, c2sp):
    log = reference_log
    log.append(*[b"more %d" % i for i in range(200)])
    nodes = [witness_processes(f"w{i}", log.vkey) for i in range(3)]
    endpoints = [WitnessEndpoint(node.url, node.vkey) for node in nodes]
    witnessing = Witnessing(
        endpoints, 2, log.proof, timeout=1, attempts=3, retry_delay=0.05
    )
    victim = nodes[0]
    rng = random.Random(6)
    cosigned = []
    tree_size = 1
    try:
        for _ in range(4):
            # Kill the victim at a random moment while checkpoints are cosigned.
            async def kill_later() -> None:
                await asyncio.sleep(rng.uniform(0.0, 0.05))
                victim.kill()

            killer = asyncio.create_task(kill_later())
            while not killer.done():
                tree_size += rng.randint(1, 3)
                cosigned.append(
                    (tree_size, await witnessing.cosign(log.note(tree_size)))
                )
            await killer

            # Two of three still make the quorum while the victim is down.
            tree_size += 1
            cosigned.append((tree_size, await witnessing.cosign(log.note(tree_size))))

            victim.start()
        # With the victim back, all three cosign again.
        strict = Witnessing(endpoints, 3, log.proof, timeout=2)
        tree_size += 1
        note = await strict.cosign(log.note(tree_size))
        cosigned.append((tree_size, note))
        await strict.close()
    finally:
        await witnessing.close()

    for node in nodes:
        c2sp.verify_cosignature(cosigned[-1][1], node.vkey)
        for size, roots in roots_cosigned_by(c2sp, cosigned, node.vkey).items():
            assert roots == {log.root(size)}, f"{node.name} size {size}"

    # A fork of any size the victim cosigned before a crash gets nothing:
    # from old size 0 it is stale, and at the victim's size the root differs.
    forked = log.fork(1, *[b"forged %d" % i for i in range(tree_size)])
    liar = Witnessing(endpoints[:1], 1, forked.proof, timeout=1, attempts=1)
    try:
        for size in sorted({size for size, _ in cosigned})[
            :: max(1, len(cosigned) // 8)
        ]:
            try:
                await liar.cosign(forked.note(size))
            except WitnessingError:
                continue
            raise AssertionError(f"forked checkpoint of size {size} was cosigned")
    finally:
        await liar.close()
