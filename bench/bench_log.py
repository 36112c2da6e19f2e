"""Log benchmark: durable appends, integration latency, proofs, memory and disk.

Figures, each measured in the same run:

1. Sustained durable append rate through the Sequencer: LEDGER_BENCH_ENTRIES
   (default 1,000,000) entries of 300 bytes from 64 concurrent writers,
   each submitting groups of 64 with submit_many; then as many again with
   64 appends in flight per writer, one task per append; then a tenth as
   many with one append in flight per writer. pymerkle 7's InmemoryTree
   and SqliteTree append the same entries.
2. Integration latency (submit to durable) at half the maximum rate of
   each way of submitting in step 1.
3. Inclusion and consistency proof latency at 1M leaves and at the large
   size (LEDGER_BENCH_LARGE, default 10,000,000), against pymerkle at 1M,
   built by LogStore as the HTTP read API builds them: in the process that
   wrote the log, and again in a new process that reopens the large log,
   as a restarted server does. Wall-clock and CPU time per proof are both
   reported, because the shared machine's load inflates wall-clock figures.
4. Peak RSS of each of those processes (with and without the LMDB file
   pages they touched), and bytes on disk per entry.

The large log is built through LogStore.append_batch directly (batches of
20,000), not through the sequencer, to keep the build within minutes; the
output says so. LEDGER_BENCH_LARGE_SECONDS (default 600) caps the build, and
the figures then name the size reached. Each log part runs in a child
process so that its peak RSS is its own.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ENTRY_SIZE = 300
WRITERS = 64
# Appends each writer keeps outstanding in the throughput run. With one in
# flight, 64 writers put at most 64 entries into each fsync'ed commit, so
# fsync latency bounds that rate. Both runs are reported.
PIPELINE = 64
SAMPLES = 5_000


# "bench entry " + 12 digits + " " is 25 bytes, and x padding fills the rest.
_ENTRY_FORMAT = b"bench entry %012d " + b"x" * (ENTRY_SIZE - 25)


def make_entry(number: int) -> bytes:
    """Return a distinct entry of ENTRY_SIZE bytes. Requires 0 <= number < 10**12."""
    return _ENTRY_FORMAT % number


def sha256_nanoseconds() -> float:
    """Time one SHA-256 of a 65-byte node input: a yardstick of machine speed.

    On an idle core of a current x86 machine this takes well under 1 us, so
    the figure shows how much the shared machine's load slowed the run.
    """
    import hashlib

    data = b"\x01" + bytes(64)
    rounds = 200_000
    start = time.perf_counter_ns()
    for _ in range(rounds):
        hashlib.sha256(data).digest()
    return (time.perf_counter_ns() - start) / rounds


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def anonymous_rss_mib() -> float:
    """Return RssAnon from /proc/self/status: RSS without mapped file pages.

    LMDB reads through a memory map, so ru_maxrss also counts the file pages
    that proofs touched; those are page cache the kernel can drop.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def disk_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


def measure_proofs(store, tree_size: int) -> dict[str, float]:
    """Time random inclusion and consistency proofs built by the store.

    LogStore.inclusion_proof and consistency_proof are what the HTTP read
    API calls. The first proof after opening grows the in-memory levels;
    it is timed apart as the warm-up, and the samples follow.
    """
    chooser = random.Random(7)
    start = time.perf_counter()
    store.inclusion_proof(0, tree_size)
    figures = {"warmup_ms": (time.perf_counter() - start) * 1000}
    for name in ("inclusion", "consistency"):
        build = store.inclusion_proof if name == "inclusion" else store.consistency_proof
        wall: list[float] = []
        cpu: list[float] = []
        for _ in range(SAMPLES):
            if name == "inclusion":
                argument = chooser.randrange(tree_size)
            else:
                argument = chooser.randrange(1, tree_size)
            start_wall = time.perf_counter_ns()
            start_cpu = time.thread_time_ns()
            build(argument, tree_size)
            cpu.append((time.thread_time_ns() - start_cpu) / 1000)
            wall.append((time.perf_counter_ns() - start_wall) / 1000)
        figures[f"{name}_median_us"] = statistics.median(wall)
        figures[f"{name}_p99_us"] = percentile(wall, 0.99)
        figures[f"{name}_cpu_median_us"] = statistics.median(cpu)
    return figures


