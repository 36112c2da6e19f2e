"""The log's commands: `ledger init`, `ledger serve`, `ledger log append|check`.

Handlers import the store and aiohttp inside, so that `ledger --help` stays
fast. Errors print one line to stderr and return status 1 for a runtime
failure (a damaged store, a busy port) or 2 for invalid usage (an invalid
option, a missing LEDGER_PASSPHRASE).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

EXIT_FAILURE = 1
EXIT_USAGE = 2
# 128 + SIGINT, as a shell reports a command ended by Ctrl-C.
EXIT_INTERRUPTED = 130


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the init, serve and log subcommands."""
    init = subparsers.add_parser(
        "init",
        help="create a log and its key in a data folder",
        description="Create DIR/log.lmdb, the encrypted DIR/log.key and"
        " DIR/log.vkey, and print the log's verifier key. The key is encrypted"
        " under LEDGER_PASSPHRASE.",
    )
    init.add_argument("--data", required=True, type=Path, metavar="DIR",
                      help="data folder of the log (created if missing)")
    init.add_argument("--origin", default=None, metavar="NAME",
                      help="checkpoint origin and log key name"
                      " (default: ledger.localhost/log)")
    init.set_defaults(handler=_init)

    serve = subparsers.add_parser(
        "serve",
        help="serve the log's read API",
        description="Serve /log/checkpoint, tiles, entry bundles and proofs."
        " With LEDGER_PASSPHRASE set and without --read-only it also publishes"
        " checkpoints, cosigned by the witnesses in the log's configuration"
        " and, with --tsa, time-stamped by that RFC 3161 authority (served at"
        " /log/checkpoint.tsr). Exits 1 when the address is busy and 2 for"
        " invalid options.",
    )
    serve.add_argument("--data", required=True, type=Path, metavar="DIR",
                       help="data folder that `ledger init` created")
    serve.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                       help="address to listen on (default: %(default)s)")
    serve.add_argument("--read-only", action="store_true",
                       help="serve without loading the key or publishing checkpoints,"
                       " e.g. for a log whose witnesses are gone (also the behaviour"
                       " when LEDGER_PASSPHRASE is unset)")
    serve.add_argument("--tsa", default=None, metavar="URL",
                       help="time-stamp each checkpoint at this RFC 3161 URL,"
                       " e.g. http://127.0.0.1:3180/tsa of `ledger tsa serve`."
                       " While it fails, checkpoints are published without a"
                       " time-stamp token and a warning is logged at most once"
                       " a minute")
    _add_checkpoint_options(serve)
    serve.set_defaults(handler=_serve)

    log = subparsers.add_parser("log", help="operate on the log's store directly")
    commands = log.add_subparsers(dest="log_command", metavar="COMMAND", required=True)
    append = commands.add_parser(
        "append",
        help="append each line of standard input as an import entry",
        description="Wrap each line of standard input (without its line end)"
        " as an `import` entry and append it through the sequencer. Each"
        " entry's leaf_index is printed once the entry is durable, so the"
        " printed lines are exactly the acknowledged entries, in input order."
        " Every entry of one run carries the same time, printed on standard"
        " error at the start, so identical lines are one entry: a repeated"
        " line prints the leaf_index of its first copy. To resume an"
        " interrupted import without storing lines twice, run it again with"
        " --time set to that time. A line of more than about 65,000 bytes"
        " stops the import there. With LEDGER_PASSPHRASE set, checkpoints are"
        " published as well.",
    )
    append.add_argument("--data", required=True, type=Path, metavar="DIR",
                        help="data folder that `ledger init` created")
    append.add_argument("--time", type=int, metavar="MS",
                        help="the time of the entries, in milliseconds since"
                        " 1970 (default: now); pass an earlier run's time to"
                        " resume it")
    _add_checkpoint_options(append)
    append.set_defaults(handler=_append)

    check = commands.add_parser(
        "check",
        help="re-derive every stored hash and checkpoint from the entries",
        description="Recompute every leaf hash and stored hash from the"
        " entries and verify every checkpoint's signature and root_hash."
        " Exits 1 and names the first bad leaf_index on a mismatch.",
    )
    check.add_argument("--data", required=True, type=Path, metavar="DIR",
                       help="data folder that `ledger init` created")
    check.set_defaults(handler=_check)


