"""The `ledger witness`, `ledger mirror` and `ledger cluster` commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_FAILURE = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the witness, mirror and cluster subcommands."""
    witness = subparsers.add_parser("witness", help="run a witness node")
    witness_commands = witness.add_subparsers(dest="witness_command", metavar="COMMAND")
    witness_commands.required = True
    serve = witness_commands.add_parser(
        "serve",
        help="cosign checkpoints of the given logs over C2SP tlog-witness",
        description="Serve POST /add-checkpoint. The first start creates the "
        "witness key (encrypted under LEDGER_PASSPHRASE) and writes the "
        "cosignature vkey to DIR/witness.vkey.",
    )
    serve.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="data folder"
    )
    serve.add_argument(
        "--listen",
        required=True,
        metavar="HOST:PORT",
        help="address to listen on (port 0 picks one), or unix:PATH for a Unix socket",
    )
    serve.add_argument(
        "--log",
        required=True,
        action="append",
        metavar="VKEY",
        help="a log's vkey, or a file holding it; the key name is the log origin (repeat for more logs, or more keys of one log)",
    )
    serve.add_argument(
        "--name",
        help="witness key name on first start (default witness.localhost/<DIR name>)",
    )
    serve.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="URL",
        help="a witness or mirror to compare checkpoints with (repeatable)",
    )
    serve.add_argument(
        "--gossip-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between gossip rounds",
    )
    serve.set_defaults(handler=_witness_serve)

    mirror = subparsers.add_parser(
        "mirror",
        help="follow a log through its tiles API and serve a verified copy",
        description="Fetch the log's checkpoints and entry bundles, re-hash "
        "every entry, check each checkpoint against the last, and serve the "
        "same /log/ read API. Forks are written to DIR/forks/.",
    )
    mirror.add_argument(
        "--source",
        required=True,
        metavar="URL",
        help="base URL of the log (serving /log/)",
    )
    mirror.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="data folder"
    )
    mirror.add_argument(
        "--listen", metavar="HOST:PORT", help="serve the copy on this address"
    )
    mirror.add_argument(
        "--log",
        metavar="VKEY",
        help="the log's vkey or a file holding it; required on the first start",
    )
    mirror.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between fetches; after a failed fetch the wait doubles"
        " each time, up to 15 seconds",
    )
    mirror.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="URL",
        help="a witness or mirror to compare checkpoints with",
    )
    mirror.set_defaults(handler=_mirror)

    cluster = subparsers.add_parser(
        "cluster",
        help="run a local log with three witnesses, one mirror and a TSA",
        description="Start the log, three witnesses, a mirror and a TSA as"
        " separate processes, each with its own folder under DIR and its own"
        " port on 127.0.0.1, print their URLs and PIDs, and stop them all on"
        " Ctrl-C, SIGTERM or SIGHUP. The log node (DIR/log) is the operator's"
        " own: its key is encrypted under your LEDGER_PASSPHRASE, so `ledger log"
        " append --data DIR/log` works with it (a log key that an earlier"
        " version encrypted under a derived passphrase is re-encrypted on"
        " start). The witnesses, the mirror and the TSA stand for other"
        " operators, so each encrypts its key under its own passphrase, the"
        " hex HMAC-SHA256 of the node name (e.g. witness-1) keyed with your"
        " LEDGER_PASSPHRASE. Exits 2 for invalid options and 1 when a node"
        " fails.",
    )
    cluster.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="data folder"
    )
    cluster.add_argument(
        "--witnesses", type=int, default=3, help="number of witnesses (default 3)"
    )
    cluster.add_argument(
        "--quorum", type=int, default=2, help="cosignatures needed (default 2)"
    )
    cluster.set_defaults(handler=_cluster)


def _fail(command: str, message: str, status: int) -> int:
    print(f"ledger {command}: {message}", file=sys.stderr)
    return status


def _announce(command: str):
    def announce(line: str) -> None:
        print(f"ledger {command}: {line}", flush=True)

    return announce