async def sequencer_rate(
    store, first: int, count: int, in_flight: int, grouped: bool = False
) -> tuple[float, int]:
    """Append count entries from WRITERS writers; return (entries/s, batches).

    Each writer keeps `in_flight` appends outstanding, so WRITERS * in_flight
    entries wait at a time: as that many tasks, each awaiting one submit()
    at a time, or, when grouped, as one submit_many() of in_flight entries
    per writer, awaited before the writer's next group. A task per entry
    costs the event loop a future wakeup per entry, a group one per group.
    Requires in_flight >= 1.
    """
    from ledger.sequencer import Sequencer

    async with Sequencer(store) as sequencer:
        streams = WRITERS * in_flight
        submit = sequencer.submit
        submit_many = sequencer.submit_many

        async def stream(offset: int) -> None:
            for number in range(first + offset, first + count, streams):
                await submit(make_entry(number))

        async def writer(offset: int) -> None:
            step = WRITERS * in_flight
            for start in range(first + offset * in_flight, first + count, step):
                end = min(start + in_flight, first + count)
                await submit_many(list(map(make_entry, range(start, end))))

        if grouped:
            start = time.perf_counter()
            await asyncio.gather(*(writer(offset) for offset in range(WRITERS)))
            elapsed = time.perf_counter() - start
            return count / elapsed, sequencer.committed_batches

        start = time.perf_counter()
        await asyncio.gather(*(stream(offset) for offset in range(streams)))
        elapsed = time.perf_counter() - start
        return count / elapsed, sequencer.committed_batches


async def integration_latency(
    store, rate: float, first: int, seconds: float, grouped: bool = False
) -> tuple[list[float], list[float]]:
    """Submit entries at a fixed rate (open loop) for `seconds`.

    Each millisecond tick submits the entries whose time has come: one
    submit() each, or, when grouped, one submit_many() for all of them.

    Returns the latencies from submit() to the resolved future and the
    pauses of the cyclic garbage collector during the run, both in ms.
    The run keeps no reference to a future once it is resolved, so the
    collector walks only the objects the sequencer itself keeps alive.
    """
    from ledger.sequencer import Sequencer

    latencies: list[float] = []
    pauses: list[float] = []
    collection_start = 0.0

    def time_collection(phase: str, info: dict) -> None:
        nonlocal collection_start
        if phase == "start":
            collection_start = time.perf_counter()
        else:
            pauses.append((time.perf_counter() - collection_start) * 1000)

    outstanding = 0
    submitting_over = False
    all_done = asyncio.Event()

    def record(submitted: float, entries: int = 1) -> Callable[[object], None]:
        def done(_: object) -> None:
            nonlocal outstanding
            latencies.extend([(time.perf_counter() - submitted) * 1000] * entries)
            outstanding -= entries
            if not outstanding and submitting_over:
                all_done.set()

        return done

    gc.callbacks.append(time_collection)
    try:
        async with Sequencer(store) as sequencer:
            submit = sequencer.submit
            interval = 1 / rate
            begin = time.perf_counter()
            number = first
            while (now := time.perf_counter()) - begin < seconds:
                # Submit every entry whose scheduled time has come. The
                # entries of one tick share a callback and a start time.
                due = int((now - begin) / interval) + first
                if number < due and grouped:
                    outstanding += due - number
                    group = [make_entry(n) for n in range(number, due)]
                    sequencer.submit_many(group).add_done_callback(record(now, len(group)))
                    number = due
                elif number < due:
                    done = record(now)
                    outstanding += due - number
                    for entry_number in range(number, due):
                        submit(make_entry(entry_number)).add_done_callback(done)
                    number = due
                await asyncio.sleep(0.001)
            submitting_over = True
            if outstanding:
                await all_done.wait()
    finally:
        gc.callbacks.remove(time_collection)
    return latencies, pauses