def _add_checkpoint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint-interval", type=float, default=1.0,
                        metavar="SECONDS",
                        help="publish a checkpoint this often when the tree grew"
                        " (default: %(default)s)")
    parser.add_argument("--idle-interval", type=float, default=60.0,
                        metavar="SECONDS",
                        help="re-sign the checkpoint this often when the tree did"
                        " not grow (default: %(default)s)")


def _fail(message: str, status: int = EXIT_FAILURE) -> int:
    print(f"ledger: {message}", file=sys.stderr)
    return status


def _passphrase() -> bytes | None:
    from ledger.keys import PassphraseMissingError, passphrase_from_environment

    try:
        return passphrase_from_environment()
    except PassphraseMissingError:
        return None


def _init(args: argparse.Namespace) -> int:
    from ledger.keys import KeyFileError, PassphraseMissingError, passphrase_from_environment
    from ledger.log import DEFAULT_ORIGIN, OriginError, check_origin, init_log
    from ledger.store import StoreError

    origin = DEFAULT_ORIGIN if args.origin is None else args.origin
    try:
        check_origin(origin)
    except OriginError as error:
        return _fail(f"{error}; choose another --origin", EXIT_USAGE)
    try:
        passphrase = passphrase_from_environment()
    except PassphraseMissingError as error:
        return _fail(str(error), EXIT_USAGE)
    try:
        vkey = init_log(args.data, origin, passphrase)
    except (StoreError, KeyFileError, OSError) as error:
        return _fail(f"cannot create a log in {args.data}: {error}")
    print(vkey)
    return 0


def _open(args: argparse.Namespace, passphrase: bytes | None, readonly: bool = False):
    """Open the log in args.data, raising StoreError or KeyFileError.

    LMDB's own errors (a damaged or foreign data file) become a StoreError
    that names the file.
    """
    import lmdb

    from ledger.log import open_log

    try:
        return open_log(args.data, passphrase=passphrase, readonly=readonly)
    except lmdb.Error as error:
        raise _store_error(args.data, error) from error


def _store_error(data_dir: Path, error: Exception):
    from ledger.log import STORE_NAME
    from ledger.store import StoreError

    return StoreError(
        f"cannot read {data_dir / STORE_NAME / 'data.mdb'}: {error}; the store is"
        " damaged, so restore the folder from a backup or a mirror"
    )


def _check_intervals(args: argparse.Namespace) -> str | None:
    if not 0 < args.checkpoint_interval <= args.idle_interval:
        return (
            f"--checkpoint-interval {args.checkpoint_interval} and --idle-interval"
            f" {args.idle_interval} must satisfy 0 < checkpoint interval <= idle"
            " interval"
        )
    return None


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    import lmdb

    from ledger.keys import KeyFileError
    from ledger.store import StoreError

    host, separator, port_text = args.listen.rpartition(":")
    if not separator or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return _fail(
            f"--listen {args.listen!r} is not HOST:PORT with 0 < PORT < 65536", EXIT_USAGE
        )
    problem = _check_intervals(args)
    if problem:
        return _fail(problem, EXIT_USAGE)
    if args.tsa is not None and not args.tsa.startswith(("http://", "https://")):
        return _fail(
            f"--tsa {args.tsa!r} is not an http:// or https:// URL; give the"
            " TSA's /tsa URL, e.g. http://127.0.0.1:3180/tsa",
            EXIT_USAGE,
        )
    passphrase = None if args.read_only else _passphrase()
    try:
        log = _open(args, passphrase)
    except (StoreError, KeyFileError) as error:
        return _fail(str(error))
    host = host.strip("[]") or "127.0.0.1"
    try:
        return asyncio.run(_serve_log(log, args, host, int(port_text)))
    except lmdb.Error as error:
        return _fail(str(_store_error(args.data, error)))
    finally:
        log.close()