def _witness_serve(args: argparse.Namespace) -> int:
    import asyncio

    import lmdb

    from ledger.store import StoreError
    from witnesses.keys import KeyFileError, PassphraseMissingError
    from witnesses.nodes import (
        ListenError,
        NodeConfigError,
        NodeUsageError,
        open_witness,
        parse_listen,
        run_witness,
    )

    command = "witness serve"
    if args.gossip_interval <= 0:
        return _fail(
            command, f"--gossip-interval {args.gossip_interval} must be above 0", EXIT_USAGE
        )
    try:
        host, port = parse_listen(args.listen)
        witness = open_witness(args.data, args.log, args.name)
    except (PassphraseMissingError, NodeUsageError) as error:
        return _fail(command, str(error), EXIT_USAGE)
    except (NodeConfigError, KeyFileError, StoreError, lmdb.Error) as error:
        return _fail(command, str(error), EXIT_FAILURE)
    try:
        asyncio.run(
            run_witness(
                witness,
                args.data,
                host,
                port,
                args.peer,
                args.gossip_interval,
                announce=_announce(command),
            )
        )
    except ListenError as error:
        return _fail(command, str(error), EXIT_FAILURE)
    return 0


def _mirror(args: argparse.Namespace) -> int:
    import asyncio

    import lmdb

    from ledger.note import NoteError
    from ledger.store import StoreError
    from witnesses.mirror import MirrorError
    from witnesses.nodes import (
        ListenError,
        NodeConfigError,
        NodeUsageError,
        mirror_log_vkey,
        parse_listen,
        run_mirror,
    )

    command = "mirror"
    if args.interval <= 0:
        return _fail(command, f"--interval {args.interval} must be above 0", EXIT_USAGE)
    try:
        host, port = (None, 0) if args.listen is None else parse_listen(args.listen)
        vkey = mirror_log_vkey(args.data, args.log)
    except NodeUsageError as error:
        return _fail(command, str(error), EXIT_USAGE)
    except NodeConfigError as error:
        return _fail(command, str(error), EXIT_FAILURE)
    try:
        asyncio.run(
            run_mirror(
                args.data,
                args.source,
                vkey,
                host,
                port,
                args.interval,
                args.peer,
                announce=_announce(command),
            )
        )
    except NoteError as error:
        return _fail(command, f"invalid log vkey {vkey!r}: {error}", EXIT_USAGE)
    except (NodeConfigError, MirrorError, ListenError, StoreError, lmdb.Error) as error:
        return _fail(command, str(error), EXIT_FAILURE)
    return 0


def _cluster(args: argparse.Namespace) -> int:
    import signal

    from witnesses.cluster import STOP_SIGNALS, ClusterError, LocalCluster, StopRequested
    from witnesses.keys import PassphraseMissingError

    command = "cluster"
    if args.witnesses < 1:
        return _fail(command, f"--witnesses {args.witnesses} must be at least 1", EXIT_USAGE)
    try:
        cluster = LocalCluster(args.data, witnesses=args.witnesses, quorum=args.quorum)
    except (PassphraseMissingError, ClusterError) as error:
        return _fail(command, str(error), EXIT_USAGE)
    status = 0
    previous = {
        signal_number: signal.signal(signal_number, cluster.request_stop)
        for signal_number in STOP_SIGNALS
    }
    try:
        cluster.start()
        for line in cluster.describe():
            print(line, flush=True)
        cluster.wait()
    except StopRequested as stop:
        print(f"ledger {command}: {stop}; stopping every node", flush=True)
    except ClusterError as error:
        status = _fail(command, str(error), EXIT_FAILURE)
    finally:
        # stop() ignores further signals once it began; a signal that arrives
        # just before that raises StopRequested here, so stop() runs again.
        while True:
            try:
                cluster.stop()
                break
            except StopRequested:
                continue
        for signal_number, handler in previous.items():
            signal.signal(signal_number, handler)
    return status