def child_append(folder: Path, count: int) -> dict:
    from ledger.store import LogStore

    single = max(count // 10, 1)
    with LogStore(folder, create=True) as store:
        grouped_rate, grouped_batches = asyncio.run(
            sequencer_rate(store, 0, count, PIPELINE, grouped=True)
        )
        rate, batches = asyncio.run(sequencer_rate(store, count, count, PIPELINE))
        single_rate, single_batches = asyncio.run(
            sequencer_rate(store, 2 * count, single, 1)
        )
        # Latency at half the maximum rate of each way of submitting.
        first = 2 * count + single
        latencies, collector_pauses = asyncio.run(
            integration_latency(store, rate / 2, first, 15.0)
        )
        first += len(latencies)
        grouped_latencies, grouped_pauses = asyncio.run(
            integration_latency(store, grouped_rate / 2, first, 15.0, grouped=True)
        )
        tree_size = store.tree_size()
        # Proofs for the tree of the first `count` leaves, the size pymerkle
        # is measured at; the store builds them for any stored size.
        figures = measure_proofs(store, count)
    size = disk_bytes(folder)
    figures.update(
        rate=rate,
        batches=batches,
        grouped_rate=grouped_rate,
        grouped_batches=grouped_batches,
        single_rate=single_rate,
        single_count=single,
        single_batches=single_batches,
        latency_rate=rate / 2,
        latency_median_ms=statistics.median(latencies),
        latency_p99_ms=percentile(latencies, 0.99),
        latency_gc_pause_max_ms=max(collector_pauses, default=0.0),
        latency_gc_pause_total_ms=sum(collector_pauses),
        grouped_latency_rate=grouped_rate / 2,
        grouped_latency_median_ms=statistics.median(grouped_latencies),
        grouped_latency_p99_ms=percentile(grouped_latencies, 0.99),
        grouped_latency_gc_pause_max_ms=max(grouped_pauses, default=0.0),
        tree_size=tree_size,
        disk_per_entry=size / tree_size,
        rss_mib=peak_rss_mib(),
        anonymous_rss_mib=anonymous_rss_mib(),
    )
    return figures


def child_large(folder: Path, count: int, limit: float) -> dict:
    from ledger.store import LogStore

    batch = 20_000
    start = time.perf_counter()
    with LogStore(folder, create=True) as store:
        built = store.tree_size()
        while built < count and time.perf_counter() - start < limit:
            size = min(batch, count - built)
            store.append_batch([make_entry(n) for n in range(built, built + size)])
            built += size
        build_seconds = time.perf_counter() - start
        figures = measure_proofs(store, built)
    figures.update(
        tree_size=built,
        build_rate=built / build_seconds,
        build_seconds=build_seconds,
        disk_per_entry=disk_bytes(folder) / built,
        rss_mib=peak_rss_mib(),
        anonymous_rss_mib=anonymous_rss_mib(),
    )
    return figures


def child_proofs(folder: Path) -> dict:
    """Open a built log in a fresh process, as a restarted server would."""
    from ledger.store import LogStore

    with LogStore(folder) as store:
        figures = measure_proofs(store, store.tree_size())
    figures.update(rss_mib=peak_rss_mib(), anonymous_rss_mib=anonymous_rss_mib())
    return figures


def run_child(mode: str, *arguments: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench.bench_log", mode, *arguments],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if result.returncode != 0:
        raise RuntimeError(f"benchmark child {mode} failed: {result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def pymerkle_peers(count: int, folder: Path) -> dict:
    from pymerkle import InmemoryTree, SqliteTree

    figures = {}
    memory_tree = InmemoryTree(algorithm="sha256")
    start = time.perf_counter()
    for number in range(count):
        memory_tree.append_entry(make_entry(number))
    figures["inmemory_rate"] = count / (time.perf_counter() - start)

    sqlite_tree = SqliteTree(str(folder / "pymerkle.db"), algorithm="sha256")
    start = time.perf_counter()
    sqlite_tree.append_entries((make_entry(n) for n in range(count)), chunksize=4096)
    figures["sqlite_rate"] = count / (time.perf_counter() - start)
    sqlite_tree.con.close()

    # pymerkle numbers leaves from 1.
    chooser = random.Random(7)
    for name in ("inclusion", "consistency"):
        wall = []
        for _ in range(SAMPLES // 5):
            start_wall = time.perf_counter_ns()
            if name == "inclusion":
                memory_tree.prove_inclusion(chooser.randrange(1, count + 1), count)
            else:
                memory_tree.prove_consistency(chooser.randrange(1, count), count)
            wall.append((time.perf_counter_ns() - start_wall) / 1000)
        figures[f"{name}_median_us"] = statistics.median(wall)
        figures[f"{name}_p99_us"] = percentile(wall, 0.99)
    return figures


def run(report) -> None:
    """Run every log figure and add it to the report."""
    count = int(os.environ.get("LEDGER_BENCH_ENTRIES", 1_000_000))
    large = int(os.environ.get("LEDGER_BENCH_LARGE", 10_000_000))
    limit = float(os.environ.get("LEDGER_BENCH_LARGE_SECONDS", 600))
    work = Path(tempfile.mkdtemp(prefix="bench-log-"))
    try:
        print(f"load average before: {os.getloadavg()}", flush=True)
        sha_before = sha256_nanoseconds()
        small = run_child("child-append", str(work / "log.lmdb"), str(count))
        print(
            f"sequencer: {count:,} entries from {WRITERS} writers as submit_many"
            f" groups of {PIPELINE} took {small['grouped_batches']:,} commits;"
            f" {count:,} entries from {WRITERS} writers with {PIPELINE} appends"
            f" in flight each (one task per append) took {small['batches']:,}"
            f" commits; {small['single_count']:,} entries with one in flight each"
            f" took {small['single_batches']:,} commits; the tree then had"
            f" {small['tree_size']:,} leaves",
            flush=True,
        )
        print(
            f"building the {large:,}-leaf log through LogStore.append_batch"
            " directly, not through the sequencer",
            flush=True,
        )
        big = run_child("child-large", str(work / "large.lmdb"), str(large), str(limit))
        served = run_child("child-proofs", str(work / "large.lmdb"))
        shutil.rmtree(work / "large.lmdb", ignore_errors=True)
        if big["tree_size"] < large:
            print(
                f"NOTE: the large build stopped at {big['tree_size']:,} leaves"
                f" after {big['build_seconds']:.0f} s (limit {limit:.0f} s)",
                flush=True,
            )
        peers = pymerkle_peers(count, work)
        print(f"load average after: {os.getloadavg()}", flush=True)
        sha_after = sha256_nanoseconds()

        report.add("SHA-256 of 65 bytes before the run (load yardstick)", sha_before, "ns")
        report.add("SHA-256 of 65 bytes after the run (load yardstick)", sha_after, "ns")
        label = f"{count // 1000}k" if count < 1_000_000 else f"{count / 1e6:g}M"
        big_label = f"{big['tree_size'] / 1e6:.3g}M"
        report.add(
            f"durable appends via sequencer, {WRITERS} writers x {PIPELINE}-entry"
            f" submit_many groups ({label})",
            small["grouped_rate"],
            "entries/s",
            peer="pymerkle InmemoryTree (not durable)",
            peer_value=peers["inmemory_rate"],
        )
        report.add(
            f"durable appends via sequencer, {WRITERS} writers x {PIPELINE}-entry"
            f" submit_many groups ({label})",
            small["grouped_rate"],
            "entries/s",
            peer="pymerkle SqliteTree append_entries",
            peer_value=peers["sqlite_rate"],
        )
        report.add(
            f"durable appends via sequencer, {WRITERS} writers x {PIPELINE} in flight,"
            f" one task per append ({label})",
            small["rate"],
            "entries/s",
            peer="pymerkle SqliteTree append_entries",
            peer_value=peers["sqlite_rate"],
        )
        report.add(
            f"durable appends via sequencer, {WRITERS} writers x 1 in flight",
            small["single_rate"],
            "entries/s",
        )
        report.add(
            f"integration latency median at {small['grouped_latency_rate']:,.0f}/s,"
            " one submit_many per millisecond",
            small["grouped_latency_median_ms"],
            "ms",
        )
        report.add(
            f"integration latency p99 at {small['grouped_latency_rate']:,.0f}/s,"
            " one submit_many per millisecond",
            small["grouped_latency_p99_ms"],
            "ms",
        )
        report.add(
            "longest garbage-collector pause during the submit_many latency run",
            small["grouped_latency_gc_pause_max_ms"],
            "ms",
        )
        report.add(
            f"integration latency median at {small['latency_rate']:,.0f}/s,"
            " one submit() per entry",
            small["latency_median_ms"],
            "ms",
        )
        report.add(
            f"integration latency p99 at {small['latency_rate']:,.0f}/s,"
            " one submit() per entry",
            small["latency_p99_ms"],
            "ms",
        )
        report.add(
            "longest garbage-collector pause during the submit() latency run",
            small["latency_gc_pause_max_ms"],
            "ms",
        )
        for kind in ("inclusion", "consistency"):
            report.add(
                f"{kind} proof median at {label}",
                small[f"{kind}_median_us"],
                "us",
                peer="pymerkle InmemoryTree",
                peer_value=peers[f"{kind}_median_us"],
            )
            report.add(
                f"{kind} proof p99 at {label}",
                small[f"{kind}_p99_us"],
                "us",
                peer="pymerkle InmemoryTree",
                peer_value=peers[f"{kind}_p99_us"],
            )
            report.add(
                f"{kind} proof CPU median at {label}",
                small[f"{kind}_cpu_median_us"],
                "us",
            )
            report.add(f"{kind} proof median at {big_label}", big[f"{kind}_median_us"], "us")
            report.add(f"{kind} proof p99 at {big_label}", big[f"{kind}_p99_us"], "us")
            report.add(
                f"{kind} proof CPU median at {big_label}",
                big[f"{kind}_cpu_median_us"],
                "us",
            )
        tree_label = f"{small['tree_size'] / 1e6:.3g}M"
        report.add(f"peak RSS of the log process at {tree_label}", small["rss_mib"], "MiB")
        report.add(f"peak RSS of the log process at {big_label}", big["rss_mib"], "MiB")
        report.add(
            f"anonymous RSS of the log process at {tree_label}",
            small["anonymous_rss_mib"],
            "MiB",
        )
        report.add(
            f"anonymous RSS of the log process at {big_label}",
            big["anonymous_rss_mib"],
            "MiB",
        )
        report.add(
            f"disk bytes per entry at {tree_label} ({ENTRY_SIZE}-byte entries)",
            small["disk_per_entry"],
            "bytes",
        )
        report.add(
            f"disk bytes per entry at {big_label} ({ENTRY_SIZE}-byte entries)",
            big["disk_per_entry"],
            "bytes",
        )
        report.add(
            f"large log build rate via append_batch ({big_label})",
            big["build_rate"],
            "entries/s",
        )
        for kind in ("inclusion", "consistency"):
            report.add(
                f"{kind} proof median at {big_label}, log reopened in a new process",
                served[f"{kind}_median_us"],
                "us",
            )
            report.add(
                f"{kind} proof p99 at {big_label}, log reopened in a new process",
                served[f"{kind}_p99_us"],
                "us",
            )
        report.add(
            f"first proof after reopening at {big_label} (grows in-memory levels)",
            served["warmup_ms"],
            "ms",
        )
        report.add(
            f"peak RSS of a process serving proofs at {big_label}",
            served["rss_mib"],
            "MiB",
        )
        report.add(
            f"anonymous RSS of a process serving proofs at {big_label}",
            served["anonymous_rss_mib"],
            "MiB",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(arguments: list[str]) -> int:
    mode = arguments[0]
    if mode == "child-append":
        figures = child_append(Path(arguments[1]), int(arguments[2]))
    elif mode == "child-large":
        figures = child_large(Path(arguments[1]), int(arguments[2]), float(arguments[3]))
    elif mode == "child-proofs":
        figures = child_proofs(Path(arguments[1]))
    else:
        raise SystemExit(f"unknown mode {mode!r}; expected child-append, child-large or child-proofs")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