async def _serve_log(log, args: argparse.Namespace, host: str, port: int) -> int:
    """Serve the read API, and publish checkpoints when the key is loaded, until a signal."""
    import asyncio
    import signal

    import aiohttp
    from aiohttp import web

    from ledger.http import add_read_routes
    from ledger.note import NoteError
    from ledger.tsa.client import DEFAULT_TIMEOUT, remote_stamper

    app = web.Application()
    add_read_routes(app, log.store)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        await runner.cleanup()
        return _fail(f"cannot listen on {args.listen}: {error}")
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    publisher = None
    tsa_session = None
    if log.signer is None:
        reason = "--read-only" if args.read_only else "LEDGER_PASSPHRASE is unset"
        print(
            f"ledger serve: serving log {log.config.origin} read-only on {url}/log/"
            f" ({reason}, so no checkpoints are published)",
            flush=True,
        )
    else:
        _limit_repeated_warnings()
        time_stamp = None
        if args.tsa is not None:
            from ledger.log import TimeStampWarningFilter

            logging.getLogger("ledger.publisher").addFilter(TimeStampWarningFilter())
            tsa_session = aiohttp.ClientSession(timeout=DEFAULT_TIMEOUT)
            time_stamp = remote_stamper(args.tsa, tsa_session)
        try:
            publisher = log.make_publisher(
                interval=args.checkpoint_interval,
                idle_interval=args.idle_interval,
                time_stamp=time_stamp,
            )
        except NoteError as error:
            await runner.cleanup()
            if tsa_session is not None:
                await tsa_session.close()
            return _fail(f"invalid witness in the configuration of {args.data}: {error}")
        await publisher.start()
        stamped = f", time-stamped by {args.tsa}" if args.tsa is not None else ""
        print(
            f"ledger serve: serving log {log.config.origin} on {url}/log/ and"
            f" publishing checkpoints{stamped}",
            flush=True,
        )
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        if publisher is not None:
            await publisher.close()
            await log.close_hooks()
        if tsa_session is not None:
            await tsa_session.close()
    return 0


def _limit_repeated_warnings() -> None:
    """Collapse repeats of the publisher's and witnessing client's warnings."""
    import logging

    from ledger.log import RepeatedRecordFilter

    for name in ("ledger.publisher", "ledger.witnessing"):
        logging.getLogger(name).addFilter(RepeatedRecordFilter())


def _append(args: argparse.Namespace) -> int:
    import asyncio

    import lmdb

    from ledger.keys import KeyFileError
    from ledger.store import StoreError

    problem = _check_intervals(args)
    if problem:
        return _fail(problem, EXIT_USAGE)
    if args.time is not None and args.time < 0:
        return _fail(f"--time {args.time} is negative; give milliseconds since 1970", EXIT_USAGE)
    try:
        log = _open(args, _passphrase())
    except (StoreError, KeyFileError) as error:
        return _fail(str(error))
    if log.signer is not None:
        _limit_repeated_warnings()
    if args.time is None:
        args.time = int(time.time() * 1000)
    resume = f"run it again with --time {args.time}"
    print(
        f"ledger: appending entries with time {args.time}; to resume this import"
        f" after an interruption without storing lines twice, {resume}",
        file=sys.stderr,
    )
    if log.signer is None:
        print(
            "ledger: LEDGER_PASSPHRASE is not set, so the entries are stored but"
            " no checkpoint is published; `ledger serve` with the passphrase"
            " publishes one",
            file=sys.stderr,
        )
    try:
        return asyncio.run(_append_lines(log, args, sys.stdin.buffer.fileno(), sys.stdout))
    except lmdb.Error as error:
        return _fail(str(_store_error(args.data, error)))
    except KeyboardInterrupt:
        return _fail(
            "interrupted: the printed leaf indexes are the acknowledged entries;"
            f" to append the rest, {resume}",
            EXIT_INTERRUPTED,
        )
    finally:
        log.close()


async def _append_lines(log, args: argparse.Namespace, descriptor: int, output) -> int:
    import asyncio
    import collections
    import os

    from ledger.entry import EntryError, encode_entry
    from ledger.sequencer import Sequencer

    loop = asyncio.get_running_loop()
    publisher = None
    if log.signer is not None:
        publisher = log.make_publisher(
            interval=args.checkpoint_interval, idle_interval=args.idle_interval
        )
    sequencer = Sequencer(log.store, publisher=publisher)
    await sequencer.start()
    if publisher is not None:
        await publisher.start()

    # Acknowledgments are printed in input order: the head of `pending`
    # is printed as soon as its commit returned.
    pending: collections.deque[asyncio.Future] = collections.deque()
    window = asyncio.Semaphore(8192)
    status = 0

    def flush_done() -> None:
        lines = []
        while pending and pending[0].done() and pending[0].exception() is None:
            lines.append(f"{pending.popleft().result().leaf_index}\n")
        if lines:
            output.write("".join(lines))
            output.flush()

    output_closed = False

    def on_done(future: asyncio.Future) -> None:
        nonlocal status, output_closed
        window.release()
        if output_closed or not pending or future is not pending[0]:
            return
        try:
            flush_done()
        except BrokenPipeError:
            # The reader of the acknowledgments has gone, so stop appending.
            output_closed = True
            status = _fail("standard output was closed; stopped appending")

    line_number = 0
    remainder = b""
    try:
        while True:
            chunk = await loop.run_in_executor(None, os.read, descriptor, 1 << 16)
            if not chunk:
                lines = [remainder] if remainder else []
            else:
                *lines, remainder = (remainder + chunk).split(b"\n")
            for line in lines:
                line_number += 1
                data = line.removesuffix(b"\r")
                entry = {"v": 1, "type": "import", "time": args.time, "data": data}
                try:
                    encoded = encode_entry(entry)
                except EntryError as error:
                    status = _fail(
                        f"line {line_number} was not appended: {error}; it and the"
                        " lines after it were not read, so shorten it and run the"
                        f" import again with --time {args.time}"
                    )
                    break
                await window.acquire()
                future = sequencer.submit(encoded)
                future.add_done_callback(on_done)
                pending.append(future)
            if status or not chunk:
                break
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if not output_closed:
            flush_done()
        if pending and not output_closed:
            error = pending[0].exception()
            status = _fail(
                f"appending failed, and the entries after the printed ones were"
                f" not acknowledged: {error}"
            )
        if publisher is not None:
            try:
                await publisher.publish()
            except Exception as error:
                status = _fail(
                    f"the entries are durable but the final checkpoint failed: {error}"
                )
    finally:
        await sequencer.close()
        if publisher is not None:
            await publisher.close()
            await log.close_hooks()
    return status


def _check(args: argparse.Namespace) -> int:
    import lmdb

    from ledger.log import LogCheckError, check_log
    from ledger.store import StoreError

    try:
        log = _open(args, None, readonly=True)
    except StoreError as error:
        return _fail(str(error))
    try:
        tree_size = check_log(log)
    except LogCheckError as error:
        where = f" at leaf_index {error.leaf_index}" if error.leaf_index is not None else ""
        return _fail(f"log check failed{where}: {error}")
    except lmdb.Error as error:
        return _fail(f"log check failed: {_store_error(args.data, error)}")
    except StoreError as error:
        return _fail(f"log check failed: {error}")
    finally:
        log.close()
    print(f"ok: {tree_size} entries and their checkpoints match")
    return 0
